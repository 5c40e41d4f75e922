"""Property: every single-bit flip of every byte of a valid bundle is rejected, and only as Rejected.

The bundle is minimal on purpose (one root key per role, each threshold met by exactly one
signature), so that no byte is redundant: a flip in a signature's key id would otherwise just
drop one of several sufficient signatures, which the design allows. It also carries a root
rotation and a target, so those bytes are covered too. The bytes are canonical JSON with
nothing else (as `distsec bundle sign` writes them), so there is no free whitespace either.
"""

from __future__ import annotations

from trust_helpers import NOW, bundle, root, state_for

from ansible_collections.distsec.framework.plugins.module_utils._trust.verify import REASONS, Rejected, verify_bundle

TRUSTED = root(1, [1], 1, [1], policy_keys=[100])
ROOT_V2 = root(2, [2], 1, [1, 2], policy_keys=[101])
DATA = bundle(serial=2, signers=[101], roots=[ROOT_V2], hosts=["web1"], files={"policy.json": b'{"p":1}'})
STATE = state_for(bundle(serial=1), 1)


def _verify(data: bytes):
    return verify_bundle(data, trusted_root=TRUSTED, state=STATE, host="web1", groups=[], now=NOW)


def test_the_bundle_itself_is_accepted():
    assert _verify(DATA).serial == 2
    assert len(DATA) < 4096


def test_every_bit_flip_is_rejected():
    accepted = []
    reasons = set()
    for index in range(len(DATA)):
        for bit in range(8):
            flipped = bytearray(DATA)
            flipped[index] ^= 1 << bit
            try:
                _verify(bytes(flipped))
            except Rejected as exc:
                assert exc.reason in REASONS
                reasons.add(exc.reason)
            else:
                accepted.append((index, bit, DATA[max(0, index - 20) : index + 20]))
    assert not accepted, f"{len(accepted)} flips accepted, e.g. {accepted[:3]}"
    # the flips reach the signature checks, not only the JSON parser (a flip in the signed
    # targets, serial or expiry is caught by the signature before those checks)
    assert {"malformed", "bad-signature", "threshold-not-met", "untrusted-root", "hash-mismatch"} <= reasons


def test_truncations_are_rejected():
    for length in range(len(DATA)):
        try:
            _verify(DATA[:length])
        except Rejected:
            continue
        raise AssertionError(f"accepted truncated to {length} bytes")
