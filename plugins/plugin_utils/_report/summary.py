# PRIVATE: one summary per host, fleet totals, problems and fail_on, from report entries.
#
# Every field is read defensively: the entry's outline is checked on load (entries.py), the
# rest is host data of any shape, and a field of the wrong type reads as unknown (None).
# Where a field comes from is docs/report.md, "Columns".
from __future__ import annotations

import re
from typing import Any, Dict, Iterable, List, Optional, Sequence

from ansible_collections.distsec.framework.plugins.module_utils._version import COLLECTION, VERSION

__all__ = [
    "FAIL_ON",
    "REPORT_SCHEMA",
    "build_report",
    "drift_counts",
    "fail_on_reasons",
    "parse_fail_on",
    "summarize",
    "totals",
]

REPORT_SCHEMA = "distsec.report/1"
FAIL_ON = ("drift", "noncompliant", "failed")
DEFAULT_TITLE = "distsec compliance report"
MAX_LISTED_RULES = 3
NO_RUN = "no run record: the host failed before its run, or the play did not run the enforce role"


def _dict(value: Any) -> Dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _get(data: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _text(value: Any) -> Optional[str]:
    if isinstance(value, str):
        return value if value != "" else None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _int(value: Any) -> Optional[int]:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _bool(value: Any) -> Optional[bool]:
    return value if isinstance(value, bool) else None


def _texts(value: Any) -> List[str]:
    if not isinstance(value, list):
        return []
    return [text for text in (_text(item) for item in value) if text is not None]


def _checks(value: Any) -> List[Dict[str, Any]]:
    checks = []
    for item in value if isinstance(value, list) else []:
        if not isinstance(item, dict):
            continue
        checks.append(
            {
                "id": _text(item.get("id")) or "?",
                "description": _text(item.get("description")),
                "severity": _text(item.get("severity")),
                "passed": item.get("passed") is True,
                "on_fail": _text(item.get("on_fail")),
                "unknown": _texts(item.get("unknown")),
            }
        )
    return checks


def _compliance(run: Optional[Dict[str, Any]], spolicy: Dict[str, Any]) -> Dict[str, Any]:
    """The run's compliance when it decided one, else the one the host recorded (status.policy)."""
    record = _dict(_get(run, "compliance"))
    source = None
    if run is not None and (_bool(record.get("compliant")) is not None or _checks(record.get("checks"))):
        source = "run"
    elif _bool(spolicy.get("compliant")) is not None or _checks(spolicy.get("checks")):
        record, source = spolicy, "status"
    checks = _checks(record.get("checks"))
    if source is None:
        return {"compliant": None, "passed": None, "failed": None, "source": None, "checks": []}
    if checks:
        failed = sum(1 for check in checks if not check["passed"])
        passed = len(checks) - failed
    else:
        passed, failed = _int(record.get("passed")), _int(record.get("failed"))
    compliant = _bool(record.get("compliant"))
    if compliant is None and failed is not None and source:
        compliant = failed == 0
    return {"compliant": compliant, "passed": passed, "failed": failed, "source": source, "checks": checks}


def _rejection(value: Any) -> Optional[Dict[str, Any]]:
    if isinstance(value, str) and value:
        return {"reason": value, "detail": None, "at": None}
    if isinstance(value, dict) and value:
        return {
            "reason": _text(value.get("reason")) or "?",
            "detail": _text(value.get("detail")),
            "at": _text(value.get("at")),
        }
    return None


def _drift(run: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    drift = _get(run, "drift")
    if not isinstance(drift, dict):
        return None
    found = drift.get("found") is True
    if not found and _get(run, "result") != "ok":
        return None  # a failed run may have stopped before it looked
    return {"found": found, "fixed": found and drift.get("fixed") is True, "rules": _texts(drift.get("rules"))}


def drift_counts(host: Dict[str, Any]) -> bool:
    """Whether the host's drift counts against it: found in audit mode, or found and not fixed."""
    drift = host.get("drift") or {}
    return bool(drift.get("found")) and not drift.get("fixed")


def _problems(host: Dict[str, Any]) -> List[str]:
    name = host["host"]
    out: List[str] = []
    if host["result"] == "unreachable":
        out.append(f"{name}: unreachable" + (f": {host['error']}" if host["error"] else ""))
    elif host["result"] == "failed":
        out.append(f"{name}: run failed: {host['error'] or 'no message'}")
    rejected = host["rejected"]
    if rejected:
        what = "pushed bundle refused" if host["rejected_in_run"] else "last pushed bundle refused"
        when = f" ({rejected['at']})" if rejected["at"] and not host["rejected_in_run"] else ""
        out.append(
            f"{name}: {what}{when}: {rejected['reason']}" + (f": {rejected['detail']}" if rejected["detail"] else "")
        )
    policy = host["policy"]
    if policy["source"] == "default-restrictive":
        out.append(
            f"{name}: enforcing the default-restrictive policy (the stored policy expired past its grace period)"
        )
    elif policy["in_grace"]:
        out.append(f"{name}: policy serial {policy['serial']} expired at {policy['expires']}: in its grace period")
    for check in host["compliance"]["checks"]:
        if not check["passed"]:
            severity = f" ({check['severity']})" if check["severity"] else ""
            action = f" -> {check['on_fail']}" if check["on_fail"] else ""
            unknown = f" [unknown: {', '.join(check['unknown'])}]" if check["unknown"] else ""
            out.append(f"{name}: check {check['id']} failed{severity}{action}{unknown}")
    if not host["compliance"]["checks"] and host["compliance"]["failed"]:
        out.append(f"{name}: non-compliant: {host['compliance']['failed']} check(s) failed")
    drift = host["drift"]
    if drift and drift["found"]:
        if drift["fixed"]:
            what = "drift fixed"
        elif host["mode"] == "audit":
            what = "drift found (audit)"
        else:
            what = "drift not fixed"
        rules = drift["rules"]
        listed = "; ".join(rules[:MAX_LISTED_RULES])
        if len(rules) > MAX_LISTED_RULES:
            listed += f" (+{len(rules) - MAX_LISTED_RULES} more)"
        out.append(f"{name}: {what}" + (f": {listed}" if listed else ""))
    certificate = host["certificate"]
    if certificate and certificate["valid"] is False:
        out.append(f"{name}: domain certificate not valid: {certificate['reason'] or 'see the host details'}")
    return out


def summarize(entry: Dict[str, Any]) -> Dict[str, Any]:
    """The summary and details of one host's entry (keys in a fixed order)."""
    status = _dict(entry.get("status"))
    run = entry.get("run") if isinstance(entry.get("run"), dict) else None
    spolicy = _dict(status.get("policy"))
    rpolicy = _dict(_get(run, "policy"))
    sdomain = _dict(status.get("domain"))
    cert = _get(sdomain, "certificate")

    if not entry.get("reachable"):
        result, error = "unreachable", _text(_get(run, "error"))
    elif run is None:
        result, error = "failed", NO_RUN
    else:
        result = "ok" if run.get("result") == "ok" else "failed"
        error = _text(run.get("error")) if result == "failed" else None

    serial = _int(rpolicy.get("serial"))
    if serial is None:
        serial = _int(spolicy.get("serial"))
    if run is not None:
        rejected, rejected_in_run = _rejection(rpolicy.get("rejected")), True
    else:
        rejected, rejected_in_run = _rejection(spolicy.get("last_rejection")), False
    firewall = _dict(_get(run, "firewall"))

    host: Dict[str, Any] = {
        "host": entry["host"],
        "domain": _text(sdomain.get("domain")) or _text(rpolicy.get("domain")),
        "reachable": bool(entry.get("reachable")),
        "has_status": bool(status),
        "has_run": run is not None,
        "result": result,
        "error": error,
        "at": _text(_get(run, "at")),
        "mode": _text(_get(run, "mode")),
        "changed": _bool(_get(run, "changed")),
        "policy": {
            "serial": serial,
            "source": _text(rpolicy.get("source")),
            "domain": _text(rpolicy.get("domain")) or _text(spolicy.get("domain")),
            "expires": _text(rpolicy.get("expires")) or _text(spolicy.get("expires")),
            "expired": _bool(rpolicy.get("expired")),
            "in_grace": rpolicy.get("in_grace") is True,
            "hash": _text(spolicy.get("hash")),
            "applied_at": _text(spolicy.get("applied_at")),
        },
        "rejected": rejected,
        "rejected_in_run": rejected_in_run and rejected is not None,
        "profile": {
            "name": _text(_get(run, "profile", "name")) or _text(spolicy.get("profile")),
            "reason": _text(_get(run, "profile", "reason")),
        },
        "compliance": _compliance(run, spolicy),
        "drift": _drift(run),
        "firewall": {
            "backend": _text(firewall.get("backend")),
            "applied": _bool(firewall.get("applied")),
            "confirmed": _bool(firewall.get("confirmed")),
            "reason": _text(firewall.get("reason")),
        },
        "certificate": None,
        "problems": [],
    }
    if isinstance(cert, dict):
        host["certificate"] = {
            "subject": _text(cert.get("subject")),
            "issuer": _text(cert.get("issuer")),
            "serial": _text(cert.get("serial")),
            "not_after": _text(cert.get("not_after")),
            "valid": _bool(cert.get("valid")),
            "revoked": _bool(cert.get("revoked")),
            "days_left": cert.get("days_left") if isinstance(cert.get("days_left"), (int, float)) else None,
            "reason": _text(cert.get("reason")),
        }
    host["problems"] = _problems(host)
    return host


def _natural(name: str) -> List[Any]:
    """ws2 before ws10."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name.lower())]


def totals(hosts: Sequence[Dict[str, Any]]) -> Dict[str, int]:
    return {
        "hosts": len(hosts),
        "ok": sum(1 for h in hosts if h["result"] == "ok"),
        "failed": sum(1 for h in hosts if h["result"] == "failed"),
        "unreachable": sum(1 for h in hosts if h["result"] == "unreachable"),
        "compliant": sum(1 for h in hosts if h["compliance"]["compliant"] is True),
        "noncompliant": sum(1 for h in hosts if h["compliance"]["compliant"] is False),
        "compliance_unknown": sum(1 for h in hosts if h["compliance"]["compliant"] is None),
        "drift": sum(1 for h in hosts if (h["drift"] or {}).get("found")),
        "drift_fixed": sum(1 for h in hosts if (h["drift"] or {}).get("fixed")),
        "drift_unfixed": sum(1 for h in hosts if drift_counts(h)),
        "rejected": sum(1 for h in hosts if h["rejected_in_run"]),
        "with_problems": sum(1 for h in hosts if h["problems"]),
    }


def build_report(
    entries: Iterable[Dict[str, Any]], *, generated_at: str, title: Optional[str] = None
) -> Dict[str, Any]:
    """The report document (schema distsec.report/1) every renderer reads; hosts in name order."""
    hosts = sorted((summarize(entry) for entry in entries), key=lambda h: (_natural(h["host"]), h["host"]))
    return {
        "schema": REPORT_SCHEMA,
        "title": title or DEFAULT_TITLE,
        "generated_at": generated_at,
        "generator": f"{COLLECTION} {VERSION}",
        "domains": sorted({h["domain"] for h in hosts if h["domain"]}),
        "totals": totals(hosts),
        "problems": [line for h in hosts for line in h["problems"]],
        "hosts": hosts,
    }


def parse_fail_on(value: Any) -> List[str]:
    """fail_on conditions from a list or a comma-separated string; ValueError names an unknown one."""
    if value is None or value == "":
        return []
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise ValueError(f"fail_on: expected a list of {', '.join(FAIL_ON)}, got {value!r}")
    conditions: List[str] = []
    for item in items:
        name = item.strip().lower() if isinstance(item, str) else item
        if name == "":
            continue
        if name not in FAIL_ON:
            raise ValueError(f"fail_on: unknown condition {name!r} (expected some of {', '.join(FAIL_ON)})")
        if name not in conditions:
            conditions.append(name)
    return conditions


def fail_on_reasons(report: Dict[str, Any], conditions: Sequence[str]) -> List[str]:
    """Why the report fails `conditions` (drift, noncompliant, failed): one line per host and reason."""
    unknown = [c for c in conditions if c not in FAIL_ON]
    if unknown:
        raise ValueError(f"fail_on: unknown condition {unknown[0]!r} (expected some of {', '.join(FAIL_ON)})")
    reasons: List[str] = []
    for host in report["hosts"]:
        name = host["host"]
        if "failed" in conditions and host["result"] == "unreachable":
            reasons.append(f"{name}: unreachable")
        elif "failed" in conditions and host["result"] == "failed":
            reasons.append(f"{name}: run failed: {host['error'] or 'no message'}")
        compliance = host["compliance"]
        if "noncompliant" in conditions and compliance["compliant"] is False:
            failed = [c["id"] for c in compliance["checks"] if not c["passed"]]
            count = len(failed) or compliance["failed"] or 0
            reasons.append(
                f"{name}: non-compliant: {count} check(s) failed" + (f": {', '.join(failed)}" if failed else "")
            )
        if "drift" in conditions and drift_counts(host):
            rules = len(host["drift"]["rules"])
            where = "found in audit mode" if host["mode"] == "audit" else "found and not fixed"
            reasons.append(f"{name}: firewall drift {where}" + (f" ({rules} rule change(s))" if rules else ""))
    return reasons
