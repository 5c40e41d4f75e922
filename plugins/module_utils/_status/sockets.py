# PRIVATE: Security Status collector "sockets": listening TCP and bound UDP sockets (stdlib only).
#
# sockets = [{"proto": "tcp"|"udp", "address": "::", "port": 22, "process": "sshd"|None, "pid": 33|None}]
#
# Source: `ss -H -l -n -t -u -p`. Without ss (or when it fails) the kernel tables
# /proc/net/{tcp,tcp6,udp,udp6} are read instead (TCP in state LISTEN, UDP unconnected);
# they do not name the process, so process and pid are None there.
#
# Addresses are written in compressed form without brackets or %zone ("[::]" -> "::",
# "127.0.0.53%lo" -> "127.0.0.53"); ss's "*" (an IPv6 wildcard socket that also accepts
# IPv4) is written "::". Entries with the same proto, address, port and process are
# reported once (the first pid seen), so forked workers sharing a socket count once.
from __future__ import annotations

import ipaddress
import re
import struct
from typing import Any, Dict, List, Optional, Tuple

from .base import CollectorError, Context, collector

__all__ = ["collect_sockets", "parse_proc_net", "parse_ss", "split_endpoint"]

SS = ["ss", "-H", "-l", "-n", "-t", "-u", "-p"]
PROC_TABLES = (("tcp", "/proc/net/tcp"), ("tcp", "/proc/net/tcp6"), ("udp", "/proc/net/udp"), ("udp", "/proc/net/udp6"))
TCP_LISTEN = "0A"
UDP_UNCONNECTED = "07"
USER = re.compile(r'users:\(\("(.*?)",pid=(\d+)')

Socket = Dict[str, Any]


def _address(host: str) -> Optional[str]:
    host = host.strip()
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            return None
        host = host[1:end]
    host = host.split("%", maxsplit=1)[0]
    if host == "*":
        return "::"
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        return None


def split_endpoint(text: str) -> Optional[Tuple[str, int]]:
    """An ss local address ("[::]:22", "127.0.0.53%lo:53", "*:22") as (address, port), or None."""
    if ":" not in text:
        return None
    host, port = text.rsplit(":", 1)
    address = _address(host)
    if address is None or not port.isdigit():
        return None
    number = int(port)
    if not 0 < number < 65536:
        return None
    return address, number


def _add(found: List[Socket], seen: set, entry: Socket) -> None:
    key = (entry["proto"], entry["address"], entry["port"], entry["process"])
    if key not in seen:
        seen.add(key)
        found.append(entry)


def _sorted(found: List[Socket]) -> List[Socket]:
    return sorted(found, key=lambda s: (s["proto"], s["port"], s["address"], s["process"] or "", s["pid"] or 0))


def parse_ss(text: str) -> List[Socket]:
    """`ss -H -l -n -t -u -p` lines as socket entries; lines that cannot be read are skipped."""
    found: List[Socket] = []
    seen: set = set()
    for line in text.splitlines():
        fields = line.split(None, 6)
        if len(fields) < 5 or fields[0] not in ("tcp", "udp"):
            continue
        endpoint = split_endpoint(fields[4])
        if endpoint is None:
            continue
        process: Optional[str] = None
        pid: Optional[int] = None
        match = USER.search(line)
        if match:
            process, pid = match.group(1), int(match.group(2))
        _add(
            found,
            seen,
            {"proto": fields[0], "address": endpoint[0], "port": endpoint[1], "process": process, "pid": pid},
        )
    return _sorted(found)


def _proc_address(text: str) -> Optional[str]:
    """A /proc/net address in hex: 32-bit words in the host's byte order."""
    if len(text) not in (8, 32):
        return None
    try:
        packed = b"".join(struct.pack("=I", int(text[i : i + 8], 16)) for i in range(0, len(text), 8))
    except ValueError:
        return None
    return ipaddress.ip_address(packed).compressed


def parse_proc_net(proto: str, text: str) -> List[Socket]:
    """One /proc/net/{tcp,tcp6,udp,udp6} table as socket entries (process unknown)."""
    wanted = TCP_LISTEN if proto == "tcp" else UDP_UNCONNECTED
    found: List[Socket] = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 4 or fields[3].upper() != wanted or ":" not in fields[1]:
            continue
        host, port = fields[1].split(":", 1)
        address = _proc_address(host)
        try:
            number = int(port, 16)
        except ValueError:
            continue
        if address is None or number == 0:
            continue
        found.append({"proto": proto, "address": address, "port": number, "process": None, "pid": None})
    return found


@collector("sockets")
def collect_sockets(ctx: Context) -> List[Socket]:
    rc, out, _err = ctx.run(SS)
    if rc == 0:
        return parse_ss(out)
    found: List[Socket] = []
    seen: set = set()
    tables = 0
    for proto, path in PROC_TABLES:
        text = ctx.read(path)
        if text is None:
            continue
        tables += 1
        for entry in parse_proc_net(proto, text):
            _add(found, seen, entry)
    if not tables:
        why = "ss is not installed" if rc == 127 else f"ss failed (exit status {rc})"
        raise CollectorError(f"{why} and /proc/net/tcp, tcp6, udp, udp6 cannot be read")
    return _sorted(found)
