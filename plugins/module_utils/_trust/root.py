# PRIVATE: the trust root: shapes of signed documents, threshold signatures, the root chain walk.
#
# Runs on hosts: stdlib + cryptography (through crypto.py), Python 3.9.
# The format and the rules are in docs/dev/trust-design.md.
from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Set, Tuple

from ansible_collections.distsec.framework.plugins.module_utils._trust.canonical import canonical
from ansible_collections.distsec.framework.plugins.module_utils._trust.crypto import HEX64, HEX128, keyid, verify

__all__ = [
    "DOMAIN_RE",
    "MAX_KEYS",
    "MAX_ROOT",
    "MAX_ROOT_CHAIN",
    "MAX_SIGNATURES",
    "REASONS",
    "ROLES",
    "ROOT_TYPE",
    "SPEC",
    "Malformed",
    "Rejected",
    "TrustError",
    "check_envelope",
    "check_root",
    "check_trusted_root",
    "count_signatures",
    "exact_keys",
    "walk_chain",
]

REASONS = (
    "bad-signature",
    "threshold-not-met",
    "untrusted-root",
    "rollback",
    "serial-reuse",
    "expired",
    "wrong-domain",
    "wrong-target",
    "hash-mismatch",
    "too-large",
    "malformed",
)

ROOT_TYPE = "distsec-root"
SPEC = 1
ROLES = ("root", "policy")
MAX_ROOT_CHAIN = 32
MAX_ROOT = 1024 * 1024  # bytes of a root.json file
MAX_KEYS = 64  # keys in a root, key ids in a role
MAX_SIGNATURES = 64  # signature entries in one envelope
DOMAIN_RE = re.compile(r"^[A-Za-z0-9_.-]{1,253}$")  # as PSL's `domain`


class Rejected(Exception):
    """A bundle is refused: `reason` is one of REASONS, `detail` says what exactly."""

    def __init__(self, reason: str, detail: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown rejection reason {reason!r}")
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class TrustError(Exception):
    """The host's own trust data (trusted root, state files) is missing, unreadable or invalid."""


class Malformed(ValueError):
    """A document does not have the expected shape (becomes `malformed` or a TrustError)."""


def exact_keys(obj: Any, where: str, required: Tuple[str, ...]) -> Dict[str, Any]:
    """`obj` must be an object with exactly these keys."""
    if not isinstance(obj, dict):
        raise Malformed(f"{where}: expected an object, got {type(obj).__name__}")
    missing = [k for k in required if k not in obj]
    if missing:
        raise Malformed(f"{where}: missing {', '.join(missing)}")
    extra = sorted(k for k in obj if k not in required)
    if extra:
        raise Malformed(f"{where}: unknown key(s) {', '.join(repr(k[:64]) for k in extra[:5])}")
    return obj


def check_int(value: Any, where: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise Malformed(f"{where}: expected an integer >= {minimum}, got {str(value)[:40]!r}")
    return value


def check_hex64(value: Any, where: str) -> str:
    if not isinstance(value, str) or not HEX64.match(value):
        raise Malformed(f"{where}: expected 64 lower-case hex digits")
    return value


def check_envelope(doc: Any, where: str, extra_keys: Tuple[str, ...] = ()) -> Dict[str, Any]:
    """{"signed": {...}, "signatures": [{"keyid": HEX64, "sig": HEX128}, ...]} (+ extra_keys)."""
    exact_keys(doc, where, ("signed", "signatures", *extra_keys))
    if not isinstance(doc["signed"], dict):
        raise Malformed(f"{where}.signed: expected an object")
    signatures = doc["signatures"]
    if not isinstance(signatures, list):
        raise Malformed(f"{where}.signatures: expected a list")
    if len(signatures) > MAX_SIGNATURES:
        raise Malformed(f"{where}.signatures: more than {MAX_SIGNATURES} entries")
    for index, entry in enumerate(signatures):
        spot = f"{where}.signatures[{index}]"
        exact_keys(entry, spot, ("keyid", "sig"))
        check_hex64(entry["keyid"], f"{spot}.keyid")
        if not isinstance(entry["sig"], str) or not HEX128.match(entry["sig"]):
            raise Malformed(f"{spot}.sig: expected 128 lower-case hex digits")
    return doc


def check_root(doc: Any, where: str = "root") -> Dict[str, Any]:
    """Shape of a root envelope (signatures are not checked here); raises Malformed."""
    check_envelope(doc, where)
    signed = exact_keys(doc["signed"], f"{where}.signed", ("_type", "spec", "domain", "version", "keys", "roles"))
    if signed["_type"] != ROOT_TYPE:
        raise Malformed(f"{where}.signed._type: expected {ROOT_TYPE!r}")
    if check_int(signed["spec"], f"{where}.signed.spec") != SPEC:
        raise Malformed(f"{where}.signed.spec: this version reads spec {SPEC}, not {signed['spec']}")
    if not isinstance(signed["domain"], str) or not DOMAIN_RE.match(signed["domain"]):
        raise Malformed(f"{where}.signed.domain: expected a domain name ([A-Za-z0-9_.-]{{1,253}})")
    check_int(signed["version"], f"{where}.signed.version", 1)
    keys = signed["keys"]
    if not isinstance(keys, dict) or not keys or len(keys) > MAX_KEYS:
        raise Malformed(f"{where}.signed.keys: expected an object of 1 to {MAX_KEYS} keys")
    for kid, key in keys.items():
        spot = f"{where}.signed.keys[{kid[:16]}]"
        check_hex64(kid, f"{spot} (key id)")
        exact_keys(key, spot, ("keytype", "public"))
        if key["keytype"] != "ed25519":
            raise Malformed(f"{spot}.keytype: expected 'ed25519'")
        check_hex64(key["public"], f"{spot}.public")
        if keyid(key["public"]) != kid:
            raise Malformed(f"{spot}: the key id is not the sha256 of the public key")
    roles = exact_keys(signed["roles"], f"{where}.signed.roles", ROLES)
    for name in ROLES:
        spot = f"{where}.signed.roles.{name}"
        role = exact_keys(roles[name], spot, ("keyids", "threshold"))
        keyids = role["keyids"]
        if not isinstance(keyids, list) or not keyids or len(keyids) > MAX_KEYS:
            raise Malformed(f"{spot}.keyids: expected a list of 1 to {MAX_KEYS} key ids")
        for kid in keyids:
            check_hex64(kid, f"{spot}.keyids[]")
            if kid not in keys:
                raise Malformed(f"{spot}.keyids: {kid[:16]}... is not in keys")
        if len(set(keyids)) != len(keyids):
            raise Malformed(f"{spot}.keyids: a key id is listed twice")
        threshold = check_int(role["threshold"], f"{spot}.threshold", 1)
        if threshold > len(keyids):
            raise Malformed(f"{spot}.threshold: {threshold} is more than its {len(keyids)} key(s)")
    return doc


def count_signatures(
    data: bytes, signatures: List[Dict[str, str]], root_signed: Dict[str, Any], role: str
) -> Tuple[Set[str], List[str]]:
    """(distinct key ids of `role` whose signature verifies, key ids of `role` whose signature does not).

    Signatures by keys outside the role are ignored; a key id listed twice counts once.
    """
    keys = root_signed["keys"]
    members = set(root_signed["roles"][role]["keyids"])
    valid: Set[str] = set()
    bad: List[str] = []
    for entry in signatures:
        kid = entry["keyid"]
        if kid not in members:
            continue
        if verify(keys[kid]["public"], entry["sig"], data):
            valid.add(kid)
        elif kid not in bad:
            bad.append(kid)
    return valid, bad


def _threshold_problem(data: bytes, doc: Dict[str, Any], by: Dict[str, Any], role: str, what: str) -> Optional[str]:
    """None if `doc` carries a threshold of valid signatures by `by`'s `role` keys and no bad one."""
    valid, bad = count_signatures(data, doc["signatures"], by, role)
    if bad:
        return f"{what}: the signature by {role} key {bad[0][:16]}... does not verify"
    threshold = by["roles"][role]["threshold"]
    if len(valid) < threshold:
        return f"{what}: {len(valid)} valid signature(s) by {role} keys, {threshold} needed"
    return None


def check_trusted_root(root: Any) -> Dict[str, Any]:
    """The host's trusted root: its shape, and signed by a threshold of its own root keys (TrustError)."""
    try:
        check_root(root, "trusted root")
        data = canonical(root["signed"])
    except (Malformed, ValueError) as exc:
        raise TrustError(str(exc)) from None
    problem = _threshold_problem(data, root, root["signed"], "root", f"trusted root v{root['signed']['version']}")
    if problem:
        raise TrustError(problem)
    return root


def next_root(trusted: Dict[str, Any], candidate: Dict[str, Any]) -> Dict[str, Any]:
    """Root N+1 when it is signed by thresholds of N's and of its own root keys (else Rejected untrusted-root)."""
    old, new = trusted["signed"], candidate["signed"]
    what = f"root v{new['version']}"
    if new["version"] != old["version"] + 1:
        raise Rejected("untrusted-root", f"{what} does not follow the trusted root v{old['version']}")
    if new["domain"] != old["domain"]:
        raise Rejected("untrusted-root", f"{what} is for domain {new['domain']!r}, not {old['domain']!r}")
    try:
        data = canonical(new)
    except ValueError as exc:
        raise Rejected("malformed", f"{what}: {exc}") from None
    for by, whose in ((old, f"v{old['version']}"), (new, "its own")):
        problem = _threshold_problem(data, candidate, by, "root", f"{what} (checked with {whose} root keys)")
        if problem:
            raise Rejected("untrusted-root", problem)
    return candidate


def walk_chain(trusted: Dict[str, Any], roots: List[Dict[str, Any]]) -> Dict[str, Any]:
    """The newest root reachable from `trusted` through `roots` (shapes already checked).

    Roots at or below the trusted version are skipped (a bundle carries the chain for hosts at
    older roots); every later one must be exactly the next version.
    """
    if len(roots) > MAX_ROOT_CHAIN:
        raise Rejected("untrusted-root", f"the bundle carries {len(roots)} roots, more than {MAX_ROOT_CHAIN}")
    current = trusted
    for root in roots:
        if root["signed"]["version"] <= current["signed"]["version"] and current is trusted:
            continue
        current = next_root(current, root)
    return current
