# PRIVATE: small X.509 helpers shared by the PDP side (ca.py) and the host side (member.py).
# Runs on hosts with Debian 12's cryptography 38 (no verify_directly_issued_by, no *_utc dates),
# so signatures and dates are handled here by hand.
from __future__ import annotations

import calendar
import hashlib
from typing import Any, List

from ansible_collections.distsec.framework.plugins.module_utils._pki.errors import BadRequest, PkiError

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
except ImportError as exc:  # pragma: no cover - hosts without python3-cryptography
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_ERROR = str(exc)
else:
    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_ERROR = ""

__all__ = [
    "HAS_CRYPTOGRAPHY",
    "KEY_TYPES",
    "fingerprint",
    "generate_key",
    "issued_by",
    "key_type",
    "load_certificate",
    "load_certificates",
    "load_csr",
    "not_after",
    "not_before",
    "require_cryptography",
    "same_public_key",
    "serial_hex",
]

KEY_TYPES = ("ecdsa-p256", "ed25519")


def require_cryptography() -> None:
    """PkiError when the Python cryptography library is missing (python3-cryptography)."""
    if not HAS_CRYPTOGRAPHY:
        raise PkiError(
            f"the Python library cryptography is needed (install python3-cryptography): {CRYPTOGRAPHY_ERROR}"
        )


def load_certificate(pem: Any, what: str = "certificate") -> Any:
    certs = load_certificates(pem, what)
    if len(certs) != 1:
        raise BadRequest(f"the {what} holds {len(certs)} certificates, expected one")
    return certs[0]


def load_certificates(pem: Any, what: str = "certificate") -> List[Any]:
    data = pem.encode() if isinstance(pem, str) else bytes(pem or b"")
    marker = b"-----BEGIN CERTIFICATE-----"
    blocks = [marker + part for part in data.split(marker)[1:]]
    if not blocks:
        raise BadRequest(f"the {what} is not a PEM certificate")
    out = []
    for block in blocks:
        try:
            out.append(x509.load_pem_x509_certificate(block))
        except ValueError as exc:
            raise BadRequest(f"the {what} cannot be read: {exc}") from None
    return out


def load_csr(pem: Any) -> Any:
    data = pem.encode() if isinstance(pem, str) else bytes(pem or b"")
    try:
        csr = x509.load_pem_x509_csr(data)
    except ValueError as exc:
        raise BadRequest(f"the CSR cannot be read: {exc}") from None
    if not csr.is_signature_valid:
        raise BadRequest("the CSR's signature does not verify (the request was altered or not made with its key)")
    return csr


def key_type(public_key: Any) -> str:
    """'ecdsa-p256', 'ecdsa-p384', 'ed25519', or 'rsa-N' / 'other'."""
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "ed25519"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return {"secp256r1": "ecdsa-p256", "secp384r1": "ecdsa-p384"}.get(public_key.curve.name, "ecdsa-other")
    if isinstance(public_key, rsa.RSAPublicKey):
        return f"rsa-{public_key.key_size}"
    return "other"


def generate_key(kind: str) -> Any:
    if kind == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise BadRequest(f"key type {kind!r} is not supported: use one of {', '.join(KEY_TYPES)}")


def _spki(public_key: Any) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def same_public_key(a: Any, b: Any) -> bool:
    return _spki(a) == _spki(b)


def fingerprint(cert: Any) -> str:
    """SHA-256 of the DER certificate, lower-case hex without separators."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def serial_hex(cert: Any) -> str:
    """The serial as openssl prints it: upper-case hex, even length."""
    text = format(cert.serial_number, "X")
    return text if len(text) % 2 == 0 else "0" + text


def _timestamp(moment: Any) -> float:
    # cryptography < 42 returns naive UTC datetimes; newer ones have *_utc (aware).
    return float(calendar.timegm(moment.utctimetuple()))


def not_before(cert: Any) -> float:
    return _timestamp(getattr(cert, "not_valid_before_utc", None) or cert.not_valid_before)


def not_after(cert: Any) -> float:
    return _timestamp(getattr(cert, "not_valid_after_utc", None) or cert.not_valid_after)


def issued_by(cert: Any, issuer: Any) -> bool:
    """True when `issuer`'s key signed `cert` and the names chain (works with cryptography 38)."""
    if cert.issuer != issuer.subject:
        return False
    key = issuer.public_key()
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), cert.signature_hash_algorithm)
        else:
            return False
    except InvalidSignature:
        return False
    return True
