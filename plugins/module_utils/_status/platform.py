# PRIVATE: Security Status collector "platform": the OS, kernel, boot time and package scheme (stdlib only).
from __future__ import annotations

from typing import Any, Dict, List, Optional

from .base import CollectorError, Context, collector

__all__ = ["PROC_LIMIT", "collect_platform", "parse_os_release"]

# /proc files refuse very large reads (ENOMEM for a 64 MiB buffer), so /proc reads are bounded.
PROC_LIMIT = 1024 * 1024

# Families named as such; RHEL itself says ID_LIKE="fedora", so a known family wins over ID_LIKE order.
_FAMILIES = ("debian", "rhel", "suse", "arch", "alpine", "gentoo")


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
        # os-release(5): shell-style escapes of $ " \ ` inside double quotes
        for char in '\\$"`':
            value = value.replace("\\" + char, char)
    return value


def parse_os_release(text: str) -> Dict[str, str]:
    """KEY=value lines of os-release(5); comments, blank and malformed lines are skipped."""
    fields: Dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        key = key.strip()
        if key.isidentifier():
            fields[key] = _unquote(value)
    return fields


def _family(os_id: str, like: List[str]) -> str:
    for name in [os_id, *like]:
        if name in _FAMILIES:
            return name
    return like[0] if like else os_id


def _boot_time(ctx: Context) -> Optional[str]:
    text = ctx.read("/proc/stat", limit=PROC_LIMIT) or ""
    for line in text.splitlines():
        if line.startswith("btime "):
            try:
                return ctx.iso(int(line.split()[1]))
            except (IndexError, ValueError, OverflowError, OSError):
                return None
    return None


def _virtualization(ctx: Context) -> Optional[str]:
    if ctx.exists("/run/.containerenv") or ctx.exists("/.dockerenv"):
        return "container"
    environ = ctx.read("/proc/1/environ", limit=PROC_LIMIT) or ""
    if any(entry.startswith("container=") for entry in environ.split("\0")):
        return "container"
    return None


def _version_scheme(ctx: Context) -> Optional[str]:
    if ctx.exists("/var/lib/dpkg/status"):
        return "dpkg"
    if ctx.exists("/var/lib/rpm"):
        return "rpm"
    return None


@collector("platform")
def collect_platform(ctx: Context) -> Dict[str, Any]:
    text = ctx.read("/etc/os-release")
    if text is None:
        text = ctx.read("/usr/lib/os-release")
    if text is None:
        raise CollectorError("no os-release file (/etc/os-release or /usr/lib/os-release)")
    fields = parse_os_release(text)
    if not fields.get("ID"):
        raise CollectorError("os-release has no ID field")
    os_id = fields["ID"]
    like = fields.get("ID_LIKE", "").split()
    rc, out, _err = ctx.run(["uname", "-m"])
    arch = out.strip() if rc == 0 and out.strip() else None
    kernel = (ctx.read("/proc/sys/kernel/osrelease", limit=4096) or "").strip() or None
    return {
        "os": os_id,
        "os_family": _family(os_id, like),
        "distribution": fields.get("NAME") or None,
        "release": fields.get("VERSION_ID") or None,
        "codename": fields.get("VERSION_CODENAME") or None,
        "kernel": kernel,
        "architecture": arch,
        "boot_time": _boot_time(ctx),
        "virtualization": _virtualization(ctx),
        "version_scheme": _version_scheme(ctx),
    }
