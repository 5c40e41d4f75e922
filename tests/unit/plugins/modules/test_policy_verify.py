"""distsec.framework.policy_verify: its main() run in-process on temporary state directories.

Bundles are made by `distsec bundle sign` (the same code the PDP runs); every case checks what
the module returns and what it wrote (or did not write) on the "host".
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
from ansible.module_utils import _internal as module_internal
from ansible.module_utils.testing import patch_module_args

from ansible_collections.distsec.framework.plugins.modules import policy_verify
from ansible_collections.distsec.framework.plugins.plugin_utils._cli import main as cli

TOP = Path(__file__).resolve().parents[4]
POLICY = str(TOP / "docs" / "examples" / "mail-client" / "policy.yml")  # domain example.org
NOW = "2030-01-01T00:00:00Z"  # bundles are signed with a validity of years, so NOW is within it


def distsec(*argv):
    try:
        return cli([str(a) for a in argv])
    except SystemExit as exc:
        return exc.code


@pytest.fixture(autouse=True)
def no_passphrase(monkeypatch):
    monkeypatch.delenv("DISTSEC_KEY_PASSPHRASE", raising=False)


@pytest.fixture(autouse=True)
def module_side_warnings(monkeypatch):
    """module.warn() goes into the result as on a host, even after another test imported controller
    code in this process (which sets is_controller and sends warnings to the controller's display)."""
    monkeypatch.setattr(module_internal, "is_controller", False)


class Host:
    """A key directory on the "PDP" and the paths of one "host", in tmp_path."""

    def __init__(self, tmp_path, capsys):
        self.tmp = tmp_path
        self.capsys = capsys
        self.keys = tmp_path / "keys"
        self.state = tmp_path / "host" / "trust"
        self.record = tmp_path / "host" / "policy.json"
        assert distsec("keys", "init", "--dir", self.keys, "--domain", "example.org") == 0
        capsys.readouterr()

    def sign(self, name="policy.bundle.json", *extra):
        out = self.tmp / name
        assert distsec("bundle", "sign", "--keys", self.keys, "--expires", "3000d", "--out", out, *extra, POLICY) == 0
        self.capsys.readouterr()
        return out

    def run(self, bundle=None, *, check=False, **extra):
        """The module's result (its JSON output) and whether it failed."""
        args = {
            "trust_root": str(self.keys / "root.json"),
            "state_dir": str(self.state),
            "policy_file": str(self.record),
            "host": "ws1",
            "groups": ["workstations"],
            "now": NOW,
            "_ansible_check_mode": check,
            **extra,
        }
        if bundle is not None:
            args["bundle"] = str(bundle)
        with patch_module_args(args), pytest.raises(SystemExit) as exc:
            policy_verify.main()
        out = json.loads(self.capsys.readouterr().out)
        assert bool(out.get("failed")) == (exc.value.code != 0)
        return out

    def snapshot(self):
        """Every file the module may write, with its bytes."""
        files = {}
        for path in sorted(self.tmp.joinpath("host").rglob("*")):
            if path.is_file():
                files[str(path.relative_to(self.tmp))] = path.read_bytes()
        return files

    def load_record(self):
        return json.loads(self.record.read_text())


@pytest.fixture
def host(tmp_path, capsys):
    return Host(tmp_path, capsys)


def tamper(src, dst, how):
    bundle = json.loads(Path(src).read_text())
    if how == "file":
        content = bytearray(base64.b64decode(bundle["files"]["policy.json"]))
        content[len(content) // 2] ^= 0x01
        bundle["files"]["policy.json"] = base64.b64encode(bytes(content)).decode("ascii")
    else:
        bundle["signed"]["serial"] += 1
    Path(dst).write_text(json.dumps(bundle))
    return dst


def test_accept_then_idempotent_and_the_stored_bundle_verifies(host):
    bundle = host.sign()
    first = host.run(bundle)
    assert first["changed"] is True and not first.get("failed")
    assert first["serial"] == 1 and first["domain"] == "example.org" and first["root_version"] == 1
    assert first["compiled"]["domain"] == "example.org" and "profiles" in first["compiled"]
    assert first["compiled"]["metadata"]["serial"] == 1
    assert first["source"] == str(bundle)
    state = json.loads((host.state / "state.json").read_text())
    assert state["serial"] == 1 and state["manifest_sha256"] == first["manifest_sha256"]
    assert (host.state / "bundle.json").read_bytes() == bundle.read_bytes()
    assert oct(os.stat(host.state / "bundle.json").st_mode & 0o777) == "0o600"
    assert host.load_record() == {"domain": "example.org", "serial": 1, "expires": first["expires"]}

    before = host.snapshot()
    again = host.run(bundle)
    assert again["changed"] is False and again["serial"] == 1
    stored = host.run()
    assert stored["changed"] is False and stored["source"] == "stored" and stored["serial"] == 1
    assert stored["compiled"] == first["compiled"]
    assert host.snapshot() == before


def test_check_mode_verifies_and_writes_nothing(host):
    bundle = host.sign()
    checked = host.run(bundle, check=True)
    assert checked["changed"] is True and checked["serial"] == 1
    assert host.snapshot() == {}, "check mode must not even copy the trust root"

    rejected = host.run(tamper(bundle, host.tmp / "bad.json", "file"), check=True)
    assert rejected["failed"] and rejected["reason"] == "hash-mismatch"
    assert host.snapshot() == {}, "check mode must not record the rejection"


@pytest.mark.parametrize(("how", "reason"), [("file", "hash-mismatch"), ("serial", "bad-signature")])
def test_a_tampered_bundle_is_rejected_and_the_trusted_state_is_kept(host, how, reason):
    good = host.sign()
    assert host.run(good)["serial"] == 1
    trusted = host.snapshot()
    trusted.pop("host/policy.json")

    out = host.run(tamper(good, host.tmp / "tampered.json", how))
    assert out["failed"] and out["reason"] == reason and out["changed"] is False
    assert out["msg"].startswith(f"rejected: {reason}: ")
    assert out["detail"] in out["msg"]
    assert out["trusted"]["serial"] == 1
    assert "compiled" not in out
    after = host.snapshot()
    after.pop("host/policy.json")
    assert after == trusted, "a rejection leaves the trusted state untouched"
    record = host.load_record()
    assert record["serial"] == 1
    assert record["last_rejection"]["reason"] == reason and record["last_rejection"]["at"] == NOW

    # the stored bundle still verifies and keeps the rejection visible; a pushed good bundle clears it
    stored = host.run()
    assert stored["serial"] == 1 and stored["changed"] is False
    assert host.load_record()["last_rejection"]["reason"] == reason
    pushed = host.run(good)
    assert pushed["changed"] is True and "last_rejection" not in host.load_record()
    assert host.run(good)["changed"] is False


def test_tampering_at_rest_is_detected_and_nothing_is_deleted(host):
    assert host.run(host.sign())["serial"] == 1
    stored = host.state / "bundle.json"
    tamper(stored, stored, "file")
    tampered = stored.read_bytes()
    out = host.run()
    assert out["failed"] and out["reason"] == "hash-mismatch" and out["source"] == "stored"
    assert stored.read_bytes() == tampered
    assert host.load_record()["last_rejection"]["reason"] == "hash-mismatch"


def test_an_expired_stored_bundle_is_reported_and_kept(host):
    assert host.run(host.sign())["serial"] == 1
    before = host.snapshot()
    before.pop("host/policy.json")
    out = host.run(now="3100-01-01T00:00:00Z")
    assert out["failed"] and out["reason"] == "expired"
    assert "expired at" in out["detail"]
    after = host.snapshot()
    after.pop("host/policy.json")
    assert after == before


def test_an_expired_stored_bundle_is_kept_within_the_grace_period_only(host):
    signed = host.run(host.sign())
    expires = signed["expires"]
    before = host.snapshot()
    # one day past is inside 2d; every other check still runs, as of the moment it expired
    later = host.run(now=_plus(expires, 86400), grace="2d")
    assert not later.get("failed") and later["expired"] is True and later["in_grace"] is True
    assert later["compiled"]["domain"] == "example.org" and later["serial"] == 1
    assert later["grace_until"] == _plus(expires, 2 * 86400)
    assert host.snapshot() == before, "a policy kept within the grace period writes nothing"

    past = host.run(now=_plus(expires, 3 * 86400), grace="2d")
    assert past["failed"] and past["reason"] == "expired" and past["expired"] is True
    assert past["grace_until"] == _plus(expires, 2 * 86400)

    tamper(host.state / "bundle.json", host.state / "bundle.json", "file")
    tampered = host.run(now=_plus(expires, 86400), grace="2d")
    assert tampered["failed"] and tampered["reason"] == "hash-mismatch", "the grace period never hides tampering"


def test_the_grace_period_never_applies_to_a_pushed_bundle(host):
    bundle = host.sign()
    expires = json.loads(bundle.read_text())["signed"]["expires"]
    out = host.run(bundle, now=_plus(expires, 60), grace="2d")
    assert out["failed"] and out["reason"] == "expired" and out.get("in_grace") is False


def test_a_bad_grace_is_a_clear_error(host):
    host.run(host.sign())
    out = host.run(grace="soon")
    assert out["failed"] and "grace: 'soon' is not a duration" in out["msg"]


def _plus(iso, seconds):
    from ansible_collections.distsec.framework.plugins.module_utils._evaluate.conditions import parse_time
    from ansible_collections.distsec.framework.plugins.module_utils._trust.canonical import format_time

    return format_time(parse_time(iso) + seconds)


def test_newer_serial_accepted_older_refused_as_rollback(host):
    first = host.sign("one.json")
    second = host.sign("two.json")
    assert host.run(second)["serial"] == 2
    out = host.run(first)
    assert out["failed"] and out["reason"] == "rollback"
    assert host.run()["serial"] == 2


def test_wrong_target_names_the_host(host):
    bundle = host.sign("web.json", "--target", "group:webservers")
    out = host.run(bundle)
    assert out["failed"] and out["reason"] == "wrong-target"
    assert "'ws1'" in out["detail"]
    assert host.run(bundle, groups=["webservers"])["serial"] == 1


def test_missing_inputs_are_clear_errors_not_rejections(host, tmp_path):
    out = host.run()
    assert out["failed"] and "no accepted bundle is stored" in out["msg"] and "reason" not in out
    out = host.run(tmp_path / "nope.json")
    assert out["failed"] and "does not exist" in out["msg"]
    out = host.run(host.sign(), trust_root=str(tmp_path / "no-root.json"))
    assert out["failed"] and "no trusted root" in out["msg"] and "reason" not in out
    out = host.run(host.sign(), now="yesterday")
    assert out["failed"] and out["msg"].startswith("now: ")
    assert not host.record.exists()


def test_policy_file_empty_string_writes_no_record(host):
    out = host.run(host.sign(), policy_file="")
    assert out["serial"] == 1 and not host.record.exists()


def test_without_cryptography_the_module_says_what_to_install(host, monkeypatch):
    monkeypatch.setattr(policy_verify, "HAS_CRYPTOGRAPHY", False)
    out = host.run(host.sign())
    assert out["failed"] and "cryptography" in out["msg"]
    assert host.snapshot() == {}


def test_updated_record_merges_and_clears_only_on_a_push():
    class Accepted:
        domain, serial, expires = "example.org", 3, "2030-01-01T00:00:00Z"

    record = {"hash": "sha256:x", "profile": "home", "last_rejection": {"reason": "expired"}}
    kept = policy_verify.updated_record(record, accepted=Accepted())
    assert kept["last_rejection"] == {"reason": "expired"} and kept["profile"] == "home" and kept["serial"] == 3
    cleared = policy_verify.updated_record(record, accepted=Accepted(), pushed=True)
    assert "last_rejection" not in cleared and cleared["hash"] == "sha256:x"
    assert record["last_rejection"] == {"reason": "expired"}, "the input is not modified"
