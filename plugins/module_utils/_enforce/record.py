# PRIVATE: what one enforcement (or audit) run found and did, as data (stdlib only).
#
# The same record is written on the host into the policy record (/var/lib/distsec/policy.json,
# reported by the Security Status' `policy` collector as `compliant`, `checks` and `last_run`),
# returned to the controller (the enforce role's `distsec_run` fact) and read by the fleet
# report. Its shape is docs/dev/enforce-design.md, "The run record".
from __future__ import annotations

import json
import time
from typing import Any, Dict, Iterable, List, Optional

from ansible_collections.distsec.framework.plugins.module_utils._apply.backend import atomic_write

__all__ = [
    "RUN_SCHEMA",
    "compliance_of",
    "drift_of",
    "read_policy_record",
    "run_record",
    "utc_now",
    "write_policy_record",
]

RUN_SCHEMA = "distsec.run/1"
MODES = ("enforce", "audit")
RESULTS = ("ok", "failed")


def utc_now(now: Optional[float] = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if now is None else now))


def compliance_of(checks: Iterable[Any]) -> Dict[str, Any]:
    """{compliant, passed, failed, checks: [...]} from decide()'s CheckResults (or dicts of them)."""
    items: List[Dict[str, Any]] = []
    for check in checks:
        get = check.get if isinstance(check, dict) else lambda key, c=check: getattr(c, key)
        items.append(
            {
                "id": get("id"),
                "description": get("description"),
                "severity": get("severity"),
                "passed": bool(get("passed")),
                "on_fail": get("on_fail"),
                "unknown": list(get("unknown") or []),
            }
        )
    failed = sum(1 for item in items if not item["passed"])
    return {"compliant": failed == 0, "passed": len(items) - failed, "failed": failed, "checks": items}


def drift_of(*, drift: bool, rules: Optional[Dict[str, List[str]]], applied: bool, mode: str) -> Dict[str, Any]:
    """{found, fixed, rules}: rules are the changes that undo the drift ("CHAIN: RULE-ID")."""
    rules = rules or {}
    changes = sorted({*rules.get("added", []), *rules.get("removed", []), *rules.get("moved", [])})
    return {
        "found": bool(drift),
        "fixed": bool(drift) and bool(applied) and mode == "enforce",
        "rules": changes if drift else [],
    }


def run_record(
    *,
    host: str,
    mode: str,
    result: str = "ok",
    error: Optional[str] = None,
    changed: bool = False,
    policy: Optional[Dict[str, Any]] = None,
    profile: Optional[Dict[str, Any]] = None,
    compliance: Optional[Dict[str, Any]] = None,
    drift: Optional[Dict[str, Any]] = None,
    firewall: Optional[Dict[str, Any]] = None,
    at: Optional[str] = None,
) -> Dict[str, Any]:
    """One run's record (schema distsec.run/1)."""
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {', '.join(MODES)}, got {mode!r}")
    if result not in RESULTS:
        raise ValueError(f"result: expected one of {', '.join(RESULTS)}, got {result!r}")
    return {
        "schema": RUN_SCHEMA,
        "host": host,
        "at": at or utc_now(),
        "mode": mode,
        "result": result,
        "error": error,
        "changed": bool(changed),
        "policy": policy or {},
        "profile": profile or {},
        "compliance": compliance or {"compliant": None, "passed": 0, "failed": 0, "checks": []},
        "drift": drift or {"found": False, "fixed": False, "rules": []},
        "firewall": firewall or {},
    }


def read_policy_record(path: str) -> Dict[str, Any]:
    """The policy record as a mapping; {} when missing or unusable (it is rewritten whole)."""
    try:
        with open(path, encoding="utf-8") as handle:
            loaded = json.load(handle)
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def write_policy_record(path: str, updates: Dict[str, Any]) -> None:
    """Merge `updates` into the policy record at `path`, atomically (temp, fsync, rename), mode 0640."""
    if not path:
        return
    data = read_policy_record(path)
    data.update(updates)
    atomic_write(path, json.dumps(data, sort_keys=True, indent=1) + "\n", mode=0o640)
