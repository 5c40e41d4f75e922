# PRIVATE: the lockout guard: would a policy block the admin's management path? (stdlib only)
#
# It asks the same evaluator the host uses: is a new TCP connection from each management
# source to the management port accepted, in every profile the host could switch to? The
# firewall module refuses a policy that fails this unless the author overrides it knowingly.
from __future__ import annotations

import ipaddress
from typing import Any, Dict, Iterable, List, Optional

from .decide import Decision, _in_set, _proto_match
from .flows import Flow

__all__ = ["management_problems"]

_PAST = {"drop": "dropped", "reject": "rejected", "accept": "accepted"}

# Stand-in destinations when the host's own addresses are not known: the verdict of a rule
# without a destination match does not depend on them.
_ANY_DST = {4: ipaddress.ip_address("192.0.2.1"), 6: ipaddress.ip_address("2001:db8::1")}


def _verdict(compiled: Dict[str, Any], profile: str, decision: Decision, flow: Flow, dst_known: bool):
    """The first rule that decides (or may decide) the flow; conservative where a flow can't tell.

    A non-accept rule that could match, though the flow cannot show it (interface, header
    fields, socket owner, a destination when the host's addresses are unknown, or a condition
    that may hold later), counts as blocking; an accept rule of that kind is not relied on.
    """
    addresses = compiled.get("objects", {}).get("addresses", {})
    ev = decision.evaluator
    for rule in compiled["profiles"][profile]["rules"]:
        if rule["direction"] != "in" or rule.get("family") not in (None, flow.family):
            continue
        if not _in_set(flow.src, rule.get("from"), addresses):
            continue
        unsure = bool(rule.get("interface") or rule.get("fields") or rule.get("owner"))
        if rule.get("to") is not None:
            if dst_known:
                if not _in_set(flow.dst, rule.get("to"), addresses):
                    continue
            else:
                unsure = True
        if rule.get("state") and "new" not in rule["state"]:
            continue
        if not _proto_match(rule, flow):
            continue
        if rule.get("when") is not None:
            # The host re-evaluates conditions on every run, without the controller: a conditional
            # accept may stop holding and a conditional drop may start to. Rely on neither.
            if rule["action"] == "accept":
                continue
            unsure = unsure or not ev.truth(rule["when"], rule.get("if_unknown", False))
        if unsure and rule["action"] == "accept":
            continue
        return rule["action"], rule["id"], unsure
    return compiled["profiles"][profile]["default"]["in"], None, False


def management_problems(
    compiled: Dict[str, Any],
    decision: Decision,
    *,
    sources: Iterable[str],
    port: int = 22,
    host_addresses: Iterable[str] = (),
    profiles: Optional[Iterable[str]] = None,
) -> List[str]:
    """Why the management path would (or might) be blocked; empty: open in every profile checked."""
    problems: List[str] = []
    own: Dict[int, list] = {4: [], 6: []}
    for text in host_addresses:
        addr = ipaddress.ip_interface(text).ip
        if not (addr.is_loopback or addr.is_link_local):
            own[addr.version].append(addr)
    for name in list(profiles) if profiles is not None else sorted(compiled["profiles"]):
        for src_text in sources:
            src = ipaddress.ip_address(src_text)
            for dst in own[src.version] or [_ANY_DST[src.version]]:
                flow = Flow("tcp", src, dst, "in", sport=None, dport=port)
                action, rule_id, unsure = _verdict(compiled, name, decision, flow, bool(own[src.version]))
                if action != "accept":
                    by = f"rule {rule_id}" if rule_id else f"the profile's default ({action})"
                    verb = "might be" if unsure else "would be"
                    problems.append(
                        f"profile {name}: a new connection from {src} to port {port} {verb} {_PAST[action]} "
                        f"by {by}; admins would be locked out"
                    )
                    break
    return problems
