# PRIVATE: Security Status collector "time": the clock, its synchronisation and the time zone (stdlib only).
#
# time = {"now": ISO 8601 of ctx.now, "synchronized": bool|None, "ntp_service": str|None, "timezone": str|None}
#
# Sources: `timedatectl show` (NTPSynchronized=yes|no, Timezone=...) and
# `systemctl is-active` on the known NTP daemons (and any unit named in systemd's
# ntp-units.d lists): the first that is active is ntp_service. A missing or failing
# timedatectl or systemctl is not an error: those facts are then None.
from __future__ import annotations

from typing import Any, Dict, List, Optional

from .base import Context, collector

__all__ = ["NTP_UNITS", "collect_time", "parse_timedatectl"]

TIMEDATECTL = ["timedatectl", "show"]
NTP_UNITS = (
    "chrony.service",
    "chronyd.service",
    "systemd-timesyncd.service",
    "ntpsec.service",
    "ntp.service",
    "ntpd.service",
    "openntpd.service",
)
NTP_UNIT_DIRS = ("/etc/systemd/ntp-units.d", "/usr/lib/systemd/ntp-units.d")
BOOLEANS = {"yes": True, "no": False}


def parse_timedatectl(text: str) -> Dict[str, str]:
    """`timedatectl show` KEY=VALUE lines."""
    values: Dict[str, str] = {}
    for line in text.splitlines():
        if "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


def _ntp_candidates(ctx: Context) -> List[str]:
    units = list(NTP_UNITS)
    for directory in NTP_UNIT_DIRS:
        for name in ctx.listdir(directory):
            if not name.endswith(".list"):
                continue
            for line in (ctx.read(f"{directory}/{name}") or "").splitlines():
                unit = line.strip()
                if unit and not unit.startswith("#") and unit not in units:
                    units.append(unit)
    return units


def _ntp_service(ctx: Context) -> Optional[str]:
    units = _ntp_candidates(ctx)
    rc, out, _err = ctx.run(["systemctl", "is-active", *units])
    if rc == 127:
        return None
    states = out.splitlines()
    if len(states) != len(units):
        return None
    for unit, state in zip(units, states):
        if state.strip() == "active":
            return unit
    return None


@collector("time")
def collect_time(ctx: Context) -> Dict[str, Any]:
    result: Dict[str, Any] = {"now": ctx.iso(ctx.now), "synchronized": None, "ntp_service": None, "timezone": None}
    rc, out, _err = ctx.run(TIMEDATECTL)
    if rc == 0:
        values = parse_timedatectl(out)
        result["synchronized"] = BOOLEANS.get(values.get("NTPSynchronized", ""))
        result["timezone"] = values.get("Timezone") or None
    result["ntp_service"] = _ntp_service(ctx)
    return result
