# PRIVATE: Security Status collector "firewall": which firewall backends run, and our nftables tables.
#
# nftables is read with `nft -j list tables`; the tables whose name starts with "distsec" are
# ours, and their listings (counters and handles removed by normalize_listing) give one digest
# that changes only when a rule changes. nft missing is a fact (installed false), not an error;
# nft present but refusing to list (no privilege) is an error: "no distsec table" would be a lie.
from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.distsec.framework.plugins.module_utils._apply.backend import sha256
from ansible_collections.distsec.framework.plugins.module_utils._apply.firewall import make_backend
from ansible_collections.distsec.framework.plugins.module_utils._apply.nftables import normalize_listing
from ansible_collections.distsec.framework.plugins.module_utils._status.base import (
    CollectorError,
    Context,
    collector,
)

__all__ = ["OURS_PREFIX", "collect_firewall"]

OURS_PREFIX = "distsec"
_VARIANT_RE = re.compile(r"\((nf_tables|legacy)\)")


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def _nft_tables(ctx: Context) -> List[Tuple[str, str]]:
    rc, out, err = ctx.run(["nft", "-j", "list", "tables"])
    if rc != 0:
        raise CollectorError(f"nft -j list tables failed (rc {rc}): {_first_line(err) or 'no message'}")
    try:
        items = json.loads(out or "{}").get("nftables", [])
    except (ValueError, AttributeError) as exc:
        raise CollectorError(f"nft -j list tables printed something that is not the expected JSON: {exc}") from None
    tables = []
    for item in items:
        table = item.get("table") if isinstance(item, dict) else None
        if isinstance(table, dict) and "family" in table and "name" in table:
            tables.append((str(table["family"]), str(table["name"])))
    return sorted(set(tables))


def _digest(ctx: Context, ours: List[Tuple[str, str]]) -> str:
    hasher = hashlib.sha256()
    for family, name in ours:
        rc, out, err = ctx.run(["nft", "list", "table", family, name])
        if rc != 0:
            raise CollectorError(f"nft list table {family} {name} failed (rc {rc}): {_first_line(err) or 'no message'}")
        hasher.update(normalize_listing(out).encode("utf-8"))
    return "sha256:" + hasher.hexdigest()


def _iptables(ctx: Context) -> Dict[str, Any]:
    if ctx.which("iptables") is None:
        return {"installed": False, "variant": None}
    rc, out, err = ctx.run(["iptables", "-V"])
    match = _VARIANT_RE.search(out + err) if rc == 0 else None
    return {"installed": True, "variant": match.group(1) if match else None}


def _firewalld(ctx: Context) -> Dict[str, Any]:
    if ctx.which("firewall-cmd") is None:
        return {"installed": False, "running": None}
    rc, _out, _err = ctx.run(["firewall-cmd", "--state"])
    # rc 0: running; 252: not running; anything else: firewall-cmd itself failed.
    running: Optional[bool] = True if rc == 0 else (False if rc == 252 else None)
    return {"installed": True, "running": running}


def _ufw(ctx: Context) -> Dict[str, Any]:
    if ctx.which("ufw") is None:
        return {"installed": False, "active": None}
    rc, out, _err = ctx.run(["ufw", "status"])
    first = _first_line(out).lower() if rc == 0 else ""
    active: Optional[bool] = None
    if first.startswith("status:"):
        state = first.split(":", 1)[1].strip()
        active = True if state == "active" else (False if state == "inactive" else None)
    return {"installed": True, "active": active}


FIREWALL_STATE = "/var/lib/distsec/firewall"
ENFORCED_BACKENDS = ("nftables", "iptables", "firewalld")


def _enforced(ctx: Context) -> Optional[Dict[str, Any]]:
    """Which backend the firewall module enforced last, and whether its objects drifted since.

    The module records (in FIREWALL_STATE/BACKEND.json) a hash of what it owned right after
    applying; the same backend code reads what it owns now. None: the module never ran here.
    """
    for name in ENFORCED_BACKENDS:
        record = ctx.read_json(f"{FIREWALL_STATE}/{name}.json")
        if not record or "current_sha256" not in record:
            continue
        selected = str(record.get("selected") or record.get("backend") or name)
        backend = make_backend(selected, FIREWALL_STATE, run=lambda argv, stdin=None: ctx.run(argv))
        try:
            now = backend.current()
        except Exception as exc:  # noqa: BLE001 - a backend's own error, reported as the collector's
            raise CollectorError(f"cannot read what the {selected} backend owns: {exc}") from None
        return {"backend": selected, "drift": sha256(now) != record["current_sha256"], "present": bool(now)}
    return None


@collector("firewall")
def collect_firewall(ctx: Context) -> Dict[str, Any]:
    nft_installed = ctx.which("nft") is not None
    tables = _nft_tables(ctx) if nft_installed else []
    ours = [t for t in tables if t[1].startswith(OURS_PREFIX)]
    others = [t for t in tables if not t[1].startswith(OURS_PREFIX)]
    return {
        "backends": {
            "nftables": {"installed": nft_installed, "tables": [f"{f} {n}" for f, n in tables]},
            "iptables": _iptables(ctx),
            "firewalld": _firewalld(ctx),
            "ufw": _ufw(ctx),
        },
        "distsec": {
            "present": bool(ours),
            "tables": [f"{f} {n}" for f, n in ours],
            "digest": _digest(ctx, ours) if ours else None,
            "enforced": _enforced(ctx),
        },
        "other_tables": [f"{f} {n}" for f, n in others],
    }
