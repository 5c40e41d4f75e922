# PRIVATE: Security Status collector "network": interfaces, addresses, default routes, DNS (stdlib only).
#
# network = {
#   "interfaces": [{"name", "state", "mac", "addresses": [{"address", "family", "scope", "kind"}]}],
#   "addresses": ["ADDR/PREFIX", ...]      every address whose kind is not "loopback"
#   "default_gateways": ["10.88.0.1", "fd42:abcd::1"],   IPv4 first, each once
#   "default_routes": [{"family": "ipv4"|"ipv6", "gateway": str|None, "dev": str|None}],
#   "dns_servers": [...], "dns_search": [...],           from /etc/resolv.conf
# }
#
# Sources: `ip -j addr show`, `ip -j route show default`, `ip -j -6 route show default`.
# Without ip, or when `ip addr` fails or prints something that is not its JSON, the
# collector fails. A failing route command (IPv6 disabled) gives no routes of that family.
#
# kind: "loopback" (127/8, ::1), "link-local" (169.254/16, fe80::/10), "ula" (fc00::/7),
# "private" (other IPv4 that ipaddress calls private), "public" (other IPv4), "global"
# (other IPv6). resolv.conf: the last "search" or "domain" line wins, as in the resolver.
from __future__ import annotations

import ipaddress
import json
from typing import Any, Dict, List, Optional

from .base import CollectorError, Context, collector

__all__ = ["address_kind", "collect_network", "parse_addresses", "parse_resolv_conf", "parse_routes"]

IP_ADDR = ["ip", "-j", "addr", "show"]
IP_ROUTES = (
    ("ipv4", ["ip", "-j", "route", "show", "default"]),
    ("ipv6", ["ip", "-j", "-6", "route", "show", "default"]),
)
FAMILIES = {"inet": "ipv4", "inet6": "ipv6"}
ULA = ipaddress.ip_network("fc00::/7")


def address_kind(address: str) -> str:
    ip = ipaddress.ip_address(address.split("%", maxsplit=1)[0])
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.version == 6:
        return "ula" if ip in ULA else "global"
    return "private" if ip.is_private else "public"


def _json_list(text: str, what: str) -> List[Any]:
    if not text.strip():
        return []
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CollectorError(f"{what} did not print JSON: {exc}") from exc
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise CollectorError(f"{what} printed JSON that is not a list of objects")
    return data


def parse_addresses(text: str) -> List[Dict[str, Any]]:
    """`ip -j addr show` as the interfaces list."""
    interfaces: List[Dict[str, Any]] = []
    for link in _json_list(text, "ip -j addr show"):
        name = link.get("ifname")
        if not isinstance(name, str):
            continue
        addresses: List[Dict[str, Any]] = []
        for info in link.get("addr_info") or []:
            if not isinstance(info, dict):
                continue
            family = FAMILIES.get(info.get("family", ""))
            local = info.get("local")
            prefix = info.get("prefixlen")
            if family is None or not isinstance(local, str) or not isinstance(prefix, int):
                continue
            try:
                kind = address_kind(local)
            except ValueError:
                continue
            addresses.append(
                {"address": f"{local}/{prefix}", "family": family, "scope": info.get("scope"), "kind": kind}
            )
        interfaces.append(
            {"name": name, "state": link.get("operstate"), "mac": link.get("address"), "addresses": addresses}
        )
    return interfaces


def parse_routes(family: str, text: str) -> List[Dict[str, Any]]:
    """`ip -j route show default` as default routes; a multipath route gives one entry per next hop."""
    routes: List[Dict[str, Any]] = []
    for route in _json_list(text, "ip -j route show default"):
        if route.get("dst") not in ("default", None):
            continue
        hops = route.get("nexthops") if isinstance(route.get("nexthops"), list) else [route]
        for hop in hops:
            if not isinstance(hop, dict):
                continue
            gateway = hop.get("gateway")
            via = hop.get("via")
            if gateway is None and isinstance(via, dict):
                gateway = via.get("host")
            routes.append(
                {"family": family, "gateway": gateway if isinstance(gateway, str) else None, "dev": hop.get("dev")}
            )
    return routes


def parse_resolv_conf(text: Optional[str]) -> Dict[str, List[str]]:
    servers: List[str] = []
    search: List[str] = []
    for raw in (text or "").splitlines():
        fields = raw.split("#", maxsplit=1)[0].split(";", maxsplit=1)[0].split()
        if len(fields) < 2:
            continue
        if fields[0] == "nameserver":
            servers.append(fields[1])
        elif fields[0] == "search":
            search = fields[1:]
        elif fields[0] == "domain":
            search = [fields[1]]
    return {"dns_servers": servers, "dns_search": search}


@collector("network")
def collect_network(ctx: Context) -> Dict[str, Any]:
    rc, out, err = ctx.run(IP_ADDR)
    if rc == 127:
        raise CollectorError("ip (iproute2) is not installed: addresses and routes are unknown")
    if rc != 0:
        first = err.strip().splitlines()[0] if err.strip() else f"exit status {rc}"
        raise CollectorError(f"ip -j addr show failed: {first}")
    interfaces = parse_addresses(out)

    routes: List[Dict[str, Any]] = []
    for family, argv in IP_ROUTES:
        rrc, rout, _rerr = ctx.run(argv)
        if rrc == 0:
            routes.extend(parse_routes(family, rout))
    gateways: List[str] = []
    for route in routes:
        if route["gateway"] and route["gateway"] not in gateways:
            gateways.append(route["gateway"])

    result: Dict[str, Any] = {
        "interfaces": interfaces,
        "addresses": [a["address"] for i in interfaces for a in i["addresses"] if a["kind"] != "loopback"],
        "default_gateways": gateways,
        "default_routes": routes,
    }
    result.update(parse_resolv_conf(ctx.read("/etc/resolv.conf")))
    return result
