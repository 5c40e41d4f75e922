# PRIVATE: Ed25519 keys, key ids, signatures (the `cryptography` package, any version >= 38).
#
# Runs on hosts: stdlib + cryptography, Python 3.9. Importing this module never fails: without
# `cryptography`, HAS_CRYPTOGRAPHY is False and every function raises MissingCryptography.
from __future__ import annotations

import hashlib
import re
from typing import Any, Dict, Iterable, List, Optional

from ansible_collections.distsec.framework.plugins.module_utils._trust.canonical import canonical

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
except ImportError as exc:  # pragma: no cover - hosts without python3-cryptography
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR: Optional[str] = str(exc)
else:
    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR = None

__all__ = [
    "CRYPTOGRAPHY_IMPORT_ERROR",
    "HAS_CRYPTOGRAPHY",
    "HEX64",
    "HEX128",
    "MissingCryptography",
    "generate_key",
    "keyid",
    "load_private_key",
    "private_key_pem",
    "public_hex",
    "sign",
    "sign_envelope",
    "verify",
]

HEX64 = re.compile(r"^[0-9a-f]{64}$")
HEX128 = re.compile(r"^[0-9a-f]{128}$")


class MissingCryptography(RuntimeError):
    """The Python `cryptography` package is not installed (Debian: python3-cryptography)."""


def _need() -> None:
    if not HAS_CRYPTOGRAPHY:
        raise MissingCryptography(
            f"the Python package 'cryptography' is required (Debian: python3-cryptography): {CRYPTOGRAPHY_IMPORT_ERROR}"
        )


def keyid(public: str) -> str:
    """The key id: sha256 hex of the 32-byte raw public key (given as 64 hex digits)."""
    return hashlib.sha256(bytes.fromhex(public)).hexdigest()


def generate_key() -> Any:
    _need()
    return Ed25519PrivateKey.generate()


def public_hex(private_key: Any) -> str:
    """The raw public key of a private key, as 64 lower-case hex digits."""
    _need()
    raw = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw.hex()


def sign(private_key: Any, data: bytes) -> str:
    """Ed25519 signature of `data`, 128 lower-case hex digits."""
    _need()
    return private_key.sign(data).hex()


def verify(public: str, sig: str, data: bytes) -> bool:
    """True if `sig` (hex) is a valid Ed25519 signature of `data` by `public` (hex)."""
    _need()
    if not HEX64.match(public) or not HEX128.match(sig):
        return False
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public)).verify(bytes.fromhex(sig), data)
    except (InvalidSignature, ValueError):
        return False
    return True


def sign_envelope(signed: Dict[str, Any], private_keys: Iterable[Any]) -> Dict[str, Any]:
    """{"signed": signed, "signatures": [...]}: one signature per distinct key."""
    data = canonical(signed)
    signatures: List[Dict[str, str]] = []
    seen = set()
    for key in private_keys:
        kid = keyid(public_hex(key))
        if kid in seen:
            continue
        seen.add(kid)
        signatures.append({"keyid": kid, "sig": sign(key, data)})
    return {"signed": signed, "signatures": signatures}


def private_key_pem(private_key: Any, passphrase: Optional[bytes] = None) -> bytes:
    """PKCS#8 PEM, encrypted with the best available scheme when a passphrase is given."""
    _need()
    encryption: Any = serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    return private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def load_private_key(pem: bytes, passphrase: Optional[bytes] = None) -> Any:
    """An Ed25519 private key from PKCS#8 PEM; ValueError/TypeError as `cryptography` raises them."""
    _need()
    key = serialization.load_pem_private_key(pem, password=passphrase or None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("not an Ed25519 private key")
    return key
