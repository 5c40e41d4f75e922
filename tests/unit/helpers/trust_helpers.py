"""Builders for signed roots and bundles, shared by the trust tests (real Ed25519 keys).

Keys are deterministic (seeded by a small number) so tables can name them: key(1), key(2), ...
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any, Dict, Iterable, List, Optional, Sequence

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ansible_collections.distsec.framework.plugins.module_utils._trust import crypto
from ansible_collections.distsec.framework.plugins.module_utils._trust.canonical import (
    canonical,
    format_time,
    loads_strict,
)

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z
DOMAIN = "example.org"
POLICY = b'{"domain":"example.org","rules":[]}'
_KEYS: Dict[int, Any] = {}


def key(number: int) -> Any:
    """The Ed25519 private key number `number` (the same in every test)."""
    if number not in _KEYS:
        _KEYS[number] = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"distsec-test-key-%d" % number).digest())
    return _KEYS[number]


def kid(number: int) -> str:
    return crypto.keyid(crypto.public_hex(key(number)))


def envelope(signed: Dict[str, Any], signers: Iterable[int]) -> Dict[str, Any]:
    """{"signed", "signatures"} with one signature per entry of `signers` (duplicates kept on purpose)."""
    data = canonical(signed)
    return {
        "signed": signed,
        "signatures": [{"keyid": kid(n), "sig": crypto.sign(key(n), data)} for n in signers],
    }


def root(
    version: int,
    root_keys: Sequence[int],
    threshold: int,
    signers: Iterable[int],
    *,
    policy_keys: Sequence[int] = (100,),
    policy_threshold: int = 1,
    domain: str = DOMAIN,
) -> Dict[str, Any]:
    """A root envelope: root role `root_keys`/`threshold`, policy role `policy_keys`, signed by `signers`."""
    used = sorted(set(root_keys) | set(policy_keys))
    signed = {
        "_type": "distsec-root",
        "spec": 1,
        "domain": domain,
        "version": version,
        "keys": {kid(n): {"keytype": "ed25519", "public": crypto.public_hex(key(n))} for n in used},
        "roles": {
            "root": {"keyids": sorted(kid(n) for n in root_keys), "threshold": threshold},
            "policy": {"keyids": sorted(kid(n) for n in policy_keys), "threshold": policy_threshold},
        },
    }
    return envelope(signed, signers)


def manifest(
    *,
    serial: int = 1,
    files: Optional[Dict[str, bytes]] = None,
    domain: str = DOMAIN,
    issued: float = NOW - 60,
    expires: float = NOW + 3600,
    hosts: Sequence[str] = (),
    groups: Sequence[str] = (),
) -> Dict[str, Any]:
    files = {"policy.json": POLICY} if files is None else files
    return {
        "_type": "distsec-bundle",
        "spec": 1,
        "domain": domain,
        "serial": serial,
        "issued": format_time(issued),
        "expires": format_time(expires),
        "targets": {"hosts": list(hosts), "groups": list(groups)},
        "files": {n: {"sha256": hashlib.sha256(c).hexdigest(), "length": len(c)} for n, c in files.items()},
    }


def bundle_doc(
    signed: Dict[str, Any],
    signers: Iterable[int] = (100,),
    *,
    roots: Sequence[Dict[str, Any]] = (),
    files: Optional[Dict[str, bytes]] = None,
) -> Dict[str, Any]:
    """The bundle as a dict (mutate it, then dump())."""
    files = {"policy.json": POLICY} if files is None else files
    doc = envelope(signed, signers)
    doc["roots"] = list(roots)
    doc["files"] = {n: base64.b64encode(c).decode("ascii") for n, c in files.items()}
    return doc


def dump(doc: Any) -> bytes:
    return canonical(doc)


def bundle(
    signers: Iterable[int] = (100,), *, roots: Sequence[Dict[str, Any]] = (), files=None, **manifest_args
) -> bytes:
    """A signed bundle's bytes (manifest_args as for manifest())."""
    return dump(bundle_doc(manifest(files=files, **manifest_args), signers, roots=roots, files=files))


def trusted_root_v1() -> Dict[str, Any]:
    """Root v1: root key 1 (threshold 1), policy key 100 (threshold 1), self-signed."""
    return root(1, [1], 1, [1])


def state_for(data: bytes, serial: int, root_version: int = 1) -> Dict[str, Any]:
    """The trusted state after accepting bundle bytes `data` with serial `serial`."""
    return {
        "serial": serial,
        "manifest_sha256": hashlib.sha256(canonical(loads_strict(data)["signed"])).hexdigest(),
        "root_version": root_version,
        "accepted_at": format_time(NOW - 600),
        "domain": DOMAIN,
    }


def rotation_chain(steps: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Roots from table steps {"keys": [...], "threshold": K, "sigs": [...], optional "version", "domain"}."""
    return [
        root(
            step.get("version", number + 1),
            step["keys"],
            step["threshold"],
            step["sigs"],
            domain=step.get("domain", DOMAIN),
        )
        for number, step in enumerate(steps)
    ]
