# PRIVATE: compiled policy + the host's decisions -> a PowerShell script for Windows Defender
# Firewall (NetSecurity module). RENDER ONLY: the script is checked by golden files, never run
# on a live Windows host by this project.
#
# The script removes every rule of the group "distsec", creates one New-NetFirewallRule per PSL
# rule, protocol entry and address family it needs (DisplayName = rule id, Group "distsec") and
# sets the profile defaults with Set-NetFirewallProfile.
#
# Windows does not evaluate rules in order: block rules win over allow rules, whatever their
# order. PSL's "first match decides" is kept like this: a drop/reject rule that overlaps an
# earlier accept rule loses the remote addresses that accept rule covers (when it covers the
# drop rule in every other respect), or is left out when it is covered entirely; any other
# overlap is a RenderError. Other things Windows cannot express are RenderErrors naming the rule.
from __future__ import annotations

import ipaddress
import re
from typing import Any, Dict, List, Optional, Tuple

from .nftables import RenderError

__all__ = ["GROUP", "RenderError", "render", "render_text"]

GROUP = "distsec"
_ACTIONS = {"accept": "Allow", "drop": "Block", "reject": "Block"}
_PROTO_NUMBERS = {"sctp": 132, "esp": 50, "ah": 51, "gre": 47}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MAX = {4: (1 << 32) - 1, 6: (1 << 128) - 1}

Interval = Tuple[int, int, int]  # (IP version, first address, last address)


def ps_quote(text: Any) -> str:
    """A PowerShell single-quoted string: quote characters doubled (PowerShell also treats the
    typographic single quotes as quotes), control characters replaced by spaces."""
    value = _CONTROL.sub(" ", str(text))
    for quote in ("'", "\u2018", "\u2019", "\u201a", "\u201b"):
        value = value.replace(quote, quote * 2)
    return f"'{value}'"


def _err(rule: Dict[str, Any], what: str) -> RenderError:
    return RenderError(f"rule {rule.get('id')}: {what}")


def _intervals(nets: List[str]) -> List[Interval]:
    out = []
    for text in nets:
        net = ipaddress.ip_network(text)
        out.append((net.version, int(net.network_address), int(net.broadcast_address)))
    return _merge(out)


def _merge(items: List[Interval]) -> List[Interval]:
    merged: List[Interval] = []
    for version, lo, hi in sorted(items):
        if merged and merged[-1][0] == version and lo <= merged[-1][2] + 1:
            merged[-1] = (version, merged[-1][1], max(hi, merged[-1][2]))
        else:
            merged.append((version, lo, hi))
    return merged


def _minus(items: List[Interval], cut: List[Interval]) -> List[Interval]:
    out: List[Interval] = []
    for version, lo, hi in items:
        pieces = [(lo, hi)]
        for c_version, c_lo, c_hi in cut:
            if c_version != version:
                continue
            next_pieces = []
            for p_lo, p_hi in pieces:
                if c_hi < p_lo or c_lo > p_hi:
                    next_pieces.append((p_lo, p_hi))
                    continue
                if p_lo < c_lo:
                    next_pieces.append((p_lo, c_lo - 1))
                if c_hi < p_hi:
                    next_pieces.append((c_hi + 1, p_hi))
            pieces = next_pieces
        out.extend((version, p_lo, p_hi) for p_lo, p_hi in pieces)
    return out


def _address_text(item: Interval) -> str:
    version, lo, hi = item
    make = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
    first, last = make(lo), make(hi)
    nets = list(ipaddress.summarize_address_range(first, last))
    if len(nets) == 1:
        return str(first) if lo == hi else str(nets[0])
    return f"{first}-{last}"


def _overlap(a: Optional[list], b: Optional[list], test) -> bool:
    if a is None or b is None:
        return True
    return any(test(x, y) for x in a for y in b)


def _covers(a: Optional[list], b: Optional[list], test) -> bool:
    if a is None:
        return True
    if b is None:
        return False
    return all(any(test(x, y) for x in a) for y in b)


def _range_meets(x, y) -> bool:
    return x[0] <= y[1] and y[0] <= x[1]


def _range_holds(x, y) -> bool:
    return x[0] <= y[0] and y[1] <= x[1]


def _net_meets(x: Interval, y: Interval) -> bool:
    return x[0] == y[0] and x[1] <= y[2] and y[1] <= x[2]


def _net_holds(x: Interval, y: Interval) -> bool:
    return x[0] == y[0] and x[1] <= y[1] and y[2] <= x[2]


def _icmp_meets(x, y) -> bool:
    return x[0] == y[0] and (x[1] is None or y[1] is None or x[1] == y[1])


def _icmp_holds(x, y) -> bool:
    return x[0] == y[0] and (x[1] is None or x[1] == y[1])


_DIMENSIONS = (
    ("lports", _range_meets, _range_holds),
    ("rports", _range_meets, _range_holds),
    ("icmp", _icmp_meets, _icmp_holds),
    ("local", _net_meets, _net_holds),
    ("remote", _net_meets, _net_holds),
)


def _same_proto(a: Dict[str, Any], b: Dict[str, Any]) -> Optional[bool]:
    """True: b's protocol is within a's. False: they overlap only partly. None: disjoint."""
    if a["proto"] is None:
        return True
    if b["proto"] is None:
        return False
    return True if a["proto"] == b["proto"] else None


def _meets(a: Dict[str, Any], b: Dict[str, Any]) -> bool:
    if a["proto"] is not None and b["proto"] is not None and a["proto"] != b["proto"]:
        return False
    return all(_overlap(a[d], b[d], meets) for d, meets, _holds in _DIMENSIONS)


def _holds_except_remote(a: Dict[str, Any], b: Dict[str, Any]) -> bool:
    return _same_proto(a, b) is True and all(
        _covers(a[d], b[d], holds) for d, _meets, holds in _DIMENSIONS if d != "remote"
    )


def _families(rule: Dict[str, Any], forced: Optional[str]) -> List[Optional[str]]:
    wanted = forced or rule.get("family")
    return [wanted] if wanted else [None]


def _endpoint(spec: Optional[Dict[str, Any]], addresses: Dict[str, Dict[str, List[str]]], family: Optional[str]):
    """None for any address, else a list of intervals (possibly empty: nothing of the family)."""
    if spec is None:
        return None
    nets: List[str] = []
    for fam in ("ipv4", "ipv6"):
        if family in (None, fam):
            nets.extend(spec["literal"].get(fam, []))
            for obj in spec["objects"]:
                nets.extend(addresses.get(obj, {}).get(fam, []))
    return _intervals(nets)


def _cubes(rule: Dict[str, Any], addresses: Dict[str, Dict[str, List[str]]]) -> List[Dict[str, Any]]:
    """One entry per New-NetFirewallRule the PSL rule needs."""
    direction = rule["direction"]
    out = []
    for entry in rule.get("protocols") or [None]:
        proto: Optional[str] = None
        forced = None
        ports = sports = icmp = None
        if entry is not None:
            name = entry["proto"]
            if name in ("tcp", "udp"):
                proto = name.upper()
                ports = [tuple(r) for r in entry["ports"]] if entry.get("ports") else None
                sports = [tuple(r) for r in entry["sports"]] if entry.get("sports") else None
            elif name in ("icmp", "icmpv6"):
                proto = "ICMPv4" if name == "icmp" else "ICMPv6"
                forced = "ipv4" if name == "icmp" else "ipv6"
                if entry.get("types"):
                    codes = entry.get("codes") or [None]
                    icmp = [(t, c) for t in entry["types"] for c in codes]
            elif name == "any":
                proto = None
            elif name in _PROTO_NUMBERS:
                if name == "sctp" and (entry.get("ports") or entry.get("sports")):
                    raise _err(rule, "Windows Firewall matches ports of TCP and UDP only, not of SCTP")
                proto = str(_PROTO_NUMBERS[name])
            elif isinstance(name, int) and not isinstance(name, bool) and 0 <= name <= 255:
                proto = str(name)
            else:
                raise _err(rule, f"protocol {name!r} cannot be rendered")
        for family in _families(rule, forced):
            source = _endpoint(rule.get("from"), addresses, family)
            dest = _endpoint(rule.get("to"), addresses, family)
            if source == [] or dest == []:
                continue  # nothing of this family on one side
            local, remote = (dest, source) if direction == "in" else (source, dest)
            if family and local is None and remote is None:
                version = 4 if family == "ipv4" else 6
                remote = [(version, 0, _MAX[version])]  # restricts the rule to one family
            lports, rports = (ports, sports) if direction == "in" else (sports, ports)
            out.append(
                {
                    "proto": proto,
                    "lports": lports,
                    "rports": rports,
                    "icmp": icmp,
                    "local": local,
                    "remote": remote,
                }
            )
    return out


def _omitted(rule: Dict[str, Any]) -> Optional[str]:
    state = rule.get("state") or []
    if rule.get("interface") == "lo" and rule["action"] == "accept":
        return "Windows Firewall does not filter loopback traffic"
    if state and "new" not in state and set(state) <= {"established", "related"} and rule["action"] == "accept":
        return "Windows Firewall is stateful: replies to allowed connections pass"
    return None


def _catch_all(rule: Dict[str, Any]) -> bool:
    """A rule that matches every packet of its direction (it acts as the default)."""
    protocols = rule.get("protocols")
    return (
        rule.get("from") is None
        and rule.get("to") is None
        and (protocols is None or all(p.get("proto") == "any" for p in protocols))
        and not any(rule.get(k) for k in ("family", "interface", "state", "fields", "owner"))
    )


def _check(rule: Dict[str, Any]) -> None:
    if rule["direction"] not in ("in", "out"):
        raise _err(rule, "Windows Defender Firewall does not filter routed (forward) traffic")
    if rule["action"] not in _ACTIONS:
        raise _err(rule, f"action {rule['action']!r} cannot be rendered")
    if rule.get("interface"):
        raise _err(rule, f"interface {rule['interface']!r} is a Linux interface name; Windows rules cannot use it")
    if rule.get("fields"):
        raise _err(rule, f"Windows Firewall cannot match header fields ({', '.join(sorted(rule['fields']))})")
    owner = rule.get("owner") or {}
    if any(owner.get(k) is not None for k in ("user", "group")):
        raise _err(rule, "Windows Firewall rules cannot match a Unix socket owner")
    state = rule.get("state") or []
    odd = sorted(set(state) - {"new", "established", "related"})
    if odd:
        raise _err(rule, f"Windows Firewall cannot match connection state {', '.join(odd)}")
    if state and "new" not in state:
        raise _err(rule, "Windows Firewall passes replies to allowed connections itself; it cannot block them")


def _ports(ranges: List[Tuple[int, int]]) -> str:
    return ",".join(ps_quote(str(lo) if lo == hi else f"{lo}-{hi}") for lo, hi in ranges)


def _command(rule: Dict[str, Any], number: int, cube: Dict[str, Any]) -> str:
    direction = "Inbound" if rule["direction"] == "in" else "Outbound"
    words = [
        "New-NetFirewallRule",
        "-Name " + ps_quote(f"distsec-{rule['id']}-{number}"),
        f"-DisplayName {ps_quote(rule['id'])}",
        f"-Group {ps_quote(GROUP)}",
        f"-Description {ps_quote(rule.get('description', ''))}",
        f"-Direction {direction}",
        f"-Action {_ACTIONS[rule['action']]}",
        f"-Protocol {cube['proto'] or 'Any'}",
    ]
    if cube["lports"]:
        words.append(f"-LocalPort {_ports(cube['lports'])}")
    if cube["rports"]:
        words.append(f"-RemotePort {_ports(cube['rports'])}")
    if cube["icmp"]:
        words.append("-IcmpType " + ",".join(ps_quote(str(t) if c is None else f"{t}:{c}") for t, c in cube["icmp"]))
    if cube["local"] is not None:
        words.append("-LocalAddress " + ",".join(ps_quote(_address_text(i)) for i in cube["local"]))
    if cube["remote"] is not None:
        words.append("-RemoteAddress " + ",".join(ps_quote(_address_text(i)) for i in cube["remote"]))
    words.append("| Out-Null")
    return " ".join(words)


def render(compiled: Dict[str, Any], profile: str, rules: List[Dict[str, Any]]) -> Dict[str, str]:
    """{'distsec.ps1': script} for `profile` holding `rules` (the active ones, in order)."""
    addresses = compiled.get("objects", {}).get("addresses", {})
    defaults = compiled["profiles"][profile]["default"]
    for direction in ("in", "out"):
        if defaults[direction] not in _ACTIONS:
            raise RenderError(f"profile {profile}: default {direction} {defaults[direction]!r} cannot be rendered")
    body: List[str] = []
    accepted: List[Tuple[str, Dict[str, Any], str]] = []  # (direction, cube, rule id) of earlier accept rules
    log_blocked = log_allowed = False
    final: Dict[str, str] = {}  # direction -> the catch-all rule that decides the rest
    default_action = {d: _ACTIONS[defaults[d]] for d in ("in", "out")}
    for rule in rules:
        why = _omitted(rule)
        if why:
            body.append(f"# rule {rule['id']}: left out, {why}.")
            continue
        _check(rule)
        if rule["direction"] in final:
            body.append(f"# rule {rule['id']}: left out, the catch-all rule {final[rule['direction']]} decides first.")
            continue
        if _catch_all(rule):
            final[rule["direction"]] = rule["id"]
            default_action[rule["direction"]] = _ACTIONS[rule["action"]]
            log_blocked = log_blocked or (bool(rule.get("log")) and rule["action"] != "accept")
            log_allowed = log_allowed or (bool(rule.get("log")) and rule["action"] == "accept")
            body.append(
                f"# rule {rule['id']}: matches all remaining {'inbound' if rule['direction'] == 'in' else 'outbound'} "
                f"traffic: rendered as the profile's default action ({_ACTIONS[rule['action']]}) below."
            )
            continue
        notes = []
        if rule["action"] == "reject":
            notes.append("reject: Windows Firewall blocks silently (no ICMP error or TCP reset)")
        if rule.get("log"):
            notes.append("log: Windows logs per profile (pfirewall.log), without prefix or rate limit")
            if rule["action"] == "accept":
                log_allowed = True
            else:
                log_blocked = True
        cubes = _cubes(rule, addresses)
        if rule["action"] != "accept":
            kept = []
            for original in cubes:
                cube: Optional[Dict[str, Any]] = original
                for direction, earlier, earlier_id in accepted:
                    if cube is None or direction != rule["direction"] or not _meets(earlier, cube):
                        continue
                    if _holds_except_remote(earlier, cube) and earlier["remote"] is not None:
                        remote = cube["remote"]
                        if remote is None:
                            remote = [(4, 0, _MAX[4]), (6, 0, _MAX[6])]
                        left = _merge(_minus(remote, earlier["remote"]))
                        if left:
                            notes.append(f"without the remote addresses of the earlier accept rule {earlier_id}")
                        cube = dict(cube, remote=left) if left else None
                    elif _holds_except_remote(earlier, cube):
                        cube = None
                    else:
                        raise _err(
                            rule,
                            f"it overlaps the earlier accept rule {earlier_id}, and Windows Firewall applies "
                            "block rules before allow rules whatever their order; narrow one of the two rules",
                        )
                if cube is None:
                    notes.append(
                        "a part covered entirely by an earlier accept rule is left out (the first match decides)"
                    )
                else:
                    kept.append(cube)
            cubes = kept
        else:
            accepted.extend((rule["direction"], cube, rule["id"]) for cube in cubes)
        body.append(f"# rule {rule['id']}" + "".join(f"\n#   {n}" for n in dict.fromkeys(notes)))
        if not cubes:
            body.append(f"#   no Windows rule needed for {rule['id']}")
        body.extend(_command(rule, number, cube) for number, cube in enumerate(cubes, 1))
    inbound = default_action["in"]
    outbound = default_action["out"]
    head = [
        f"# Generated by distsec: domain {_CONTROL.sub(' ', str(compiled.get('domain', '')))}, profile {profile}.",
        "# Windows Defender Firewall, NetSecurity module. RENDER ONLY: this script has not been tested",
        "# on live Windows hosts. Review it, then run it as Administrator:",
        "#   powershell.exe -NoProfile -ExecutionPolicy Bypass -File distsec.ps1",
        "# Windows applies block rules before allow rules, whatever their order (see the notes below).",
        f"# Forward (routed) traffic is not filtered by Windows Firewall; the profile's forward default "
        f"({defaults.get('forward')}) is not rendered.",
        "#Requires -RunAsAdministrator",
        "#Requires -Modules NetSecurity",
        "$ErrorActionPreference = 'Stop'",
        "",
        f"Get-NetFirewallRule -Group {ps_quote(GROUP)} -ErrorAction SilentlyContinue | Remove-NetFirewallRule",
        "",
    ]
    tail = [
        "",
        "Set-NetFirewallProfile -Profile Domain,Private,Public -Enabled True "
        f"-DefaultInboundAction {inbound} -DefaultOutboundAction {outbound}"
        + (" -LogBlocked True" if log_blocked else "")
        + (" -LogAllowed True" if log_allowed else ""),
    ]
    if defaults["in"] == "reject" or defaults["out"] == "reject":
        tail.insert(1, "# default reject: Windows Firewall blocks silently")
    return {"distsec.ps1": "\n".join(head + body + tail) + "\n"}


def render_text(compiled: Dict[str, Any], profile: str, rules: List[Dict[str, Any]]) -> str:
    """The script (what `distsec psl compile --format windows` prints)."""
    return render(compiled, profile, rules)["distsec.ps1"]
