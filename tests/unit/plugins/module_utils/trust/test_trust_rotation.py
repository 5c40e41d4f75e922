"""Root key rotation, in the style of python-tuf's tests/test_updater_key_rotations.py.

Each case is a list of root versions the PDP published: the host trusts the first, the bundle
carries the rest. A step is {"keys": root keys, "threshold": K, "sigs": who signed it} (plus
"version" or "domain" to publish something wrong). Expected: the version the host ends at, or
"untrusted-root".
"""

from __future__ import annotations

from typing import Any, Dict, List

import pytest
from trust_helpers import NOW, bundle, root, rotation_chain

from ansible_collections.distsec.framework.plugins.module_utils._trust.root import MAX_ROOT_CHAIN
from ansible_collections.distsec.framework.plugins.module_utils._trust.verify import Rejected, verify_bundle


def step(keys, threshold, sigs, **extra) -> Dict[str, Any]:
    return {"keys": keys, "threshold": threshold, "sigs": sigs, **extra}


FIVE = [1, 2, 3, 4, 5]
UNTRUSTED = "untrusted-root"

CASES: Dict[str, tuple] = {
    "1-of-1 rotated, signed by old and new": ([step([1], 1, [1]), step([2], 1, [1, 2])], 2),
    "1-of-1 rotated, signed by new only": ([step([1], 1, [1]), step([2], 1, [2])], UNTRUSTED),
    "1-of-1 rotated, signed by old only": ([step([1], 1, [1]), step([2], 1, [1])], UNTRUSTED),
    "1-of-1 rotated twice": ([step([1], 1, [1]), step([2], 1, [1, 2]), step([3], 1, [2, 3])], 3),
    "1-of-1 rotated twice, second skips the intermediate key": (
        [step([1], 1, [1]), step([2], 1, [1, 2]), step([3], 1, [1, 3])],
        UNTRUSTED,
    ),
    "same keys, new version": ([step([1], 1, [1]), step([1], 1, [1])], 2),
    "3-of-5, other key combinations": (
        [step(FIVE, 3, [1, 3, 5]), step(FIVE, 3, [1, 2, 5]), step(FIVE, 3, [2, 3, 4])],
        3,
    ),
    "3-of-5, only 2 sign": ([step(FIVE, 3, [1, 3, 5]), step(FIVE, 3, [1, 2])], UNTRUSTED),
    "3-of-5, one key replaced, 3 old and 3 new sign": (
        [step(FIVE, 3, [1, 2, 3]), step([1, 2, 3, 4, 6], 3, [1, 2, 6, 5])],
        2,
    ),
    "3-of-5, one key replaced, too few old keys sign": (
        [step(FIVE, 3, [1, 2, 3]), step([1, 2, 3, 4, 6], 3, [1, 6, 7])],
        UNTRUSTED,
    ),
    "3-of-5 to entirely new keys, 3 old and 3 new sign": (
        [step(FIVE, 3, [1, 2, 3]), step([6, 7, 8], 3, [1, 2, 3, 6, 7, 8])],
        2,
    ),
    "3-of-5 to entirely new keys, only new sign": (
        [step(FIVE, 3, [1, 2, 3]), step([6, 7, 8], 3, [6, 7, 8])],
        UNTRUSTED,
    ),
    "threshold increase, both thresholds met": ([step([1, 2], 1, [1]), step([1, 2], 2, [1, 2])], 2),
    "threshold increase, new threshold not met": ([step([1, 2], 1, [1]), step([1, 2], 2, [1])], UNTRUSTED),
    "threshold decrease, old threshold met": ([step([1, 2], 2, [1, 2]), step([1, 2], 1, [1, 2])], 2),
    "threshold decrease, old threshold not met": ([step([1, 2], 2, [1, 2]), step([1, 2], 1, [1])], UNTRUSTED),
    "threshold decrease, then signed by one key": (
        [step([1, 2], 2, [1, 2]), step([1, 2], 1, [1, 2]), step([1, 2], 1, [2])],
        3,
    ),
    "duplicate signature of one key counts once": ([step([1, 2], 2, [1, 2]), step([1, 2], 2, [1, 1])], UNTRUSTED),
    "duplicate signature alongside a second key": ([step([1, 2], 2, [1, 2]), step([1, 2], 2, [1, 1, 2])], 2),
    "signature by a key outside the root role is ignored": ([step([1], 1, [1]), step([2], 1, [1, 2, 100, 9])], 2),
    "policy key cannot sign a root": ([step([1], 1, [1]), step([2], 1, [100, 2])], UNTRUSTED),
    "version skip": ([step([1], 1, [1]), step([1], 1, [1], version=3)], UNTRUSTED),
    "same version again": ([step([1], 1, [1]), step([1], 1, [1], version=2), step([1], 1, [1], version=2)], UNTRUSTED),
    "version going back": ([step([1], 1, [1]), step([1], 1, [1]), step([1], 1, [1], version=2)], UNTRUSTED),
    "domain change": ([step([1], 1, [1]), step([1], 1, [1], domain="other.org")], UNTRUSTED),
}


def _verify(chain: List[Dict[str, Any]], trusted: Dict[str, Any]) -> Any:
    try:
        accepted = verify_bundle(bundle(roots=chain), trusted_root=trusted, state=None, host="h", groups=[], now=NOW)
    except Rejected as exc:
        return exc.reason
    return accepted.root_version


@pytest.mark.parametrize("case", list(CASES))
def test_rotation(case):
    steps, expected = CASES[case]
    roots = rotation_chain(steps)
    assert _verify(roots[1:], roots[0]) == expected


def test_invalid_signature_by_an_old_root_key():
    roots = rotation_chain([step([1, 2], 1, [1]), step([3], 1, [1, 2, 3])])
    bad = next(s for s in roots[1]["signatures"] if s["keyid"] == roots[0]["signed"]["roles"]["root"]["keyids"][0])
    bad["sig"] = "00" * 64
    assert _verify(roots[1:], roots[0]) == UNTRUSTED


def _long_chain(length: int) -> List[Dict[str, Any]]:
    return rotation_chain([step([1], 1, [1])] * (length + 1))


def test_chain_of_max_length_is_walked():
    roots = _long_chain(MAX_ROOT_CHAIN)
    assert _verify(roots[1:], roots[0]) == MAX_ROOT_CHAIN + 1


def test_chain_longer_than_max_is_refused():
    roots = _long_chain(MAX_ROOT_CHAIN + 1)
    assert _verify(roots[1:], roots[0]) == UNTRUSTED


def test_roots_the_host_has_are_skipped():
    """A bundle carries v2..v4; a host at v3 walks from v3."""
    roots = rotation_chain([step([1], 1, [1]), step([2], 1, [1, 2]), step([3], 1, [2, 3]), step([4], 1, [3, 4])])
    assert _verify(roots[1:], roots[2]) == 4
    assert _verify(roots[1:], roots[3]) == 4  # the host has the newest already
    assert _verify(roots[1:3], roots[3]) == 4  # only older roots in the bundle


def test_roots_out_of_order_are_refused():
    roots = rotation_chain([step([1], 1, [1]), step([1], 1, [1]), step([1], 1, [1])])
    assert _verify([roots[2], roots[1]], roots[0]) == UNTRUSTED


def test_manifest_is_checked_against_the_newest_root():
    """After a rotation that replaces the policy key, the new key signs and the old one no longer counts."""
    trusted = root(1, [1], 1, [1], policy_keys=[100])
    new = root(2, [1], 1, [1], policy_keys=[101])
    ok = verify_bundle(
        bundle(signers=[101], roots=[new]), trusted_root=trusted, state=None, host="h", groups=[], now=NOW
    )
    assert ok.root == new
    with pytest.raises(Rejected) as caught:
        verify_bundle(
            bundle(signers=[100], roots=[new]), trusted_root=trusted, state=None, host="h", groups=[], now=NOW
        )
    assert caught.value.reason == "threshold-not-met"
