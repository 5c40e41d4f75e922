"""`distsec keys init|rotate`, `distsec bundle sign|verify`: files, modes, exit codes, messages."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from pathlib import Path

import pytest

from ansible_collections.distsec.framework.plugins.module_utils._trust import crypto
from ansible_collections.distsec.framework.plugins.module_utils._trust.canonical import canonical, loads_strict
from ansible_collections.distsec.framework.plugins.module_utils._trust.root import check_trusted_root, next_root
from ansible_collections.distsec.framework.plugins.plugin_utils._cli import main
from ansible_collections.distsec.framework.plugins.plugin_utils._trust_cli import parse_duration

TOP = Path(__file__).resolve().parents[4]
POLICY = str(TOP / "docs" / "examples" / "mail-client" / "policy.yml")  # domain example.org


def run(*argv):
    """main(argv) -> exit code, also for argparse's own usage errors."""
    try:
        return main([str(a) for a in argv])
    except SystemExit as exc:
        return exc.code


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def load(path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


@pytest.fixture(autouse=True)
def no_passphrase(monkeypatch):
    monkeypatch.delenv("DISTSEC_KEY_PASSPHRASE", raising=False)


@pytest.fixture
def keydir(tmp_path, capsys):
    path = tmp_path / "keys"
    assert run("keys", "init", "--dir", path, "--domain", "example.org") == 0
    capsys.readouterr()
    return path


def sign(keydir, out, *extra):
    return run("bundle", "sign", "--keys", keydir, "--expires", "7d", "--out", out, *extra, POLICY)


def verify(bundle, trust, state, *extra):
    return run("bundle", "verify", bundle, "--trust", trust, "--state", state, *extra)


# ------------------------------------------------------------------ keys init


def test_keys_init_files_modes_and_root(tmp_path, capsys):
    path = tmp_path / "kd"
    code = run(
        "keys", "init", "--dir", path, "--domain", "example.org",
        "--keys", 3, "--threshold", 2, "--policy-keys", 2, "--policy-threshold", 2,
    )  # fmt: skip
    assert code == 0
    assert "root v1, domain example.org" in capsys.readouterr().out
    assert mode(path) == 0o700 and mode(path / "keys") == 0o700
    names = sorted(os.listdir(path / "keys"))
    assert names == ["policy-1.key", "policy-2.key", "root-1.key", "root-2.key", "root-3.key"]
    for name in names:
        assert mode(path / "keys" / name) == 0o600
        assert (path / "keys" / name).read_text().startswith("-----BEGIN PRIVATE KEY-----")
    root = load(path / "root.json")
    assert mode(path / "root.json") == 0o644
    check_trusted_root(root)
    signed = root["signed"]
    expected = ("distsec-root", 1, "example.org", 1)
    assert (signed["_type"], signed["spec"], signed["domain"], signed["version"]) == expected
    assert len(signed["keys"]) == 5
    assert len(signed["roles"]["root"]["keyids"]) == 3 and signed["roles"]["root"]["threshold"] == 2
    assert len(signed["roles"]["policy"]["keyids"]) == 2 and signed["roles"]["policy"]["threshold"] == 2
    assert len(root["signatures"]) == 3
    assert load(path / "root-history" / "1.json") == root


def test_keys_init_defaults_one_key_each(keydir):
    roles = load(keydir / "root.json")["signed"]["roles"]
    assert [(len(r["keyids"]), r["threshold"]) for r in roles.values()] == [(1, 1), (1, 1)]


def test_keys_init_refuses_an_existing_key_directory(keydir, capsys):
    before = (keydir / "root.json").read_bytes()
    assert run("keys", "init", "--dir", keydir, "--domain", "example.org") == 1
    assert "is a key directory already" in capsys.readouterr().err
    assert (keydir / "root.json").read_bytes() == before


@pytest.mark.parametrize(
    "argv",
    [
        ["--domain", "example.org", "--keys", 2, "--threshold", 3],
        ["--domain", "example.org", "--threshold", 0],
        ["--domain", "example.org", "--policy-keys", 0],
        ["--domain", "bad domain"],
        ["--domain", "example.org", "--keys", "two"],
        [],
    ],
)
def test_keys_init_usage_errors(tmp_path, argv, capsys):
    assert run("keys", "init", "--dir", tmp_path / "kd", *argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "error:" in err
    assert not (tmp_path / "kd" / "root.json").exists()


def test_passphrase_from_the_environment_and_a_file(tmp_path, monkeypatch, capsys):
    path = tmp_path / "kd"
    monkeypatch.setenv("DISTSEC_KEY_PASSPHRASE", "correct horse")
    assert run("keys", "init", "--dir", path, "--domain", "example.org") == 0
    assert (path / "keys" / "root-1.key").read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    monkeypatch.delenv("DISTSEC_KEY_PASSPHRASE")
    capsys.readouterr()
    assert sign(path, tmp_path / "b.json") == 1
    assert "is encrypted: set DISTSEC_KEY_PASSPHRASE or use --passphrase-file" in capsys.readouterr().err
    wrong = tmp_path / "wrong"
    wrong.write_text("battery staple\n")
    assert sign(path, tmp_path / "b.json", "--passphrase-file", wrong) == 1
    assert "wrong passphrase" in capsys.readouterr().err
    right = tmp_path / "right"
    right.write_text("correct horse\n")
    assert sign(path, tmp_path / "b.json", "--passphrase-file", right) == 0


# ------------------------------------------------------------------ keys rotate


def test_keys_rotate_replaces_a_root_key(tmp_path, capsys):
    path = tmp_path / "kd"
    assert run("keys", "init", "--dir", path, "--domain", "example.org", "--keys", 2, "--threshold", 2) == 0
    v1 = load(path / "root.json")
    old_ids = v1["signed"]["roles"]["root"]["keyids"]
    code = run(
        "keys", "rotate", "--dir", path, "--add-root-keys", 1, "--remove-root-key", old_ids[0][:12],
        "--add-policy-keys", 1, "--policy-threshold", 2,
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    v2 = load(path / "root.json")
    assert load(path / "root-history" / "2.json") == v2
    assert next_root(v1, v2) == v2  # what a host at v1 checks
    roles = v2["signed"]["roles"]
    assert old_ids[0] not in roles["root"]["keyids"] and old_ids[1] in roles["root"]["keyids"]
    assert (len(roles["root"]["keyids"]), roles["root"]["threshold"]) == (2, 2)
    assert (len(roles["policy"]["keyids"]), roles["policy"]["threshold"]) == (2, 2)
    assert old_ids[0] not in v2["signed"]["keys"]
    (retired,) = os.listdir(path / "keys" / "retired")
    assert retired.startswith("root-")
    retired_key = crypto.load_private_key((path / "keys" / "retired" / retired).read_bytes())
    assert crypto.keyid(crypto.public_hex(retired_key)) == old_ids[0]
    assert "root-3.key" in os.listdir(path / "keys") and "policy-2.key" in os.listdir(path / "keys")
    assert mode(path / "keys" / "root-3.key") == 0o600
    assert "retired root key" in capsys.readouterr().out


def test_bundle_after_rotation_updates_a_host_at_v1(keydir, tmp_path, capsys):
    v1 = tmp_path / "v1.json"
    v1.write_bytes((keydir / "root.json").read_bytes())
    policy_ids = load(keydir / "root.json")["signed"]["roles"]["policy"]["keyids"]
    assert run("keys", "rotate", "--dir", keydir, "--add-policy-keys", 1, "--remove-policy-key", policy_ids[0]) == 0
    assert run("keys", "rotate", "--dir", keydir, "--add-root-keys", 1) == 0
    assert sign(keydir, tmp_path / "b.json") == 0
    assert len(load(tmp_path / "b.json")["roots"]) == 2
    capsys.readouterr()
    assert verify(tmp_path / "b.json", v1, tmp_path / "state") == 0
    assert capsys.readouterr().out == "1\n"
    assert load(tmp_path / "state" / "root.json")["signed"]["version"] == 3
    assert load(tmp_path / "state" / "state.json")["root_version"] == 3
    # --roots-since 3: a host still at v1 can no longer follow
    assert sign(keydir, tmp_path / "c.json", "--roots-since", 3) == 0
    assert load(tmp_path / "c.json")["roots"] == []
    capsys.readouterr()
    assert verify(tmp_path / "c.json", v1, tmp_path / "other-state") == 1
    assert capsys.readouterr().err.startswith("rejected: threshold-not-met: ")


@pytest.mark.parametrize(
    "argv",
    [
        ["--remove-root-key", "0123456789abcdef"],  # not in the role
        ["--remove-root-key", "xyz"],  # not a key id
        ["--remove-root-key", "ROOT0"],  # the only root key
        ["--threshold", 2],  # one key only
        ["--add-root-keys", -1],
    ],
)
def test_keys_rotate_usage_errors(keydir, argv, capsys):
    root_id = load(keydir / "root.json")["signed"]["roles"]["root"]["keyids"][0]
    argv = [root_id if a == "ROOT0" else a for a in argv]
    before = (keydir / "root.json").read_bytes()
    assert run("keys", "rotate", "--dir", keydir, *argv) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert (keydir / "root.json").read_bytes() == before
    assert not (keydir / "root-history" / "2.json").exists()


def test_keys_rotate_needs_the_old_root_keys(keydir, capsys):
    (keydir / "keys" / "root-1.key").unlink()
    assert run("keys", "rotate", "--dir", keydir, "--add-root-keys", 1) == 1
    assert "root v1 needs 1 root key(s) to sign; 0 found" in capsys.readouterr().err


def test_keys_rotate_without_a_key_directory(tmp_path, capsys):
    assert run("keys", "rotate", "--dir", tmp_path / "none") == 1
    assert "missing (create a key directory with `distsec keys init`)" in capsys.readouterr().err


# ------------------------------------------------------------------ bundle sign / verify


def test_sign_then_verify_prints_the_serial(keydir, tmp_path, capsys):
    out = tmp_path / "p.bundle.json"
    assert sign(keydir, out) == 0
    assert "serial 1" in capsys.readouterr().out
    assert mode(out) == 0o644
    assert out.read_bytes() == canonical(loads_strict(out.read_bytes()))  # canonical, no free byte
    state = tmp_path / "state"
    assert verify(out, keydir / "root.json", state) == 0
    assert capsys.readouterr().out == "1\n"
    assert load(state / "state.json")["serial"] == 1
    assert (state / "bundle.json").read_bytes() == out.read_bytes()
    assert verify(out, keydir / "root.json", state) == 0  # the same bundle again: unchanged
    assert capsys.readouterr().out == "1\n"


def test_serial_auto_increment_and_rollback(keydir, tmp_path, capsys):
    first, second = tmp_path / "1.json", tmp_path / "2.json"
    assert sign(keydir, first) == 0
    assert (keydir / "serial").read_text() == "1\n"
    assert sign(keydir, second) == 0
    assert (keydir / "serial").read_text() == "2\n"
    assert load(second)["signed"]["serial"] == 2
    state = tmp_path / "state"
    assert verify(second, keydir / "root.json", state) == 0
    capsys.readouterr()
    assert verify(first, keydir / "root.json", state) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines()[0] == "rejected: rollback: serial 1 is lower than the accepted serial 2"


def test_explicit_serial(keydir, tmp_path, capsys):
    assert sign(keydir, tmp_path / "b.json", "--serial", 41) == 0
    assert load(tmp_path / "b.json")["signed"]["serial"] == 41
    assert sign(keydir, tmp_path / "c.json") == 0
    assert load(tmp_path / "c.json")["signed"]["serial"] == 42
    assert sign(keydir, tmp_path / "d.json", "--serial", 7) == 0
    assert "not above the last signed serial 42" in capsys.readouterr().err
    assert (keydir / "serial").read_text() == "42\n"


def test_tampered_bundle_exits_1_with_the_reason_first(keydir, tmp_path, capsys):
    out = tmp_path / "b.json"
    assert sign(keydir, out) == 0
    doc = load(out)
    policy = base64.b64decode(doc["files"]["policy.json"]).replace(b'"example.org"', b'"example.com"')
    doc["files"]["policy.json"] = base64.b64encode(policy).decode()
    out.write_text(json.dumps(doc))
    capsys.readouterr()
    assert verify(out, keydir / "root.json", tmp_path / "state") == 1
    captured = capsys.readouterr()
    assert captured.err.splitlines()[0] == "rejected: hash-mismatch: file policy.json: sha256 differs from the manifest"
    assert captured.out == ""
    assert not (tmp_path / "state" / "state.json").exists()


def test_garbage_bundle_is_malformed(keydir, tmp_path, capsys):
    out = tmp_path / "b.json"
    out.write_bytes(b"\x00\x01not a bundle")
    assert verify(out, keydir / "root.json", tmp_path / "state") == 1
    assert capsys.readouterr().err.startswith("rejected: malformed: ")


def test_targets(keydir, tmp_path, capsys):
    out = tmp_path / "b.json"
    assert sign(keydir, out, "--target", "host:web1", "--target", "group:mail", "--target", "db1") == 0
    assert load(out)["signed"]["targets"] == {"hosts": ["db1", "web1"], "groups": ["mail"]}
    capsys.readouterr()
    assert verify(out, keydir / "root.json", tmp_path / "s1", "--host", "web2", "--groups", "x,y") == 1
    assert capsys.readouterr().err.startswith("rejected: wrong-target: host 'web2' (groups x, y)")
    assert verify(out, keydir / "root.json", tmp_path / "s2", "--host", "web2", "--groups", "x,mail") == 0
    assert verify(out, keydir / "root.json", tmp_path / "s3", "--host", "db1") == 0


def test_host_policy_targets_its_host(keydir, tmp_path):
    out = tmp_path / "b.json"
    assert sign(keydir, out, "--host", "mx1", "--group", "mail") == 0
    doc = load(out)
    assert doc["signed"]["targets"] == {"hosts": ["mx1"], "groups": []}
    policy = json.loads(base64.b64decode(doc["files"]["policy.json"]))
    assert policy["target"]["host"] == "mx1"


def test_policy_json_is_the_compiled_policy_with_signing_metadata(keydir, tmp_path):
    out = tmp_path / "b.json"
    assert sign(keydir, out, "--serial", 9) == 0
    doc = load(out)
    content = base64.b64decode(doc["files"]["policy.json"])
    assert doc["signed"]["files"]["policy.json"] == {
        "sha256": hashlib.sha256(content).hexdigest(),
        "length": len(content),
    }
    policy = json.loads(content)
    assert content == canonical(policy)
    assert policy["domain"] == "example.org"
    assert policy["metadata"] == {"serial": 9, "issued": doc["signed"]["issued"], "expires": doc["signed"]["expires"]}
    rest = {k: v for k, v in policy.items() if k != "hash"}
    expected = json.dumps(rest, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert policy["hash"] == "sha256:" + hashlib.sha256(expected).hexdigest()


def test_sign_refuses_another_domain(tmp_path, capsys):
    assert run("keys", "init", "--dir", tmp_path / "kd", "--domain", "other.org") == 0
    assert sign(tmp_path / "kd", tmp_path / "b.json") == 1
    assert "the policy is for domain 'example.org', the keys in" in capsys.readouterr().err
    assert not (tmp_path / "b.json").exists()
    assert not (tmp_path / "kd" / "serial").exists()


def test_sign_refuses_an_invalid_policy(keydir, tmp_path, capsys):
    bad = tmp_path / "bad.yml"
    bad.write_text("psl: 1\ndomain: example.org\nrulez: []\n")
    assert run("bundle", "sign", "--keys", keydir, "--expires", "1d", "--out", tmp_path / "b.json", bad) == 1
    err = capsys.readouterr().err
    assert "unknown key 'rulez'" in err and "nothing signed" in err
    assert not (tmp_path / "b.json").exists()


def test_expired_bundle(keydir, tmp_path, capsys):
    out = tmp_path / "b.json"
    assert run("bundle", "sign", "--keys", keydir, "--expires", "30m", "--out", out, POLICY) == 0
    capsys.readouterr()
    assert verify(out, keydir / "root.json", tmp_path / "s", "--now", "2999-01-01T00:00:00Z") == 1
    assert capsys.readouterr().err.startswith("rejected: expired: the bundle expired at ")


@pytest.mark.parametrize(
    "argv",
    [
        ["bundle", "sign", "--keys", "KD", "--expires", "7 days", "--out", "OUT", POLICY],
        ["bundle", "sign", "--keys", "KD", "--expires", "0h", "--out", "OUT", POLICY],
        ["bundle", "sign", "--keys", "KD", "--expires", "1d", "--out", "OUT", "--target", "rack:1", POLICY],
        ["bundle", "sign", "--keys", "KD", "--expires", "1d", "--out", "OUT", "--serial", -1, POLICY],
        ["bundle", "sign", "--keys", "KD", "--expires", "1d", POLICY],
        ["bundle", "verify", "OUT", "--trust", "KD/root.json", "--state", "ST", "--now", "soon"],
        ["bundle", "verify", "OUT", "--state", "ST"],
        ["bundle", "frobnicate"],
    ],
)
def test_usage_errors_exit_2(keydir, tmp_path, argv, capsys):
    argv = [str(a).replace("KD", str(keydir)).replace("OUT", str(tmp_path / "o.json")) for a in argv]
    argv = [a.replace("ST", str(tmp_path / "st")) for a in argv]
    assert run(*argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "error:" in err
    assert not (tmp_path / "o.json").exists()


def test_verify_problems_that_are_not_rejections(keydir, tmp_path, capsys):
    assert verify(tmp_path / "missing.json", keydir / "root.json", tmp_path / "s") == 1
    assert "cannot read" in capsys.readouterr().err
    assert sign(keydir, tmp_path / "b.json") == 0
    capsys.readouterr()
    assert verify(tmp_path / "b.json", tmp_path / "no-root.json", tmp_path / "s") == 1
    assert capsys.readouterr().err.startswith("distsec: error: no trusted root")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("7d", 604800), ("12h", 43200), ("30m", 1800), ("45s", 45), ("2w", 1209600), ("1d12h", 129600)],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "7", "d", "7days", "-1d", "0m", "1.5h", "7d "])
def test_parse_duration_refuses(text):
    with pytest.raises(ValueError):
        parse_duration(text)
