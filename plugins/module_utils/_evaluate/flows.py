# PRIVATE: flows ("tcp 2001:db8::5 -> [2001:db8::9]:587 out") and ICMP type names (stdlib only).
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Dict, Optional

__all__ = ["ICMPV6_TYPES", "ICMP_TYPES", "PROTO_NUMBERS", "Flow", "FlowError", "parse_flow"]

PROTO_NUMBERS = {"icmp": 1, "tcp": 6, "udp": 17, "gre": 47, "esp": 50, "ah": 51, "icmpv6": 58, "sctp": 132}
PORTED = ("tcp", "udp", "sctp")

ICMP_TYPES: Dict[str, int] = {
    "echo-reply": 0,
    "destination-unreachable": 3,
    "source-quench": 4,
    "redirect": 5,
    "echo-request": 8,
    "router-advertisement": 9,
    "router-solicitation": 10,
    "time-exceeded": 11,
    "parameter-problem": 12,
    "timestamp-request": 13,
    "timestamp-reply": 14,
}
ICMPV6_TYPES: Dict[str, int] = {
    "destination-unreachable": 1,
    "packet-too-big": 2,
    "time-exceeded": 3,
    "parameter-problem": 4,
    "echo-request": 128,
    "echo-reply": 129,
    "mld-listener-query": 130,
    "mld-listener-report": 131,
    "mld-listener-done": 132,
    "nd-router-solicit": 133,
    "nd-router-advert": 134,
    "nd-neighbor-solicit": 135,
    "nd-neighbor-advert": 136,
    "nd-redirect": 137,
    "mld2-listener-report": 143,
}


class FlowError(ValueError):
    pass


@dataclass(frozen=True)
class Flow:
    proto: str
    src: ipaddress._BaseAddress
    dst: ipaddress._BaseAddress
    direction: str
    sport: Optional[int] = None
    dport: Optional[int] = None
    icmp_type: Optional[int] = None
    interface: Optional[str] = None
    user: Optional[str] = None
    group: Optional[str] = None
    icmp_code: Optional[int] = None

    @property
    def family(self) -> str:
        return "ipv4" if self.src.version == 4 else "ipv6"

    def __str__(self) -> str:
        def end(addr, port):
            if port is None:
                return str(addr)
            return f"[{addr}]:{port}" if addr.version == 6 else f"{addr}:{port}"

        text = f"{self.proto} {end(self.src, self.sport)} -> {end(self.dst, self.dport)} {self.direction}"
        extras = [("type", self.icmp_type), ("code", self.icmp_code), ("iface", self.interface)]
        extras += [("user", self.user), ("group", self.group)]
        return text + "".join(f" {key}={value}" for key, value in extras if value is not None)


def _endpoint(text: str, *, port_from_last_group: bool):
    if text.startswith("["):
        addr, _sep, rest = text[1:].partition("]")
        if rest and not rest.startswith(":"):
            raise FlowError(f"cannot read {text!r}: expected [ADDRESS]:PORT")
        return ipaddress.ip_address(addr), _port(rest[1:]) if rest else None
    if text.count(":") == 1:  # IPv4 with a port
        addr, _sep, port = text.partition(":")
        return ipaddress.ip_address(addr), _port(port)
    if text.count(":") > 1 and port_from_last_group:
        head, _sep, tail = text.rpartition(":")
        if tail.isdigit():
            try:
                return ipaddress.ip_address(head), _port(tail)
            except ValueError:
                pass
    return ipaddress.ip_address(text), None


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise FlowError(f"{text!r} is not a port (0-65535)")
    return int(text)


def parse_flow(text: str) -> Flow:
    """'PROTO SRC[:PORT] -> DST[:PORT] in|out|forward [type=T] [code=C] [iface=I] [user=U] [group=G]'.

    IPv6 with a port: [2001:db8::9]:587. For tcp/udp/sctp an unbracketed IPv6 destination
    may also carry the port as its last group (2001:db8::9:587 means port 587).
    """
    parts = text.split()
    if len(parts) < 5 or parts[2] != "->":
        raise FlowError(
            f"cannot read flow {text!r}: expected 'PROTO SRC -> DST DIRECTION', e.g. 'tcp 2001:db8::5 -> [2001:db8::9]:587 out'"
        )
    proto = parts[0].lower()
    if proto not in PROTO_NUMBERS:
        raise FlowError(f"unknown protocol {parts[0]!r}; use one of {', '.join(PROTO_NUMBERS)}")
    direction = parts[4]
    if direction not in ("in", "out", "forward"):
        raise FlowError(f"direction must be in, out or forward, not {direction!r}")
    try:
        src, sport = _endpoint(parts[1], port_from_last_group=False)
        dst, dport = _endpoint(parts[3], port_from_last_group=proto in PORTED)
    except ValueError as exc:
        raise FlowError(f"cannot read flow {text!r}: {exc}") from None
    if src.version != dst.version:
        raise FlowError(f"flow {text!r} mixes IPv4 and IPv6")
    extra: Dict[str, str] = {}
    for item in parts[5:]:
        key, sep, val = item.partition("=")
        if not sep or key not in ("type", "code", "iface", "user", "group"):
            raise FlowError(f"cannot read {item!r}: extras are type=T, code=C, iface=I, user=U, group=G")
        extra[key] = val
    icmp_type = None
    if "type" in extra:
        table = ICMPV6_TYPES if proto == "icmpv6" else ICMP_TYPES
        icmp_type = int(extra["type"]) if extra["type"].isdigit() else table.get(extra["type"])
        if icmp_type is None:
            raise FlowError(f"unknown {proto} type {extra['type']!r}")
    if proto in PORTED and dport is None:
        raise FlowError(f"a {proto} flow needs a destination port, e.g. [2001:db8::9]:587 or 198.51.100.9:587")
    if proto == "icmp" and src.version == 6:
        raise FlowError("icmp is IPv4; use icmpv6 for IPv6 flows")
    if proto == "icmpv6" and src.version == 4:
        raise FlowError("icmpv6 is IPv6; use icmp for IPv4 flows")
    icmp_code = None
    if "code" in extra:
        if not extra["code"].isdigit() or int(extra["code"]) > 255:
            raise FlowError(f"code={extra['code']} is not an ICMP code (0-255)")
        icmp_code = int(extra["code"])
    return Flow(
        proto,
        src,
        dst,
        direction,
        sport,
        dport,
        icmp_type,
        extra.get("iface"),
        extra.get("user"),
        extra.get("group"),
        icmp_code,
    )
