"""distsec.framework.nft_table run by real ansible-playbook inside a throwaway network namespace.

The community.crypto pattern: check mode, real run, idempotent check, idempotent run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

BIN = Path(sys.executable).parent
TOP = Path(__file__).resolve().parents[4]

BODY = """chain input {
  type filter hook input priority filter; policy accept;
  tcp dport 8081 counter drop comment "deny-8081"
}
"""


@pytest.fixture
def play(netns, tmp_path):
    if not (BIN / "ansible-playbook").exists():
        pytest.skip("ansible-playbook is installed by tools/venv.sh; run the tests from .venv")

    def _play(args, *, check=False, diff=False):
        args = {"name": "distsec_ut", "state_dir": str(tmp_path / "state"), **args}
        book = tmp_path / "play.yml"
        task = {"name": "table", "distsec.framework.nft_table": args, "register": "out"}
        book.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": [task]}]))
        env = dict(
            os.environ,
            ANSIBLE_STDOUT_CALLBACK="json",
            ANSIBLE_LOCALHOST_WARNING="false",
            ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
            ANSIBLE_PYTHON_INTERPRETER=sys.executable,
            PATH=f"{BIN}:{os.environ['PATH']}",
            ANSIBLE_COLLECTIONS_PATH=str(TOP / ".ansible" / "collections"),
        )
        argv = [*netns, str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(book)]
        argv += ["--check"] * check + ["--diff"] * diff
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False, timeout=120)
        report = json.loads(proc.stdout)
        return report["plays"][0]["tasks"][0]["hosts"]["localhost"]

    return _play


def _kernel(run, netns):
    rc, out, _err = run([*netns, "nft", "list", "ruleset"])
    assert rc == 0
    return out


@pytest.mark.netns
def test_check_run_idempotent_check_idempotent_run(play, run, netns):
    checked = play({"content": BODY}, check=True, diff=True)
    assert checked["changed"] is True and checked["reason"] == "table is absent"
    assert "deny-8081" in checked["diff"]["after"]
    assert _kernel(run, netns) == "", "check mode must not touch the kernel"

    applied = play({"content": BODY}, diff=True)
    assert applied["changed"] is True
    assert 'comment "deny-8081"' in applied["listing"]
    assert "deny-8081" in _kernel(run, netns)

    again_check = play({"content": BODY}, check=True)
    assert again_check["changed"] is False
    again = play({"content": BODY})
    assert again["changed"] is False and again["reason"] == "table is up to date"


@pytest.mark.netns
def test_drift_is_reported_by_check_mode_and_undone(play, run, netns):
    play({"content": BODY})
    assert run([*netns, "nft", "add", "rule", "inet", "distsec_ut", "input", "tcp", "dport", "9", "accept"])[0] == 0
    drifted = _kernel(run, netns)
    report = play({"content": BODY}, check=True, diff=True)
    assert report["changed"] is True and report["reason"].startswith("drift")
    assert "dport 9" in report["diff"]["before"]
    assert _kernel(run, netns) == drifted, "check mode must leave the drift in place"
    fixed = play({"content": BODY})
    assert fixed["changed"] is True and "dport 9" not in _kernel(run, netns)


@pytest.mark.netns
def test_bad_content_fails_cleanly_and_keeps_the_last_good_table(play, run, netns):
    play({"content": BODY})
    good = _kernel(run, netns)
    for check in (True, False):
        failed = play({"content": BODY.replace("8081", "70000")}, check=check)
        assert failed.get("failed") is True
        assert failed["msg"].startswith("inet distsec_ut: nft -c rejected the ruleset; nothing was changed")
        assert "70000" in failed["msg"] and "Traceback" not in failed["msg"]
        assert _kernel(run, netns) == good


@pytest.mark.netns
def test_missing_content_and_bad_name_are_parameter_errors(play):
    missing = play({"state": "present"})
    assert missing.get("failed") is True and "content" in missing["msg"]
    bad = play({"name": "9lives", "content": BODY})
    assert bad.get("failed") is True and "invalid nftables table name '9lives'" in bad["msg"]
