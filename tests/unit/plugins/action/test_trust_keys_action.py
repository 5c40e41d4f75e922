"""distsec.framework.trust_keys (action): `distsec keys init` made idempotent.

keys_init() in-process, and the action through a real ansible-playbook (check mode, idempotence).
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest
from play_helpers import run_play

from ansible_collections.distsec.framework.plugins.action.trust_keys import KeysError, keys_init
from ansible_collections.distsec.framework.plugins.plugin_utils._trust_cli import KeyDir

BIN = Path(sys.executable).parent
TOP = Path(__file__).resolve().parents[4]
SECRET = "s3cret"  # noqa: S105 - a test passphrase


@pytest.fixture(autouse=True)
def no_passphrase(monkeypatch):
    monkeypatch.delenv("DISTSEC_KEY_PASSPHRASE", raising=False)


def test_creates_then_keeps(tmp_path):
    keys = tmp_path / "keys"
    first = keys_init({"dir": str(keys), "domain": "example.org"})
    assert first["changed"] is True and first["root_version"] == 1
    assert first["msg"] == f"created {keys}/root.json (root v1, domain example.org)"
    root = KeyDir(str(keys)).root()["signed"]
    assert root["domain"] == "example.org" and root["roles"]["root"]["threshold"] == 1
    assert stat.S_IMODE(os.stat(keys / "keys").st_mode) == 0o700
    before = {p: p.read_bytes() for p in keys.rglob("*") if p.is_file()}
    second = keys_init({"dir": str(keys), "domain": "example.org", "keys": 3})
    assert second["changed"] is False and second["root_version"] == 1
    assert {p: p.read_bytes() for p in keys.rglob("*") if p.is_file()} == before


def test_counts_thresholds_and_passphrase(tmp_path):
    keys = tmp_path / "keys"
    args = {"dir": str(keys), "domain": "example.org", "keys": "3", "threshold": 2, "policy_keys": 2}
    out = keys_init({**args, "policy_threshold": 2, "passphrase": SECRET})
    assert out["changed"] is True
    assert "DISTSEC_KEY_PASSPHRASE" not in os.environ
    roles = KeyDir(str(keys)).root()["signed"]["roles"]
    assert (len(roles["root"]["keyids"]), roles["root"]["threshold"]) == (3, 2)
    assert (len(roles["policy"]["keyids"]), roles["policy"]["threshold"]) == (2, 2)
    for path in (keys / "keys").glob("*.key"):
        assert b"ENCRYPTED PRIVATE KEY" in path.read_bytes()
    assert len(KeyDir(str(keys)).key_files(SECRET.encode())) == 5


def test_another_domain_is_refused(tmp_path):
    keys = tmp_path / "keys"
    keys_init({"dir": str(keys), "domain": "example.org"})
    with pytest.raises(KeysError) as exc:
        keys_init({"dir": str(keys), "domain": "other.org"})
    assert "is the trust root of domain 'example.org', not 'other.org'" in str(exc.value)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"domain": "bad domain"}, "is not a domain name"),
        ({"threshold": 2}, "threshold: 2 is not between 1 and the number of keys (1)"),
        ({"policy_keys": 0}, "policy_keys: expected 1 to 32, got 0"),
        ({"root_keys": "many"}, "root_keys must be an integer"),
    ],
)
def test_bad_arguments(tmp_path, args, message):
    with pytest.raises(KeysError) as exc:
        keys_init({"dir": str(tmp_path / "keys"), "domain": "example.org", **args}, check=True)
    assert message in str(exc.value)
    assert not (tmp_path / "keys").exists()


def test_check_mode_writes_nothing(tmp_path):
    out = keys_init({"dir": str(tmp_path / "keys"), "domain": "example.org"}, check=True)
    assert out["changed"] is True and not (tmp_path / "keys").exists()


def test_action_in_a_playbook(tmp_path):
    keys = tmp_path / "keys"
    task = {"distsec.framework.trust_keys": {"dir": str(keys), "domain": "example.org", "passphrase": SECRET}}
    (checked,) = run_play(tmp_path, [task], check=True)
    assert checked["changed"] is True and not keys.exists()
    first, second = run_play(tmp_path, [task, task])
    assert first["changed"] is True and second["changed"] is False
    assert second["root"] == str(keys / "root.json") and second["root_version"] == 1
    assert SECRET not in json.dumps(first)
    bad = {"distsec.framework.trust_keys": {"dir": str(keys), "domain": "other.org"}, "ignore_errors": True}
    (refused,) = run_play(tmp_path, [bad])
    assert refused["failed"] is True and "not 'other.org'" in refused["msg"]
