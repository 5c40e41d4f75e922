# PRIVATE: distsec's built-in default-restrictive policy, built from a few parameters.
#
# The IETF draft (seed 001, "Default security"): "The node firewall must be configured by default
# with a very restrictive set of rules." This is that set, as an ordinary PSL policy: its default and expired
# profile is `isolated` (drop in, out and forward), which keeps only the baseline (loopback,
# established, the ICMPv6 essentials, management from the admin networks) and the remediation
# paths to the PDP, patch mirrors, DNS, NTP and PKI servers (docs/psl.md 3.7, 3.8), plus (unless
# `dhcp=False`) the DHCP client's own traffic, so a host configured by DHCP keeps its address. It is
# compiled by the normal compiler, so the hash, the lockout guard, `explain` and every renderer
# work on it unchanged.
#
#   compiled = restrictive_policy(domain="corp.example.org", management_from=["2001:db8:ff::/64"],
#                                 pdp=["2001:db8::10"], dns_servers=["2001:db8::53"])
from __future__ import annotations

import ipaddress
import re
from typing import Any, Dict, List, Mapping, Optional

from .api import PolicyInvalid, problem_lines
from .compiler import compile_policy, load_policy_document
from .problems import PslError

__all__ = [
    "DESCRIPTION",
    "ORIGIN",
    "PARAMETERS",
    "REMEDIATION_PARAMETERS",
    "RestrictiveInvalid",
    "restrictive_document",
    "restrictive_from_mapping",
    "restrictive_policy",
]

ORIGIN = "<default-restrictive>"
DESCRIPTION = (
    "distsec's built-in default-restrictive policy: the node firewall configured by default with a very "
    "restrictive set of rules. Profile isolated drops everything in, out and forward except the baseline "
    "(loopback, established connections, the ICMPv6 essentials, management from the admin networks) and "
    "the remediation paths to the PDP, patch mirrors, DNS, NTP and PKI servers (and, unless turned off, the "
    "DHCP client's own traffic)."
)
# Parameter -> the well-known address object of psl.md 3.8 that opens its remediation path.
REMEDIATION_PARAMETERS = {
    "pdp": "pdp",
    "patch_mirrors": "patch_mirrors",
    "dns_servers": "dns_servers",
    "ntp_servers": "ntp_servers",
    "pki": "pki",
}
PARAMETERS = ("domain", "management_from", "management_port", *REMEDIATION_PARAMETERS, "dhcp")
ADMIN_OBJECT = "admin_networks"
MANAGEMENT_SERVICE = "management"
_DOMAIN = re.compile(r"[A-Za-z0-9_.-]{1,253}")
# The DHCP client's own traffic (with `dhcp`): a host configured by DHCP keeps its address. DHCPv4
# renewals go out over a UDP socket, and broadcast or DHCPv6 answers do not match the request in
# conntrack, so both directions need a rule. (SLAAC needs only the ICMPv6 essentials.)
DHCP_RULES = [
    ("dhcpv4-client-out", "out", "ipv4", 68, 67, "DHCPv4 client requests and renewals"),
    ("dhcpv4-client-in", "in", "ipv4", 67, 68, "DHCPv4 server answers"),
    ("dhcpv6-client-out", "out", "ipv6", 546, 547, "DHCPv6 client requests and renewals"),
    ("dhcpv6-client-in", "in", "ipv6", 547, 546, "DHCPv6 server answers"),
]


class RestrictiveInvalid(PolicyInvalid):
    """A parameter of the default-restrictive policy is wrong; `lines` name each parameter."""

    def __init__(self, lines: List[str]) -> None:
        super().__init__(lines)
        self.args = ("cannot build the default-restrictive policy: " + "; ".join(lines),)


def _address_problem(text: str) -> Optional[str]:
    """Why `text` is not an address, prefix or range as PSL takes them; None when it is one."""
    try:
        if "-" in text and "/" not in text:
            low, high = (ipaddress.ip_address(part.strip()) for part in text.split("-", 1))
            if low.version != high.version:
                return "a range must not mix IPv4 and IPv6"
            if low > high:
                return f"the range starts above its end ({low} > {high})"
            return None
        if "/" in text:
            try:
                ipaddress.ip_network(text, strict=True)
            except ValueError as exc:
                if "host bits set" in str(exc):
                    return f"has host bits set; did you mean {ipaddress.ip_network(text, strict=False)}?"
                raise
            return None
        ipaddress.ip_address(text)
        return None
    except ValueError:
        return "is not an IPv4/IPv6 address, a prefix or a range (host names are not resolved; give addresses)"


def _addresses(name: str, value: Any, problems: List[str]) -> List[str]:
    """A list parameter of addresses -> plain strings, without duplicates; problems name `name[i]`."""
    if value is None:
        return []
    if isinstance(value, (str, bytes)):
        value = [value]
    if not isinstance(value, (list, tuple)):
        problems.append(f"{name}: must be a list of addresses, prefixes or ranges, got {type(value).__name__}")
        return []
    out: List[str] = []
    for i, entry in enumerate(value):
        if not isinstance(entry, str) or not entry.strip():
            problems.append(f"{name}[{i}]: {entry!r} is not an address, a prefix or a range")
            continue
        text = str(entry).strip()  # str(): a plain str, also for Ansible's tagged strings
        problem = _address_problem(text)
        if problem:
            problems.append(f"{name}[{i}]: {text!r} {problem}")
        elif text not in out:
            out.append(text)
    return out


def _port(value: Any, problems: List[str]) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        problems.append(f"management_port: {value!r} is not a TCP port (1-65535)")
        return 22
    return int(value)


def restrictive_document(
    *,
    domain: Any,
    management_from: Any,
    management_port: Any = 22,
    pdp: Any = None,
    patch_mirrors: Any = None,
    dns_servers: Any = None,
    ntp_servers: Any = None,
    pki: Any = None,
    dhcp: Any = True,
) -> Dict[str, Any]:
    """The PSL document (one mapping) of the default-restrictive policy. Raises RestrictiveInvalid."""
    problems: List[str] = []
    if not isinstance(domain, str) or not domain.strip():
        problems.append("domain: required; name the Security Domain (e.g. corp.example.org)")
        domain = ""
    elif not _DOMAIN.fullmatch(domain.strip()):
        problems.append(
            f"domain: {domain!r} is not a Security Domain name (letters, digits, '_', '.', '-'; at most 253)"
        )
    admins = _addresses("management_from", management_from, problems)
    if not admins and not any(p.startswith("management_from") for p in problems):
        problems.append(
            "management_from: give at least one admin address or network; a default-restrictive policy "
            "without one would lock the admins out"
        )
    port = _port(management_port, problems)
    if not isinstance(dhcp, bool):
        problems.append(f"dhcp: {dhcp!r} is not true or false")
    given = {"pdp": pdp, "patch_mirrors": patch_mirrors, "dns_servers": dns_servers, "ntp_servers": ntp_servers,
             "pki": pki}  # fmt: skip
    remediation = {REMEDIATION_PARAMETERS[k]: _addresses(k, v, problems) for k, v in given.items()}
    if problems:
        raise RestrictiveInvalid(problems)
    addresses: Dict[str, List[str]] = {ADMIN_OBJECT: admins}
    addresses.update({obj: nets for obj, nets in remediation.items() if nets})  # no address: no path
    rules = [
        {"id": rid, "description": f"{what} (the host keeps a DHCP-assigned address)", "direction": direction,
         "family": family, "proto": "udp", "sports": [sport], "ports": [dport], "action": "accept"}
        for rid, direction, family, sport, dport, what in (DHCP_RULES if dhcp else [])
    ]  # fmt: skip
    document: Dict[str, Any] = {
        "psl": 1,
        "domain": str(domain).strip(),
        "description": DESCRIPTION,
        "objects": {
            "addresses": addresses,
            "services": {
                MANAGEMENT_SERVICE: {
                    "proto": "tcp",
                    "ports": [port],
                    "description": "How the admins reach the host (kept open in every profile)",
                }
            },
        },
        "management": {"from": ADMIN_OBJECT, "service": MANAGEMENT_SERVICE},
        "default_profile": "isolated",
        "expired_profile": "isolated",
    }
    if rules:
        document["profiles"] = {"isolated": {"rules": rules}}
    return document


def restrictive_policy(**params: Any) -> Dict[str, Any]:
    """The compiled default-restrictive policy (format distsec.compiled-policy/1, with its hash).

    Keyword arguments: see restrictive_document. Raises RestrictiveInvalid (a PolicyInvalid)
    naming the parameter, or PolicyInvalid when the compiler refuses the document.
    """
    document = restrictive_document(**params)
    try:
        policy = load_policy_document(document, ORIGIN)
    except PslError as exc:  # the parameters were checked: this is a bug, reported as an invalid policy
        raise PolicyInvalid(problem_lines(exc.problems)) from None
    return compile_policy(policy)


def restrictive_from_mapping(params: Any) -> Dict[str, Any]:
    """restrictive_policy from one mapping (the filter's input); unknown keys are refused."""
    if not isinstance(params, Mapping):
        raise RestrictiveInvalid([f"give a mapping with {', '.join(PARAMETERS)}; got {type(params).__name__}"])
    unknown = sorted(str(k) for k in params if k not in PARAMETERS)
    if unknown:
        raise RestrictiveInvalid([f"unknown parameter(s) {', '.join(unknown)}; known: {', '.join(PARAMETERS)}"])
    kwargs = {str(k): v for k, v in params.items()}
    kwargs.setdefault("domain", None)
    kwargs.setdefault("management_from", None)
    if kwargs.get("management_port") is None:
        kwargs["management_port"] = 22
    if kwargs.get("dhcp") is None:
        kwargs["dhcp"] = True
    return restrictive_policy(**kwargs)
