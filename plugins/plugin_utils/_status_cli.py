# PRIVATE: `distsec status show FILE`: a saved Security Status, for people.
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Dict, List

from ansible_collections.distsec.framework.plugins.module_utils._status.schema import STATUS_SCHEMA

from ._cli import GROUPS, Command, CommandError, Group

__all__ = ["register", "render"]

MAX_BYTES = 64 * 1024 * 1024


def _load(path: str) -> Dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.loads(handle.read(MAX_BYTES + 1))
    except OSError as exc:
        raise CommandError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (ValueError, RecursionError) as exc:
        raise CommandError(f"{path}: not a Security Status file (JSON): {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("distsec_status"), dict):
        data = data["distsec_status"]
    if not isinstance(data, dict) or "schema_version" not in data:
        raise CommandError(f"{path}: not a Security Status file: no schema_version")
    return data


def render(status: Dict[str, Any]) -> List[str]:
    """A one-screen summary of a Security Status."""
    out = [f"collected:  {status.get('collected_at', '?')} (schema {status.get('schema_version')})"]
    platform = status.get("platform") or {}
    if platform:
        out.append(
            f"platform:   {platform.get('distribution') or platform.get('os')} {platform.get('release') or ''} "
            f"kernel {platform.get('kernel')} {platform.get('architecture') or ''}".rstrip()
        )
    packages = status.get("packages")
    if isinstance(packages, dict):
        out.append(f"packages:   {len(packages)} installed ({platform.get('version_scheme') or '?'} versions)")
    updates = status.get("updates") or {}
    if updates:
        out.append(
            f"updates:    {updates.get('pending_count', '?')} pending, {updates.get('security_count', '?')} security "
            f"(oldest security: {updates.get('oldest_security_age', 0)} s)"
        )
    services = status.get("services")
    if isinstance(services, dict):
        active = sum(1 for s in services.values() if isinstance(s, dict) and s.get("active"))
        out.append(f"services:   {active} of {len(services)} active")
    sockets = status.get("sockets")
    if isinstance(sockets, list):
        listed = ", ".join(
            f"{s.get('proto')}/{s.get('port')} {s.get('process') or ''}".strip()
            for s in sockets[:12]
            if isinstance(s, dict)
        )
        more = f" (+{len(sockets) - 12} more)" if len(sockets) > 12 else ""
        out.append(f"listening:  {listed or 'nothing'}{more}")
    network = status.get("network") or {}
    if network:
        out.append(f"addresses:  {', '.join(network.get('addresses', [])) or 'none'}")
        out.append(f"gateways:   {', '.join(network.get('default_gateways', [])) or 'none'}")
    firewall = status.get("firewall") or {}
    if firewall:
        ours = (firewall.get("distsec") or {}).get("tables") or []
        out.append(
            f"firewall:   ours: {', '.join(ours) or 'none'}; others: {', '.join(firewall.get('other_tables', [])) or 'none'}"
        )
    domain = status.get("domain") or {}
    if domain:
        cert = domain.get("certificate") or {}
        out.append(
            f"domain:     {domain.get('domain') or 'not enrolled'}"
            + (
                f"; certificate valid={cert.get('valid')} revoked={cert.get('revoked')} until {cert.get('not_after')}"
                if cert
                else ""
            )
        )
    policy = status.get("policy") or {}
    if policy:
        out.append(
            f"policy:     serial {policy.get('serial')} profile {policy.get('profile')} hash {policy.get('hash')}"
        )
    for name, message in sorted((status.get("errors") or {}).items()):
        out.append(f"error:      {name}: {message}")
    return out


def run_show(args: argparse.Namespace) -> int:
    status = _load(args.file)
    if args.json:
        json.dump(status, sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    else:
        print("\n".join(render(status)))
    return 0


def run_schema(args: argparse.Namespace) -> int:
    json.dump(STATUS_SCHEMA, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
    return 0


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="a status file (e.g. /var/lib/distsec/status.json)")
    parser.add_argument("--json", action="store_true", help="print the whole status as JSON")


def register() -> None:
    group = GROUPS.setdefault(
        "status",
        Group(
            "status", "read Security Status files", "Show Security Status files saved by the security_status module."
        ),
    )
    if not group.commands:
        group.commands.append(Command("show", "a saved Security Status, summarised (or --json)", _configure, run_show))
        group.commands.append(
            Command(
                "schema",
                "print the Security Status JSON Schema (also docs/status.schema.json)",
                lambda p: None,
                run_schema,
            )
        )
