# PRIVATE: verify a signed policy bundle on the host (docs/dev/trust-design.md, "Verification order").
#
# Runs on hosts: stdlib + cryptography (through crypto.py), Python 3.9.
# verify_bundle() only reads; writing the trusted state is state.TrustStore.accept().
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from ansible_collections.distsec.framework.plugins.module_utils._trust.canonical import (
    StrictJSONError,
    canonical,
    loads_strict,
    parse_time,
)
from ansible_collections.distsec.framework.plugins.module_utils._trust.root import (
    DOMAIN_RE,
    REASONS,
    SPEC,
    Malformed,
    Rejected,
    TrustError,
    check_envelope,
    check_hex64,
    check_int,
    check_root,
    check_trusted_root,
    count_signatures,
    exact_keys,
    walk_chain,
)

__all__ = [
    "BUNDLE_TYPE",
    "FILE_NAME_RE",
    "MAX_BUNDLE",
    "MAX_FILES",
    "MAX_TARGETS",
    "POLICY_FILE_NAME",
    "REASONS",
    "TARGET_RE",
    "Accepted",
    "Rejected",
    "TrustError",
    "check_state",
    "compiled_policy",
    "manifest_sha256",
    "signed_expiry",
    "verify_bundle",
]

BUNDLE_TYPE = "distsec-bundle"
POLICY_FILE_NAME = "policy.json"  # the compiled policy inside a bundle
MAX_BUNDLE = 16 * 1024 * 1024
MAX_FILES = 64
MAX_TARGETS = 4096
FILE_NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Host and group names in targets: printable, no spaces or control characters.
TARGET_RE = re.compile(r"^[^\s\x00-\x1f\x7f]{1,255}$")
MANIFEST_KEYS = ("_type", "spec", "domain", "serial", "issued", "expires", "targets", "files")


@dataclass
class Accepted:
    """A verified bundle. `root` is the newest trusted root (newer than the host's if the bundle
    carried a root chain); `files` are the verified file contents; `unchanged` is True when the
    host already accepted this very manifest (same serial and manifest hash)."""

    serial: int
    manifest_sha256: str
    root: Dict[str, Any]
    files: Dict[str, bytes]
    manifest: Dict[str, Any]
    unchanged: bool

    @property
    def domain(self) -> str:
        return self.manifest["domain"]

    @property
    def expires(self) -> str:
        return self.manifest["expires"]

    @property
    def root_version(self) -> int:
        return self.root["signed"]["version"]


def manifest_sha256(manifest: Dict[str, Any]) -> str:
    """sha256 hex of the canonical manifest (what the trusted state records)."""
    return hashlib.sha256(canonical(manifest)).hexdigest()


def _file_name(name: Any, where: str) -> str:
    if not isinstance(name, str) or not FILE_NAME_RE.match(name) or name in (".", ".."):
        raise Malformed(f"{where}: {str(name)[:70]!r} is not a file name ([A-Za-z0-9._-]{{1,64}}, not . or ..)")
    return name


def _names(value: Any, where: str) -> List[str]:
    if not isinstance(value, list) or len(value) > MAX_TARGETS:
        raise Malformed(f"{where}: expected a list of at most {MAX_TARGETS} names")
    for name in value:
        if not isinstance(name, str) or not TARGET_RE.match(name):
            raise Malformed(f"{where}: {str(name)[:70]!r} is not a host or group name")
    return value


def _check_manifest(manifest: Dict[str, Any]) -> None:
    exact_keys(manifest, "manifest", MANIFEST_KEYS)
    if manifest["_type"] != BUNDLE_TYPE:
        raise Malformed(f"manifest._type: expected {BUNDLE_TYPE!r}")
    if check_int(manifest["spec"], "manifest.spec") != SPEC:
        raise Malformed(f"manifest.spec: this version reads spec {SPEC}, not {manifest['spec']}")
    if not isinstance(manifest["domain"], str) or not DOMAIN_RE.match(manifest["domain"]):
        raise Malformed("manifest.domain: expected a domain name ([A-Za-z0-9_.-]{1,253})")
    check_int(manifest["serial"], "manifest.serial")
    for key in ("issued", "expires"):
        try:
            parse_time(manifest[key])
        except ValueError as exc:
            raise Malformed(f"manifest.{key}: {exc}") from None
    targets = exact_keys(manifest["targets"], "manifest.targets", ("hosts", "groups"))
    _names(targets["hosts"], "manifest.targets.hosts")
    _names(targets["groups"], "manifest.targets.groups")
    files = manifest["files"]
    if not isinstance(files, dict) or len(files) > MAX_FILES:
        raise Malformed(f"manifest.files: expected an object of at most {MAX_FILES} files")
    for name, meta in files.items():
        spot = f"manifest.files[{_file_name(name, 'manifest.files')}]"
        exact_keys(meta, spot, ("sha256", "length"))
        check_hex64(meta["sha256"], f"{spot}.sha256")
        check_int(meta["length"], f"{spot}.length")


def _decode_files(files: Any) -> Dict[str, bytes]:
    if not isinstance(files, dict) or len(files) > MAX_FILES:
        raise Malformed(f"files: expected an object of at most {MAX_FILES} files")
    out: Dict[str, bytes] = {}
    for name, text in files.items():
        _file_name(name, "files")
        if not isinstance(text, str):
            raise Malformed(f"files[{name}]: expected base64 text")
        try:
            content = base64.b64decode(text.encode("ascii"), validate=True)
        except (binascii.Error, ValueError):
            raise Malformed(f"files[{name}]: not base64") from None
        # One encoding per content: no unused bits set, padding as b64encode writes it.
        if base64.b64encode(content).decode("ascii") != text:
            raise Malformed(f"files[{name}]: not canonical base64")
        out[name] = content
    return out


def _parse(data: bytes) -> Dict[str, Any]:
    """Steps 1-2: size, JSON, shapes."""
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError("verify_bundle: data must be bytes")
    if len(data) > MAX_BUNDLE:
        raise Rejected("too-large", f"the bundle is larger than {MAX_BUNDLE} bytes")
    try:
        doc = loads_strict(bytes(data))
        check_envelope(doc, "bundle", ("roots", "files"))
        if not isinstance(doc["roots"], list):
            raise Malformed("roots: expected a list")
        for index, root in enumerate(doc["roots"]):
            check_root(root, f"roots[{index}]")
        _check_manifest(doc["signed"])
        doc["files"] = _decode_files(doc["files"])
        # Everything that is signed must have a canonical form (e.g. no lone surrogates).
        canonical(doc["signed"])
        for root in doc["roots"]:
            canonical(root["signed"])
    except (StrictJSONError, Malformed) as exc:
        raise Rejected("malformed", str(exc)) from None
    except ValueError as exc:
        raise Rejected("malformed", f"cannot be signed canonically: {exc}") from None
    return doc


def check_state(state: Any) -> Optional[Dict[str, Any]]:
    """The trusted state (state.json) or None; raises TrustError if it is not one."""
    if state is None:
        return None
    try:
        exact_keys(state, "state", ("serial", "manifest_sha256", "root_version", "accepted_at", "domain"))
        check_int(state["serial"], "state.serial")
        check_hex64(state["manifest_sha256"], "state.manifest_sha256")
        check_int(state["root_version"], "state.root_version", 1)
        parse_time(state["accepted_at"])
        if not isinstance(state["domain"], str) or not DOMAIN_RE.match(state["domain"]):
            raise Malformed("state.domain: expected a domain name")
    except ValueError as exc:
        raise TrustError(f"invalid trusted state: {exc}") from None
    return state


def verify_bundle(
    data: bytes,
    *,
    trusted_root: Dict[str, Any],
    state: Optional[Dict[str, Any]],
    host: Optional[str],
    groups: List[str],
    now: float,
) -> Accepted:
    """Verify a bundle against the host's trusted root and state, in the order of the design.

    Raises Rejected(reason, detail) for anything wrong with the bundle, TrustError when the
    host's own trusted root or state is invalid. Writes nothing.
    """
    check_trusted_root(trusted_root)
    check_state(state)
    doc = _parse(data)  # 1-2
    root = walk_chain(trusted_root, doc["roots"])  # 3
    manifest = doc["signed"]
    root_signed = root["signed"]
    signed_bytes = canonical(manifest)
    valid, bad = count_signatures(signed_bytes, doc["signatures"], root_signed, "policy")  # 4
    if bad:
        raise Rejected("bad-signature", f"the signature by policy key {bad[0][:16]}... does not verify")
    threshold = root_signed["roles"]["policy"]["threshold"]
    if len(valid) < threshold:
        raise Rejected(
            "threshold-not-met",
            f"{len(valid)} valid signature(s) by policy keys of root v{root_signed['version']}, {threshold} needed",
        )
    if manifest["domain"] != root_signed["domain"]:  # 5
        raise Rejected(
            "wrong-domain", f"the bundle is for {manifest['domain']!r}, this host trusts {root_signed['domain']!r}"
        )
    if parse_time(manifest["expires"]) <= now:  # 6
        raise Rejected("expired", f"the bundle expired at {manifest['expires']}")
    targets = manifest["targets"]  # 7
    everyone = not targets["hosts"] and not targets["groups"]
    if not everyone and not (host in targets["hosts"] or any(g in targets["groups"] for g in groups)):
        raise Rejected(
            "wrong-target",
            f"{'host ' + repr(host) if host is not None else 'this host (no name given)'} "
            f"(groups {', '.join(groups) or 'none'}) is not among the bundle's targets "
            f"(hosts {', '.join(targets['hosts'][:10]) or 'none'}; groups {', '.join(targets['groups'][:10]) or 'none'})",
        )
    digest = hashlib.sha256(signed_bytes).hexdigest()  # 8
    serial = manifest["serial"]
    unchanged = False
    if state is not None:
        if serial < state["serial"]:
            raise Rejected("rollback", f"serial {serial} is lower than the accepted serial {state['serial']}")
        if serial == state["serial"]:
            if digest != state["manifest_sha256"]:
                raise Rejected("serial-reuse", f"serial {serial} was accepted before with other content")
            unchanged = True
    files = doc["files"]  # 9
    for name, meta in manifest["files"].items():
        content = files.get(name)
        if content is None:
            raise Rejected("hash-mismatch", f"file {name} is in the manifest but not in the bundle")
        if len(content) != meta["length"]:
            raise Rejected("hash-mismatch", f"file {name}: {len(content)} bytes, the manifest says {meta['length']}")
        if hashlib.sha256(content).hexdigest() != meta["sha256"]:
            raise Rejected("hash-mismatch", f"file {name}: sha256 differs from the manifest")
    extra = sorted(set(files) - set(manifest["files"]))
    if extra:
        raise Rejected("hash-mismatch", f"file(s) not in the manifest: {', '.join(extra[:5])}")
    return Accepted(
        serial=serial, manifest_sha256=digest, root=root, files=files, manifest=manifest, unchanged=unchanged
    )


def compiled_policy(accepted: Accepted) -> Dict[str, Any]:
    """The compiled policy in an accepted bundle (Rejected malformed if there is none)."""
    content = accepted.files.get(POLICY_FILE_NAME)
    if content is None:
        raise Rejected("malformed", f"the bundle carries no {POLICY_FILE_NAME}")
    try:
        # authenticated by its hash already: plain JSON (a compiled policy may hold non-integer numbers)
        compiled = json.loads(content.decode("utf-8"))
    except ValueError as exc:
        raise Rejected("malformed", f"{POLICY_FILE_NAME}: not JSON: {exc}") from None
    if not isinstance(compiled, dict) or not isinstance(compiled.get("profiles"), dict):
        raise Rejected("malformed", f"{POLICY_FILE_NAME}: not a compiled distsec policy (no profiles)")
    return compiled


def signed_expiry(data: bytes) -> Optional[float]:
    """A bundle's signed expiry as epoch seconds, or None when it cannot be read."""
    try:
        return parse_time(loads_strict(data)["signed"]["expires"])
    except (StrictJSONError, KeyError, TypeError, ValueError):
        return None
