# PRIVATE: the Security Status document as JSON Schema (stdlib data, shared with PSL).
#
# Published as docs/status.schema.json (`distsec status schema`). The PSL compiler reads it to
# warn about condition facts that no collector reports (a typo such as packages.x.verison).
from __future__ import annotations

from typing import Any, Dict, List, Optional

from .base import SCHEMA_VERSION

__all__ = ["STATUS_SCHEMA", "fact_problem"]

_S: Dict[str, Any] = {"type": "string"}
_SN: Dict[str, Any] = {"type": ["string", "null"]}
_B: Dict[str, Any] = {"type": "boolean"}
_BN: Dict[str, Any] = {"type": ["boolean", "null"]}
_I: Dict[str, Any] = {"type": "integer"}
_IN: Dict[str, Any] = {"type": ["integer", "null"]}
_N: Dict[str, Any] = {"type": "number"}
_NN: Dict[str, Any] = {"type": ["number", "null"]}
_LS: Dict[str, Any] = {"type": "array", "items": _S}


def _obj(props: Dict[str, Any], *, extra: Any = False) -> Dict[str, Any]:
    return {"type": "object", "properties": props, "additionalProperties": extra}


def _map(value: Dict[str, Any]) -> Dict[str, Any]:
    return {"type": "object", "additionalProperties": value}


STATUS_SCHEMA: Dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": f"https://distsec.invalid/status/{SCHEMA_VERSION}/schema.json",
    "title": f"distsec Security Status, schema version {SCHEMA_VERSION}",
    "type": "object",
    "required": ["schema_version", "collected_at", "errors"],
    "additionalProperties": False,
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "collected_at": _S,
        "errors": _map(_S),
        "durations": _map(_N),
        "platform": _obj(
            {
                "os": _S,
                "os_family": _SN,
                "distribution": _SN,
                "release": _SN,
                "codename": _SN,
                "kernel": _SN,
                "architecture": _SN,
                "boot_time": _SN,
                "virtualization": _SN,
                "version_scheme": _SN,
            }
        ),
        "packages": _map(
            _obj({"version": _S, "arch": _SN, "scheme": _S, "arches": _LS, "versions": _LS, "epoch": _SN})
        ),
        "updates": _obj(
            {
                "pending_count": _I,
                "security_count": _I,
                "oldest_security_age": _N,
                "source": _SN,
                "pending": {
                    "type": "array",
                    "items": _obj({"name": _S, "from": _SN, "to": _SN, "security": _B}, extra=True),
                },
            },
            extra=True,
        ),
        "services": _map(_obj({"active": _B, "enabled": _BN, "state": _SN, "load": _SN})),
        "sockets": {
            "type": "array",
            "items": _obj({"proto": _S, "address": _S, "port": _I, "process": _SN, "pid": _IN}, extra=True),
        },
        "firewall": _obj(
            {"backends": {"type": "object"}, "distsec": {"type": "object"}, "other_tables": _LS}, extra=True
        ),
        "ipsec": _obj({"daemon": _SN, "installed": _B, "running": _BN, "connections": _LS, "sas_up": _I}, extra=True),
        "network": _obj(
            {
                "interfaces": {"type": "array"},
                "addresses": _LS,
                "default_gateways": _LS,
                "default_routes": {"type": "array"},
                "dns_servers": _LS,
                "dns_search": _LS,
            },
            extra=True,
        ),
        "sysctl": _map(_S),
        "antivirus": _obj(
            {
                "engine": _SN,
                "installed": _B,
                "signatures_updated": _SN,
                "signatures_age": _NN,
                "signature_version": _IN,
            },
            extra=True,
        ),
        "domain": _obj(
            {
                "enrolled": _B,
                "domain": _SN,
                "state": {"type": ["string", "null"], "enum": ["member", "left", None]},
                "host": _SN,
                "left_at": _SN,
                "certificate": {
                    "type": ["object", "null"],
                    "properties": {
                        "subject": _S,
                        "issuer": _S,
                        "serial": _S,
                        "not_before": _S,
                        "not_after": _S,
                        "fingerprint_sha256": _S,
                        "valid": _B,
                        "revoked": _BN,
                        "days_left": _N,
                        "reason": _SN,
                    },
                    "additionalProperties": True,
                },
            },
            extra=True,
        ),
        "policy": _obj(
            {
                "domain": _S,
                "serial": _I,
                "hash": _S,
                "applied_at": _S,
                "expires": _S,
                "profile": _S,
                "last_rejection": {"type": ["object", "string", "null"]},
                "compliant": _BN,
                "checks": {
                    "type": "array",
                    "items": _obj(
                        {
                            "id": _S,
                            "description": _S,
                            "severity": _S,
                            "passed": _B,
                            "on_fail": _S,
                            "unknown": _LS,
                        },
                        extra=True,
                    ),
                },
                "last_run": _obj(
                    {
                        "schema": _S,
                        "host": _S,
                        "at": _S,
                        "mode": {"type": "string", "enum": ["enforce", "audit"]},
                        "result": {"type": "string", "enum": ["ok", "failed"]},
                        "error": _SN,
                        "changed": _B,
                        "policy": {"type": "object"},
                        "profile": {"type": "object"},
                        "compliance": {"type": "object"},
                        "drift": _obj({"found": _B, "fixed": _B, "rules": _LS}, extra=True),
                        "firewall": {"type": "object"},
                    },
                    extra=True,
                ),
            },
            extra=True,
        ),
        "time": _obj({"now": _S, "synchronized": _BN, "ntp_service": _SN, "timezone": _SN}, extra=True),
        "host": {"type": "object"},
    },
}


def fact_problem(path: List[Any]) -> Optional[str]:
    """Why a condition's fact path cannot be in a Security Status, or None when it can."""
    schema: Any = STATUS_SCHEMA
    walked: List[str] = []
    for part in path:
        if not isinstance(schema, dict):
            return None
        kinds = schema.get("type")
        kinds = kinds if isinstance(kinds, list) else [kinds]
        if "array" in kinds and isinstance(part, int):
            schema = schema.get("items", {})
        elif "object" in kinds and isinstance(part, str):
            props = schema.get("properties", {})
            if part in props:
                schema = props[part]
            elif isinstance(schema.get("additionalProperties"), dict):
                schema = schema["additionalProperties"]
            elif schema.get("additionalProperties", True) is False and props:
                where = ".".join(walked) or "the status"
                return f"{where} has no fact {part!r}; it has: {', '.join(sorted(props))}"
            else:
                return None
        else:
            return None
        walked.append(str(part))
    return None
