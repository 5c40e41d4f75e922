# PRIVATE: the domain CA on the PDP (docs/dev/domain-design.md, "On the PDP"): the registry
# (ca/db.json), signing of host certificates, revocation, CRLs and rotation of the issuing CA.
#
# Runs where PDP_DIR is (the controller or a delegate): stdlib + cryptography (38 on Debian 12 up
# to the venv's), Python 3.9, no Ansible import. Every read-modify-write of db.json / crl.pem
# holds flock(LOCK_EX) on ca/db.lock, so parallel forks (one per host) do not lose entries; both
# files are replaced atomically (temp in the same directory, fsync, rename, fsync of the directory).
from __future__ import annotations

import base64
import contextlib
import datetime
import fcntl
import ipaddress
import json
import os
import re
import threading
import time
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple, Union

from ansible_collections.distsec.framework.plugins.module_utils._pki.errors import (
    BadRequest,
    CAUnavailable,
    HostRemoved,
    IdentityMismatch,
)
from ansible_collections.distsec.framework.plugins.module_utils._pki.identity import Identity, identity_of
from ansible_collections.distsec.framework.plugins.module_utils._pki.lifetime import (
    backdate_for,
    check_lifetime,
    format_duration,
)
from ansible_collections.distsec.framework.plugins.module_utils._pki.x509 import (
    KEY_TYPES,
    fingerprint,
    issued_by,
    key_type,
    load_certificate,
    load_csr,
    not_after,
    require_cryptography,
    same_public_key,
    serial_hex,
)
from ansible_collections.distsec.framework.plugins.module_utils._trust.canonical import format_time
from ansible_collections.distsec.framework.plugins.module_utils._trust.state import atomic_write_bytes, fsync_dir

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier
except ImportError:  # pragma: no cover - x509.require_cryptography() reports it
    pass

__all__ = [
    "DEFAULT_CRL_VALIDITY",
    "DEFAULT_ISSUING_LIFETIME",
    "DEFAULT_ROOT_LIFETIME",
    "DomainCA",
    "certificate_pem",
    "new_ca_key",
    "new_issuing_ca",
    "new_root_ca",
    "private_key_pem",
]

DEFAULT_CRL_VALIDITY = 14 * 86400
DEFAULT_ROOT_LIFETIME = 3650 * 86400
DEFAULT_ISSUING_LIFETIME = 1825 * 86400
PRUNE_AFTER = 86400  # registry entries expired longer than this are dropped (and leave the CRL)
CRL_BACKDATE = 60
CA_BACKDATE = 60
MAX_FILE = 4 * 1024 * 1024
IPSEC_IKE = "1.3.6.1.5.5.7.3.17"
DB_FORMAT = 1
PASSPHRASE_VARS = "pdp_init_ca_passphrase / domain_join_ca_passphrase"  # noqa: S105 - variable names

ISSUING_KEY = "ca/issuing.key"
ISSUING_CRT = "ca/issuing.crt"
ISSUING_NEXT = "ca/issuing.next"  # the new pair of a rotation until it is in place (see rotate_issuing)

# Tests only: called as FAULT_HOOK(step) at each step of the switch to a new issuing CA (steps:
# "next-written", "retired", "key-replaced", "crt-replaced", "next-removed"), e.g. to raise
# there. None in production.
FAULT_HOOK: Optional[Callable[[str], None]] = None

_CURVES = {"P-256": "SECP256R1", "P-384": "SECP384R1", "secp256r1": "SECP256R1", "secp384r1": "SECP384R1"}
_ISSUING_CN_RE = re.compile(r" Issuing CA ([0-9]+)$")


# ---------------------------------------------------------------------------------------------
# CA certificates (the same profiles pdp_init makes with community.crypto)


def _utc(epoch: float) -> Any:
    return datetime.datetime.fromtimestamp(int(epoch), tz=datetime.timezone.utc)


def _hash_for(key: Any) -> Any:
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp384r1":
        return hashes.SHA384()
    return hashes.SHA256()


def _ca_name(domain: str, common_name: str) -> Any:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, domain),
        ]
    )


def _serial() -> int:
    """A positive random serial of at least 64 bits (x509.random_serial_number gives < 2**159)."""
    while True:
        serial = x509.random_serial_number()
        if serial >= 1 << 64:
            return serial


def _ca_usage() -> Any:
    return x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def _aki(issuer_cert: Any) -> Any:
    try:
        ski = issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_cert.public_key())
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def new_ca_key(curve: str = "P-256") -> Any:
    """A new ECDSA CA key on `curve` (P-256 for issuing CAs, P-384 for the root)."""
    require_cryptography()
    if curve not in _CURVES:
        raise BadRequest(f"curve {curve!r} is not supported: use P-256 or P-384")
    return ec.generate_private_key(getattr(ec, _CURVES[curve])())


def new_root_ca(key: Any, domain: str, lifetime: int, *, now: Optional[float] = None) -> Any:
    """The self-signed root CA certificate: CN "<domain> Root CA", O=<domain>, CA:TRUE critical,
    keyUsage keyCertSign+cRLSign critical, SKI."""
    require_cryptography()
    start = int(time.time() if now is None else now) - CA_BACKDATE
    name = _ca_name(domain, f"{domain} Root CA")
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(_serial())
        .not_valid_before(_utc(start))
        .not_valid_after(_utc(start + int(lifetime)))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_ca_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    return builder.sign(key, _hash_for(key))


def new_issuing_ca(
    key: Any,
    root_key: Any,
    root_cert: Any,
    domain: str,
    lifetime: int,
    *,
    number: int = 1,
    now: Optional[float] = None,
) -> Any:
    """An issuing CA certificate signed by the root: CN "<domain> Issuing CA <number>", O=<domain>,
    CA:TRUE pathlen:0 critical, keyCertSign+cRLSign critical, SKI, AKI. Its notAfter is capped at
    the root's."""
    require_cryptography()
    start = int(time.time() if now is None else now) - CA_BACKDATE
    end = min(start + int(lifetime), int(not_after(root_cert)))
    if end <= start + CA_BACKDATE:
        raise CAUnavailable(f"the root CA expires on {format_time(not_after(root_cert))}: make a new root CA")
    builder = (
        x509.CertificateBuilder()
        .subject_name(_ca_name(domain, f"{domain} Issuing CA {number}"))
        .issuer_name(root_cert.subject)
        .public_key(key.public_key())
        .serial_number(_serial())
        .not_valid_before(_utc(start))
        .not_valid_after(_utc(end))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_ca_usage(), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(_aki(root_cert), critical=False)
    )
    return builder.sign(root_key, _hash_for(root_key))


def private_key_pem(key: Any, passphrase: Optional[Union[str, bytes]] = None) -> bytes:
    """PKCS#8 PEM, encrypted when a passphrase is given (as community.crypto's openssl_privatekey writes)."""
    secret = passphrase.encode("utf-8") if isinstance(passphrase, str) else passphrase
    encryption = serialization.BestAvailableEncryption(secret) if secret else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def certificate_pem(cert: Any) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


# ---------------------------------------------------------------------------------------------
# the registry


def _empty_db() -> Dict[str, Any]:
    return {"format": DB_FORMAT, "issued": [], "revoked": [], "removed": {}, "crl": {}}


def _check_db(db: Any) -> Dict[str, Any]:
    """The registry, or ValueError saying what is wrong with it."""
    if not isinstance(db, dict) or db.get("format") != DB_FORMAT:
        raise ValueError(f"not a format {DB_FORMAT} registry")
    for key, kind in (("issued", list), ("revoked", list), ("removed", dict), ("crl", dict)):
        if not isinstance(db.get(key), kind):
            raise ValueError(f"{key!r} is not a {kind.__name__}")
    for key in ("issued", "revoked"):
        for entry in db[key]:
            if not isinstance(entry, dict):
                raise ValueError(f"an entry of {key!r} is not an object")
            for field, kind in (("serial", str), ("host", str), ("issuer", str), ("not_after", int)):
                if not isinstance(entry.get(field), kind):
                    raise ValueError(f"an entry of {key!r} has no {field} ({kind.__name__})")
    for host, entry in db["removed"].items():
        if not isinstance(entry, dict) or not isinstance(entry.get("serials"), list):
            raise ValueError(f"removed host {host!r} has no serials list")
    for issuer, entry in db["crl"].items():
        if not isinstance(entry, dict) or not all(
            isinstance(entry.get(k), int) for k in ("number", "this_update", "next_update")
        ):
            raise ValueError(f"the CRL record of issuer {issuer[:16]} is incomplete")
        if not isinstance(entry.get("serials"), list):
            raise ValueError(f"the CRL record of issuer {issuer[:16]} has no serials list")
    return db


def _dumps(db: Dict[str, Any]) -> bytes:
    return json.dumps(db, sort_keys=True, separators=(",", ":")).encode("utf-8") + b"\n"


def _prune(db: Dict[str, Any], now: int) -> None:
    cutoff = now - PRUNE_AFTER
    db["issued"] = [e for e in db["issued"] if e["not_after"] >= cutoff]
    db["revoked"] = [e for e in db["revoked"] if e["not_after"] >= cutoff]


def _reason_flag(reason: str) -> Any:
    try:
        return x509.ReasonFlags(reason)
    except ValueError:
        names = ", ".join(sorted(f.value for f in x509.ReasonFlags if f.value not in ("removeFromCRL",)))
        raise BadRequest(f"revocation reason {reason!r} is not one of {names}") from None


def _fault(step: str) -> None:
    if FAULT_HOOK is not None:
        FAULT_HOOK(step)


def _split_crls(data: bytes) -> List[bytes]:
    marker = b"-----BEGIN X509 CRL-----"
    end = b"-----END X509 CRL-----"
    out = []
    for part in data.split(marker)[1:]:
        body, found = part.partition(end)[:2]
        if found:
            out.append(marker + body + end + b"\n")
    return out


class _Issuer:
    """An issuing CA whose CRL goes into crl.pem: the current one or a retired one."""

    def __init__(self, key_rel: str, cert: Any) -> None:
        self.key_rel = key_rel
        self.cert = cert
        self.fp = fingerprint(cert)


class DomainCA:
    """The domain CA in PDP_DIR/ca (see the module docstring and docs/dev/domain-design.md)."""

    def __init__(
        self,
        pdp_dir: str,
        passphrase: Optional[Union[str, bytes]] = None,
        now: Callable[[], float] = time.time,
        crl_validity: Optional[int] = None,
    ) -> None:
        require_cryptography()
        self.pdp_dir = pdp_dir
        self.passphrase = passphrase.encode("utf-8") if isinstance(passphrase, str) else (passphrase or None)
        self.now = now
        # None: the validity pdp_init recorded in the registry (so that joins, which do not know
        # it, re-sign the CRL on the same schedule), else DEFAULT_CRL_VALIDITY.
        self.crl_validity: Optional[int] = None if crl_validity is None else int(crl_validity)
        if self.crl_validity is not None and self.crl_validity < 3600:
            raise BadRequest(f"a CRL validity of {format_duration(self.crl_validity)} is too short (1h at least)")
        self.ca_dir = os.path.join(pdp_dir, "ca")
        self.db_path = os.path.join(self.ca_dir, "db.json")
        self.crl_path = os.path.join(self.ca_dir, "crl.pem")
        self.lock_path = os.path.join(self.ca_dir, "db.lock")
        self._holder: Optional[int] = None  # the thread of this object that holds ca/db.lock

    # -- files ------------------------------------------------------------------------------

    def _where(self, what: str) -> str:
        return f"PDP directory {self.pdp_dir}: {what}"

    def _path(self, rel: str) -> str:
        return os.path.join(self.pdp_dir, rel)

    def _read(self, rel: str, *, missing_ok: bool = False, hint: str = "run pdp_init.yml") -> Optional[bytes]:
        try:
            with open(self._path(rel), "rb") as handle:
                data = handle.read(MAX_FILE + 1)
        except FileNotFoundError:
            if missing_ok:
                return None
            if not os.path.isdir(self.pdp_dir):
                raise CAUnavailable(f"PDP directory {self.pdp_dir} does not exist; run pdp_init.yml") from None
            raise CAUnavailable(self._where(f"{rel} is missing; {hint}")) from None
        except OSError as exc:
            raise CAUnavailable(
                self._where(f"cannot read {rel}: {exc.strerror or exc}; run pdp_init.yml (or fix the file's owner)")
            ) from None
        if len(data) > MAX_FILE:
            raise CAUnavailable(self._where(f"{rel} is larger than {MAX_FILE} bytes"))
        return data

    def _write(self, rel: str, data: bytes, mode: int) -> None:
        try:
            atomic_write_bytes(self._path(rel), data, mode)
        except OSError as exc:
            raise CAUnavailable(self._where(f"cannot write {rel}: {exc.strerror or exc}")) from None

    def _cert(self, rel: str) -> Any:
        data = self._read(rel)
        try:
            return load_certificate(data, rel)
        except BadRequest as exc:
            raise CAUnavailable(self._where(str(exc))) from None

    def _key(self, rel: str, cert: Any, hint: str = "run pdp_init.yml") -> Any:
        """The private key in `rel`, which must be the key of `cert` (CAUnavailable otherwise)."""
        key = self._load_key(rel, hint)
        if not same_public_key(key.public_key(), cert.public_key()):
            raise CAUnavailable(self._where(f"{rel} is not the key of {rel[:-4]}.crt; restore the pair"))
        return key

    def _load_key(self, rel: str, hint: str = "run pdp_init.yml") -> Any:
        data = self._read(rel, hint=hint)
        try:
            try:
                key = serialization.load_pem_private_key(data, self.passphrase)
            except TypeError:
                if not self.passphrase:
                    raise CAUnavailable(
                        self._where(f"{rel} is encrypted: give the CA passphrase ({PASSPHRASE_VARS})")
                    ) from None
                # a passphrase was given but this key is not encrypted: it loads without one
                key = serialization.load_pem_private_key(data, None)
        except ValueError:
            if self.passphrase and b"ENCRYPTED" in data:
                raise CAUnavailable(self._where(f"wrong passphrase for {rel}")) from None
            raise CAUnavailable(self._where(f"{rel} is not a PEM private key; run pdp_init.yml")) from None
        except TypeError:
            raise CAUnavailable(self._where(f"{rel} cannot be loaded")) from None
        return key

    def domain(self) -> str:
        """The domain's name from PDP_DIR/domain.json (CAUnavailable when missing or unreadable)."""
        data = self._read("domain.json")
        try:
            doc = json.loads(data.decode("utf-8"))
        except ValueError:
            doc = None
        name = doc.get("domain") if isinstance(doc, dict) else None
        if not isinstance(name, str) or not name:
            raise CAUnavailable(self._where('domain.json is not {"domain": NAME}; run pdp_init.yml'))
        return name

    def _load_db(self) -> Dict[str, Any]:
        data = self._read("ca/db.json", missing_ok=True)
        if data is None:
            return _empty_db()
        try:
            return _check_db(json.loads(data.decode("utf-8")))
        except ValueError as exc:
            raise CAUnavailable(
                self._where(
                    f"ca/db.json is corrupt ({exc}); restore it from a backup (it is never reset automatically)"
                )
            ) from None

    def _save_db(self, db: Dict[str, Any], now: int) -> None:
        _prune(db, now)
        self._write("ca/db.json", _dumps(db), 0o600)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        if not os.path.isdir(self.ca_dir):
            if not os.path.isdir(self.pdp_dir):
                raise CAUnavailable(f"PDP directory {self.pdp_dir} does not exist; run pdp_init.yml")
            raise CAUnavailable(self._where("ca/ is missing; run pdp_init.yml"))
        try:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise CAUnavailable(self._where(f"cannot open ca/db.lock: {exc.strerror or exc}")) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._holder = threading.get_ident()
            yield
        finally:
            self._holder = None
            os.close(fd)  # releases the lock

    # -- the issuing CA's pair --------------------------------------------------------------

    def _held(self) -> bool:
        return self._holder == threading.get_ident()

    def _matches(self, key_rel: str, cert: Any) -> bool:
        return same_public_key(self._load_key(key_rel).public_key(), cert.public_key())

    def _issuing_pair(self) -> Tuple[str, str]:
        """(key, certificate) of the current issuing CA, relative to PDP_DIR.

        A rotation writes the new pair to ca/issuing.next/ and then moves the key, then the
        certificate into ca/ (see rotate_issuing). When it was interrupted in between, the key and
        the certificate in ca/ do not match and ca/issuing.next/ completes one of them: with the
        lock held the switch is finished here; without it (check mode, reads) the pair is used
        where it is and nothing is written. A left-over ca/issuing.next/ beside a matching pair (a
        rotation interrupted before the switch, or after it) is removed with the lock held.
        """
        pair = (ISSUING_KEY, ISSUING_CRT)
        if not os.path.isdir(self._path(ISSUING_NEXT)):
            return pair
        next_key = f"{ISSUING_NEXT}/issuing.key"
        next_crt = f"{ISSUING_NEXT}/issuing.crt"
        has_key = os.path.exists(self._path(next_key))
        has_crt = os.path.exists(self._path(next_crt))
        if self._matches(ISSUING_KEY, self._cert(ISSUING_CRT)):
            if self._held():
                self._remove_next()
            return pair
        if has_key == has_crt:  # neither or both: not a switch half done; _key() says restore the pair
            return pair
        pending = (next_key if has_key else ISSUING_KEY, next_crt if has_crt else ISSUING_CRT)
        if not self._matches(pending[0], self._cert(pending[1])):
            return pair
        if not self._held():
            return pending
        try:
            if has_key:
                os.replace(self._path(next_key), self._path(ISSUING_KEY))
                fsync_dir(self.ca_dir)
            if has_crt:
                os.replace(self._path(next_crt), self._path(ISSUING_CRT))
                fsync_dir(self.ca_dir)
        except OSError as exc:
            raise CAUnavailable(
                self._where(f"cannot finish the switch to the issuing CA in {ISSUING_NEXT}: {exc.strerror or exc}")
            ) from None
        self._remove_next()
        return pair

    def _remove_next(self) -> None:
        path = self._path(ISSUING_NEXT)
        try:
            for name in os.listdir(path):
                os.unlink(os.path.join(path, name))
            os.rmdir(path)
            fsync_dir(self.ca_dir)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise CAUnavailable(self._where(f"cannot remove {ISSUING_NEXT}: {exc.strerror or exc}")) from None

    # -- issuers and CRLs -------------------------------------------------------------------

    def _retired(self) -> List[int]:
        try:
            names = os.listdir(self._path("ca/retired"))
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise CAUnavailable(self._where(f"cannot list ca/retired: {exc.strerror or exc}")) from None
        return sorted(int(n) for n in names if n.isdigit() and not n.startswith("0"))

    def _issuers(self, now: int) -> List[_Issuer]:
        """The current issuing CA, then the retired ones (oldest first) not expired for long."""
        key_rel, crt_rel = self._issuing_pair()
        out = [_Issuer(key_rel, self._cert(crt_rel))]
        for number in self._retired():
            cert = self._cert(f"ca/retired/{number}/issuing.crt")
            if fingerprint(cert) == out[0].fp:
                continue  # a rotation interrupted after it retired the current pair
            if not_after(cert) >= now - PRUNE_AFTER:
                out.append(_Issuer(f"ca/retired/{number}/issuing.key", cert))
        return out

    def _existing_crls(self) -> List[Tuple[Any, bytes]]:
        data = self._read("ca/crl.pem", missing_ok=True) or b""
        out = []
        for pem in _split_crls(data):
            try:
                out.append((x509.load_pem_x509_crl(pem), pem))
            except ValueError:
                continue  # regenerated: a CRL nobody can read is as good as none
        return out

    @staticmethod
    def _crl_number(crl: Any) -> Optional[int]:
        try:
            return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
        except x509.ExtensionNotFound:
            return None

    def _refresh(self, db: Dict[str, Any], now: int, *, force: bool = False, check: bool = False, dirty: bool = False):
        """Bring crl.pem (and db["crl"]) up to date; True when something was (or would be) written.

        `dirty`: db was changed by the caller and must be written in any case. Call with the lock
        held unless `check`.
        """
        _prune(db, now)
        issuers = self._issuers(now)
        existing = self._existing_crls()
        current_text = self._read("ca/crl.pem", missing_ok=True)
        pems: List[bytes] = []
        records: Dict[str, Any] = {}
        stored = db.get("crl_validity")
        validity = self.crl_validity or (stored if isinstance(stored, int) and stored >= 3600 else DEFAULT_CRL_VALIDITY)
        if self.crl_validity is not None and stored != self.crl_validity:
            db["crl_validity"] = self.crl_validity
            dirty = True
        changed = dirty or current_text is None or not os.path.exists(self.db_path)
        half = validity / 2
        for issuer in issuers:
            wanted = sorted({e["serial"] for e in db["revoked"] if e["issuer"] == issuer.fp})
            record = db["crl"].get(issuer.fp)
            found = None
            for crl, pem in existing:
                if crl.issuer == issuer.cert.subject and crl.is_signature_valid(issuer.cert.public_key()):
                    found = (crl, pem)
                    break
            due = (
                force
                or found is None
                or record is None
                or sorted(record["serials"]) != wanted
                or self._crl_number(found[0]) != record["number"]
                or now >= record["this_update"] + half
                or record["next_update"] - record["this_update"] > validity
            )
            if not due:
                pems.append(found[1])
                records[issuer.fp] = record
                continue
            changed = True
            if check:
                continue
            number = (record["number"] if record else 0) + 1
            crl, record = self._sign_crl(issuer, db, wanted, number, now, validity=validity)
            pems.append(crl.public_bytes(serialization.Encoding.PEM))
            records[issuer.fp] = record
        if check:
            return changed
        text = b"".join(pems)
        if text != current_text:
            changed = True
        if records != db["crl"]:
            changed = True
        if not changed:
            return False
        db["crl"] = records
        # crl.pem first: a registry must never say a serial is in the CRL when the file lacks it
        if text != current_text:
            self._write("ca/crl.pem", text, 0o644)
        self._save_db(db, now)
        return True

    def _sign_crl(
        self, issuer: _Issuer, db: Dict[str, Any], serials: List[str], number: int, now: int, *, validity: int
    ):
        key = self._key(issuer.key_rel, issuer.cert)
        this_update = now - CRL_BACKDATE
        next_update = this_update + validity
        entries = {e["serial"]: e for e in db["revoked"] if e["issuer"] == issuer.fp}
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(issuer.cert.subject)
            .last_update(_utc(this_update))
            .next_update(_utc(next_update))
            .add_extension(x509.CRLNumber(number), critical=False)
            .add_extension(_aki(issuer.cert), critical=False)
        )
        for serial in serials:
            entry = entries[serial]
            revoked = (
                x509.RevokedCertificateBuilder()
                .serial_number(int(serial, 16))
                .revocation_date(_utc(entry.get("revoked_at", now)))
                .add_extension(x509.CRLReason(_reason_flag(entry.get("reason", "unspecified"))), critical=False)
                .build()
            )
            builder = builder.add_revoked_certificate(revoked)
        crl = builder.sign(key, hashes.SHA256())
        record = {"number": number, "this_update": this_update, "next_update": next_update, "serials": serials}
        return crl, record

    # -- the API ----------------------------------------------------------------------------

    def refresh_crl(self, force: bool = False, *, check: bool = False) -> bool:
        """Regenerate the CRLs that are due (see the design); True when crl.pem or db.json was
        written (check: would be). Creates db.json and crl.pem when they are missing."""
        now = int(self.now())
        if check:
            return self._refresh(self._load_db(), now, force=force, check=True)
        with self._locked():
            return self._refresh(self._load_db(), now, force=force)

    def crl_due(self) -> bool:
        """Whether refresh_crl() would write something now (reads only)."""
        return self.refresh_crl(check=True)

    def material(self, host: Optional[str] = None, *, write: bool = True, strict: bool = True) -> Dict[str, Any]:
        """What a host needs: domain, root CA, CRL, trust root (refreshing the CRL first when due).

        strict=False: domain is None when domain.json is missing (pdp_init writes it last).
        """
        due = self.crl_due()
        refreshed = self.refresh_crl() if due and write else False
        domain = self.domain() if strict or os.path.exists(self._path("domain.json")) else None
        root = self._cert("ca/root.crt")
        crl = self._read("ca/crl.pem", missing_ok=True)
        trust_root = self._read("keys/root.json", missing_ok=True)
        removed = self._load_db()["removed"].get(host) if host else None
        return {
            "domain": domain,
            "ca": certificate_pem(root).decode("ascii"),
            "ca_fingerprint": fingerprint(root),
            "crl": crl.decode("ascii") if crl is not None else None,
            "trust_root": trust_root.decode("utf-8") if trust_root is not None else None,
            # the exact bytes: ansible-core < 2.19 turns a string holding a JSON object into a
            # mapping when it is templated into the next task
            "trust_root_b64": base64.b64encode(trust_root).decode("ascii") if trust_root is not None else None,
            "now": float(self.now()),
            "removed": removed,
            "crl_due": due,
            "crl_refreshed": refreshed,
        }

    def _check_removed(self, db: Dict[str, Any], host: str) -> None:
        entry = db["removed"].get(host)
        if entry is None:
            return
        serials = entry.get("serials") or []
        if not serials:
            what = "no certificate was on record"
        elif len(serials) == 1:
            what = f"serial {serials[0]} revoked"
        else:
            what = f"serials {', '.join(serials)} revoked"
        raise HostRemoved(
            f"host {host} left the domain on {format_time(entry.get('removed_at', 0))} ({what}); it cannot "
            f"renew or re-join until the admin readmits it: run join.yml with -e domain_join_readmit=true -l {host}"
        )

    def check_host(self, host: str) -> None:
        """HostRemoved when `host` left the domain (and was not readmitted)."""
        self._check_removed(self._load_db(), host)

    def issue(
        self,
        host: str,
        csr_pem: Union[str, bytes],
        identity: Identity,
        lifetime: int,
        *,
        check: bool = False,
    ) -> Dict[str, Any]:
        """Sign the CSR of `host` for `identity`; see the design. check: validate everything, sign
        nothing (certificate None)."""
        lifetime = check_lifetime(int(lifetime))
        # A removed host is told so first, whatever its request says (checked again under the lock).
        self.check_host(host)
        csr = load_csr(csr_pem)
        kind = key_type(csr.public_key())
        if kind not in KEY_TYPES:
            raise BadRequest(f"the CSR from {host} has a {kind} key; use one of {', '.join(KEY_TYPES)}")
        got = identity_of(csr)
        if got != identity:
            raise IdentityMismatch(
                f"the CSR from {host} names {got.describe()} but the inventory says {identity.describe()}; refused"
            )
        context = contextlib.nullcontext() if check else self._locked()
        with context:
            db = self._load_db()
            self._check_removed(db, host)
            now = int(self.now())
            self._check_unique(db, host, identity, now)
            domain = self.domain()
            root = self._cert("ca/root.crt")
            key_rel, crt_rel = self._issuing_pair()
            issuing = self._cert(crt_rel)
            if not issued_by(issuing, root):
                raise CAUnavailable(self._where("ca/issuing.crt is not signed by ca/root.crt; run pdp_init.yml"))
            key = self._key(key_rel, issuing)
            ca_end = int(not_after(issuing))
            if ca_end <= now + 60:
                raise CAUnavailable(
                    self._where(
                        f"the issuing CA expired on {format_time(ca_end)}: rotate it "
                        "(pdp_init.yml -e pdp_init_rotate_issuing_ca=true)"
                    )
                )
            start = now - backdate_for(lifetime)
            end = start + lifetime
            warnings = []
            if end > ca_end:
                end = ca_end
                warnings.append(
                    f"the issuing CA expires on {format_time(ca_end)}: the certificate of {host} is valid for "
                    f"{format_duration(end - start)} instead of {format_duration(lifetime)}; rotate the issuing CA"
                )
            chain = certificate_pem(issuing).decode("ascii")
            if check:
                return {
                    "certificate": None,
                    "chain": chain,
                    "serial": None,
                    "not_before": start,
                    "not_after": end,
                    "fingerprint": None,
                    "warnings": warnings,
                }
            cert = self._sign_leaf(csr, identity, domain, issuing, key, start=start, end=end)
            serial = serial_hex(cert)
            db["issued"].append(
                {
                    "serial": serial,
                    "host": host,
                    "issuer": fingerprint(issuing),
                    "not_before": start,
                    "not_after": end,
                    "fingerprint": fingerprint(cert),
                    "identity": identity.as_dict(),
                }
            )
            self._save_db(db, now)
        return {
            "certificate": certificate_pem(cert).decode("ascii"),
            "chain": chain,
            "serial": serial,
            "not_before": start,
            "not_after": end,
            "fingerprint": fingerprint(cert),
            "warnings": warnings,
        }

    @staticmethod
    def _check_unique(db: Dict[str, Any], host: str, identity: Identity, now: int) -> None:
        """IdentityMismatch when a name or an address of `identity` is in an unexpired certificate
        of another host (two hosts must never authenticate as one)."""
        names = {identity.name.lower(): f"CN={identity.name}"}
        for dns in identity.dns:
            names.setdefault(dns.lower(), f"DNS:{dns}")
        addresses = {a: f"IP:{a}" for a in identity.ip}
        for entry in db["issued"]:
            if entry["host"] == host or entry["not_after"] <= now:
                continue
            held = entry.get("identity") if isinstance(entry.get("identity"), dict) else {}
            theirs = {str(n).lower() for n in [held.get("name") or "", *(held.get("dns") or [])] if n}
            clash = [label for name, label in names.items() if name in theirs]
            clash += [label for address, label in addresses.items() if address in (held.get("ip") or [])]
            if clash:
                other = entry["host"]
                raise IdentityMismatch(
                    f"the CSR from {host} names {clash[0]}, which {other} holds (serial {entry['serial']}, until "
                    f"{format_time(entry['not_after'])}); if {other} is gone, run leave.yml for it first"
                )

    @staticmethod
    def _sign_leaf(csr: Any, identity: Identity, domain: str, issuing: Any, key: Any, *, start: int, end: int) -> Any:
        public = csr.public_key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(
                x509.Name(
                    [
                        x509.NameAttribute(NameOID.COMMON_NAME, identity.name),
                        x509.NameAttribute(NameOID.ORGANIZATION_NAME, domain),
                    ]
                )
            )
            .issuer_name(issuing.subject)
            .public_key(public)
            .serial_number(_serial())
            .not_valid_before(_utc(start))
            .not_valid_after(_utc(end))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH, ObjectIdentifier(IPSEC_IKE)]
                ),
                critical=False,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(_aki(issuing), critical=False)
        )
        names = [x509.DNSName(d) for d in identity.dns] + [x509.IPAddress(ipaddress.ip_address(a)) for a in identity.ip]
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return builder.sign(key, hashes.SHA256())

    def revoke_hosts(
        self, hosts: Iterable[str], reason: str = "cessationOfOperation", *, check: bool = False
    ) -> Dict[str, Any]:
        """Revoke every certificate of `hosts` and bar the names; regenerate the CRLs."""
        _reason_flag(reason)
        hosts = list(dict.fromkeys(hosts))
        context = contextlib.nullcontext() if check else self._locked()
        with context:
            now = int(self.now())
            db = self._load_db()
            _prune(db, now)
            revoked, unknown = [], []
            for host in hosts:
                if host in db["removed"]:
                    continue
                mine = [e for e in db["issued"] if e["host"] == host]
                db["issued"] = [e for e in db["issued"] if e["host"] != host]
                for entry in mine:
                    db["revoked"].append(
                        {
                            "serial": entry["serial"],
                            "host": host,
                            "issuer": entry["issuer"],
                            "revoked_at": now,
                            "not_after": entry["not_after"],
                            "reason": reason,
                        }
                    )
                    revoked.append({"host": host, "serial": entry["serial"]})
                if not mine:
                    unknown.append(host)
                db["removed"][host] = {"removed_at": now, "serials": [e["serial"] for e in mine]}
            changed = len(revoked) + len(unknown) > 0
            if changed and not check:
                self._refresh(db, now, dirty=True)
        return {"revoked": revoked, "unknown": unknown, "changed": changed}

    def readmit(self, host: str, *, check: bool = False) -> bool:
        """Let a removed host join again (its revoked serials stay in the CRL). True if it was removed."""
        if check:
            return host in self._load_db()["removed"]
        with self._locked():
            db = self._load_db()
            if host not in db["removed"]:
                return False
            del db["removed"][host]
            self._save_db(db, int(self.now()))
            return True

    def rotate_issuing(self, *, lifetime: int = DEFAULT_ISSUING_LIFETIME, check: bool = False) -> Dict[str, Any]:
        """Retire the issuing CA to ca/retired/N/ and make a new one signed by the root (needs root.key).

        Crash-safe: the new pair is written to ca/issuing.next/ first, the current pair is copied
        to ca/retired/N/, then the key and the certificate are moved into ca/ (one rename each)
        and ca/issuing.next/ is removed. An interruption leaves the old pair in use or a switch
        that the next use finishes (_issuing_pair); a pair retired without being replaced is
        retired again under the same N.
        """
        context = contextlib.nullcontext() if check else self._locked()
        with context:
            now = int(self.now())
            root = self._cert("ca/root.crt")
            root_key = self._key(
                "ca/root.key", root, hint="put the root CA key back (it may have been moved offline) to rotate"
            )
            key_rel, crt_rel = self._issuing_pair()  # finishes or clears an interrupted rotation (lock held)
            old = self._cert(crt_rel)
            try:
                self._key(key_rel, old)  # never retire a pair that does not match
            except CAUnavailable as exc:
                raise CAUnavailable(f"{exc}; nothing was rotated") from None
            old_fp = fingerprint(old)
            retired = self._retired()
            if retired and fingerprint(self._cert(f"ca/retired/{retired[-1]}/issuing.crt")) == old_fp:
                number = retired[-1]  # an interrupted rotation retired it already
            else:
                number = (retired or [0])[-1] + 1
            cns = old.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
            match = _ISSUING_CN_RE.search(str(cns[0].value)) if cns else None
            next_cn = max(number, int(match.group(1)) if match else 0) + 1
            orgs = root.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
            domain = self.domain() if os.path.exists(self._path("domain.json")) or not orgs else str(orgs[0].value)
            key = new_ca_key("P-256")
            cert = new_issuing_ca(key, root_key, root, domain, lifetime, number=next_cn, now=now)
            result = {
                "changed": True,
                "retired": number,
                "retired_fingerprint": old_fp,
                "fingerprint": fingerprint(cert),
                "not_after": int(not_after(cert)),
            }
            if check:
                result["fingerprint"] = None
                return result
            self._switch(number, self._read(key_rel), certificate_pem(old), private_key_pem(key, self.passphrase), cert)
            self._refresh(self._load_db(), now, dirty=True)
        return result

    def _switch(self, number: int, old_key_pem: bytes, old_cert_pem: bytes, key_pem: bytes, cert: Any) -> None:
        """Replace the current pair by (key_pem, cert), retiring the old one to ca/retired/<number>."""
        nxt = self._path(ISSUING_NEXT)
        try:
            os.mkdir(nxt, 0o700)
            fsync_dir(self.ca_dir)
            atomic_write_bytes(os.path.join(nxt, "issuing.key"), key_pem, 0o600)
            atomic_write_bytes(os.path.join(nxt, "issuing.crt"), certificate_pem(cert), 0o644)
        except OSError as exc:
            raise CAUnavailable(self._where(f"cannot write {ISSUING_NEXT}: {exc.strerror or exc}")) from None
        _fault("next-written")
        retired = self._retired()
        if not retired or retired[-1] != number:
            self._retire(number, old_key_pem, old_cert_pem)
        _fault("retired")
        try:
            os.replace(os.path.join(nxt, "issuing.key"), self._path(ISSUING_KEY))
            fsync_dir(self.ca_dir)
            _fault("key-replaced")
            os.replace(os.path.join(nxt, "issuing.crt"), self._path(ISSUING_CRT))
            fsync_dir(self.ca_dir)
        except OSError as exc:
            raise CAUnavailable(
                self._where(f"cannot move the new issuing CA from {ISSUING_NEXT}: {exc.strerror or exc}")
            ) from None
        _fault("crt-replaced")
        self._remove_next()
        _fault("next-removed")

    def _retire(self, number: int, key_pem: bytes, cert_pem: bytes) -> None:
        retired = self._path("ca/retired")
        final = os.path.join(retired, str(number))
        tmp = os.path.join(retired, f".tmp-{number}")
        try:
            os.makedirs(retired, mode=0o700, exist_ok=True)
            if os.path.isdir(tmp):
                for name in os.listdir(tmp):
                    os.unlink(os.path.join(tmp, name))
            else:
                os.mkdir(tmp, 0o700)
            atomic_write_bytes(os.path.join(tmp, "issuing.key"), key_pem, 0o600)
            atomic_write_bytes(os.path.join(tmp, "issuing.crt"), cert_pem, 0o644)
            os.rename(tmp, final)
            fsync_dir(retired)
        except OSError as exc:
            raise CAUnavailable(self._where(f"cannot write ca/retired/{number}: {exc.strerror or exc}")) from None

    # -- diagnostics ------------------------------------------------------------------------

    def registry(self) -> Dict[str, Any]:
        """The registry as stored (for tests and status)."""
        return self._load_db()
