"""The lockout guard: the management path must stay open in every profile."""

from __future__ import annotations

from pathlib import Path

from ansible_collections.distsec.framework.plugins.module_utils._evaluate.decide import decide
from ansible_collections.distsec.framework.plugins.module_utils._evaluate.guard import management_problems
from ansible_collections.distsec.framework.plugins.plugin_utils._psl.compiler import compile_policy, load_policy

TOP = Path(__file__).resolve().parents[4]
MAIL = (TOP / "docs" / "examples" / "mail-client" / "policy.yml").read_text()


def _compiled(tmp_path, extra=""):
    path = tmp_path / "policy.yml"
    path.write_text(MAIL + extra)
    compiled = compile_policy(load_policy([str(path)]), host="ws1", groups=["workstations"])
    return compiled, decide(compiled, {})


def test_admin_network_keeps_ssh_in_every_profile(tmp_path):
    compiled, decision = _compiled(tmp_path)
    assert management_problems(compiled, decision, sources=["2001:db8:ff::10"]) == []


def test_a_controller_outside_the_admin_network_is_locked_out_everywhere(tmp_path):
    compiled, decision = _compiled(tmp_path)
    problems = management_problems(compiled, decision, sources=["2001:db8:77::1"], host_addresses=["2001:db8:1::5/64"])
    assert len(problems) == len(compiled["profiles"])
    assert problems[0].startswith("profile foreign: a new connection from 2001:db8:77::1 to port 22 would be dropped")


def test_turning_the_management_baseline_off_is_caught(tmp_path):
    extra = "\nbaseline:\n  management: false\n  acknowledge_risk: lab hosts with console access\n"
    compiled, decision = _compiled(tmp_path, extra)
    problems = management_problems(compiled, decision, sources=["2001:db8:ff::10"], profiles=["home"])
    assert problems == [
        "profile home: a new connection from 2001:db8:ff::10 to port 22 would be dropped by the profile's "
        "default (drop); admins would be locked out"
    ]


def test_management_on_another_port_is_checked_on_that_port(tmp_path):
    extra = "\n".join(
        [
            "",
            "  - id: unrelated",
            "    description: keeps the service object used",
            "    direction: out",
            "    service: ssh_alt",
            "    action: accept",
        ]
    )
    policy = MAIL.replace("management:\n  from: admin_net", "management:\n  from: admin_net\n  service: ssh_alt")
    policy = policy.replace("  groups:\n", "    ssh_alt: {proto: tcp, ports: [2222]}\n  groups:\n", 1)
    policy = policy.replace("\nrules:\n", "\nrules:" + extra + "\n", 1)
    path = tmp_path / "policy.yml"
    path.write_text(policy)
    compiled = compile_policy(load_policy([str(path)]), host="ws1", groups=["workstations"])
    decision = decide(compiled, {})
    assert management_problems(compiled, decision, sources=["2001:db8:ff::10"], port=2222) == []
    assert len(management_problems(compiled, decision, sources=["2001:db8:ff::10"], port=22)) == len(
        compiled["profiles"]
    )
