# PRIVATE: compiled policy + the host's decisions -> iptables-restore input (stdlib only).
#
# Same input and the same meaning as _render/nftables.py, for hosts that filter with iptables
# (legacy or nft variant). distsec owns three chains in the filter table, DISTSEC-INPUT,
# DISTSEC-OUTPUT and DISTSEC-FORWARD, one file per family ("rules.v4", "rules.v6"). The files
# declare and fill only those chains; the jumps from INPUT/OUTPUT/FORWARD are added by
# _apply/iptables.py in the same transaction. iptables has no sets: an address object becomes
# one rule per source/destination prefix. Every rule carries `-m comment --comment RULE-ID`.
#
# The text is written the way iptables-save prints it (match order, quoting, normalised limit
# rates, `--reject-with`), so the backend can predict what the kernel will list.
from __future__ import annotations

import ipaddress
import re
from typing import Any, Dict, List, Optional, Tuple

from .nftables import _UNSAFE, RenderError

__all__ = ["CHAINS", "FILES", "RenderError", "limit_rate", "quote", "render", "render_text"]

CHAINS = {"in": "DISTSEC-INPUT", "out": "DISTSEC-OUTPUT", "forward": "DISTSEC-FORWARD"}
FILES = {"ipv4": "rules.v4", "ipv6": "rules.v6"}
DEFAULT_IDS = {"in": "default-in", "out": "default-out", "forward": "default-forward"}

_INTERFACE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@+\-]{0,14}")
_OWNER_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,31}\$?")
_RANGE = re.compile(r"([0-9]{1,3})(?:-([0-9]{1,3}))?")
_NO_QUOTE = re.compile(r"[A-Za-z0-9_\-]+")
# The names iptables itself knows (xtables_chain_protos); any other protocol is written as a number
# so the restore does not depend on /etc/protocols.
PROTO_NAMES = {
    1: "icmp",
    6: "tcp",
    17: "udp",
    50: "esp",
    51: "ah",
    58: "ipv6-icmp",
    132: "sctp",
    135: "mh",
    136: "udplite",
}
_PROTO_NUMBERS = {"tcp": 6, "udp": 17, "sctp": 132, "esp": 50, "ah": 51, "gre": 47}
# IPv6 extension headers: ip6tables -p skips them, so `-p ah` would never match ("use extension match").
_V6_EXTENSION_HEADERS = {0, 43, 44, 51, 60}
_STATES = ("invalid", "new", "related", "established", "untracked")  # the order iptables-save prints
_TCP_FLAGS = ("fin", "syn", "rst", "psh", "ack", "urg")  # the order iptables-save prints
_FIELDS = {"dscp", "ttl", "hop_limit", "next_header", "tcp_flags"}
_MULTIPORT_SLOTS = 15  # xt_multiport: at most 15 ports, a range counts twice
_LOG_PREFIX_MAX = 29  # xt_LOG: 29 characters
_LIMIT_SCALE = 10000  # xt_limit: XT_LIMIT_SCALE
_RATE_UNITS = (("day", 86400), ("hour", 3600), ("min", 60), ("sec", 1))  # iptables-save's names
_UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def quote(text: Any) -> str:
    """A string argument as iptables-save prints it: bare when it is only [A-Za-z0-9_-], else quoted."""
    value = str(text)
    if _NO_QUOTE.fullmatch(value):
        return value
    return '"' + re.sub(r"([\"\\'])", r"\\\1", value) + '"'


def _clean(text: Any, limit: int) -> str:
    """Like nftables._quote: no quote, backslash, `$` or control character survives; also no `'`."""
    return _UNSAFE.sub("_", str(text)).replace("'", "_")[:limit]


def _comment(rid: Any) -> str:
    return f"-m comment --comment {quote(_clean(rid, 120))}"


def limit_rate(rid: str, rate: Any) -> str:
    """`N/minute` -> the rate the way iptables-save prints it back (xt_limit's print_rate)."""
    m = re.fullmatch(r"([0-9]{1,9})/(second|minute|hour|day)", str(rate))
    if not m:
        raise RenderError(f"rule {rid}: log rate {rate!r} is not N/second, N/minute, N/hour or N/day")
    count, unit = int(m.group(1)), m.group(2)
    period = _LIMIT_SCALE * _UNIT_SECONDS[unit] // count if count else 0
    if period == 0:
        raise RenderError(f"rule {rid}: log rate {rate!r} is outside what iptables can limit (1/day to 10000/second)")
    units = [(name, _LIMIT_SCALE * seconds) for name, seconds in _RATE_UNITS]
    index = 1
    while index < len(units):
        mult = units[index][1]
        if period > mult or mult // period < mult % period:
            break
        index += 1
    name, mult = units[index - 1]
    return f"{mult // period}/{name}"


def _nets(
    spec: Optional[Dict[str, Any]], family: str, addresses: Dict[str, Dict[str, List[str]]]
) -> List[Optional[str]]:
    """[None]: any address. []: nothing of this family (the rule is left out). Else the prefixes."""
    if spec is None:
        return [None]
    nets = list(spec["literal"].get(family, []))
    for obj in spec["objects"]:
        nets.extend(addresses.get(obj, {}).get(family, []))
    try:
        networks = [ipaddress.ip_network(n) for n in nets]
    except ValueError as exc:
        raise RenderError(f"address {exc}") from None
    return [n.with_prefixlen for n in ipaddress.collapse_addresses(networks)]


def _port_list(rid: str, ranges: List[List[int]]) -> List[str]:
    items = []
    for pair in ranges:
        lo, hi = pair
        if any(isinstance(p, bool) or not isinstance(p, int) or not 0 <= p <= 65535 for p in (lo, hi)) or lo > hi:
            raise RenderError(f"rule {rid}: port range {pair!r} is not within 0-65535")
        items.append(str(lo) if lo == hi else f"{lo}:{hi}")
    return items


def _chunks(items: List[str]) -> List[List[str]]:
    """Port lists cut to what one multiport match takes (15 slots, a range takes two)."""
    chunks: List[List[str]] = [[]]
    used = 0
    for item in items:
        size = 2 if ":" in item else 1
        if used + size > _MULTIPORT_SLOTS:
            chunks.append([])
            used = 0
        chunks[-1].append(item)
        used += size
    return chunks


def _value_range(rid: str, value: Any, what: str) -> Tuple[int, int]:
    m = _RANGE.fullmatch(str(value)) if not isinstance(value, bool) else None
    lo = int(m.group(1)) if m else -1
    hi = int(m.group(2)) if m and m.group(2) else lo
    if not m or lo > 255 or hi > 255 or lo > hi:
        raise RenderError(f"rule {rid}: field {what} {value!r} is not a value or range within 0-255")
    return lo, hi


def _ttl_matches(rid: str, value: Any, what: str, module: str) -> List[str]:
    """A TTL / hop limit value or range as `-m ttl` / `-m hl` matches (eq, or gt and lt)."""
    lo, hi = _value_range(rid, value, what)
    if lo == hi:
        return [f"-m {module} --{module}-eq {lo}"]
    parts = []
    if lo > 0:
        parts.append(f"-m {module} --{module}-gt {lo - 1}")
    if hi < 255:
        parts.append(f"-m {module} --{module}-lt {hi + 1}")
    return parts


def _check_rule(rule: Dict[str, Any]) -> None:
    """Refusals that do not depend on the family, so both files fail the same way."""
    rid = rule["id"]
    fields = rule.get("fields") or {}
    unknown = sorted(set(fields) - _FIELDS)
    if unknown:
        raise RenderError(f"rule {rid}: field {unknown[0]} cannot be rendered for iptables")
    if fields.get("next_header") is not None:
        raise RenderError(
            f"rule {rid}: field next_header cannot be expressed in iptables "
            "(ip6tables matches the upper-layer protocol, not the IPv6 Next Header field); use the nftables backend"
        )
    if fields.get("dscp") is not None:
        value = fields["dscp"]
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 63:
            raise RenderError(
                f"rule {rid}: field dscp {value!r} is not a single value 0-63 (iptables has no DSCP ranges)"
            )
    for key in ("ttl", "hop_limit"):
        if fields.get(key) is not None:
            _value_range(rid, fields[key], key)
    if fields.get("tcp_flags"):
        if not set(fields["tcp_flags"]) <= set(_TCP_FLAGS):
            raise RenderError(f"rule {rid}: field tcp_flags {fields['tcp_flags']!r}")
        for entry in rule.get("protocols") or []:
            if entry["proto"] not in ("tcp", 6):
                raise RenderError(f"rule {rid}: field tcp_flags needs proto tcp, not {entry['proto']!r}")
    if rule.get("interface"):
        name = str(rule["interface"])
        if not _INTERFACE.fullmatch(name) or name.endswith("+"):
            raise RenderError(
                f"rule {rid}: interface {rule['interface']!r} is not an interface name iptables matches exactly"
                " (a trailing '+' is a wildcard there)"
            )
    for state in rule.get("state") or []:
        if state not in _STATES:
            raise RenderError(f"rule {rid}: state {state!r} is not one of {', '.join(_STATES)}")
    owner = rule.get("owner") or {}
    if owner.get("user") is not None or owner.get("group") is not None:
        if rule["direction"] != "out":
            raise RenderError(
                f"rule {rid}: owner matches local sockets; iptables allows it only in OUTPUT (direction out), "
                f"not direction {rule['direction']}"
            )
        for key in ("user", "group"):
            value = owner.get(key)
            if value is None:
                continue
            if isinstance(value, bool) or not (
                (isinstance(value, int) and 0 <= value <= 4294967294)
                or (isinstance(value, str) and _OWNER_NAME.fullmatch(value))
            ):
                raise RenderError(f"rule {rid}: owner {key} {value!r} is not a {key} name or id")
    if rule.get("log"):
        limit_rate(rid, rule["log"].get("rate"))
    if rule["action"] not in ("accept", "drop", "reject"):
        raise RenderError(f"rule {rid}: action {rule['action']!r}")


def _protocol(rule: Dict[str, Any], entry: Optional[Dict[str, Any]], family: str) -> Optional[List[str]]:
    """The `-p ... -m ...` variants one protocol entry needs; None when the entry is for the other family."""
    rid = rule["id"]
    fields = rule.get("fields") or {}
    flags = [f for f in _TCP_FLAGS if f in (fields.get("tcp_flags") or [])]
    flag_text = ",".join(f.upper() for f in flags)
    tcp_flags = f" --tcp-flags {flag_text} {flag_text}" if flags else ""
    if entry is None:
        return [f"-p tcp -m tcp{tcp_flags}"] if flags else [""]
    proto = entry["proto"]
    if proto in ("tcp", "udp", "sctp"):
        sports = _port_list(rid, entry.get("sports") or [])
        dports = _port_list(rid, entry.get("ports") or [])
        variants = []
        for schunk in _chunks(sports):
            for dchunk in _chunks(dports):
                own = ""
                multi = ""
                if len(schunk) == 1:
                    own += f" --sport {schunk[0]}"
                elif schunk:
                    multi += f" -m multiport --sports {','.join(schunk)}"
                if len(dchunk) == 1:
                    own += f" --dport {dchunk[0]}"
                elif dchunk:
                    multi += f" -m multiport --dports {','.join(dchunk)}"
                own += tcp_flags
                variants.append(f"-p {proto}" + (f" -m {proto}{own}" if own else "") + multi)
        return variants
    if proto in ("icmp", "icmpv6"):
        if family != ("ipv4" if proto == "icmp" else "ipv6"):
            return None
        types = entry.get("types") or []
        codes = entry.get("codes") or []
        if codes and not types:
            raise RenderError(f"rule {rid}: icmp codes need icmp types")
        for value in [*types, *codes]:
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 255:
                raise RenderError(f"rule {rid}: icmp type or code {value!r} is not a number 0-255")
        if proto == "icmp" and 255 in types:
            raise RenderError(f"rule {rid}: icmp type 255 means 'any type' to iptables and cannot be matched")
        head = "-p icmp -m icmp --icmp-type" if proto == "icmp" else "-p ipv6-icmp -m icmp6 --icmpv6-type"
        if not types:
            return [head.split(" -m ", maxsplit=1)[0]]
        return [f"{head} {t}/{c}" if codes else f"{head} {t}" for t in types for c in (codes or [None])]
    if proto == "any":
        return [f"-p tcp -m tcp{tcp_flags}"] if flags else [""]
    if isinstance(proto, int) and not isinstance(proto, bool) and 0 <= proto <= 255:
        number = proto
    elif proto in _PROTO_NUMBERS:
        number = _PROTO_NUMBERS[proto]
    else:
        raise RenderError(f"rule {rid}: protocol {proto!r} cannot be rendered")
    if number == 0:
        raise RenderError(f"rule {rid}: protocol 0 means 'every protocol' to iptables and cannot be matched")
    if family == "ipv6" and number in _V6_EXTENSION_HEADERS:
        raise RenderError(
            f"rule {rid}: protocol {proto} is an IPv6 extension header, which ip6tables -p never matches; "
            "restrict the rule to family ipv4 or use the nftables backend"
        )
    name = PROTO_NAMES.get(number, str(number))
    return [f"-p {name} -m tcp{tcp_flags}" if flags and number == 6 else f"-p {name}"]


def _rule_specs(rule: Dict[str, Any], family: str, addresses: Dict[str, Dict[str, List[str]]]) -> List[str]:
    """The `-A CHAIN ...` lines of one rule for one family (none when it cannot match that family)."""
    _check_rule(rule)
    rid = rule["id"]
    chain = CHAINS[rule["direction"]]
    fields = rule.get("fields") or {}
    if rule.get("family") not in (None, family):
        return []
    if (fields.get("ttl") is not None and family == "ipv6") or (
        fields.get("hop_limit") is not None and family == "ipv4"
    ):
        return []  # ttl is an IPv4 field, hop_limit an IPv6 one: the rule cannot match the other family
    sources = _nets(rule.get("from"), family, addresses)
    destinations = _nets(rule.get("to"), family, addresses)
    if not sources or not destinations:
        return []  # nothing of this family on one side
    tail: List[str] = []
    if rule.get("state"):
        tail.append("-m conntrack --ctstate " + ",".join(s.upper() for s in _STATES if s in rule["state"]))
    if fields.get("dscp") is not None:
        tail.append(f"-m dscp --dscp 0x{fields['dscp']:02x}")
    if fields.get("ttl") is not None:
        tail.extend(_ttl_matches(rid, fields["ttl"], "ttl", "ttl"))
    if fields.get("hop_limit") is not None:
        tail.extend(_ttl_matches(rid, fields["hop_limit"], "hop_limit", "hl"))
    owner = rule.get("owner") or {}
    owner_text = ""
    if owner.get("user") is not None:
        owner_text += f" --uid-owner {owner['user']}"
    if owner.get("group") is not None:
        owner_text += f" --gid-owner {owner['group']}"
    if owner_text:
        tail.append("-m owner" + owner_text)
    iface = ""
    if rule.get("interface"):
        iface = f"{'-o' if rule['direction'] == 'out' else '-i'} {rule['interface']}"
    verdict = {"accept": "-j ACCEPT", "drop": "-j DROP", "reject": "-j REJECT --reject-with " + _reject(family)}
    lines: List[str] = []
    for entry in rule.get("protocols") or [None]:
        variants = _protocol(rule, entry, family)
        if variants is None:
            continue
        for src in sources:
            for dst in destinations:
                for proto in variants:
                    head = [f"-A {chain}"]
                    if src is not None:
                        head.append(f"-s {src}")
                    if dst is not None:
                        head.append(f"-d {dst}")
                    if iface:
                        head.append(iface)
                    if proto:
                        head.append(proto)
                    match = " ".join(head + tail)
                    if rule.get("log"):
                        log = rule["log"]
                        prefix = _clean(str(log.get("prefix", "")) + " ", _LOG_PREFIX_MAX)
                        lines.append(
                            f"{match} -m limit --limit {limit_rate(rid, log.get('rate'))} {_comment(rid)} "
                            f"-j LOG --log-prefix {quote(prefix)}"
                        )
                    lines.append(f"{match} {_comment(rid)} {verdict[rule['action']]}")
    return lines


def _reject(family: str) -> str:
    return "icmp-port-unreachable" if family == "ipv4" else "icmp6-port-unreachable"


def render(compiled: Dict[str, Any], profile: str, rules: List[Dict[str, Any]]) -> Dict[str, str]:
    """{"rules.v4": ..., "rules.v6": ...}: iptables-restore input for our chains, holding `rules` in order."""
    addresses = compiled.get("objects", {}).get("addresses", {})
    defaults = compiled["profiles"][profile]["default"]
    out: Dict[str, str] = {}
    for family, name in FILES.items():
        lines = ["*filter"] + [f":{chain} - [0:0]" for chain in CHAINS.values()]
        for direction, chain in CHAINS.items():
            for rule in rules:
                if rule["direction"] == direction:
                    lines.extend(_rule_specs(rule, family, addresses))
            default = defaults[direction]
            target = {"accept": "RETURN", "drop": "DROP", "reject": "REJECT --reject-with " + _reject(family)}
            if default not in target:
                raise RenderError(f"profile {profile}: default {default!r} for direction {direction}")
            lines.append(f"-A {chain} {_comment(DEFAULT_IDS[direction])} -j {target[default]}")
        lines.append("COMMIT")
        out[name] = "\n".join(lines) + "\n"
    return out


def render_text(compiled: Dict[str, Any], profile: str, rules: List[Dict[str, Any]]) -> str:
    """Both files as `distsec psl compile --format iptables` prints them."""
    files = render(compiled, profile, rules)
    return (
        "# ipv4: iptables-restore --noflush\n"
        + files["rules.v4"]
        + "# ipv6: ip6tables-restore --noflush\n"
        + files["rules.v6"]
    )
