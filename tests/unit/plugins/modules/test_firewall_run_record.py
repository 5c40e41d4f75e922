"""distsec.framework.firewall's run record: compliance, drift found and fixed, written into the policy record.

Real ansible-playbook, real nft inside a throwaway network namespace, commit-confirmed off (a local run).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ansible_collections.distsec.framework.plugins.plugin_utils._psl.api import compile_paths

BIN = Path(sys.executable).parent
TOP = Path(__file__).resolve().parents[4]

POLICY = """\
psl: 1
domain: example.org
defaults: {version_scheme: dpkg}
objects:
  addresses:
    admin_net: [2001:db8:ff::/64, 198.51.100.0/28]
  services:
    web: [{proto: tcp, ports: [80]}]
management: {from: admin_net}
checks:
  - id: libssl-patched
    description: The TLS library has the fix
    severity: critical
    package: {name: libssl3, at_least: "3.0.15-1"}
rules:
  - {id: web-in, description: Web, direction: in, service: web, action: accept}
"""


def _status(version):
    return {"schema_version": 1, "packages": {"libssl3": {"version": version, "scheme": "dpkg"}}}


@pytest.fixture
def compiled(tmp_path):
    path = tmp_path / "policy.yml"
    path.write_text(POLICY)
    return compile_paths(str(path))["compiled"]


@pytest.fixture
def play(netns, tmp_path):
    if not (BIN / "ansible-playbook").exists():
        pytest.skip("ansible-playbook is installed by tools/venv.sh; run the tests from .venv")

    def _play(args, *, check=False):
        args = {
            "backend": "nftables",
            "confirm_timeout": 0,
            "management_networks": ["198.51.100.0/28"],
            "state_dir": str(tmp_path / "state"),
            "policy_file": str(tmp_path / "policy.json"),
            **args,
        }
        book = tmp_path / "play.yml"
        task = {"name": "enforce", "distsec.framework.firewall": args, "register": "out"}
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
        argv += ["--check"] * check
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False, timeout=120)
        report = json.loads(proc.stdout)
        return report["plays"][0]["tasks"][0]["hosts"]["localhost"]

    return _play


def _record(tmp_path):
    path = tmp_path / "policy.json"
    return json.loads(path.read_text()) if path.exists() else None


@pytest.mark.netns
def test_compliance_and_the_run_are_recorded_on_every_real_run(play, compiled, tmp_path, run, netns):
    args = {
        "compiled": compiled,
        "status": _status("3.0.14-1"),
        "run": {"host": "ws2", "source": "stored", "serial": 7},
    }
    checked = play(args, check=True)
    assert checked["changed"] is True
    assert checked["compliance"]["compliant"] is False and checked["compliance"]["failed"] == 1
    assert checked["run"]["mode"] == "audit" and checked["run"]["profile"]["name"] == "isolated"
    assert _record(tmp_path) is None, "check mode writes no record"

    applied = play(args)
    assert applied["changed"] is True and applied["profile"]["name"] == "isolated"
    record = _record(tmp_path)
    assert record["compliant"] is False
    assert [c["id"] for c in record["checks"] if not c["passed"]] == ["libssl-patched"]
    last = record["last_run"]
    assert last["host"] == "ws2" and last["mode"] == "enforce" and last["result"] == "ok"
    assert last["policy"]["source"] == "stored" and last["policy"]["serial"] == 7
    assert last["firewall"]["applied"] is True and last["changed"] is True
    assert "checks" not in last["compliance"], "the checks are kept once, beside last_run"

    # patched: the next run goes home, and the record says so
    fixed = play({**args, "status": _status("3.0.15-1")})
    assert fixed["changed"] is True and fixed["profile"]["name"] == "home"
    assert _record(tmp_path)["compliant"] is True

    # nothing to change: still a record of the run, and changed stays false
    before = _record(tmp_path)["last_run"]["at"]
    again = play({**args, "status": _status("3.0.15-1")})
    assert again["changed"] is False
    record = _record(tmp_path)
    assert record["last_run"]["changed"] is False and record["last_run"]["at"] >= before


@pytest.mark.netns
def test_drift_is_found_in_an_audit_and_fixed_by_a_run(play, compiled, tmp_path, run, netns):
    args = {"compiled": compiled, "status": _status("3.0.15-1"), "run": {"host": "ws1"}}
    assert play(args)["changed"] is True
    rc, _out, err = run([*netns, "nft", "add", "rule", "inet", "distsec", "input", "tcp", "dport", "9999", "accept"])
    assert rc == 0, err

    audit = play(args, check=True)
    assert audit["drift"] is True
    assert audit["run"]["drift"] == {"found": True, "fixed": False, "rules": ["input: ?: tcp dport 9999 accept"]}
    assert _record(tmp_path)["last_run"]["drift"]["found"] is False, "an audit in check mode writes nothing"

    fixed = play(args)
    assert fixed["run"]["drift"] == {"found": True, "fixed": True, "rules": ["input: ?: tcp dport 9999 accept"]}
    assert _record(tmp_path)["last_run"]["drift"]["fixed"] is True
    rc, out, _err = run([*netns, "nft", "list", "table", "inet", "distsec"])
    assert "9999" not in out
