# PRIVATE: Security Status collector "services": systemd service units, active and enabled (stdlib only).
#
# Sources: `systemctl list-units` (what the manager has loaded, and its state) and
# `systemctl list-unit-files` (the install state of each unit file), both parsed as text
# columns (systemd 252 of Debian 12 has no stable JSON output for them).
#
# services["UNIT.service"] = {"active": bool, "enabled": bool|None, "state": SUB, "load": LOAD|None}
#
#   active   ACTIVE is "active" or "reloading" (as `systemctl is-active` counts it).
#   state    the SUB state: running, exited, dead, failed, ...
#   load     the LOAD state: loaded, not-found, masked, ...; None for a unit file that the
#            manager has not loaded (it is then reported inactive and "dead").
#   enabled  from the unit file state, by ENABLED_STATES below:
#            True   enabled, enabled-runtime
#            False  disabled, static, masked, masked-runtime, linked, linked-runtime,
#                   transient, and units whose file is not found
#            None   alias, indirect, generated, bad, and anything else: the state says the
#                   unit is started (or not) through another unit or a generator, so whether
#                   it comes up at boot is not known from this unit alone.
#            An instance (getty@tty1.service) without its own line takes its template's
#            (getty@.service) state only when that state covers every instance (disabled,
#            static, masked); otherwise None.
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from .base import CollectorError, Context, collector

__all__ = ["ENABLED_STATES", "collect_services", "parse_list_unit_files", "parse_list_units"]

LIST_UNITS = ["systemctl", "list-units", "--type=service", "--all", "--no-legend", "--no-pager", "--plain"]
LIST_UNIT_FILES = ["systemctl", "list-unit-files", "--type=service", "--no-legend", "--no-pager"]

ENABLED_STATES: Dict[str, Optional[bool]] = {
    "enabled": True,
    "enabled-runtime": True,
    "disabled": False,
    "static": False,
    "masked": False,
    "masked-runtime": False,
    "linked": False,
    "linked-runtime": False,
    "transient": False,
    "alias": None,
    "indirect": None,
    "generated": None,
    "bad": None,
}
# Template states that hold for every instance of the template.
TEMPLATE_STATES = ("disabled", "static", "masked", "masked-runtime")
ACTIVE_STATES = ("active", "reloading")
# Markers that systemctl prints before a unit name without --plain.
MARKERS = ("\u25cf", "*", "\u25cb", "\u00d7")  # black circle, star, white circle, multiplication sign


def parse_list_units(text: str) -> Dict[str, Tuple[str, str, str]]:
    """`list-units --plain --no-legend` lines as {unit: (load, active, sub)}; other lines are skipped."""
    units: Dict[str, Tuple[str, str, str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if line[:1] in MARKERS:
            line = line[1:]
        fields = line.split(None, 4)
        if len(fields) < 4 or not fields[0].endswith(".service"):
            continue
        units[fields[0]] = (fields[1], fields[2], fields[3])
    return units


def parse_list_unit_files(text: str) -> Dict[str, str]:
    """`list-unit-files --no-legend` lines as {unit file: state}; other lines are skipped."""
    states: Dict[str, str] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 2 or not fields[0].endswith(".service"):
            continue
        states[fields[0]] = fields[1]
    return states


def _template(unit: str) -> Optional[str]:
    if "@" not in unit:
        return None
    prefix = unit.split("@", maxsplit=1)[0]
    instance = unit[len(prefix) + 1 : -len(".service")]
    return f"{prefix}@.service" if instance else None


def _enabled(unit: str, load: Optional[str], files: Dict[str, str]) -> Optional[bool]:
    state = files.get(unit)
    if state is not None:
        return ENABLED_STATES.get(state)
    template = _template(unit)
    if template is not None and files.get(template) in TEMPLATE_STATES:
        return False
    if load == "not-found":
        return False
    if load == "masked":
        return False
    return None


def _failure(err: str, rc: int) -> str:
    lines = [line.strip() for line in err.splitlines() if line.strip()]
    return lines[0] if lines else f"exit status {rc}"


@collector("services")
def collect_services(ctx: Context) -> Dict[str, Any]:
    rc, out, err = ctx.run(LIST_UNITS)
    if rc == 127:
        raise CollectorError("systemctl is not installed: service states are unknown")
    if rc != 0:
        raise CollectorError(f"systemctl list-units failed: {_failure(err, rc)}")
    units = parse_list_units(out)
    if not units and out.strip():
        raise CollectorError("systemctl list-units printed no service unit lines that could be read")

    files: Dict[str, str] = {}
    frc, fout, _ferr = ctx.run(LIST_UNIT_FILES)
    if frc == 0:
        files = parse_list_unit_files(fout)

    services: Dict[str, Any] = {}
    for unit, (load, active, sub) in units.items():
        services[unit] = {
            "active": active in ACTIVE_STATES,
            "enabled": _enabled(unit, load, files),
            "state": sub,
            "load": load,
        }
    # Unit files the manager has not loaded: not running now, but their install state counts.
    templates: List[str] = [u for u in files if u.endswith("@.service")]
    for unit, state in files.items():
        if unit in services or unit in templates:
            continue
        services[unit] = {"active": False, "enabled": ENABLED_STATES.get(state), "state": "dead", "load": None}
    return dict(sorted(services.items()))
