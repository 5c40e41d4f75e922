# PRIVATE: `distsec keys init | rotate` and `distsec bundle sign | verify` (docs/dev/trust-design.md).
#
# KEYDIR (on the PDP):
#   root.json                 the current root (public; hosts install it as /etc/distsec/root.json)
#   root-history/N.json       every root version (bundles carry the chain hosts walk)
#   keys/root-K.key           root private keys, PKCS#8 PEM, 0600 (K: 1, 2, ... in creation order)
#   keys/policy-K.key         policy (bundle-signing) private keys
#   keys/retired/             keys a rotation removed
#   serial                    the last signed serial
from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import hashlib
import json
import os
import re
import stat
import sys
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.distsec.framework.plugins.module_utils._evaluate.conditions import parse_time as parse_any_time
from ansible_collections.distsec.framework.plugins.module_utils._trust import crypto
from ansible_collections.distsec.framework.plugins.module_utils._trust.canonical import (
    StrictJSONError,
    canonical,
    format_time,
    loads_strict,
)
from ansible_collections.distsec.framework.plugins.module_utils._trust.root import (
    DOMAIN_RE,
    MAX_ROOT,
    MAX_ROOT_CHAIN,
    ROOT_TYPE,
    SPEC,
    Malformed,
    Rejected,
    TrustError,
    check_root,
    check_trusted_root,
    next_root,
)
from ansible_collections.distsec.framework.plugins.module_utils._trust.state import (
    TrustStore,
    atomic_write_bytes,
    read_bundle,
    read_capped,
)
from ansible_collections.distsec.framework.plugins.module_utils._trust.verify import BUNDLE_TYPE, TARGET_RE

from ._cli import EXIT_PROBLEM, EXIT_USAGE, GROUPS, Command, CommandError
from ._psl.api import PolicyInvalid, compile_paths
from ._psl.compiler import canonical_json

__all__ = ["parse_duration", "register"]

PASSPHRASE_ENV = "DISTSEC_KEY_PASSPHRASE"  # noqa: S105 - the name of the variable
KEY_FILE_RE = re.compile(r"^(root|policy)-([0-9]{1,6})\.key$")
DURATION_RE = re.compile(r"^([0-9]{1,6}[wdhms])+$")
UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
MAX_KEYS_PER_COMMAND = 32


def _usage(message: str) -> CommandError:
    return CommandError(message, exit_code=EXIT_USAGE)


def parse_duration(text: str) -> int:
    """Seconds of '7d', '12h', '30m', '1d12h', '2w' (ValueError if not one or zero)."""
    if not DURATION_RE.match(text or ""):
        raise ValueError(f"{text!r} is not a duration (e.g. 7d, 12h, 30m, 1d12h)")
    seconds = sum(int(n) * UNITS[u] for n, u in re.findall(r"([0-9]+)([wdhms])", text))
    if seconds <= 0:
        raise ValueError(f"{text!r}: the duration must be longer than zero")
    return seconds


def _passphrase(args: argparse.Namespace) -> Optional[bytes]:
    path = getattr(args, "passphrase_file", None)
    if path:
        try:
            with open(path, "rb") as handle:
                text = handle.read(4097)
        except OSError as exc:
            raise CommandError(f"--passphrase-file {path}: cannot read: {exc.strerror or exc}") from None
        if len(text) > 4096:
            raise CommandError(f"--passphrase-file {path}: longer than 4096 bytes")
        text = text.splitlines()[0] if text.strip(b"\r\n") else b""
        if not text:
            raise CommandError(f"--passphrase-file {path}: empty")
        return text
    env = os.environ.get(PASSPHRASE_ENV)
    return env.encode("utf-8") if env else None


def _count(value: Optional[int], name: str, minimum: int = 1) -> Optional[int]:
    if value is not None and not minimum <= value <= MAX_KEYS_PER_COMMAND:
        raise _usage(f"{name}: expected {minimum} to {MAX_KEYS_PER_COMMAND}, got {value}")
    return value


def _write_private(path: str, key: Any, passphrase: Optional[bytes]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(crypto.private_key_pem(key, passphrase))
        handle.flush()
        os.fsync(handle.fileno())


def _write_json(path: str, doc: Any, mode: int = 0o644) -> None:
    atomic_write_bytes(path, canonical(doc) + b"\n", mode)


def _role_entry(keyids: List[str], threshold: int) -> Dict[str, Any]:
    return {"keyids": sorted(keyids), "threshold": threshold}


def _kid(key: Any) -> str:
    return crypto.keyid(crypto.public_hex(key))


@dataclass
class KeyFile:
    role: str
    index: int
    path: str
    key: Any
    keyid: str


class KeyDir:
    """A KEYDIR on the PDP: its current root, root history, private keys and serial."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.root_path = os.path.join(path, "root.json")
        self.history = os.path.join(path, "root-history")
        self.keys = os.path.join(path, "keys")
        self.retired = os.path.join(self.keys, "retired")
        self.serial_path = os.path.join(path, "serial")
        self.signed_path = os.path.join(path, "signed-targets.json")
        self.lock_path = os.path.join(path, ".sign.lock")

    @contextlib.contextmanager
    def signing(self):
        """Serialise signings (parallel forks sign per-host bundles): serial and records stay consistent."""
        try:
            handle = open(self.lock_path, "a", encoding="ascii")  # noqa: SIM115 - held for the block
        except OSError as exc:
            raise CommandError(f"{self.lock_path}: cannot open the signing lock: {exc.strerror or exc}") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield self
        finally:
            handle.close()

    def signed_targets(self) -> Optional[Dict[str, int]]:
        """The last serial signed per target ("host:NAME", "group:NAME", "*" for every host); None before any."""
        try:
            data = read_capped(self.signed_path, MAX_ROOT)
        except TrustError as exc:
            raise CommandError(str(exc)) from None
        if data is None:
            return None
        try:
            loaded = json.loads(data)
        except ValueError as exc:
            raise CommandError(f"{self.signed_path}: not JSON ({exc}); remove it to start over") from None
        if not isinstance(loaded, dict) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in loaded.values()
        ):
            raise CommandError(f"{self.signed_path}: expected a mapping of target to serial; remove it to start over")
        return loaded

    def last_serial_for(self, targets: Dict[str, List[str]]) -> int:
        """The highest serial signed for bundles a host of `targets` may have accepted.

        A bundle for named hosts only is shadowed by later bundles for those hosts, for any group
        (membership is not known here) or for every host; any other bundle by every later bundle.
        Without records (older key directories) every bundle counts, as before.
        """
        records = self.signed_targets()
        if records is None or targets["groups"] or not targets["hosts"]:
            return self.last_serial()
        wanted = {f"host:{h}" for h in targets["hosts"]}
        return max([v for k, v in records.items() if k in wanted or k == "*" or k.startswith("group:")] or [0])

    def record_signing(self, targets: Dict[str, List[str]], serial: int) -> None:
        records = self.signed_targets() or {}
        keys = [f"host:{h}" for h in targets["hosts"]] + [f"group:{g}" for g in targets["groups"]] or ["*"]
        for key in keys:
            records[key] = max(records.get(key, 0), serial)
        text = json.dumps(records, sort_keys=True, indent=1) + "\n"
        try:
            atomic_write_bytes(self.signed_path, text.encode("ascii"), 0o600)
        except OSError as exc:
            raise CommandError(f"{self.signed_path}: cannot record serial {serial}: {exc.strerror or exc}") from None

    def _json(self, path: str) -> Any:
        try:
            data = read_capped(path, MAX_ROOT)
        except TrustError as exc:
            raise CommandError(str(exc)) from None
        if data is None:
            raise CommandError(f"{path}: missing (create a key directory with `distsec keys init`)")
        try:
            return loads_strict(data)
        except StrictJSONError as exc:
            raise CommandError(f"{path}: {exc}") from None

    def root(self) -> Dict[str, Any]:
        root = self._json(self.root_path)
        try:
            return check_trusted_root(root)
        except TrustError as exc:
            raise CommandError(f"{self.root_path}: {exc}") from None

    def history_root(self, version: int) -> Dict[str, Any]:
        path = os.path.join(self.history, f"{version}.json")
        root = self._json(path)
        try:
            check_root(root, path)
        except Malformed as exc:
            raise CommandError(str(exc)) from None
        if root["signed"]["version"] != version:
            raise CommandError(f"{path}: holds root version {root['signed']['version']}, not {version}")
        return root

    def key_files(self, passphrase: Optional[bytes]) -> Dict[str, KeyFile]:
        """The active private keys by key id."""
        out: Dict[str, KeyFile] = {}
        try:
            names = sorted(os.listdir(self.keys))
        except OSError as exc:
            raise CommandError(f"{self.keys}: cannot list: {exc.strerror or exc}") from None
        for name in names:
            match = KEY_FILE_RE.match(name)
            if not match:
                continue
            path = os.path.join(self.keys, name)
            try:
                with open(path, "rb") as handle:
                    pem = handle.read(65536)
                key = crypto.load_private_key(pem, passphrase)
            except OSError as exc:
                raise CommandError(f"{path}: cannot read: {exc.strerror or exc}") from None
            except TypeError:
                if passphrase:
                    raise CommandError(f"{path}: the key is not encrypted, but a passphrase was given") from None
                raise CommandError(
                    f"{path}: the key is encrypted: set {PASSPHRASE_ENV} or use --passphrase-file"
                ) from None
            except ValueError as exc:
                raise CommandError(f"{path}: cannot load the key (wrong passphrase?): {exc}") from None
            kid = _kid(key)
            out[kid] = KeyFile(match.group(1), int(match.group(2)), path, key, kid)
        return out

    def next_index(self, role: str) -> int:
        highest = 0
        for directory in (self.keys, self.retired):
            try:
                names = os.listdir(directory)
            except FileNotFoundError:
                continue
            for name in names:
                match = KEY_FILE_RE.match(name)
                if match and match.group(1) == role:
                    highest = max(highest, int(match.group(2)))
        return highest + 1

    def last_serial(self) -> int:
        try:
            data = read_capped(self.serial_path, 64)
        except TrustError as exc:
            raise CommandError(str(exc)) from None
        if data is None:
            return 0
        text = data.decode("ascii", errors="replace").strip()
        if not text.isdigit() or len(text) > 18:
            raise CommandError(f"{self.serial_path}: expected the last serial (a number), got {text[:20]!r}")
        return int(text)


def _new_keys(keydir: KeyDir, role: str, count: int) -> List[Tuple[str, Any]]:
    first = keydir.next_index(role)
    return [(os.path.join(keydir.keys, f"{role}-{first + n}.key"), crypto.generate_key()) for n in range(count)]


def _root_signed(domain: str, version: int, roles: Dict[str, Tuple[List[str], int]], publics: Dict[str, str]):
    used = sorted({kid for role in roles.values() for kid in role[0]})
    return {
        "_type": ROOT_TYPE,
        "spec": SPEC,
        "domain": domain,
        "version": version,
        "keys": {kid: {"keytype": "ed25519", "public": publics[kid]} for kid in used},
        "roles": {name: _role_entry(keyids, threshold) for name, (keyids, threshold) in roles.items()},
    }


def _check_threshold(threshold: int, keys: int, name: str) -> None:
    if not 1 <= threshold <= keys:
        raise _usage(f"{name}: {threshold} is not between 1 and the number of keys ({keys})")


# ---------------------------------------------------------------------------------------------
# keys init


def run_keys_init(args: argparse.Namespace) -> int:
    if not DOMAIN_RE.match(args.domain):
        raise _usage(f"--domain: {args.domain!r} is not a domain name ([A-Za-z0-9_.-]{{1,253}})")
    root_keys = _count(args.keys, "--keys")
    policy_keys = _count(args.policy_keys, "--policy-keys")
    threshold = args.threshold if args.threshold is not None else 1
    policy_threshold = args.policy_threshold if args.policy_threshold is not None else 1
    _check_threshold(threshold, root_keys, "--threshold")
    _check_threshold(policy_threshold, policy_keys, "--policy-threshold")
    passphrase = _passphrase(args)
    keydir = KeyDir(args.dir)
    if os.path.lexists(keydir.root_path):
        raise CommandError(
            f"{keydir.root_path} exists: {args.dir} is a key directory already (use `distsec keys rotate`)"
        )
    try:
        if not os.path.isdir(args.dir):
            os.makedirs(args.dir, mode=0o700)
        for directory in (keydir.keys, keydir.history):
            os.makedirs(directory, mode=0o700, exist_ok=True)
        os.chmod(keydir.keys, 0o700)
        if any(KEY_FILE_RE.match(n) for n in os.listdir(keydir.keys)):
            raise CommandError(f"{keydir.keys} holds keys already; use an empty directory")
        new_root = _new_keys(keydir, "root", root_keys)
        new_policy = _new_keys(keydir, "policy", policy_keys)
        publics = {_kid(k): crypto.public_hex(k) for p, k in new_root + new_policy}
        signed = _root_signed(
            args.domain,
            1,
            {
                "root": ([_kid(k) for p, k in new_root], threshold),
                "policy": ([_kid(k) for p, k in new_policy], policy_threshold),
            },
            publics,
        )
        root = crypto.sign_envelope(signed, [k for p, k in new_root])
        for path, key in new_root + new_policy:
            _write_private(path, key, passphrase)
        _write_json(os.path.join(keydir.history, "1.json"), root)
        _write_json(keydir.root_path, root)
    except OSError as exc:
        raise CommandError(f"{args.dir}: cannot write: {exc.strerror or exc} ({exc.filename or ''})") from None
    mode = stat.S_IMODE(os.stat(args.dir).st_mode)
    print(f"created {keydir.root_path} (root v1, domain {args.domain})")
    print(f"  root keys:   {root_keys}, threshold {threshold}")
    print(f"  policy keys: {policy_keys}, threshold {policy_threshold}")
    print(f"  private keys in {keydir.keys}/ ({'encrypted' if passphrase else 'NOT encrypted'})")
    print(f"install {keydir.root_path} on every host as /etc/distsec/root.json")
    if mode & 0o077:
        print(f"distsec: warning: {args.dir} is accessible to others (mode {mode:o}); chmod 700 it", file=sys.stderr)
    return 0


# ---------------------------------------------------------------------------------------------
# keys rotate


def _resolve(prefix: str, candidates: List[str], option: str) -> str:
    text = prefix.lower()
    if not re.match(r"^[0-9a-f]{8,64}$", text):
        raise _usage(f"{option}: {prefix!r} is not a key id (8 to 64 hex digits)")
    found = [kid for kid in candidates if kid.startswith(text)]
    if len(found) != 1:
        what = "no key" if not found else f"{len(found)} keys"
        raise _usage(f"{option}: {what} of the role match {prefix!r}")
    return found[0]


def _new_role(
    keydir: KeyDir,
    old: Dict[str, Any],
    role: str,
    *,
    add: int,
    remove: List[str],
    threshold: Optional[int],
    option: str,
) -> Tuple[List[str], int, List[Tuple[str, Any]]]:
    keyids = list(old["roles"][role]["keyids"])
    for prefix in remove:
        kid = _resolve(prefix, keyids, f"--remove-{role}-key")
        keyids.remove(kid)
    created = _new_keys(keydir, role, add)
    keyids += [_kid(k) for p, k in created]
    if not keyids:
        raise _usage(f"the {role} role would have no keys left; add one (--add-{role}-keys)")
    if threshold is None:
        threshold = old["roles"][role]["threshold"]
        if threshold > len(keyids):
            raise _usage(f"the {role} threshold {threshold} is more than its {len(keyids)} key(s): give {option}")
    _check_threshold(threshold, len(keyids), option)
    return keyids, threshold, created


def run_keys_rotate(args: argparse.Namespace) -> int:
    _count(args.add_root_keys, "--add-root-keys", 0)
    _count(args.add_policy_keys, "--add-policy-keys", 0)
    passphrase = _passphrase(args)
    keydir = KeyDir(args.dir)
    old_root = keydir.root()
    old = old_root["signed"]
    available = keydir.key_files(passphrase)
    root_ids, root_threshold, new_root_keys = _new_role(
        keydir, old, "root", add=args.add_root_keys, remove=args.remove_root_key, threshold=args.threshold,
        option="--threshold",
    )  # fmt: skip
    policy_ids, policy_threshold, new_policy_keys = _new_role(
        keydir, old, "policy", add=args.add_policy_keys, remove=args.remove_policy_key,
        threshold=args.policy_threshold, option="--policy-threshold",
    )  # fmt: skip
    publics = {kid: entry["public"] for kid, entry in old["keys"].items()}
    publics.update({_kid(k): crypto.public_hex(k) for p, k in new_root_keys + new_policy_keys})
    version = old["version"] + 1
    signed = _root_signed(
        old["domain"], version, {"root": (root_ids, root_threshold), "policy": (policy_ids, policy_threshold)}, publics
    )
    private = {kid: f.key for kid, f in available.items()}
    private.update({_kid(k): k for p, k in new_root_keys})
    for keyids, threshold, which in (
        (old["roles"]["root"]["keyids"], old["roles"]["root"]["threshold"], f"v{old['version']}"),
        (root_ids, root_threshold, f"v{version}"),
    ):
        have = [kid for kid in keyids if kid in private]
        if len(have) < threshold:
            raise CommandError(
                f"root {which} needs {threshold} root key(s) to sign; {len(have)} found in {keydir.keys}"
            )
    signers = [private[kid] for kid in sorted(set(old["roles"]["root"]["keyids"]) | set(root_ids)) if kid in private]
    root = crypto.sign_envelope(signed, signers)
    try:
        next_root(old_root, root)  # the rules hosts apply
    except Rejected as exc:  # pragma: no cover - a bug in the above
        raise CommandError(f"the new root would not be trusted: {exc}") from None
    history_path = os.path.join(keydir.history, f"{version}.json")
    if os.path.lexists(history_path):
        raise CommandError(f"{history_path} exists already; is {keydir.root_path} older than its history?")
    try:
        for path, key in new_root_keys + new_policy_keys:
            _write_private(path, key, passphrase)
        os.makedirs(keydir.history, mode=0o700, exist_ok=True)
        _write_json(history_path, root)
        _write_json(keydir.root_path, root)
        in_use = set(root_ids) | set(policy_ids)
        retired = [f for kid, f in sorted(available.items()) if kid not in in_use]
        if retired:
            os.makedirs(keydir.retired, mode=0o700, exist_ok=True)
        for keyfile in retired:
            os.replace(keyfile.path, os.path.join(keydir.retired, os.path.basename(keyfile.path)))
    except OSError as exc:
        raise CommandError(f"{args.dir}: cannot write: {exc.strerror or exc} ({exc.filename or ''})") from None
    print(f"wrote {keydir.root_path}: root v{version}, domain {old['domain']}")
    print(f"  root keys:   {len(root_ids)}, threshold {root_threshold} (signed by {len(signers)} root key(s))")
    print(f"  policy keys: {len(policy_ids)}, threshold {policy_threshold}")
    for keyfile in retired:
        print(f"  retired {keyfile.role} key {keyfile.keyid[:16]}... to {keydir.retired}/")
    print("bundles signed from now on carry the new root; hosts update their trusted root when they accept one")
    return 0


# ---------------------------------------------------------------------------------------------
# bundle sign


def _targets(values: List[str], host: Optional[str]) -> Dict[str, List[str]]:
    hosts: List[str] = []
    groups: List[str] = []
    for value in values:
        kind, sep, name = value.partition(":")
        if not sep:
            kind, name = "host", value
        if kind not in ("host", "group") or not TARGET_RE.match(name):
            raise _usage(f"--target: {value!r}: expected NAME, host:NAME or group:NAME")
        bucket = hosts if kind == "host" else groups
        if name not in bucket:
            bucket.append(name)
    if not values and host:
        hosts.append(host)
    return {"hosts": sorted(hosts), "groups": sorted(groups)}


def _with_metadata(compiled: Dict[str, Any], serial: int, issued: str, expires: str) -> Dict[str, Any]:
    """The compiled policy with metadata {serial, issued, expires} of the bundle, hash recomputed."""
    out = {k: v for k, v in compiled.items() if k != "hash"}
    out["metadata"] = {**(compiled.get("metadata") or {}), "serial": serial, "issued": issued, "expires": expires}
    out["hash"] = "sha256:" + hashlib.sha256(canonical_json(out).encode("utf-8")).hexdigest()
    return out


def build_bundle(keydir: KeyDir, root: Dict[str, Any], signers: Any, compiled: Dict[str, Any],
                 targets: Dict[str, List[str]], *, serial: int, issued: str, expires: str,
                 roots_since: int) -> Tuple[bytes, Dict[str, Any]]:  # fmt: skip
    """(the bundle's exact canonical bytes, its manifest); ValueError when it cannot be built.

    The one way a bundle is made: `distsec bundle sign` and the bundle_sign action both call it.
    """
    signed_root = root["signed"]
    files = {"policy.json": canonical(_with_metadata(compiled, serial, issued, expires))}
    versions = range(roots_since + 1, signed_root["version"] + 1)
    if len(versions) > MAX_ROOT_CHAIN:
        raise ValueError(
            f"{len(versions)} roots since v{roots_since}: hosts refuse more than {MAX_ROOT_CHAIN}; "
            "raise roots_since (hosts on older roots then need the newer root.json installed)"
        )
    roots = [keydir.history_root(v) for v in versions]
    if roots and canonical(roots[-1]) != canonical(root):
        raise ValueError(f"{keydir.history}/{signed_root['version']}.json differs from {keydir.root_path}")
    manifest = {
        "_type": BUNDLE_TYPE,
        "spec": SPEC,
        "domain": signed_root["domain"],
        "serial": serial,
        "issued": issued,
        "expires": expires,
        "targets": targets,
        "files": {
            name: {"sha256": hashlib.sha256(content).hexdigest(), "length": len(content)}
            for name, content in files.items()
        },
    }
    bundle = crypto.sign_envelope(manifest, signers)
    bundle["roots"] = roots
    bundle["files"] = {name: base64.b64encode(content).decode("ascii") for name, content in files.items()}
    return canonical(bundle), manifest


def run_bundle_sign(args: argparse.Namespace) -> int:
    try:
        lifetime = parse_duration(args.expires)
    except ValueError as exc:
        raise _usage(f"--expires: {exc}") from None
    if args.serial is not None and not 0 <= args.serial < 2**62:
        raise _usage(f"--serial: {args.serial} is not a serial (0 or more)")
    if args.roots_since < 1:
        raise _usage("--roots-since: expected a root version (1 or more)")
    targets = _targets(args.target, args.host)
    passphrase = _passphrase(args)
    keydir = KeyDir(args.keys)
    root = keydir.root()
    signed_root = root["signed"]
    policy_role = signed_root["roles"]["policy"]
    available = keydir.key_files(passphrase)
    signers = [available[kid].key for kid in policy_role["keyids"] if kid in available]
    if len(signers) < policy_role["threshold"]:
        raise CommandError(
            f"root v{signed_root['version']} needs {policy_role['threshold']} policy key(s); "
            f"{len(signers)} found in {keydir.keys}"
        )
    try:
        result = compile_paths(args.paths, host=args.host, groups=args.group)
    except PolicyInvalid as exc:
        for line in exc.lines:
            print(line, file=sys.stderr)
        raise CommandError("the policy is not valid; nothing signed") from None
    for line in result["warnings"]:
        print(line, file=sys.stderr)
    compiled = result["compiled"]
    if compiled["domain"] != signed_root["domain"]:
        raise CommandError(
            f"the policy is for domain {compiled['domain']!r}, the keys in {args.keys} for {signed_root['domain']!r}"
        )
    with keydir.signing():
        return _sign_locked(args, keydir, (root, signers, compiled, targets, lifetime))


def _sign_locked(args: argparse.Namespace, keydir: KeyDir, job: Tuple[Any, ...]) -> int:
    """Under the key directory's signing lock: the next serial, the bundle, the records."""
    root, signers, compiled, targets, lifetime = job
    signed_root = root["signed"]
    last = keydir.last_serial()
    serial = args.serial if args.serial is not None else last + 1
    now = int(time.time())
    issued, expires = format_time(now), format_time(now + lifetime)
    try:
        data = build_bundle(
            keydir, root, signers, compiled, targets,
            serial=serial, issued=issued, expires=expires, roots_since=args.roots_since,
        )[0]  # fmt: skip
        chain = max(0, signed_root["version"] - args.roots_since)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    try:
        atomic_write_bytes(args.out, data, 0o644)  # exactly canonical: no byte is free
    except OSError as exc:
        raise CommandError(f"{args.out}: cannot write: {exc.strerror or exc}") from None
    try:
        atomic_write_bytes(keydir.serial_path, f"{max(last, serial)}\n".encode("ascii"), 0o600)
    except OSError as exc:
        raise CommandError(f"{keydir.serial_path}: cannot record serial {serial}: {exc.strerror or exc}") from None
    keydir.record_signing(targets, serial)
    who = ", ".join([f"host {h}" for h in targets["hosts"]] + [f"group {g}" for g in targets["groups"]]) or "every host"
    print(
        f"signed {args.out}: domain {signed_root['domain']}, serial {serial}, expires {expires}, for {who}, "
        f"root v{signed_root['version']} ({chain} root(s) in the chain), policy {compiled['target']['host'] or 'default'}"
    )
    if args.serial is not None and serial <= last:
        print(f"distsec: warning: serial {serial} is not above the last signed serial {last}", file=sys.stderr)
    return 0


# ---------------------------------------------------------------------------------------------
# bundle verify


def run_bundle_verify(args: argparse.Namespace) -> int:
    if args.now is None:
        now = time.time()
    else:
        moment = parse_any_time(args.now)
        if moment is None:
            raise _usage(f"--now: {args.now!r} is not an ISO 8601 time (e.g. 2026-11-23T12:00:00Z)")
        now = moment
    groups = [g.strip() for g in (args.groups or "").split(",") if g.strip()]
    try:
        data = read_bundle(args.bundle)
    except OSError as exc:
        raise CommandError(f"{args.bundle}: cannot read: {exc.strerror or exc}") from None
    store = TrustStore(args.state, initial_root_path=args.trust)
    try:
        accepted = store.verify(data, host=args.host, groups=groups, now=now)
        store.accept(data, accepted, now=now)
    except Rejected as exc:
        print(f"rejected: {exc.reason}: {exc.detail}", file=sys.stderr)
        return EXIT_PROBLEM
    except TrustError as exc:
        raise CommandError(str(exc)) from None
    print(accepted.serial)
    return 0


# ---------------------------------------------------------------------------------------------
# registration


def _passphrase_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--passphrase-file",
        metavar="F",
        help=f"the private keys' passphrase is the first line of F (else ${PASSPHRASE_ENV}, else none)",
    )


def _configure_init(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", required=True, metavar="KEYDIR", help="the key directory to create")
    parser.add_argument("--domain", required=True, metavar="NAME", help="the Security Domain (as the policy's domain)")
    parser.add_argument("--keys", type=int, default=1, metavar="N", help="root keys (1)")
    parser.add_argument("--threshold", type=int, metavar="K", help="root signatures needed (1)")
    parser.add_argument("--policy-keys", type=int, default=1, metavar="N", help="policy (bundle-signing) keys (1)")
    parser.add_argument("--policy-threshold", type=int, metavar="K", help="policy signatures needed (1)")
    _passphrase_option(parser)


def _configure_rotate(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", required=True, metavar="KEYDIR", help="the key directory")
    parser.add_argument("--add-root-keys", type=int, default=0, metavar="N", help="new root keys")
    parser.add_argument(
        "--remove-root-key", action="append", default=[], metavar="KEYID", help="drop a root key (id or prefix)"
    )
    parser.add_argument("--threshold", type=int, metavar="K", help="root signatures needed (default: unchanged)")
    parser.add_argument("--add-policy-keys", type=int, default=0, metavar="N", help="new policy keys")
    parser.add_argument(
        "--remove-policy-key", action="append", default=[], metavar="KEYID", help="drop a policy key (id or prefix)"
    )
    parser.add_argument(
        "--policy-threshold", type=int, metavar="K", help="policy signatures needed (default: unchanged)"
    )
    _passphrase_option(parser)


def _configure_sign(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", metavar="POLICY_PATH", nargs="+", help="PSL files")
    parser.add_argument("--keys", required=True, metavar="KEYDIR", help="the key directory")
    parser.add_argument("--expires", required=True, metavar="DURATION", help="lifetime, e.g. 7d, 12h, 30m")
    parser.add_argument("--out", required=True, metavar="BUNDLE", help="the bundle file to write (*.bundle.json)")
    parser.add_argument("--serial", type=int, metavar="N", help="the serial (default: the last signed + 1)")
    parser.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="T",
        help="host:NAME, group:NAME or NAME (a host); repeatable; none: every host (or --host's)",
    )
    parser.add_argument("--host", help="compile the policy for this host name (and target it unless --target)")
    parser.add_argument("--group", action="append", default=[], metavar="G", help="an inventory group of the host")
    parser.add_argument(
        "--roots-since",
        type=int,
        default=1,
        metavar="N",
        help="carry the roots after version N, for hosts still trusting root N (1)",
    )
    _passphrase_option(parser)


def _configure_verify(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", metavar="BUNDLE", help="the bundle file")
    parser.add_argument(
        "--trust", required=True, metavar="ROOT.json", help="the initial trust root (used when STATEDIR has none)"
    )
    parser.add_argument("--state", required=True, metavar="STATEDIR", help="the trusted state directory (updated)")
    parser.add_argument("--host", help="this host's name (for the bundle's targets)")
    parser.add_argument("--groups", default="", metavar="G,...", help="this host's groups, comma separated")
    parser.add_argument("--now", metavar="ISO8601", help="the time to check expiry against (default: now)")


def register() -> None:
    keys, bundle = GROUPS["keys"], GROUPS["bundle"]
    if not keys.commands:
        keys.commands.extend(
            [
                Command("init", "create a key directory: root and policy keys, root v1", _configure_init, run_keys_init),
                Command("rotate", "write root N+1 with added or removed keys or new thresholds", _configure_rotate, run_keys_rotate),
            ]
        )  # fmt: skip
    if not bundle.commands:
        bundle.commands.extend(
            [
                Command("sign", "compile a policy and sign it into a bundle", _configure_sign, run_bundle_sign),
                Command("verify", "verify a bundle as a host would (exit 1: 'rejected: REASON: detail')", _configure_verify, run_bundle_verify),
            ]
        )  # fmt: skip
