# PRIVATE: the lockout guard: would a policy block the admin's management path? (stdlib only)
#
# It asks the same evaluator the host uses: is a new TCP connection from each management
# source to the management port accepted, in every profile the host could switch to? The
# firewall module refuses a policy that fails this unless the author overrides it knowingly.
from __future__ import annotations

import copy
import ipaddress
from typing import Any, Dict, Iterable, List, Optional

from .decide import Decision, decide_flow
from .flows import Flow

__all__ = ["management_problems"]

_PAST = {"drop": "dropped", "reject": "rejected", "accept": "accepted"}

# Stand-in destinations when the host's own addresses are not known: the verdict of a rule
# without a destination match does not depend on them.
_ANY_DST = {4: ipaddress.ip_address("192.0.2.1"), 6: ipaddress.ip_address("2001:db8::1")}


def management_problems(
    compiled: Dict[str, Any],
    decision: Decision,
    *,
    sources: Iterable[str],
    port: int = 22,
    host_addresses: Iterable[str] = (),
    profiles: Optional[Iterable[str]] = None,
) -> List[str]:
    """Why the management path would be blocked (empty: it stays open in every profile checked)."""
    problems: List[str] = []
    own: Dict[int, list] = {4: [], 6: []}
    for text in host_addresses:
        addr = ipaddress.ip_interface(text).ip
        if not (addr.is_loopback or addr.is_link_local):
            own[addr.version].append(addr)
    for name in list(profiles) if profiles is not None else sorted(compiled["profiles"]):
        probe = copy.copy(decision)
        probe.profile = name
        probe.reason = "lockout guard"
        for src_text in sources:
            src = ipaddress.ip_address(src_text)
            for dst in own[src.version] or [_ANY_DST[src.version]]:
                flow = Flow("tcp", src, dst, "in", sport=None, dport=port)
                verdict = decide_flow(compiled, probe, flow)
                if verdict.action != "accept":
                    by = f"rule {verdict.rule}" if verdict.rule else f"the profile's default ({verdict.action})"
                    problems.append(
                        f"profile {name}: a new connection from {src} to port {port} would be {_PAST[verdict.action]} "
                        f"by {by}; admins would be locked out"
                    )
                    break
    return problems
