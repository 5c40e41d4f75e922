"""distsec.framework.report (action) run by a real ansible-playbook over a fleet of local hosts.

ws1, ws2, ws4 and ws5 run locally and get their facts by set_fact, as the enforce role sets them;
ws3 is really unreachable (ssh to a closed port), so it has no facts at all.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from report_helpers import entries

from ansible_collections.distsec.framework.plugins.plugin_utils._cli import main as cli

BIN = Path(sys.executable).parent
TOP = Path(__file__).resolve().parents[4]


def run_fleet(tmp_path, report_tasks, *, check=False):
    """(the play's stdout before the JSON, {task name: the first host's result}) of a fleet play."""
    if not (BIN / "ansible-playbook").exists():
        pytest.skip("ansible-playbook is installed by tools/venv.sh")
    facts = {e["host"]: {"status": e["status"], "run": e["run"]} for e in entries() if e["host"] != "ws3"}
    local = f"ansible_connection=local ansible_python_interpreter={sys.executable}"
    unreachable = (
        "ansible_connection=ssh ansible_host=127.0.0.1 ansible_port=1 ansible_ssh_common_args='-o ConnectTimeout=3'"
    )
    (tmp_path / "inventory").write_text(
        "[fleet]\n"
        + "".join(f"{h} {local}\n" for h in ("ws1", "ws2"))
        + f"ws3 {unreachable}\n"
        + "".join(f"{h} {local}\n" for h in ("ws4", "ws5"))
        + "[other]\noutsider ansible_connection=local\n"
    )
    play = {
        "hosts": "fleet",
        "gather_facts": False,
        "vars_files": [str(tmp_path / "facts.json")],
        "tasks": [
            {"name": "reach", "ansible.builtin.ping": {}},
            {
                "name": "facts",
                "ansible.builtin.set_fact": {
                    "distsec_status": "{{ facts_by_host[inventory_hostname].status }}",
                    "distsec_run": "{{ facts_by_host[inventory_hostname].run }}",
                },
            },
            *report_tasks,
        ],
    }
    (tmp_path / "facts.json").write_text(json.dumps({"facts_by_host": facts}))
    book = tmp_path / "play.yml"
    book.write_text(yaml.safe_dump([play], sort_keys=False))
    env = dict(
        os.environ,
        ANSIBLE_STDOUT_CALLBACK="json",
        ANSIBLE_COLLECTIONS_PATH=str(TOP / ".ansible" / "collections"),
        ANSIBLE_LOCALHOST_WARNING="false",
        ANSIBLE_HOST_KEY_CHECKING="false",
        ANSIBLE_NOCOLOR="1",
    )
    argv = [str(BIN / "ansible-playbook"), "-i", str(tmp_path / "inventory"), str(book)] + ["--check"] * check
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False, timeout=180)
    start = 0 if proc.stdout.startswith("{\n") else proc.stdout.find("\n{\n") + 1
    assert start > 0 or proc.stdout.startswith("{\n"), proc.stdout + proc.stderr
    data = json.loads(proc.stdout[start:])
    results = {}
    for task in data["plays"][0]["tasks"]:
        hosts = task["hosts"]
        results[task["task"]["name"]] = hosts.get("ws1") or next(iter(hosts.values()))
    return proc.stdout[:start], results, proc.returncode


def _report(name, **args):
    return {"name": name, "distsec.framework.report": args, "run_once": True, "ignore_errors": True}


def test_the_play_reports_every_host_and_fails_on_conditions_after_writing(tmp_path):
    dest = tmp_path / "reports"
    shown, results, rc = run_fleet(
        tmp_path,
        [
            _report("report", dest=str(dest), fail_on=["drift", "failed"], title="Fleet"),
            _report("stranger", dest=str(tmp_path / "x"), hosts=["ws1", "nosuchhost", "ghost"]),
            _report("bad option", dest=str(tmp_path / "x"), formats=["pdf"]),
        ],
    )
    assert rc != 0
    assert results["reach"].get("unreachable") is None, "ws1 is reachable"
    report = results["report"]
    assert report["failed"] is True and report["changed"] is False
    assert report["msg"] == (
        "fail_on (drift, failed): ws3: unreachable; ws4: run failed: Apply the policy: nft -f failed: Error: Could "
        "not process rule: No such file or directory; ws5: firewall drift found in audit mode (2 rule change(s)); "
        f"the report is in {dest}"
    )
    assert report["reasons"][0] == "ws3: unreachable"
    assert report["totals"]["hosts"] == 5 and report["totals"]["unreachable"] == 1
    assert report["paths"] == {
        "html": str(dest / "report.html"),
        "json": str(dest / "report.json"),
        "junit": str(dest / "report.junit.xml"),
        "table": str(dest / "report.txt"),
    }
    assert "ws2: check libssl-patched failed (critical) -> isolated" in report["problems"]
    for path in report["paths"].values():
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    hosts = sorted(os.listdir(dest / "hosts"))
    assert hosts == ["ws1.json", "ws2.json", "ws3.json", "ws4.json", "ws5.json"]
    assert stat.S_IMODE(os.stat(dest / "hosts" / "ws1.json").st_mode) == 0o640
    written = {e["host"]: e for e in (json.loads((dest / "hosts" / h).read_text()) for h in hosts)}
    expected = {e["host"]: e for e in entries()}
    assert written["ws3"] == {"host": "ws3", "status": None, "run": None, "reachable": False}
    assert written["ws2"] == expected["ws2"], "the facts go through Ansible unchanged"

    # the table is printed in the play's output, as the CLI prints it from the same files
    table = (dest / "report.txt").read_text()
    assert table.startswith("Fleet: corp.example.org, generated ")
    assert table.rstrip("\n") in shown
    assert cli(["report", "build", str(dest), "--out", str(tmp_path / "again"), "--title", "Fleet"]) == 0
    again = json.loads((tmp_path / "again" / "report.json").read_text())
    first = json.loads((dest / "report.json").read_text())
    assert {**again, "generated_at": None} == {**first, "generated_at": None}

    assert results["stranger"]["failed"] is True
    assert results["stranger"]["msg"] == "hosts not in the inventory (no hostvars): nosuchhost, ghost"
    assert results["bad option"]["failed"] is True
    assert "unknown format 'pdf'" in results["bad option"]["msg"]


def test_check_mode_still_writes_the_report(tmp_path):
    dest = tmp_path / "audit"
    shown, results, _rc = run_fleet(
        tmp_path, [_report("report", dest=str(dest), formats=["json"], hosts=["ws1", "ws2"])], check=True
    )
    report = results["report"]
    assert not report.get("failed") and report["changed"] is False
    assert report["paths"] == {"html": None, "json": str(dest / "report.json"), "junit": None, "table": None}
    assert sorted(os.listdir(dest)) == ["hosts", "report.json"]
    assert report["msg"] == (
        f"report written to {dest}: 2 host(s): 1 compliant, 1 non-compliant, drift on 1, 0 failed, 0 unreachable"
    )
    assert "HOST" not in shown, "no table unless asked for"
