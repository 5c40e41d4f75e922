# PRIVATE: Security Status collector "updates": pending package updates, security ones counted (stdlib only).
from __future__ import annotations

import fnmatch
import os
import re
from typing import Any, Dict, List, Optional, Set

from .base import CollectorError, Context, collector
from .packages import rpm_versions

__all__ = [
    "APT_SIMULATE",
    "DNF_CHECK_UPDATE",
    "DNF_SECURITY",
    "collect_updates",
    "parse_apt_simulation",
    "parse_dnf_check_update",
    "parse_dnf_security",
]

APT_SIMULATE = ["apt-get", "-s", "-o", "Debug::NoLocking=1", "dist-upgrade"]
DNF_CHECK_UPDATE = ["dnf", "-q", "check-update"]
DNF_SECURITY = ["dnf", "-q", "updateinfo", "list", "--security"]

APT_LISTS = "/var/lib/apt/lists"
APT_SECURITY_LISTS = ("*security*Packages", "*security*Packages.*", "*security*InRelease")
DNF_CACHES = ("/var/cache/dnf", "/var/cache/libdnf5")

# Inst NAME [OLD] (NEW ORIGIN[, ORIGIN...] [ARCH]) [...]; [OLD] is absent for a new package.
_APT_INST = re.compile(r"^Inst (\S+) (?:\[([^\]]*)\] )?\((\S+)(?: (.*?))?(?: \[([^\]]*)\])?\)")
_NEVRA = re.compile(r"^(?P<name>.+)-(?P<version>[^-]+)-(?P<release>[^-]+)\.(?P<arch>[^.]+)$")


def _is_security_origin(origin: str) -> bool:
    return "-security" in origin or "Debian-Security" in origin


def parse_apt_simulation(text: str) -> List[Dict[str, Any]]:
    """Pending updates from `apt-get -s dist-upgrade`: one entry per Inst line, in apt's order."""
    pending: List[Dict[str, Any]] = []
    for line in text.splitlines():
        match = _APT_INST.match(line)
        if match is None:
            continue
        name, old, new, origin = match.group(1), match.group(2), match.group(3), match.group(4) or ""
        pending.append({"name": name, "from": old or None, "to": new, "security": _is_security_origin(origin)})
    return pending


def parse_dnf_check_update(text: str) -> List[Dict[str, Any]]:
    """(name, new version) pairs from `dnf -q check-update` (rc 100); obsoletes are not updates."""
    pending: List[Dict[str, Any]] = []
    carry = ""
    for raw in text.splitlines():
        line = (carry + " " + raw).strip() if carry else raw.strip()
        carry = ""
        if not line or line.startswith("Security:") or line.startswith("Last metadata"):
            continue
        if line.startswith("Obsoleting"):
            break
        fields = line.split()
        if len(fields) == 1 and "." in fields[0]:
            carry = fields[0]  # dnf wraps a long name.arch onto its own line
            continue
        if len(fields) != 3 or "." not in fields[0]:
            continue
        name = fields[0].rsplit(".", maxsplit=1)[0]
        version = fields[1][2:] if fields[1].startswith("0:") else fields[1]
        pending.append({"name": name, "from": None, "to": version, "security": False})
    return pending


def parse_dnf_security(text: str) -> Set[str]:
    """Package names with a pending security advisory, from `dnf -q updateinfo list --security`.

    dnf 4 prints `ADVISORY SEVERITY/Sec. NEVRA`; dnf 5 prints a header and
    `ADVISORY TYPE SEVERITY NEVRA ISSUED`: the first field after the advisory that parses as
    a NEVRA is taken.
    """
    names: Set[str] = set()
    for line in text.splitlines():
        for field in line.split()[1:]:
            match = _NEVRA.match(field)
            if match is not None:
                names.add(match.group("name"))
                break
    return names


def _newest_mtime(ctx: Context, paths: List[str]) -> Optional[float]:
    newest: Optional[float] = None
    for path in paths:
        try:
            mtime = os.stat(ctx.path(path)).st_mtime
        except OSError:
            continue
        newest = mtime if newest is None else max(newest, mtime)
    return newest


def _age(ctx: Context, first_seen: Optional[float]) -> float:
    if first_seen is None:
        return 0
    return max(0, int(ctx.now - first_seen))


# The age of the oldest pending security update is APPROXIMATED: neither apt nor dnf records
# when an update first became available. We take the time the security index was last
# downloaded (the mtime of the newest *security*Packages / *security*InRelease list for apt,
# of the newest repodata/repomd.xml in the dnf cache for dnf) as "first seen". The index held
# the update then, so the true age is at least this value: it is a lower bound, and it falls
# back to about 0 each time the lists are refreshed. 0 when no such file exists.
def _apt_first_seen(ctx: Context) -> Optional[float]:
    names = [n for n in ctx.listdir(APT_LISTS) if any(fnmatch.fnmatchcase(n, p) for p in APT_SECURITY_LISTS)]
    return _newest_mtime(ctx, [f"{APT_LISTS}/{n}" for n in names])


def _dnf_first_seen(ctx: Context) -> Optional[float]:
    paths = [f"{cache}/{repo}/repodata/repomd.xml" for cache in DNF_CACHES for repo in ctx.listdir(cache)]
    return _newest_mtime(ctx, paths)


def _summary(ctx: Context, pending: List[Dict[str, Any]], source: str, first_seen: Optional[float]) -> Dict[str, Any]:
    security = sum(1 for item in pending if item["security"])
    return {
        "pending_count": len(pending),
        "security_count": security,
        "oldest_security_age": _age(ctx, first_seen) if security else 0,
        "pending": pending,
        "source": source,
    }


def _brief(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else "no message"


def _apt(ctx: Context) -> Optional[Dict[str, Any]]:
    rc, out, err = ctx.run(APT_SIMULATE)
    if rc == 127:
        return None
    if rc != 0:
        raise CollectorError(f"apt-get -s dist-upgrade failed (rc {rc}): {_brief(err)}")
    return _summary(ctx, parse_apt_simulation(out), "apt", _apt_first_seen(ctx))


def _dnf(ctx: Context) -> Optional[Dict[str, Any]]:
    rc, out, err = ctx.run(DNF_CHECK_UPDATE)
    if rc == 127:
        return None
    if rc not in (0, 100):
        raise CollectorError(f"dnf check-update failed (rc {rc}): {_brief(err)}")
    pending = parse_dnf_check_update(out) if rc == 100 else []
    if pending:
        src, sec_out, sec_err = ctx.run(DNF_SECURITY)
        if src != 0:
            raise CollectorError(f"dnf updateinfo list --security failed (rc {src}): {_brief(sec_err)}")
        security = parse_dnf_security(sec_out)
        installed = rpm_versions(ctx)
        for item in pending:
            item["from"] = installed.get(item["name"])
            item["security"] = item["name"] in security
    return _summary(ctx, pending, "dnf", _dnf_first_seen(ctx))


@collector("updates")
def collect_updates(ctx: Context) -> Dict[str, Any]:
    for source in (_apt, _dnf):
        result = source(ctx)
        if result is not None:
            return result
    raise CollectorError("no package manager to ask for updates (apt-get or dnf)")
