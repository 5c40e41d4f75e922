# PRIVATE: Security Status collector "antivirus": the ClamAV signature databases' age and version.
#
# A .cvd/.cld database starts with a 512-byte ASCII header
# "ClamAV-VDB:BUILD-TIME:VERSION:SIGS:FLEVEL:MD5:DSIG:BUILDER:STIME", BUILD-TIME like
# "23 Nov 2026 07-42 +0000". The newest of daily/main (by build time; STIME, then the file's
# mtime, when the build time cannot be parsed) gives signatures_updated and its version.
# No ClamAV is a fact (engine null), not an error; an unreadable header only loses that file.
from __future__ import annotations

import datetime
import os
import re
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.distsec.framework.plugins.module_utils._status.base import Context, collector

__all__ = ["DEFAULT_DIR", "collect_antivirus", "parse_header"]

DEFAULT_DIR = "/var/lib/clamav"
_CONFIGS = ("/etc/clamav/freshclam.conf", "/etc/freshclam.conf", "/etc/clamav/clamd.conf")
_PROGRAMS = ("clamscan", "clamd", "freshclam", "clamdscan")
_MONTHS = {
    m: i for i, m in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1)
}
_BUILD_RE = re.compile(r"^\s*(\d{1,2}) ([A-Za-z]{3}) (\d{4}) (\d{1,2})[-:](\d{2})(?: ([+-])(\d{2})(\d{2}))?\s*$")


def _build_time(text: str) -> Optional[float]:
    """'23 Nov 2026 07-42 +0000' as a timestamp (no locale: month names are always English)."""
    match = _BUILD_RE.match(text)
    if not match or match.group(2).lower() not in _MONTHS:
        return None
    day, month, year, hour, minute, sign, off_h, off_m = match.groups()
    try:
        offset = datetime.timedelta(hours=int(off_h or 0), minutes=int(off_m or 0))
        zone = datetime.timezone(-offset if sign == "-" else offset)
        moment = datetime.datetime(int(year), _MONTHS[month.lower()], int(day), int(hour), int(minute), tzinfo=zone)
    except (ValueError, OverflowError):
        return None
    return moment.timestamp()


def parse_header(text: Optional[str]) -> Optional[Dict[str, Any]]:
    """The fields of a database header: {"built": ts|None, "version": int|None}, or None if not one."""
    if not text or not text.startswith("ClamAV-VDB:"):
        return None
    fields = text.split("\n", 1)[0].split(":")
    built = _build_time(fields[1]) if len(fields) > 1 else None
    if built is None and len(fields) > 8:
        stime = re.match(r"\s*(\d{1,11})\b", fields[8])
        built = float(stime.group(1)) if stime and int(stime.group(1)) < 32503680000 else None  # before year 3000
    version = int(fields[2]) if len(fields) > 2 and fields[2].strip().isdigit() else None
    return {"built": built, "version": version}


def _database_dir(ctx: Context) -> str:
    for config in _CONFIGS:
        for line in (ctx.read(config, limit=1024 * 1024) or "").splitlines():
            parts = line.split(None, 1)
            if len(parts) == 2 and parts[0] == "DatabaseDirectory":
                return parts[1].strip().strip('"')
    return DEFAULT_DIR


def _databases(ctx: Context, directory: str) -> List[Tuple[float, Optional[int]]]:
    found = []
    for base in ("daily", "main"):
        for ext in ("cvd", "cld"):
            path = f"{directory.rstrip('/')}/{base}.{ext}"
            if not ctx.exists(path):
                continue
            header = parse_header(ctx.read(path, limit=512))
            built = header["built"] if header else None
            if built is None:
                try:
                    built = os.path.getmtime(ctx.path(path))
                except OSError:
                    continue
            found.append((built, header["version"] if header else None))
    return found


@collector("antivirus")
def collect_antivirus(ctx: Context) -> Dict[str, Any]:
    directory = _database_dir(ctx)
    databases = _databases(ctx, directory)
    installed = bool(databases) or any(ctx.which(p) is not None for p in _PROGRAMS)
    if not installed:
        return {
            "engine": None,
            "installed": False,
            "signatures_updated": None,
            "signatures_age": None,
            "signature_version": None,
        }
    if not databases:
        return {
            "engine": "clamav",
            "installed": True,
            "signatures_updated": None,
            "signatures_age": None,
            "signature_version": None,
        }
    built, version = max(databases, key=lambda item: item[0])
    return {
        "engine": "clamav",
        "installed": True,
        "signatures_updated": ctx.iso(built),
        "signatures_age": int(ctx.now - built),
        "signature_version": version,
    }
