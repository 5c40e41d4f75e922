"""verify_bundle: one case per rejection reason (real keys, mutated bundles), and the accepted cases."""

from __future__ import annotations

import base64
import copy
import hashlib
from typing import Any, Callable, Dict

import pytest
from trust_helpers import (
    DOMAIN,
    NOW,
    POLICY,
    bundle,
    bundle_doc,
    dump,
    kid,
    manifest,
    root,
    state_for,
    trusted_root_v1,
)

from ansible_collections.distsec.framework.plugins.module_utils._trust import verify as verify_mod
from ansible_collections.distsec.framework.plugins.module_utils._trust.canonical import canonical
from ansible_collections.distsec.framework.plugins.module_utils._trust.root import MAX_SIGNATURES
from ansible_collections.distsec.framework.plugins.module_utils._trust.verify import (
    MAX_BUNDLE,
    REASONS,
    Rejected,
    TrustError,
    verify_bundle,
)

OTHER_POLICY = b'{"domain":"example.org","rules":["other"]}'


def run(data: bytes, *, state=None, host="web1", groups=(), trusted=None, now=NOW):
    return verify_bundle(
        data,
        trusted_root=trusted_root_v1() if trusted is None else trusted,
        state=state,
        host=host,
        groups=list(groups),
        now=now,
    )


def mutated(change: Callable[[Dict[str, Any]], None], **manifest_args) -> bytes:
    """A correctly signed bundle, then `change` applied to the dict (after signing)."""
    doc = bundle_doc(manifest(**manifest_args))
    change(doc)
    return dump(doc)


def resigned(change: Callable[[Dict[str, Any]], None], signers=(100,)) -> bytes:
    """`change` applied to the manifest, then signed (a PDP that signs something wrong)."""
    signed = manifest()
    change(signed)
    return dump(bundle_doc(signed, signers))


def _set(path, value):
    def change(doc):
        target = doc
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value

    return change


def _two_policy_keys():
    """Trusted root whose policy role is keys 100 and 101, threshold 2."""
    return root(1, [1], 1, [1], policy_keys=[100, 101], policy_threshold=2)


def _root_with_wrong_keyid():
    """Root v2 whose key 1 is listed under another key id."""
    new = root(2, [1], 1, [1])
    new["signed"]["keys"]["a" * 64] = new["signed"]["keys"][kid(1)]
    return new


# Each case: reason, and a function returning the arguments of run().
REJECTIONS = {
    # step 1
    "too-large": ("too-large", lambda: {"data": bundle() + b" " * (MAX_BUNDLE + 1 - len(bundle()))}),
    # step 2
    "not-json": ("malformed", lambda: {"data": b"{not json"}),
    "not-utf8": ("malformed", lambda: {"data": bundle().replace(b"policy.json", b"policy\xff.json", 1)}),
    "empty": ("malformed", lambda: {"data": b""}),
    "a-list": ("malformed", lambda: {"data": b"[]"}),
    "duplicate-key": ("malformed", lambda: {"data": b'{"roots":[],"roots":[]}'}),
    "float": ("malformed", lambda: {"data": bundle().replace(b'"serial":1', b'"serial":1.0', 1)}),
    "nan": ("malformed", lambda: {"data": b'{"a":NaN}'}),
    "huge-int": ("malformed", lambda: {"data": b'{"a":' + b"9" * 5000 + b"}"}),
    "deep": ("malformed", lambda: {"data": b"[" * 100000 + b"]" * 100000}),
    "unknown-top-key": ("malformed", lambda: {"data": mutated(_set(["extra"], 1))}),
    "missing-files": ("malformed", lambda: {"data": mutated(lambda d: d.pop("files"))}),
    "roots-not-list": ("malformed", lambda: {"data": mutated(_set(["roots"], {}))}),
    "sig-without-sig": ("malformed", lambda: {"data": mutated(lambda d: d["signatures"][0].pop("sig"))}),
    "sig-without-keyid": ("malformed", lambda: {"data": mutated(lambda d: d["signatures"][0].pop("keyid"))}),
    "sig-not-hex": ("malformed", lambda: {"data": mutated(lambda d: d["signatures"][0].update(sig="zz" * 64))}),
    "sig-upper-hex": (
        "malformed",
        lambda: {"data": mutated(lambda d: d["signatures"][0].update(sig=d["signatures"][0]["sig"].upper()))},
    ),
    "keyid-short": ("malformed", lambda: {"data": mutated(lambda d: d["signatures"][0].update(keyid="ab" * 31))}),
    "sig-extra-field": ("malformed", lambda: {"data": mutated(lambda d: d["signatures"][0].update(note="x"))}),
    "too-many-sigs": (
        "malformed",
        lambda: {"data": mutated(lambda d: d.update(signatures=d["signatures"] * (MAX_SIGNATURES + 1)))},
    ),
    "serial-bool": ("malformed", lambda: {"data": resigned(_set(["serial"], True))}),
    "serial-negative": ("malformed", lambda: {"data": resigned(_set(["serial"], -1))}),
    "serial-string": ("malformed", lambda: {"data": resigned(_set(["serial"], "7"))}),
    "expires-not-iso": ("malformed", lambda: {"data": resigned(_set(["expires"], "next week"))}),
    "expires-with-offset": ("malformed", lambda: {"data": resigned(_set(["expires"], "2027-01-15T09:00:00+00:00"))}),
    "expires-feb-30": ("malformed", lambda: {"data": resigned(_set(["expires"], "2027-02-30T00:00:00Z"))}),
    "wrong-type": ("malformed", lambda: {"data": resigned(_set(["_type"], "distsec-root"))}),
    "spec-2": ("malformed", lambda: {"data": resigned(_set(["spec"], 2))}),
    "manifest-extra-key": ("malformed", lambda: {"data": resigned(_set(["note"], "hi"))}),
    "targets-not-list": ("malformed", lambda: {"data": resigned(_set(["targets", "hosts"], "web1"))}),
    "target-with-space": ("malformed", lambda: {"data": resigned(_set(["targets", "hosts"], ["web 1"]))}),
    "file-name-traversal": (
        "malformed",
        lambda: {"data": mutated(lambda d: d["files"].update({"../x": d["files"].pop("policy.json")}))},
    ),
    "file-name-dotdot": ("malformed", lambda: {"data": mutated(lambda d: d["files"].update({"..": "AAAA"}))}),
    "file-name-long": ("malformed", lambda: {"data": mutated(lambda d: d["files"].update({"x" * 65: "AAAA"}))}),
    "manifest-file-name-slash": (
        "malformed",
        lambda: {"data": resigned(lambda m: m["files"].update({"a/b": {"sha256": "0" * 64, "length": 0}}))},
    ),
    "length-bool": ("malformed", lambda: {"data": resigned(lambda m: m["files"]["policy.json"].update(length=True))}),
    "not-base64": ("malformed", lambda: {"data": mutated(lambda d: d["files"].update({"policy.json": "!!!!"}))}),
    "base64-unused-bits": (
        "malformed",
        # "QR==" decodes like "QQ==" ("A"): the same content must have one encoding only
        lambda: {"data": mutated(lambda d: d["files"].update({"policy.json": "QR=="}))},
    ),
    "root-in-chain-bad-shape": (
        "malformed",
        lambda: {"data": mutated(_set(["roots"], [{"signed": {}, "signatures": []}]))},
    ),
    "root-keyid-not-hash-of-key": ("malformed", lambda: {"data": bundle(roots=[_root_with_wrong_keyid()])}),
    "lone-surrogate-target": (
        "malformed",
        lambda: {"data": mutated(lambda d: None).replace(b'"hosts":[]', b'"hosts":["\\ud800"]')},
    ),
    # step 3
    "root-not-signed-by-old": ("untrusted-root", lambda: {"data": bundle(roots=[root(2, [2], 1, [2])])}),
    "root-not-signed-by-new": ("untrusted-root", lambda: {"data": bundle(roots=[root(2, [2], 1, [1])])}),
    "root-version-skip": ("untrusted-root", lambda: {"data": bundle(roots=[root(3, [1], 1, [1])])}),
    "root-domain-change": ("untrusted-root", lambda: {"data": bundle(roots=[root(2, [1], 1, [1], domain="evil.org")])}),
    # step 4
    "sig-of-other-content": (
        "bad-signature",
        lambda: {"data": mutated(lambda d: d["signed"].update(serial=2))},
    ),
    "sig-random-bytes": (
        "bad-signature",
        lambda: {"data": mutated(lambda d: d["signatures"][0].update(sig="00" * 64))},
    ),
    "one-bad-among-good": (
        "bad-signature",
        lambda: {
            "data": mutated(lambda d: d["signatures"].append({"keyid": kid(101), "sig": "00" * 64})),
            "trusted": _two_policy_keys(),
        },
    ),
    "no-signatures": ("threshold-not-met", lambda: {"data": mutated(_set(["signatures"], []))}),
    "signed-by-root-key-only": ("threshold-not-met", lambda: {"data": bundle(signers=[1])}),
    "signed-by-stranger": ("threshold-not-met", lambda: {"data": bundle(signers=[999])}),
    "one-of-two": ("threshold-not-met", lambda: {"data": bundle(signers=[100]), "trusted": _two_policy_keys()}),
    "same-key-twice": (
        "threshold-not-met",
        lambda: {"data": bundle(signers=[100, 100]), "trusted": _two_policy_keys()},
    ),
    "old-policy-key-after-rotation": (
        "threshold-not-met",
        lambda: {"data": bundle(signers=[100], roots=[root(2, [1], 1, [1], policy_keys=[101])])},
    ),
    # step 5
    "other-domain": ("wrong-domain", lambda: {"data": bundle(domain="other.org")}),
    # step 6
    "expired": ("expired", lambda: {"data": bundle(expires=NOW - 1)}),
    "expires-now": ("expired", lambda: {"data": bundle(expires=NOW)}),
    # step 7
    "other-host": ("wrong-target", lambda: {"data": bundle(hosts=["web2"]), "host": "web1"}),
    "other-group": ("wrong-target", lambda: {"data": bundle(groups=["db"]), "groups": ["web"]}),
    "no-host-name": ("wrong-target", lambda: {"data": bundle(hosts=["web1"]), "host": None}),
    # step 8
    "lower-serial": ("rollback", lambda: {"data": bundle(serial=4), "state": state_for(bundle(serial=5), 5)}),
    "same-serial-other-content": (
        "serial-reuse",
        lambda: {
            "data": bundle(serial=5),
            "state": state_for(bundle(serial=5, files={"policy.json": OTHER_POLICY}), 5),
        },
    ),
    # step 9
    "content-changed": (
        "hash-mismatch",
        lambda: {
            "data": mutated(lambda d: d["files"].update({"policy.json": base64.b64encode(OTHER_POLICY).decode()}))
        },
    ),
    "same-length-other-content": (
        "hash-mismatch",
        lambda: {
            "data": mutated(lambda d: d["files"].update({"policy.json": base64.b64encode(POLICY.upper()).decode()}))
        },
    ),
    "file-missing": ("hash-mismatch", lambda: {"data": mutated(lambda d: d["files"].clear())}),
    "extra-file": ("hash-mismatch", lambda: {"data": mutated(lambda d: d["files"].update({"extra.json": "e30="}))}),
    "length-wrong": (
        "hash-mismatch",
        lambda: {"data": resigned(lambda m: m["files"]["policy.json"].update(length=len(POLICY) + 1))},
    ),
}


def test_every_reason_has_a_case():
    assert {reason for reason, make in REJECTIONS.values()} == set(REASONS)


@pytest.mark.parametrize("case", sorted(REJECTIONS))
def test_rejected(case):
    reason, make = REJECTIONS[case]
    args = make()
    with pytest.raises(Rejected) as caught:
        run(**args)
    assert caught.value.reason == reason, caught.value.detail
    assert str(caught.value).startswith(f"{reason}: ")
    assert caught.value.detail and "\n" not in caught.value.detail


def test_rejection_order_signature_before_expiry():
    """Step 4 before step 6: an expired bundle with a bad signature is reported as bad-signature."""
    doc = bundle_doc(manifest(expires=NOW - 10))
    doc["signed"]["serial"] = 9
    with pytest.raises(Rejected) as caught:
        run(dump(doc))
    assert caught.value.reason == "bad-signature"


def test_rejected_refuses_unknown_reasons():
    with pytest.raises(ValueError, match="unknown rejection reason"):
        raise Rejected("nope", "x")


# ------------------------------------------------------------------ accepted


def test_first_bundle_is_accepted():
    data = bundle(serial=3)
    accepted = run(data)
    assert accepted.serial == 3
    assert not accepted.unchanged
    assert accepted.files == {"policy.json": POLICY}
    assert accepted.manifest["domain"] == accepted.domain == DOMAIN
    assert accepted.manifest_sha256 == hashlib.sha256(canonical(manifest(serial=3))).hexdigest()
    assert accepted.root == trusted_root_v1()
    assert accepted.root_version == 1


def test_higher_serial_is_accepted():
    accepted = run(bundle(serial=6), state=state_for(bundle(serial=5), 5))
    assert (accepted.serial, accepted.unchanged) == (6, False)


def test_same_serial_same_content_is_unchanged():
    data = bundle(serial=5)
    accepted = run(data, state=state_for(data, 5))
    assert (accepted.serial, accepted.unchanged) == (5, True)


def test_same_manifest_signed_again_is_unchanged():
    """Re-signed (here: by two keys instead of one), same manifest: the same content."""
    first = bundle(serial=5, signers=[100])
    again = bundle(serial=5, signers=[100, 101])
    trusted = root(1, [1], 1, [1], policy_keys=[100, 101], policy_threshold=1)
    assert run(again, state=state_for(first, 5), trusted=trusted).unchanged


@pytest.mark.parametrize(
    ("targets", "host", "groups"),
    [
        ({}, "anyone", []),
        ({}, None, []),
        ({"hosts": ["web1", "web2"]}, "web2", []),
        ({"groups": ["web", "db"]}, "x", ["other", "db"]),
        ({"hosts": ["a"], "groups": ["web"]}, "b", ["web"]),
    ],
)
def test_targets(targets, host, groups):
    assert run(bundle(**targets), host=host, groups=groups).serial == 1


def test_serial_zero_and_empty_file_list():
    accepted = run(bundle(serial=0, files={}))
    assert (accepted.serial, accepted.files) == (0, {})


def test_signature_by_stranger_is_ignored():
    assert run(bundle(signers=[999, 100])).serial == 1


def test_threshold_two_of_two():
    assert run(bundle(signers=[101, 100]), trusted=_two_policy_keys()).serial == 1


def test_chain_updates_the_root_and_policy_keys():
    new = root(2, [2], 1, [1, 2], policy_keys=[101])
    accepted = run(bundle(signers=[101], roots=[new]))
    assert accepted.root == new and accepted.root_version == 2


def test_verify_does_not_modify_its_inputs():
    trusted = trusted_root_v1()
    state = state_for(bundle(serial=1), 1)
    before = (copy.deepcopy(trusted), copy.deepcopy(state))
    run(bundle(serial=2), state=state, trusted=trusted)
    assert (trusted, state) == before


# ------------------------------------------------------------------ the host's own data


@pytest.mark.parametrize(
    "trusted",
    [
        {},
        root(1, [1], 1, []),  # not signed
        root(1, [1], 1, [2]),  # signed by a stranger
        root(1, [1, 2], 2, [1]),  # below its own threshold
    ],
)
def test_invalid_trusted_root_is_a_trust_error(trusted):
    with pytest.raises(TrustError):
        run(bundle(), trusted=trusted)


@pytest.mark.parametrize(
    "change",
    [
        lambda s: s.update(serial=True),
        lambda s: s.update(serial=-1),
        lambda s: s.pop("domain"),
        lambda s: s.update(manifest_sha256="x"),
        lambda s: s.update(extra=1),
    ],
)
def test_invalid_state_is_a_trust_error(change):
    state = state_for(bundle(), 1)
    change(state)
    with pytest.raises(TrustError):
        run(bundle(), state=state)


def test_reasons_are_the_designs():
    assert verify_mod.REASONS == (
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
