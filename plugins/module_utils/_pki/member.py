# PRIVATE: the host side of the domain PKI (docs/dev/domain-design.md, "On a host"): what the host
# holds, whether it needs a (new) certificate, the staged key and its CSR, the crash-safe install
# of a whole set (key, certificate, chain, root CA) and leaving the domain.
#
# Runs on hosts: stdlib + cryptography >= 38 (Debian 12), Python 3.9. The private key is only ever
# written to files (PKCS#8 PEM, 0600, in 0700 directories); it never appears in a return value, an
# exception message or a log line.
#
# Crash safety: a set lives in ROOT/pki/SERIAL/ and is complete and fsynced before the symlink
# ROOT/pki/current is switched to it with rename(2); the top-level paths ROOT/{host.key,host.crt,
# chain.crt,ca.crt} are symlinks through pki/current, so readers see the old set or the new one.
# Single files (domain.json, crl.pem, root.json, ca.crt inside the current set) are replaced by
# temp + fsync + rename + directory fsync.
from __future__ import annotations

import calendar
import contextlib
import errno
import fcntl
import ipaddress
import json
import os
import re
import secrets
import shutil
import subprocess
import time
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

from ansible_collections.distsec.framework.plugins.module_utils._pki.errors import (
    BadRequest,
    IdentityMismatch,
    InstallFailed,
    PkiError,
)
from ansible_collections.distsec.framework.plugins.module_utils._pki.identity import Identity, identity_of
from ansible_collections.distsec.framework.plugins.module_utils._pki.lifetime import renewal_reason
from ansible_collections.distsec.framework.plugins.module_utils._pki.x509 import (
    KEY_TYPES,
    fingerprint,
    generate_key,
    issued_by,
    key_type,
    load_certificate,
    not_after,
    not_before,
    require_cryptography,
    same_public_key,
    serial_hex,
)
from ansible_collections.distsec.framework.plugins.module_utils._trust.state import (
    TMP_PREFIX,
    atomic_write_bytes,
    fsync_dir,
)

try:
    from cryptography import x509 as cx509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519
    from cryptography.x509.oid import NameOID
except ImportError:  # pragma: no cover - require_cryptography() reports it
    pass

__all__ = [
    "DEFAULT_ROOT",
    "LINKS",
    "MemberStore",
    "check_crl",
    "crl_serial_count",
    "format_time",
    "load_crls",
]

DEFAULT_ROOT = "/etc/distsec"
LINKS = ("host.key", "host.crt", "chain.crt", "ca.crt")  # the files of a set, linked at the top level
RECORD = "domain.json"
CRL = "crl.pem"
TRUST_ROOT = "root.json"
MAX_FILE = 4 * 1024 * 1024
_TOKEN_RE = re.compile(r"^[0-9a-f]{16}$")
_SERIAL_RE = re.compile(r"^[0-9A-F]{2,64}$")
_CRL_MARKER = b"-----BEGIN X509 CRL-----"

# Tests only: called as FAULT_HOOK(step, path) at each step of an install and of every atomic file
# write, e.g. to SIGKILL the process there. None in production. The steps of install(), in order:
# "set-dir", "set-files", "set-key", "set-fsync", "set-rename", "current-symlink", "current-swap",
# "pki-fsync", "links", "record" (after domain.json), "cleanup"; of an atomic write: "write",
# "fsync", "rename", "dirsync".
FAULT_HOOK: Optional[Callable[[str, str], None]] = None


def _fault(step: str, path: str) -> None:
    if FAULT_HOOK is not None:
        FAULT_HOOK(step, path)


def format_time(epoch: Optional[float]) -> Optional[str]:
    """YYYY-MM-DDTHH:MM:SSZ (UTC, whole seconds); None stays None."""
    if epoch is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(epoch)))


def _parse_time(text: Any) -> Optional[float]:
    if not isinstance(text, str):
        return None
    try:
        return float(calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")))
    except ValueError:
        return None


# ------------------------------------------------------------------ files


def _write_new(path: str, data: bytes, mode: int) -> None:
    """Create `path` (it must not exist) with `mode`, write `data`, fsync."""
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, mode)
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_write(path: str, data: bytes, mode: int = 0o644) -> None:
    """Replace `path` by `data` (old or new after a crash), with this module's fault hook."""
    atomic_write_bytes(path, data, mode, fault=_fault)


def _read(path: str, cap: int = MAX_FILE) -> Optional[bytes]:
    """The file's bytes (following symlinks), None when it does not exist."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(cap + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ENOTDIR:
            return None
        raise
    if len(data) > cap:
        raise PkiError(f"{path} is larger than {cap} bytes")
    return data


def _remove(path: str) -> bool:
    """Remove a file, symlink or directory tree; True when something was there."""
    if os.path.islink(path) or os.path.isfile(path):
        os.unlink(path)
        return True
    if os.path.isdir(path):
        shutil.rmtree(path)
        return True
    return False


def _mkdir(path: str, mode: int) -> None:
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        if not os.path.isdir(path) or os.path.islink(path):
            raise InstallFailed(f"{path} exists and is not a directory: move it away") from None
    os.chmod(path, mode)


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value or "").encode("utf-8")


def _pem(value: Any) -> bytes:
    """PEM text normalised to end with exactly one newline (what is written and compared)."""
    return _as_bytes(value).strip() + b"\n"


# ------------------------------------------------------------------ CRLs


def load_crls(text: Any) -> List[Any]:
    """Every CRL of a PEM text (one block per issuing CA). InstallFailed when one does not parse."""
    data = _as_bytes(text)
    blocks = [_CRL_MARKER + part for part in data.split(_CRL_MARKER)[1:]]
    if not blocks:
        raise InstallFailed("the CRL is not a PEM CRL (no '-----BEGIN X509 CRL-----' block); refused")
    out = []
    for number, block in enumerate(blocks, 1):
        try:
            out.append(cx509.load_pem_x509_crl(block))
        except ValueError as exc:
            raise InstallFailed(f"CRL number {number} in the CRL file cannot be read ({exc}); refused") from None
    return out


def check_crl(text: Any, issuer: Any) -> List[Any]:
    """The CRLs of `text`; InstallFailed unless one of them is signed by `issuer` (a certificate)."""
    crls = load_crls(text)
    key = issuer.public_key()
    for crl in crls:
        if crl.issuer == issuer.subject and crl.is_signature_valid(key):
            return crls
    raise InstallFailed(
        f"no CRL in the CRL file is signed by this host's issuing CA ({issuer.subject.rfc4514_string()}); "
        "refused (the CRL comes from another domain or was altered): refresh it on the PDP (domain_ca state=crl)"
    )


def crl_serial_count(text: Any) -> Optional[int]:
    """How many revoked serials the CRLs of `text` list; None without a readable CRL."""
    if not text:
        return None
    try:
        return sum(len(list(crl)) for crl in load_crls(text))
    except InstallFailed:
        return None


def _load_key(data: bytes, path: str) -> Any:
    try:
        return serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        # never the library's message: it could quote the file
        raise PkiError(f"{path} is not an unencrypted PEM private key") from None


# ------------------------------------------------------------------ addresses


def _host_addresses() -> List[str]:
    """Every address configured on the host's interfaces (`ip -j addr show`)."""
    try:
        proc = subprocess.run(["ip", "-j", "addr", "show"], capture_output=True, text=True, check=False, timeout=30)
    except OSError as exc:
        raise PkiError(f"cannot list the host's addresses with `ip -j addr show`: {exc}; install iproute2") from None
    if proc.returncode != 0:
        message = (proc.stderr or proc.stdout).strip().splitlines()
        raise PkiError(f"`ip -j addr show` failed: {message[0] if message else proc.returncode}")
    try:
        links = json.loads(proc.stdout or "[]")
    except ValueError as exc:
        raise PkiError(f"`ip -j addr show` printed something that is not JSON: {exc}") from None
    out = []
    for link in links if isinstance(links, list) else []:
        for info in link.get("addr_info") or [] if isinstance(link, dict) else []:
            if isinstance(info, dict) and info.get("local"):
                out.append(str(info["local"]))
    return out


def _normalise(addresses: Iterable[str]) -> List[Any]:
    out = set()
    for text in addresses:
        with contextlib.suppress(ValueError):
            out.add(ipaddress.ip_address(str(text).split("%", 1)[0].split("/", 1)[0]))
    return sorted(out, key=lambda a: (a.version, a.packed))


# ------------------------------------------------------------------ the store


class MemberStore:
    """ROOT (/etc/distsec): this host's membership of the Security Domain."""

    def __init__(
        self,
        root: str = DEFAULT_ROOT,
        now: Callable[[], float] = time.time,
        addresses: Optional[Callable[[], Iterable[str]]] = None,
    ) -> None:
        self.root = root
        self.now = now
        self.addresses = addresses or _host_addresses
        self.pki = os.path.join(root, "pki")
        self.staging = os.path.join(self.pki, "staging")
        self.current_link = os.path.join(self.pki, "current")
        self.record_path = os.path.join(root, RECORD)
        self.crl_path = os.path.join(root, CRL)
        self.trust_root_path = os.path.join(root, TRUST_ROOT)

    # ---------------------------------------------------------- reading

    def _path(self, name: str) -> str:
        return os.path.join(self.root, name)

    def record(self) -> Optional[Dict[str, Any]]:
        """domain.json, None when missing; PkiError when it is not a JSON object."""
        data = _read(self.record_path)
        if data is None:
            return None
        try:
            record = json.loads(data.decode("utf-8"))
        except ValueError as exc:
            raise PkiError(f"{self.record_path} is not valid JSON ({exc}): remove it and join again") from None
        if not isinstance(record, dict):
            raise PkiError(f"{self.record_path} must hold a JSON object: remove it and join again")
        return record

    def _current_target(self) -> Optional[str]:
        try:
            target = os.readlink(self.current_link)
        except OSError:
            return None
        return target if _SERIAL_RE.match(target) else None

    def _load_set(self) -> Tuple[Any, Any, Any]:
        """(certificate, chain, ca) of the installed set, checked against its key; PkiError why not."""
        blobs = {}
        for name in LINKS:
            path = self._path(name)
            data = _read(path)
            if data is None:
                raise PkiError(f"{name} is missing")
            blobs[name] = data
        try:
            cert = load_certificate(blobs["host.crt"], "host certificate")
            chain = load_certificate(blobs["chain.crt"], "chain (issuing CA certificate)")
            ca = load_certificate(blobs["ca.crt"], "root CA certificate")
        except BadRequest as exc:
            raise PkiError(str(exc)) from None
        key = _load_key(blobs["host.key"], "host.key")
        if not same_public_key(key.public_key(), cert.public_key()):
            raise PkiError("host.key does not match host.crt")
        if not issued_by(cert, chain):
            raise PkiError("host.crt is not signed by the CA in chain.crt")
        if not issued_by(chain, ca):
            raise PkiError("chain.crt is not signed by the CA in ca.crt")
        return cert, chain, ca

    def current(self) -> Optional[Dict[str, Any]]:
        """The installed membership (record + certificate facts), None when host.crt is missing,
        {"broken": why} when the set does not load."""
        if not os.path.exists(self._path("host.crt")):
            return None
        try:
            record = self.record()
            cert, chain, ca = self._load_set()
        except (PkiError, OSError) as exc:
            return {"broken": str(exc)}
        if record is None:
            return {"broken": f"{RECORD} is missing (an install was interrupted)"}
        if record.get("state") != "member":
            return {"broken": f"{RECORD} says the state is {record.get('state')!r}, but a certificate is installed"}
        out = dict(record)
        out.update(
            serial=serial_hex(cert),
            not_before=not_before(cert),
            not_after=not_after(cert),
            identity=identity_of(cert).as_dict(),
            key_type=key_type(cert.public_key()),
            issuer_fingerprint=fingerprint(chain),
            ca_fingerprint=fingerprint(ca),
        )
        return out

    # ---------------------------------------------------------- planning

    def plan(
        self,
        identity: Identity,
        *,
        domain: str,
        key_type: str,  # pylint: disable=redefined-outer-name
        max_lifetime: int,
        fraction: float,
        ca_fingerprint: Optional[str],
        reissue: bool = False,
        crl: Any = None,
    ) -> Optional[str]:
        """The reason to (re)issue the host's certificate now, or None.

        crl: the domain's current CRL text (from the PDP); a certificate it revokes is replaced
        (a host readmitted after a leave it did not see still holds its revoked set).
        """
        current = self.current()
        if current is None:
            return "not a member"
        if "broken" in current:
            return f"the membership is broken: {current['broken']}"
        if current.get("domain") != domain:
            return f"the host is a member of domain {current.get('domain')}"
        if ca_fingerprint and _fp(ca_fingerprint) != _fp(current["ca_fingerprint"]):
            return "the domain CA changed"
        was = Identity(
            name=current["identity"]["name"],
            dns=tuple(current["identity"]["dns"]),
            ip=tuple(current["identity"]["ip"]),
        )
        if was != identity:
            return f"the identity changed (was {was.describe()}, now {identity.describe()})"
        if current["key_type"] != key_type:
            return f"the key type changed (was {current['key_type']}, now {key_type})"
        if crl and self._revoked_in(crl):
            return f"the certificate (serial {current['serial']}) is revoked in the domain's CRL"
        reason = renewal_reason(self.now(), current["not_before"], current["not_after"], max_lifetime, fraction)
        if reason:
            return reason
        if reissue:
            return "reissue was asked for"
        return None

    def _revoked_in(self, crl_text: Any) -> bool:
        """True when a CRL of `crl_text` issued by the installed chain's CA lists host.crt."""
        try:
            cert, chain = self._load_set()[:2]
            crls = load_crls(crl_text)
        except (PkiError, OSError):
            return False
        key = chain.public_key()
        for crl in crls:
            if crl.issuer != chain.subject or not crl.is_signature_valid(key):
                continue
            if crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None:
                return True
        return False

    def check_addresses(self, identity: Identity) -> None:
        """IdentityMismatch unless every address of `identity` is configured on this host."""
        if not identity.ip:
            return
        have = _normalise(self.addresses())
        for text in identity.ip:
            if ipaddress.ip_address(text) not in have:
                shown = ", ".join(str(a) for a in have if not a.is_loopback) or "no address but loopback"
                raise IdentityMismatch(
                    f"address {text} from the inventory is not configured on this host (it has {shown}); "
                    "the inventory points at another machine or domain_join_addresses is wrong"
                )

    # ---------------------------------------------------------- staging

    def _ensure_dirs(self) -> None:
        if not os.path.isdir(self.root):
            os.makedirs(self.root, mode=0o755, exist_ok=True)
        _mkdir(self.pki, 0o700)

    def stage(self, identity: Identity, key_type: str, *, check: bool = False) -> Tuple[Optional[str], Optional[str]]:  # pylint: disable=redefined-outer-name
        """(token, CSR PEM) of a new key staged in pki/staging/TOKEN/; (None, None) in check mode."""
        require_cryptography()
        if key_type not in KEY_TYPES:
            raise BadRequest(f"key type {key_type!r} is not supported: use one of {', '.join(KEY_TYPES)}")
        if check:
            return None, None
        self._ensure_dirs()
        _remove(self.staging)
        _mkdir(self.staging, 0o700)
        token = secrets.token_hex(8)
        directory = os.path.join(self.staging, token)
        _mkdir(directory, 0o700)
        key = generate_key(key_type)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        _write_new(os.path.join(directory, "host.key"), pem, 0o600)
        request = {"identity": identity.as_dict(), "key_type": key_type, "created": format_time(self.now())}
        _write_new(os.path.join(directory, "request.json"), json.dumps(request, sort_keys=True).encode() + b"\n", 0o600)
        fsync_dir(directory)
        fsync_dir(self.staging)
        return token, _csr(key, identity)

    def _staged_key(self, token: str) -> Any:
        if not isinstance(token, str) or not _TOKEN_RE.match(token):
            raise InstallFailed(f"{token!r} is not a request token (16 hex digits from state=planned)")
        path = os.path.join(self.staging, token, "host.key")
        data = _read(path)
        if data is None:
            raise InstallFailed(
                f"no staged request {token} on this host (it was aborted, installed or replaced by a newer one): "
                "run the join again"
            )
        try:
            return _load_key(data, f"the staged key of request {token}")
        except PkiError as exc:
            raise InstallFailed(str(exc)) from None

    def abort(self, token: Optional[str] = None, *, check: bool = False) -> bool:
        """Remove the staged request `token` (every staged request without one); True when there was one."""
        if not os.path.isdir(self.staging):
            return False
        if token is not None:
            if not isinstance(token, str) or not _TOKEN_RE.match(token):
                return False
            target = os.path.join(self.staging, token)
            if not os.path.isdir(target):
                return False
            if not check:
                _remove(target)
            return True
        if not check:
            _remove(self.staging)
        return True

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold an flock on ROOT (on its parent before the first join) so that two runs on one host
        never interleave their steps. Nothing is created: a refused run leaves no trace."""
        target = self.root if os.path.isdir(self.root) else (os.path.dirname(os.path.abspath(self.root)) or "/")
        fd = os.open(target, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # ---------------------------------------------------------- install

    def _check_material(
        self, token: str, certificate: Any, chain: Any, ca: Any, identity: Identity
    ) -> Tuple[Any, Any, Any]:
        require_cryptography()
        key = self._staged_key(token)
        try:
            cert = load_certificate(certificate, "certificate")
            chain_cert = load_certificate(chain, "chain (issuing CA certificate)")
            ca_cert = load_certificate(ca, "root CA certificate")
        except BadRequest as exc:
            raise InstallFailed(f"{exc}; nothing was installed") from None
        if not same_public_key(cert.public_key(), key.public_key()):
            raise InstallFailed(
                f"the certificate (serial {serial_hex(cert)}) is not for the key staged by request {token}; "
                "nothing was installed: run the join again"
            )
        got = identity_of(cert)
        if got != identity:
            raise InstallFailed(
                f"the certificate names {got.describe()} but the inventory says {identity.describe()}; "
                "nothing was installed"
            )
        if not issued_by(cert, chain_cert):
            raise InstallFailed("the certificate is not signed by the issuing CA given as chain; nothing was installed")
        if not issued_by(chain_cert, ca_cert):
            raise InstallFailed(
                "the issuing CA (chain) is not signed by the root CA given as ca; nothing was installed"
            )
        if not issued_by(ca_cert, ca_cert):
            raise InstallFailed("the root CA certificate (ca) is not self-signed; nothing was installed")
        now = self.now()
        for what, obj in (
            ("certificate", cert),
            ("issuing CA certificate", chain_cert),
            ("root CA certificate", ca_cert),
        ):
            if now < not_before(obj):
                raise InstallFailed(
                    f"the {what} is not valid before {format_time(not_before(obj))} (now {format_time(now)}): "
                    "check the host's clock; nothing was installed"
                )
            if now >= not_after(obj):
                raise InstallFailed(f"the {what} expired at {format_time(not_after(obj))}; nothing was installed")
        return key, cert, chain_cert

    def install(
        self,
        token: str,
        *,
        certificate: Any,
        chain: Any,
        ca: Any,
        domain: str,
        identity: Identity,
        host: str,
        check: bool = False,
    ) -> List[str]:
        """Install the certificate issued for the staged request `token` as a whole new set.

        Every check runs before anything is touched; a failing one raises InstallFailed and removes
        the staging directory (the host keeps its previous set). Returns the names that changed.
        """
        try:
            cert = self._check_material(token, certificate, chain, ca, identity)[1]
        except InstallFailed:
            if not check:
                with contextlib.suppress(OSError):
                    _remove(self.staging)
            raise
        serial = serial_hex(cert)
        files = {"host.crt": _pem(certificate), "chain.crt": _pem(chain), "ca.crt": _pem(ca)}
        previous = self.record() or {}
        now = self.now()
        renewal = previous.get("state") == "member" and previous.get("domain") == domain and self.current_serial()
        record = {
            "format": 1,
            "domain": domain,
            "host": host,
            "state": "member",
            "serial": serial,
            "joined_at": previous.get("joined_at") if renewal and previous.get("joined_at") else format_time(now),
            "renewed_at": format_time(now) if renewal else None,
            "left_at": None,
        }
        changed = ["host.key"]
        for name, data in files.items():
            with contextlib.suppress(OSError, PkiError):
                if _read(self._path(name)) == data:
                    continue
            changed.append(name)
        changed.append(RECORD)
        if check:
            return changed

        old = self._current_target()
        if old == serial:
            raise InstallFailed(f"the certificate with serial {serial} is installed already; nothing was installed")
        self._ensure_dirs()
        self._remove_leftovers(keep=old)
        final = os.path.join(self.pki, serial)
        tmp = os.path.join(self.pki, f"{serial}.tmp-{token}")
        os.mkdir(tmp, 0o700)
        _fault("set-dir", tmp)
        for name, data in files.items():
            _write_new(os.path.join(tmp, name), data, 0o644)
        _fault("set-files", tmp)
        os.rename(os.path.join(self.staging, token, "host.key"), os.path.join(tmp, "host.key"))
        _fault("set-key", tmp)
        fsync_dir(tmp)
        fsync_dir(os.path.join(self.staging, token))
        _fault("set-fsync", tmp)
        os.rename(tmp, final)
        _fault("set-rename", final)
        fsync_dir(self.pki)
        link_tmp = os.path.join(self.pki, "current.tmp")
        _remove(link_tmp)
        os.symlink(serial, link_tmp)
        _fault("current-symlink", link_tmp)
        os.replace(link_tmp, self.current_link)
        _fault("current-swap", self.current_link)
        fsync_dir(self.pki)
        _fault("pki-fsync", self.pki)
        self._make_links()
        _fault("links", self.root)
        _atomic_write(self.record_path, json.dumps(record, sort_keys=True, indent=1).encode() + b"\n", 0o644)
        _fault("record", self.record_path)
        self._remove_leftovers(keep=serial)
        _remove(self.staging)
        fsync_dir(self.pki)
        _fault("cleanup", self.pki)
        return changed

    def current_serial(self) -> Optional[str]:
        """The serial (directory name) pki/current points at, None without one."""
        return self._current_target()

    def _remove_leftovers(self, keep: Optional[str]) -> None:
        """Remove every set directory but `keep`, half-built sets and a stale current.tmp."""
        try:
            names = os.listdir(self.pki)
        except FileNotFoundError:
            return
        for name in names:
            if name in ("staging", "current") or name == keep:
                continue
            if _SERIAL_RE.match(name) or ".tmp-" in name or name == "current.tmp":
                _remove(os.path.join(self.pki, name))

    def _make_links(self) -> None:
        for name in LINKS:
            path = self._path(name)
            target = os.path.join("pki", "current", name)
            with contextlib.suppress(OSError):
                if os.readlink(path) == target:
                    continue
            tmp = os.path.join(self.root, f"{TMP_PREFIX}{name}")
            _remove(tmp)
            os.symlink(target, tmp)
            os.replace(tmp, path)
        fsync_dir(self.root)

    # ---------------------------------------------------------- refresh

    def refresh(self, *, ca: Any = None, crl: Any = None, trust_root: Any = None, check: bool = False) -> List[str]:
        """Replace crl.pem, root.json and ca.crt (when the root CA was re-issued with the same key)
        when their content differs. Every input is checked before anything is written."""
        require_cryptography()
        current = self.current()
        if current is None:
            raise InstallFailed("this host is not a member of the domain: nothing to refresh; run the join")
        if "broken" in current:
            raise InstallFailed(f"the membership is broken: {current['broken']}; run the join again")
        chain_cert = self._load_set()[1]
        writes: List[Tuple[str, str, bytes]] = []  # (name, path, data)
        if ca:
            data = _pem(ca)
            path = os.path.join(self.pki, "current", "ca.crt")
            if _read(path) != data:
                try:
                    new_ca = load_certificate(data, "root CA certificate")
                except BadRequest as exc:
                    raise InstallFailed(f"{exc}; nothing was changed") from None
                # a root that does not sign the chain is left alone: plan() asks for a reissue
                if issued_by(new_ca, new_ca) and issued_by(chain_cert, new_ca):
                    writes.append(("ca.crt", path, data))
        if crl:
            data = _pem(crl)
            if _read(self.crl_path) != data:
                check_crl(data, chain_cert)
                writes.append((CRL, self.crl_path, data))
        if trust_root:
            data = _as_bytes(trust_root)
            if _read(self.trust_root_path) != data:
                try:
                    loaded = json.loads(data.decode("utf-8"))
                except ValueError as exc:
                    raise InstallFailed(f"the trust root is not JSON ({exc}); nothing was changed") from None
                if not isinstance(loaded, dict):
                    raise InstallFailed("the trust root must be a JSON object (root.json of distsec keys init)")
                writes.append((TRUST_ROOT, self.trust_root_path, data))
        if not check:
            for item in writes:
                _atomic_write(item[1], item[2], 0o644)
        return [item[0] for item in writes]

    # ---------------------------------------------------------- leave

    def leave(self, domain: Optional[str], host: Optional[str], *, check: bool = False) -> List[str]:
        """Remove the key, the certificates, the CRL and the trust root; record state=left. Idempotent."""
        removed = []
        for name in (*LINKS, "pki", CRL, TRUST_ROOT):
            path = self._path(name)
            if os.path.lexists(path):
                removed.append(name)
        try:
            previous = self.record()
        except PkiError:
            previous = {"state": "unknown"}
        if not removed and (previous is None or previous.get("state") == "left"):
            return []
        previous = previous or {}
        if previous.get("state") != "left":
            removed.append(RECORD)
        if check:
            return removed
        for name in (*LINKS, CRL, TRUST_ROOT):
            _remove(self._path(name))
        fsync_dir(self.root)
        _remove(self.pki)
        if previous.get("state") != "left":
            record = {
                "format": 1,
                "domain": domain or previous.get("domain"),
                "host": host or previous.get("host"),
                "state": "left",
                "serial": previous.get("serial"),
                "joined_at": previous.get("joined_at"),
                "renewed_at": previous.get("renewed_at"),
                "left_at": format_time(self.now()),
            }
            _atomic_write(self.record_path, json.dumps(record, sort_keys=True, indent=1).encode() + b"\n", 0o644)
        fsync_dir(self.root)
        return removed


def _fp(text: str) -> str:
    return str(text).replace(":", "").strip().lower()


def _csr(key: Any, identity: Identity) -> str:
    names: List[Any] = [cx509.DNSName(d) for d in identity.dns]
    names += [cx509.IPAddress(ipaddress.ip_address(a)) for a in identity.ip]
    builder = cx509.CertificateSigningRequestBuilder().subject_name(
        cx509.Name([cx509.NameAttribute(NameOID.COMMON_NAME, identity.name)])
    )
    if names:
        builder = builder.add_extension(cx509.SubjectAlternativeName(names), critical=False)
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    if not isinstance(key, (ed25519.Ed25519PrivateKey, ec.EllipticCurvePrivateKey)):
        raise BadRequest("only ECDSA P-256 and Ed25519 keys are staged")
    return builder.sign(key, algorithm).public_bytes(serialization.Encoding.PEM).decode("ascii")
