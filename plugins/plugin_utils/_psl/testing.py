# PRIVATE: run a policy's own tests (the `tests:` section) and explain flows.
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from ansible_collections.distsec.framework.plugins.module_utils._evaluate.conditions import parse_time
from ansible_collections.distsec.framework.plugins.module_utils._evaluate.decide import decide, decide_flow
from ansible_collections.distsec.framework.plugins.module_utils._evaluate.flows import FlowError, parse_flow

from .compiler import Policy, _as_list, compile_policy

__all__ = ["TestResult", "load_status", "run_tests"]

MAX_STATUS_BYTES = 16 * 1024 * 1024


class StatusError(Exception):
    pass


def load_status(path: str) -> Dict[str, Any]:
    """A Security Status JSON file (the distsec_status shape, or {"distsec_status": ...})."""
    try:
        if os.path.getsize(path) > MAX_STATUS_BYTES:
            raise StatusError(f"{path}: larger than {MAX_STATUS_BYTES} bytes")
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as exc:
        raise StatusError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise StatusError(f"{path}: not a JSON Security Status file: {exc}") from None
    except RecursionError:
        raise StatusError(f"{path}: nested too deeply to be a Security Status file") from None
    if isinstance(data, dict) and isinstance(data.get("distsec_status"), dict):
        data = data["distsec_status"]
    if not isinstance(data, dict):
        raise StatusError(f"{path}: a Security Status file holds a JSON object")
    return data


def _deep_merge(base: Dict[str, Any], over: Dict[str, Any]) -> Dict[str, Any]:
    """`over` on top of `base`: mappings merge key by key, null removes a key, anything else replaces."""
    out = dict(base)
    for key, value in over.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


@dataclass
class TestResult:
    name: str
    origin: str
    failures: List[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


def run_tests(policy: Policy) -> List[TestResult]:
    results = []
    for item in policy.tests:
        t = item.value
        result = TestResult(t["name"], str(item.loc()))
        results.append(result)
        status: Dict[str, Any] = dict(t.get("status") or {})
        if "status_file" in t:
            path = os.path.join(os.path.dirname(item.doc.file), t["status_file"])
            try:
                status = _deep_merge(load_status(path), status)
            except StatusError as exc:
                result.failures.append(str(exc))
                continue
        now = parse_time(t["now"]) if "now" in t else None
        if "now" in t and now is None:
            result.failures.append(f"now: {t['now']!r} is not an ISO 8601 time")
            continue
        compiled = compile_policy(policy, host=t.get("host"), groups=[str(g) for g in _as_list(t.get("groups"))])
        decision = decide(compiled, status, now=now)
        expect = t["expect"]
        if "profile" in expect and decision.profile != expect["profile"]:
            result.failures.append(f"profile: expected {expect['profile']}, got {decision.profile} ({decision.reason})")
        if "compliant" in expect and decision.compliant != expect["compliant"]:
            failed = ", ".join(decision.failed_checks) or "none"
            result.failures.append(
                f"compliant: expected {str(expect['compliant']).lower()}, got "
                f"{str(decision.compliant).lower()} (failed checks: {failed})"
            )
        if "failed_checks" in expect and sorted(expect["failed_checks"]) != sorted(decision.failed_checks):
            result.failures.append(
                f"failed_checks: expected {sorted(expect['failed_checks'])}, got {sorted(decision.failed_checks)}"
            )
        for f in expect.get("flows", []):
            try:
                flow = parse_flow(f["flow"])
            except FlowError as exc:
                result.failures.append(f"flow {f['flow']!r}: {exc}")
                continue
            verdict = decide_flow(compiled, decision, flow)
            wrong_action = verdict.action != f["action"]
            wrong_rule = "rule" in f and verdict.rule != f["rule"]
            if wrong_action or wrong_rule:
                expected = f["action"] + (f" by rule {f['rule']}" if "rule" in f else "")
                got = verdict.action + (f" by rule {verdict.rule}" if verdict.rule else " by the profile default")
                trace = "\n      ".join(verdict.trace)
                result.failures.append(
                    f"flow {f['flow']!r}:\n    - expected: {expected}\n    + got:      {got}\n      {trace}"
                )
    return results


def explain(policy: Policy, *, host: Optional[str], groups: List[str], status: Dict[str, Any], flow_text: str,
            now: Optional[float]) -> List[str]:  # fmt: skip
    flow = parse_flow(flow_text)
    compiled = compile_policy(policy, host=host, groups=groups)
    decision = decide(compiled, status, now=now)
    lines = [f"flow:     {flow}", f"host:     {host or '(domain default)'}"]
    if compiled["target"]["groups"]:
        lines.append(f"groups:   {', '.join(compiled['target']['groups'])}")
    lines.append(f"profile:  {decision.profile} ({decision.reason})")
    for check in decision.checks:
        mark = "pass" if check.passed else "FAIL"
        extra = f"; unknown: {'; '.join(check.unknown)}" if check.unknown else ""
        lines.append(f"check:    {mark} {check.id}: {check.description}{extra}")
    verdict = decide_flow(compiled, decision, flow)
    lines.append(f"verdict:  {verdict.action.upper()}" + (f" by rule {verdict.rule}" if verdict.rule else " (default)"))
    lines.append("why:")
    lines.extend(f"  - {step}" for step in verdict.trace)
    return lines
