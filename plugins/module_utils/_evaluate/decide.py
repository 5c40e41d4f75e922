# PRIVATE: a compiled policy x a host's Security Status -> decisions (stdlib only).
#
# Used on the host by the enforcement modules and on the controller by `distsec psl test`
# and `distsec psl explain`, so a preview and the enforcement can never disagree.
from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from .conditions import Evaluator, parse_time
from .flows import PROTO_NUMBERS, Flow

__all__ = ["CheckResult", "Decision", "FlowVerdict", "active_rules", "decide", "decide_flow"]


@dataclass
class CheckResult:
    id: str
    description: str
    severity: str
    passed: bool
    on_fail: str
    unknown: List[str] = field(default_factory=list)


@dataclass
class Decision:
    profile: str
    reason: str
    compliant: bool
    checks: List[CheckResult]
    expired: bool
    evaluator: Evaluator

    @property
    def failed_checks(self) -> List[str]:
        return [c.id for c in self.checks if not c.passed]


@dataclass
class FlowVerdict:
    action: str
    rule: Optional[str]
    trace: List[str]


def _evaluator(compiled: Dict[str, Any], status: Dict[str, Any], now: Optional[float]) -> Evaluator:
    return Evaluator(
        status,
        compiled.get("objects", {}).get("addresses", {}),
        now=time.time() if now is None else now,
        default_scheme=compiled.get("defaults", {}).get("version_scheme"),
    )


def decide(compiled: Dict[str, Any], status: Dict[str, Any], *, now: Optional[float] = None) -> Decision:
    """Which checks pass, and which profile the host gets, and why."""
    ev = _evaluator(compiled, status, now)
    profiles = compiled["profiles"]
    results = []
    for check in compiled.get("checks", []):
        before = len(ev.unknowns)
        passed = ev.truth(check["require"], check["if_unknown"])
        results.append(
            CheckResult(
                check["id"],
                check["description"],
                check["severity"],
                passed,
                check["on_fail"],
                ev.unknowns[before:],
            )
        )
    failed = [r for r in results if not r.passed]
    expires = parse_time(compiled.get("metadata", {}).get("expires"))
    expired = expires is not None and ev.now > expires
    if expired:
        profile, reason = compiled["expired_profile"], "the policy has expired"
    elif failed:
        worst = max(failed, key=lambda r: (profiles[r.on_fail]["rank"], r.on_fail))
        ids = ", ".join(r.id for r in failed)
        profile, reason = worst.on_fail, f"non-compliant: failed check(s) {ids}"
    else:
        profile, reason = compiled["default_profile"], "no selection matched: the default profile"
        for entry in compiled.get("select", []):
            if ev.truth(entry["when"], entry["if_unknown"]):
                profile = entry["profile"]
                reason = f"selected: {entry['description'] or entry['source']}"
                break
    return Decision(profile, reason, not failed, results, expired, ev)


def active_rules(compiled: Dict[str, Any], decision: Decision) -> List[Dict[str, Any]]:
    """The rules of the chosen profile whose conditions hold on this host, in order."""
    rules = compiled["profiles"][decision.profile]["rules"]
    return [r for r in rules if decision.evaluator.truth(r.get("when"), r.get("if_unknown", False))]


def _in_set(addr, spec: Optional[Dict[str, Any]], addresses: Dict[str, Dict[str, List[str]]]) -> bool:
    if spec is None:
        return True
    fam = "ipv4" if addr.version == 4 else "ipv6"
    nets = list(spec.get("literal", {}).get(fam, []))
    for name in spec.get("objects", []):
        nets.extend(addresses.get(name, {}).get(fam, []))
    return any(addr in ipaddress.ip_network(n) for n in nets)


def _in_ranges(value: Optional[int], ranges: Optional[List[List[int]]]) -> bool:
    if ranges is None:
        return True
    return value is not None and any(lo <= value <= hi for lo, hi in ranges)


def _proto_match(rule: Dict[str, Any], flow: Flow) -> bool:
    entries = rule.get("protocols")
    if entries is None:
        return True
    number = PROTO_NUMBERS[flow.proto]
    for entry in entries:
        proto = entry["proto"]
        if proto not in ("any", flow.proto, number):
            continue
        if not _in_ranges(flow.dport, entry.get("ports")) or not _in_ranges(flow.sport, entry.get("sports")):
            continue
        if entry.get("types") is not None and flow.icmp_type not in entry["types"]:
            continue
        if entry.get("codes") is not None and flow.icmp_code not in entry["codes"]:
            continue
        return True
    return False


def decide_flow(compiled: Dict[str, Any], decision: Decision, flow: Flow) -> FlowVerdict:
    """The verdict for one flow under the decided profile: the first matching rule decides."""
    addresses = compiled.get("objects", {}).get("addresses", {})
    profile = compiled["profiles"][decision.profile]
    trace = [f"profile {decision.profile}: {decision.reason}"]
    ev = decision.evaluator
    for rule in profile["rules"]:
        if rule["direction"] != flow.direction or rule.get("family") not in (None, flow.family):
            continue
        if not (_in_set(flow.src, rule.get("from"), addresses) and _in_set(flow.dst, rule.get("to"), addresses)):
            continue
        if not _proto_match(rule, flow):
            continue
        if rule.get("interface") and rule["interface"] != flow.interface:
            trace.append(f"skipped {rule['id']}: only on interface {rule['interface']}")
            continue
        if rule.get("state") and "new" not in rule["state"]:
            continue
        owner = rule.get("owner")
        if owner and any(
            str(owner[key]) != (getattr(flow, key) or "") for key in ("user", "group") if owner.get(key) is not None
        ):
            wanted = ", ".join(f"{k}={owner[k]}" for k in ("user", "group") if owner.get(k) is not None)
            trace.append(f"skipped {rule['id']}: only for sockets owned by {wanted}")
            continue
        if rule.get("fields"):
            trace.append(f"skipped {rule['id']}: matches header fields a flow does not carry")
            continue
        if rule.get("when") is not None:
            before = len(ev.unknowns)
            holds = ev.truth(rule["when"], rule.get("if_unknown", False))
            unknown = ev.unknowns[before:]
            why = f"condition {rule['when_source']!r} is {'true' if holds else 'false'}"
            if unknown:
                why += f" (unknown: {'; '.join(unknown)}; if_unknown={str(rule.get('if_unknown', False)).lower()})"
            if not holds:
                trace.append(f"skipped {rule['id']}: {why}")
                continue
            trace.append(f"{rule['id']} matches; {why}")
        else:
            trace.append(f"{rule['id']} matches")
        trace.append(f"verdict {rule['action']} by rule {rule['id']} ({rule['description']}) at {rule['origin']}")
        return FlowVerdict(rule["action"], rule["id"], trace)
    action = profile["default"][flow.direction]
    trace.append(f"no rule matches: profile {decision.profile} default for {flow.direction} is {action}")
    return FlowVerdict(action, None, trace)
