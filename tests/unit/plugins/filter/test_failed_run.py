"""The failed_run filter: the enforce role's record of a failed run (real ansible-playbook for the rescue)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from play_helpers import run_play

from ansible_collections.distsec.framework.plugins.filter.failed_run import failed_run
from ansible_collections.distsec.framework.plugins.module_utils._enforce.record import RUN_SCHEMA, run_record


def test_the_tasks_own_record_is_kept():
    own = run_record(host="ws1", mode="enforce", result="failed", error="rolled back")
    assert failed_run({"msg": "x", "run": own}, host="ws1", task="t") == own


def test_a_record_is_built_from_the_result():
    result = {
        "msg": "nft -f failed",
        "changed": True,
        "profile": {"name": "home"},
        "compliance": {"compliant": False, "passed": 1, "failed": 1, "checks": []},
        "drift": True,
        "applied": False,
        "run": {"schema": "something else"},
    }
    policy = {"source": "stored", "serial": 7, "rejected": None}
    record = failed_run(result, host="ws2", task="Enforce it", check_mode=True, policy=policy)
    assert record["schema"] == RUN_SCHEMA and record["host"] == "ws2"
    assert record["mode"] == "audit" and record["result"] == "failed"
    assert record["error"] == "Enforce it: nft -f failed"
    assert record["changed"] is True and record["policy"] == policy
    assert record["profile"] == {"name": "home"} and record["compliance"]["failed"] == 1
    assert record["drift"] == {"found": True, "fixed": False, "rules": []}
    assert record["firewall"] == {"applied": False}


def test_a_bare_failure_gets_the_defaults():
    record = failed_run({}, host="ws3")
    assert record["mode"] == "enforce" and record["error"] == "?: failed"
    assert record["compliance"] == {"compliant": None, "passed": 0, "failed": 0, "checks": []}
    assert record["firewall"] == {} and record["drift"]["found"] is False


def test_not_a_result_is_a_clear_error():
    with pytest.raises(AnsibleFilterError, match="expected the failed task's result"):
        failed_run("boom", host="ws1")


def test_in_a_rescue_as_the_enforce_role_uses_it(tmp_path):
    tasks = [
        {
            "block": [{"name": "Verify the pushed bundle", "ansible.builtin.fail": {"msg": "rejected: bad-signature"}}],
            "rescue": [
                {
                    "ansible.builtin.set_fact": {
                        "distsec_run": "{{ ansible_failed_result | distsec.framework.failed_run("
                        "host=inventory_hostname, task=ansible_failed_task.name, check_mode=ansible_check_mode,"
                        " policy={'source': 'pushed', 'serial': none, 'rejected': none}) }}"
                    }
                },
                {"ansible.builtin.debug": {"var": "distsec_run"}},
            ],
        }
    ]
    results = run_play(tmp_path, tasks, check=True)
    record = results[-1]["distsec_run"]
    assert record["schema"] == RUN_SCHEMA and record["host"] == "localhost"
    assert record["mode"] == "audit" and record["result"] == "failed"
    assert record["error"] == "Verify the pushed bundle: rejected: bad-signature"
    assert record["policy"] == {"source": "pushed", "serial": None, "rejected": None}
