# PRIVATE: Security Status collector "ipsec": the IKE daemon, its connections and established SAs.
#
# strongSwan is read through swanctl (vici); libreswan through `ipsec status` and
# `ipsec whack --trafficstatus`. A host with neither is a fact (installed false), not an error.
# A daemon that is installed but stopped gives running false, no connections and 0 SAs.
# strongSwan without swanctl (the legacy stroke `ipsec` starter) reports running and SAs
# from `ipsec status`; its connection names are not listed.
from __future__ import annotations

import re
from typing import Any, Dict, List

from ansible_collections.distsec.framework.plugins.module_utils._status.base import Context, collector

__all__ = ["collect_ipsec"]

# swanctl --list-conns: "NAME: IKEv2, no reauthentication, rekeying every 14400s" at column 0.
_SWANCTL_CONN_RE = re.compile(r"^([^\s:]+):\s+IKE")
# swanctl --list-sas: "NAME: #1, ESTABLISHED, IKEv2, ..." at column 0.
_SWANCTL_SA_RE = re.compile(r"^\S+: #\d+, ESTABLISHED")
# stroke `ipsec status`: "   NAME[1]: ESTABLISHED 5 minutes ago, ..."
_STROKE_SA_RE = re.compile(r"^\s*\S+\[\d+\]: ESTABLISHED")
# libreswan `ipsec status`: '000 "NAME": 10.0.0.1<...>...' (the "000 " code is gone in 5.x);
# state lines ('000 #2: "NAME"...') start with '#', so they do not match.
_LIBRESWAN_CONN_RE = re.compile(r'^(?:\d{3} )?"([^"]+)"(?:\[\d+\])?:')
# libreswan `ipsec whack --trafficstatus`: one line per IPsec SA, '006 #3: "NAME", type=ESP, ...'.
_LIBRESWAN_SA_RE = re.compile(r'^(?:\d{3} )?#\d+: "')

NONE: Dict[str, Any] = {"daemon": None, "installed": False, "running": None, "connections": [], "sas_up": 0}


def _unique(names: List[str]) -> List[str]:
    seen: List[str] = []
    for name in names:
        if name not in seen:
            seen.append(name)
    return seen


def _strongswan(ctx: Context) -> Dict[str, Any]:
    rc, _out, _err = ctx.run(["swanctl", "--stats"])
    running = rc == 0
    connections: List[str] = []
    sas_up = 0
    if running:
        rc, out, _err = ctx.run(["swanctl", "--list-conns"])
        if rc == 0:
            connections = _unique([m.group(1) for m in map(_SWANCTL_CONN_RE.match, out.splitlines()) if m])
        rc, out, _err = ctx.run(["swanctl", "--list-sas"])
        if rc == 0:
            sas_up = sum(1 for line in out.splitlines() if _SWANCTL_SA_RE.match(line))
    return {"daemon": "strongswan", "installed": True, "running": running, "connections": connections, "sas_up": sas_up}


def _stroke(ctx: Context) -> Dict[str, Any]:
    rc, out, _err = ctx.run(["ipsec", "status"])
    running = rc == 0
    sas_up = sum(1 for line in out.splitlines() if _STROKE_SA_RE.match(line)) if running else 0
    return {"daemon": "strongswan", "installed": True, "running": running, "connections": [], "sas_up": sas_up}


def _libreswan(ctx: Context) -> Dict[str, Any]:
    rc, out, _err = ctx.run(["ipsec", "status"])
    running = rc == 0
    connections: List[str] = []
    sas_up = 0
    if running:
        connections = _unique([m.group(1) for m in map(_LIBRESWAN_CONN_RE.match, out.splitlines()) if m])
        rc, out, _err = ctx.run(["ipsec", "whack", "--trafficstatus"])
        if rc == 0:
            sas_up = sum(1 for line in out.splitlines() if _LIBRESWAN_SA_RE.match(line))
    return {"daemon": "libreswan", "installed": True, "running": running, "connections": connections, "sas_up": sas_up}


@collector("ipsec")
def collect_ipsec(ctx: Context) -> Dict[str, Any]:
    if ctx.which("swanctl") is not None:
        return _strongswan(ctx)
    if ctx.which("ipsec") is not None:
        rc, out, err = ctx.run(["ipsec", "--version"])
        banner = (out + err).lower()
        if "libreswan" in banner:
            return _libreswan(ctx)
        if "strongswan" in banner:
            return _stroke(ctx)
        # An `ipsec` that says neither (old libreswan/openswan print "Linux Openswan"/"Libreswan").
        if rc == 0 and "openswan" in banner:
            return _libreswan(ctx)
    return dict(NONE, connections=[])
