"""distsec.framework.psl (action) and the psl_compile filter, run by real ansible-playbook."""

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
MAIL = str(TOP / "docs" / "examples" / "mail-client" / "policy.yml")


def _play(tmp_path, tasks, *, check=False):
    if not (BIN / "ansible-playbook").exists():
        pytest.skip("ansible-playbook is installed by tools/venv.sh")
    (tmp_path / "inv.ini").write_text("[workstations]\nws1 ansible_connection=local\n")
    book = tmp_path / "play.yml"
    book.write_text(yaml.safe_dump([{"hosts": "ws1", "gather_facts": False, "tasks": tasks}]))
    env = dict(
        os.environ,
        ANSIBLE_STDOUT_CALLBACK="json",
        ANSIBLE_COLLECTIONS_PATH=str(TOP / ".ansible" / "collections"),
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
    )
    argv = [str(BIN / "ansible-playbook"), "-i", str(tmp_path / "inv.ini"), str(book)] + ["--check"] * check
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False, timeout=120)
    report = json.loads(proc.stdout)
    return [t["hosts"]["ws1"] for t in report["plays"][0]["tasks"]]


def test_compile_with_preview_and_filter_agree(tmp_path):
    dest = tmp_path / "compiled.json"
    status = {"packages": {"thunderbird": {"version": "1:102.0-1"}}}
    results = _play(
        tmp_path,
        [
            {"distsec.framework.psl": {"src": MAIL, "status": status, "dest": str(dest)}, "register": "out"},
            {"ansible.builtin.set_fact": {"f": "{{ '" + MAIL + "' | distsec.framework.psl_compile(host=inventory_hostname, groups=group_names) }}"}},
            {"ansible.builtin.assert": {"that": ["f.hash == out.hash"]}},
            {"distsec.framework.psl": {"src": MAIL, "status": status, "dest": str(dest)}},
        ],
    )  # fmt: skip
    first, _fact, agree, second = results
    assert first["changed"] is True and first["preview"]["profile"] == "home"
    assert "block-mail-old-client" in first["preview"]["active_rules"]
    assert first["compiled"]["target"]["groups"] == ["workstations"]
    assert agree.get("failed") is not True
    assert second["changed"] is False, "same compiled policy: dest is not rewritten"
    assert json.loads(dest.read_text())["hash"] == first["hash"]


def test_check_mode_does_not_write_dest(tmp_path):
    dest = tmp_path / "compiled.json"
    (result,) = _play(tmp_path, [{"distsec.framework.psl": {"src": MAIL, "dest": str(dest)}}], check=True)
    assert result["changed"] is True and not dest.exists()


def test_policy_tests_and_invalid_policies_fail_the_task(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "psl: 1\ndomain: example.org\nrules:\n  - id: r1\n    description: x\n    direction: up\n    action: accept\n"
    )
    tested, invalid = _play(
        tmp_path,
        [
            {"distsec.framework.psl": {"src": MAIL, "command": "test"}, "ignore_errors": True},
            {"distsec.framework.psl": {"src": str(bad)}, "ignore_errors": True},
        ],
    )
    assert tested.get("failed") is not True and all(t["passed"] for t in tested["tests"])
    assert invalid["failed"] is True and invalid["msg"] == "invalid PSL policy"
    assert invalid["problems"] == [f"{bad}:6:16: error: 'up' is not one of: in, out, forward"]
