# PRIVATE: Security Status collector "packages": every installed package and its version (stdlib only).
from __future__ import annotations

import re
from typing import Any, Dict, Optional

from .base import CollectorError, Context, collector

__all__ = ["RPM_QUERY", "collect_packages", "parse_dpkg_status", "parse_rpm_qa", "rpm_versions"]

DPKG_STATUS = "/var/lib/dpkg/status"
RPM_QUERY = ["rpm", "-qa", "--qf", "%{NAME}\\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\\t%{ARCH}\\n"]

# Only the fields we need; continuation lines (leading space) never match.
_DPKG_FIELD = re.compile(r"^(Package|Status|Version|Architecture):[ \t]*(.*?)[ \t]*$", re.MULTILINE)


def _add(packages: Dict[str, Dict[str, Any]], name: str, version: str, arch: str, scheme: str) -> None:
    """Record a package; a second architecture or version of the same name is listed, the first kept."""
    entry = packages.get(name)
    if entry is None:
        packages[name] = {"version": version, "arch": arch, "scheme": scheme}
        return
    if arch != entry["arch"] and arch not in entry.get("arches", ()):
        entry.setdefault("arches", [entry["arch"]]).append(arch)
    if version != entry["version"] and version not in entry.get("versions", ()):
        entry.setdefault("versions", [entry["version"]]).append(version)


def parse_dpkg_status(text: str) -> Dict[str, Dict[str, Any]]:
    """Installed packages from dpkg's status file: stanzas separated by blank lines.

    A package counts when its Status says it is installed ("install ok installed", also
    "hold ok installed"); removed packages that keep their configuration ("deinstall ok
    config-files") and half-installed ones do not. Versions are kept as written, epoch included.
    A Multi-Arch: same package installed for several architectures keeps its first entry and
    lists all of them under "arches". An unterminated last line (a truncated file) is ignored.
    """
    if text and not text.endswith("\n"):
        # A cut-off file: its last line may hold half a version, so it is dropped.
        text = text[: text.rfind("\n") + 1]
    packages: Dict[str, Dict[str, Any]] = {}
    for stanza in text.split("\n\n"):
        fields = dict(_DPKG_FIELD.findall(stanza))
        name = fields.get("Package")
        version = fields.get("Version")
        status = fields.get("Status", "").split()
        if not name or not version or len(status) != 3 or status[2] != "installed":
            continue
        _add(packages, name, version, fields.get("Architecture", ""), "dpkg")
    return packages


def parse_rpm_qa(text: str) -> Dict[str, Dict[str, Any]]:
    """Installed packages from RPM_QUERY output: NAME<TAB>EPOCH:VERSION-RELEASE<TAB>ARCH lines."""
    packages: Dict[str, Dict[str, Any]] = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) != 3 or not parts[0] or not parts[1]:
            continue
        name, version, arch = parts
        if name == "gpg-pubkey":  # imported signing keys, not packages
            continue
        if version.startswith("0:"):
            version = version[2:]
        _add(packages, name, version, arch, "rpm")
    return packages


def _rpm_packages(ctx: Context) -> Optional[Dict[str, Dict[str, Any]]]:
    rc, out, err = ctx.run(RPM_QUERY)
    if rc == 127:
        return None
    if rc != 0:
        raise CollectorError(f"rpm -qa failed (rc {rc}): {err.strip()[:200]}")
    return parse_rpm_qa(out)


@collector("packages")
def collect_packages(ctx: Context) -> Dict[str, Dict[str, Any]]:
    text = ctx.read(DPKG_STATUS)
    if text is not None:
        packages = parse_dpkg_status(text)
        if not packages:
            raise CollectorError(f"{DPKG_STATUS} lists no installed package (empty or damaged)")
        return packages
    packages = _rpm_packages(ctx)
    if packages is not None:
        return packages
    raise CollectorError("no package database found (dpkg or rpm)")


def rpm_versions(ctx: Context) -> Dict[str, str]:
    """Name -> installed version from rpm (empty when rpm is missing or fails); used by updates."""
    try:
        packages = _rpm_packages(ctx) or {}
    except CollectorError:
        return {}
    return {name: entry["version"] for name, entry in packages.items()}
