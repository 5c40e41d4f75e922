"""Regression tests from the security review: nothing in a policy can widen a rendered rule."""

from __future__ import annotations

import pytest

from ansible_collections.distsec.framework.plugins.module_utils._apply.nftables import Nft, TableManager, TableRef
from ansible_collections.distsec.framework.plugins.module_utils._evaluate.decide import decide
from ansible_collections.distsec.framework.plugins.module_utils._evaluate.guard import management_problems
from ansible_collections.distsec.framework.plugins.module_utils._render.nftables import RenderError, _quote, render
from ansible_collections.distsec.framework.plugins.module_utils._status.all import Context, gather
from ansible_collections.distsec.framework.plugins.plugin_utils._psl.compiler import compile_policy, load_policy
from ansible_collections.distsec.framework.plugins.plugin_utils._psl.problems import PslError

HEAD = "psl: 1\ndomain: example.org\n"


def _policy(tmp_path, text):
    path = tmp_path / "p.yml"
    path.write_text(HEAD + text)
    return load_policy([str(path)])


def _rule(**extra):
    rule = {"id": "r", "description": "d", "direction": "in", "action": "drop", "from": None, "to": None,
            "protocols": None, "family": None, "interface": None, "state": None, "fields": None, "owner": None,
            "log": None, "when": None, "if_unknown": False}  # fmt: skip
    rule.update(extra)
    return rule


COMPILED = {
    "objects": {"addresses": {}},
    "profiles": {"home": {"default": {"in": "drop", "out": "accept", "forward": "drop"}}},
}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            'rules:\n  - {id: r, description: d, direction: in, action: drop, fields: {next_header: "tcp\\n\\tcounter accept #"}}\n',
            "is not one of: tcp",
        ),
        (
            'rules:\n  - {id: r, description: d, direction: in, action: accept, fields: {ttl: "64-64\\n"}}\n',
            "does not have the required form",
        ),
        (
            "rules:\n  - {id: r, description: d, direction: in, action: accept, fields: {ttl: 300}}\n",
            "300 is above the maximum 255",
        ),
        (
            'rules:\n  - {id: r, description: d, direction: in, action: accept, interface: "lab*"}\n',
            "an interface name of at most 15",
        ),
        (
            "rules:\n  - {id: r, description: d, direction: in, action: accept, interface: averyveryverylongname}\n",
            "interface name",
        ),
        (
            'rules:\n  - {id: r, description: d, direction: in, action: drop, log: {prefix: "pfx $foo"}}\n',
            "without quotes, backslashes, $",
        ),
    ],
)
def test_the_language_refuses_values_that_could_change_the_ruleset(tmp_path, text, message):
    with pytest.raises(PslError) as caught:
        _policy(tmp_path, text)
    assert message in str(caught.value.problems.errors[0])


@pytest.mark.parametrize(
    "fields",
    [{"next_header": "tcp\n\tcounter accept #"}, {"ttl": "64-64\n"}, {"hop_limit": "1 accept"}, {"dscp": 99 * 9}],
)
def test_the_renderer_refuses_them_too(fields):
    with pytest.raises(RenderError):
        render(COMPILED, "home", [_rule(fields=fields)])
    with pytest.raises(RenderError):
        render(COMPILED, "home", [_rule(interface="lab*")])


def test_quoting_neutralises_nft_syntax():
    assert _quote('a"b\\c$d\ne') == '"a_b_c_d_e"'


@pytest.mark.netns
def test_similar_object_names_get_separate_sets(tmp_path, run, netns):
    policy = _policy(
        tmp_path,
        "objects:\n  addresses:\n    a-b: [192.0.2.10]\n    a_b: [198.51.100.0/24]\n    a.b: [203.0.113.7]\n"
        "rules:\n"
        "  - {id: r1, description: d, direction: in, from: a-b, proto: tcp, ports: [443], action: accept}\n"
        "  - {id: r2, description: d, direction: in, from: a_b, proto: tcp, ports: [80], action: accept}\n"
        "  - {id: r3, description: d, direction: in, from: a.b, proto: tcp, ports: [25], action: accept}\n",
    )
    compiled = compile_policy(policy)
    body = render(compiled, "home", compiled["profiles"]["home"]["rules"])
    manager = TableManager(Nft(run, argv=[*netns, "nft"]), TableRef("inet", "distsec"), str(tmp_path / "s"))
    manager.apply(body)
    listing = run([*netns, "nft", "list", "set", "inet", "distsec", "obj_a_db_v4"])[1]
    assert "192.0.2.10" in listing and "198.51.100.0/24" not in listing
    assert "198.51.100.0/24" in run([*netns, "nft", "list", "set", "inet", "distsec", "obj_a__b_v4"])[1]


def test_the_guard_counts_rules_it_cannot_fully_evaluate(tmp_path):
    base = (
        "baseline: {management: false, acknowledge_risk: console access on these hosts}\n"
        "objects:\n  addresses:\n    admins: [192.0.2.0/24]\n    me: [198.51.100.5]\n"
        "rules:\n"
        "  - {id: uplink-drop, description: d, direction: in, interface: eth0, proto: tcp, action: drop, profiles: [home]}\n"
        "  - {id: to-me-drop, description: d, direction: in, to: me, proto: tcp, action: drop, profiles: [foreign]}\n"
        "  - {id: ssh, description: d, direction: in, from: admins, proto: tcp, ports: [22], action: accept,"
        " profiles: [home, foreign]}\n"
    )
    compiled = compile_policy(_policy(tmp_path, base))
    decision = decide(compiled, {})
    problems = management_problems(compiled, decision, sources=["192.0.2.7"], profiles=["home", "foreign"])
    assert problems[0].startswith(
        "profile home: a new connection from 192.0.2.7 to port 22 might be dropped by rule uplink-drop"
    )
    assert problems[1].startswith(
        "profile foreign: a new connection from 192.0.2.7 to port 22 might be dropped by rule to-me-drop"
    )
    known = management_problems(
        compiled, decision, sources=["192.0.2.7"], profiles=["foreign"], host_addresses=["198.51.100.6/24"]
    )
    assert known == [], "with the host's own address known, the rule for another address does not count"


def test_a_bad_antivirus_time_zone_falls_back_to_the_signed_time(tmp_path):
    db = tmp_path / "var" / "lib" / "clamav"
    db.mkdir(parents=True)
    (db / "daily.cvd").write_text("ClamAV-VDB:23 Nov 2026 07-42 +9999:27000:100:90:x:y:z:1700000000\n")
    status = gather(Context(lambda argv: (127, "", ""), root=str(tmp_path), which=lambda name: None), ["antivirus"])
    assert status["errors"] == {}
    assert status["antivirus"]["signatures_updated"] == "2023-11-14T22:13:20Z"
