"""The built-in default-restrictive policy: what it keeps open, what it refuses to build, and the
three ways to get it (the Python function, the restrictive_policy filter, distsec psl restrictive)."""

from __future__ import annotations

import hashlib
import json
import subprocess

import pytest
from ansible.errors import AnsibleFilterError
from play_helpers import run_play

from ansible_collections.distsec.framework.plugins.filter.restrictive_policy import (
    restrictive_policy as restrictive_filter,
)
from ansible_collections.distsec.framework.plugins.module_utils._apply.restrictive import boot_ruleset
from ansible_collections.distsec.framework.plugins.module_utils._evaluate.decide import decide, decide_flow
from ansible_collections.distsec.framework.plugins.module_utils._evaluate.flows import parse_flow
from ansible_collections.distsec.framework.plugins.module_utils._evaluate.guard import management_problems
from ansible_collections.distsec.framework.plugins.plugin_utils._cli import main
from ansible_collections.distsec.framework.plugins.plugin_utils._psl.api import PolicyInvalid
from ansible_collections.distsec.framework.plugins.plugin_utils._psl.compiler import (
    canonical_json,
    load_policy_document,
)
from ansible_collections.distsec.framework.plugins.plugin_utils._psl.problems import PslError
from ansible_collections.distsec.framework.plugins.plugin_utils._psl.restrictive import (
    RestrictiveInvalid,
    restrictive_from_mapping,
    restrictive_policy,
)

ADMINS = ["2001:db8:ff::/64", "198.51.100.0/28"]
EVERY = {
    "pdp": ["2001:db8::10"],
    "patch_mirrors": ["2001:db8::80-2001:db8::81", "198.51.100.80"],
    "dns_servers": ["2001:db8::53", "198.51.100.53"],
    "ntp_servers": ["2001:db8::123"],
    "pki": ["2001:db8::443"],
}
REMEDIATION = {
    "pdp": ("baseline-remediation-pdp", None),
    "patch_mirrors": ("baseline-remediation-patch-mirrors", [("tcp", [[80, 80], [443, 443]])]),
    "dns_servers": ("baseline-remediation-dns-servers", [("udp", [[53, 53]]), ("tcp", [[53, 53]])]),
    "ntp_servers": ("baseline-remediation-ntp-servers", [("udp", [[123, 123]])]),
    "pki": ("baseline-remediation-pki", [("tcp", [[80, 80], [443, 443]])]),
}
BASELINE = ["baseline-loopback-in", "baseline-loopback-out", "baseline-established-in", "baseline-established-out",
            "baseline-icmpv6-in", "baseline-icmpv6-out", "baseline-management-in"]  # fmt: skip
DHCP = ["dhcpv4-client-out", "dhcpv4-client-in", "dhcpv6-client-out", "dhcpv6-client-in"]


def _policy(**extra):
    return restrictive_policy(domain="corp.example.org", management_from=ADMINS, **extra)


def _ids(compiled, profile="isolated"):
    return [r["id"] for r in compiled["profiles"][profile]["rules"]]


def test_isolated_by_default_and_when_expired_and_says_what_it_is():
    compiled = _policy()
    assert compiled["format"] == "distsec.compiled-policy/1"
    assert compiled["default_profile"] == compiled["expired_profile"] == "isolated"
    assert compiled["profiles"]["isolated"]["default"] == {"in": "drop", "out": "drop", "forward": "drop"}
    assert compiled["sources"] == ["<default-restrictive>"]
    assert compiled["description"].startswith("distsec's built-in default-restrictive policy")
    assert compiled["checks"] == [] and compiled["select"] == []
    assert _ids(compiled) == BASELINE + DHCP, "nothing but the baseline (no remediation object given) and DHCP"
    body = {k: v for k, v in compiled.items() if k != "hash"}
    assert compiled["hash"] == "sha256:" + hashlib.sha256(canonical_json(body).encode()).hexdigest()
    decision = decide(compiled, {})
    assert decision.profile == "isolated" and decision.reason
    assert decide(compiled, {}, now=4102444800.0).profile == "isolated", "no expiry can open it"


def test_same_parameters_same_hash_from_any_directory(tmp_path, monkeypatch):
    first = _policy(**EVERY)
    monkeypatch.chdir(tmp_path)
    assert _policy(**EVERY)["hash"] == first["hash"]
    assert _policy(**{**EVERY, "dns_servers": ["2001:db8::54"]})["hash"] != first["hash"]


@pytest.mark.parametrize("name", sorted(REMEDIATION))
def test_a_remediation_path_only_for_an_object_given(name):
    rid, protocols = REMEDIATION[name]
    alone = _policy(**{name: EVERY[name]})
    rules = {r["id"]: r for r in alone["profiles"]["isolated"]["rules"]}
    assert [i for i in _ids(alone) if i.startswith("baseline-remediation-")] == [rid]
    rule = rules[rid]
    assert rule["direction"] == "out" and rule["action"] == "accept"
    assert rule["to"] == {"objects": [name], "literal": {"ipv4": [], "ipv6": []}}
    got = None if rule["protocols"] is None else [(p["proto"], p["ports"]) for p in rule["protocols"]]
    assert got == protocols
    assert set(alone["objects"]["addresses"]) == {"admin_networks", name}
    assert rid not in _ids(alone, "home"), "remediation paths belong to the restricted profiles"


def test_every_object_its_path_in_the_documented_order():
    compiled = _policy(**EVERY)
    ids = _ids(compiled)
    assert ids == BASELINE + [REMEDIATION[n][0] for n in EVERY] + DHCP
    patch = compiled["objects"]["addresses"]["patch_mirrors"]
    assert patch == {"ipv4": ["198.51.100.80/32"], "ipv6": ["2001:db8::80/127"]}


def test_management_port_and_dhcp_off():
    compiled = _policy(management_port="2222", dhcp=False)
    mgmt = next(r for r in compiled["profiles"]["isolated"]["rules"] if r["id"] == "baseline-management-in")
    assert mgmt["from"]["objects"] == ["admin_networks"]
    assert mgmt["protocols"] == [
        {"proto": "tcp", "ports": [[2222, 2222]], "sports": None, "types": None, "codes": None}
    ]
    assert _ids(compiled) == BASELINE


@pytest.mark.parametrize(
    ("flow", "action"),
    [
        ("tcp 198.51.100.7 -> 192.0.2.1:22 in", "accept"),
        ("tcp 2001:db8:ff::9 -> [2001:db8::1]:22 in", "accept"),
        ("tcp 203.0.113.9 -> 192.0.2.1:22 in", "drop"),
        ("tcp 198.51.100.7 -> 192.0.2.1:80 in", "drop"),
        ("tcp 2001:db8::1 -> [2001:db8::10]:8443 out", "accept"),
        ("udp 2001:db8::1 -> [2001:db8::53]:53 out", "accept"),
        ("tcp 2001:db8::1 -> [2001:db8::53]:443 out", "drop"),
        ("tcp 2001:db8::1 -> [2001:db8::80]:443 out", "accept"),
        ("udp 2001:db8::1 -> [2001:db8::123]:123 out", "accept"),
        ("tcp 2001:db8::1 -> [2001:db8:99::1]:443 out", "drop"),
        ("udp 198.51.100.7 -> 192.0.2.1:5353 forward", "drop"),
    ],
)
def test_what_the_isolated_profile_lets_through(flow, action):
    compiled = _policy(**EVERY)
    assert decide_flow(compiled, decide(compiled, {}), parse_flow(flow)).action == action


def test_the_lockout_guard_passes_for_the_admins_and_fails_for_anyone_else():
    compiled = _policy(**EVERY)
    decision = decide(compiled, {})
    assert management_problems(compiled, decision, sources=["198.51.100.1", "2001:db8:ff::1"]) == []
    problems = management_problems(compiled, decision, sources=["203.0.113.5"])
    assert any("profile isolated" in p and "203.0.113.5" in p for p in problems), problems


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"management_from": []}, "management_from: give at least one admin address or network"),
        ({"management_from": None}, "would lock the admins out"),
        ({"domain": ""}, "domain: required"),
        ({"domain": "corp example"}, "domain: 'corp example' is not a Security Domain name"),
        ({"management_from": ["10.0.0.1/8"]}, "management_from[0]: '10.0.0.1/8' has host bits set; did you mean 10.0.0.0/8?"),
        ({"pdp": ["pdp.corp.example.org"]}, "pdp[0]: 'pdp.corp.example.org' is not an IPv4/IPv6 address"),
        ({"dns_servers": ["2001:db8::53", "198.51.100.1-2001:db8::9"]}, "dns_servers[1]: '198.51.100.1-2001:db8::9' a range must not mix"),
        ({"ntp_servers": ["10.0.0.9-10.0.0.1"]}, "the range starts above its end"),
        ({"pki": {"a": 1}}, "pki: must be a list of addresses"),
        ({"patch_mirrors": [7]}, "patch_mirrors[0]: 7 is not an address"),
        ({"management_port": 0}, "management_port: 0 is not a TCP port"),
        ({"management_port": True}, "management_port: True is not a TCP port"),
        ({"management_port": "ssh"}, "management_port: 'ssh' is not a TCP port"),
        ({"dhcp": "yes"}, "dhcp: 'yes' is not true or false"),
    ],
)  # fmt: skip
def test_a_wrong_parameter_is_named(params, expected):
    args = {"domain": "corp.example.org", "management_from": ADMINS, **params}
    with pytest.raises(RestrictiveInvalid) as caught:
        restrictive_policy(**args)
    assert str(caught.value).startswith("cannot build the default-restrictive policy: ")
    assert expected in str(caught.value)
    assert isinstance(caught.value, PolicyInvalid) and caught.value.lines


def test_every_wrong_parameter_at_once():
    with pytest.raises(RestrictiveInvalid) as caught:
        restrictive_policy(domain="", management_from=["x"], pdp=["y"], management_port=70000)
    assert [line.split(":")[0] for line in caught.value.lines] == [
        "domain", "management_from[0]", "management_port", "pdp[0]",
    ]  # fmt: skip


def test_a_mapping_with_unknown_or_missing_keys():
    with pytest.raises(RestrictiveInvalid, match=r"unknown parameter\(s\) dns; known: domain, management_from"):
        restrictive_from_mapping({"domain": "d.org", "management_from": ADMINS, "dns": ["2001:db8::53"]})
    with pytest.raises(RestrictiveInvalid, match="management_from: give at least one"):
        restrictive_from_mapping({"domain": "d.org"})
    with pytest.raises(RestrictiveInvalid, match="give a mapping"):
        restrictive_from_mapping(["d.org"])
    same = restrictive_from_mapping({"domain": "corp.example.org", "management_from": ADMINS, "management_port": None})
    assert same == _policy()


def test_load_policy_document_locates_problems_and_takes_no_include():
    shared = ["2001:db8::1"]  # the same list twice: written out twice, never as a YAML anchor
    doc = {"psl": 1, "domain": "d.org", "objects": {"addresses": {"a": shared, "b": shared}},
           "rules": [{"id": "r", "description": "d", "direction": "out", "to": ["a", "b"], "action": "drop"}]}  # fmt: skip
    compiled_sources = load_policy_document(doc, "<t>").files
    assert compiled_sources == ["<t>"]
    with pytest.raises(PslError) as caught:
        load_policy_document({"psl": 1, "domain": "d.org", "rules": [{"id": "x"}]}, "<t>")
    assert str(caught.value.problems.errors[0]).startswith("<t>:")
    with pytest.raises(PslError, match="cannot include files"):
        load_policy_document({"psl": 1, "domain": "d.org", "include": ["x.yml"]}, "<t>")


# ---- the filter -----------------------------------------------------------------------------


def test_the_filter_returns_the_compiled_policy_and_names_a_wrong_parameter():
    assert restrictive_filter({"domain": "corp.example.org", "management_from": ADMINS, **EVERY}) == _policy(**EVERY)
    with pytest.raises(AnsibleFilterError, match=r"restrictive_policy: cannot build .*management_from: give"):
        restrictive_filter({"domain": "corp.example.org", "management_from": []})


def test_the_filter_in_a_real_play(tmp_path):
    """Templated values (Ansible's tagged strings and lazy containers) go through the filter."""
    expected = _policy(**EVERY)
    params = "{'domain': dom, 'management_from': admins, 'pdp': pdp, 'patch_mirrors': mirrors, " \
             "'dns_servers': dns, 'ntp_servers': ntp, 'pki': pki}"  # fmt: skip
    tasks = [
        {"ansible.builtin.set_fact": {"dom": "corp.example.org", "admins": ADMINS, "pdp": EVERY["pdp"],
                                      "mirrors": EVERY["patch_mirrors"], "dns": EVERY["dns_servers"],
                                      "ntp": EVERY["ntp_servers"], "pki": EVERY["pki"]}},
        {"ansible.builtin.set_fact": {"r": "{{ " + params + " | distsec.framework.restrictive_policy }}"}},
        {"ansible.builtin.debug": {"var": "r.hash"}},
        {"ansible.builtin.set_fact": {"bad": "{{ {'domain': dom, 'management_from': []} | distsec.framework.restrictive_policy }}"}},
    ]  # fmt: skip
    _facts, _compiled, shown, bad = run_play(tmp_path, tasks)
    assert shown["r.hash"] == expected["hash"]
    assert bad.get("failed") is True
    assert "management_from: give at least one admin address" in bad["msg"] and "Traceback" not in bad["msg"]


# ---- the command ----------------------------------------------------------------------------


def test_the_command_prints_the_compiled_policy(capsys):
    argv = ["psl", "restrictive", "--domain", "corp.example.org", "--management-from", *ADMINS]
    for name, values in EVERY.items():
        argv += [f"--{name.replace('_', '-')}", *values]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out) == _policy(**EVERY)
    assert main([*argv, "--management-port", "2222", "--no-dhcp"]) == 0
    assert json.loads(capsys.readouterr().out) == _policy(**EVERY, management_port=2222, dhcp=False)


def test_the_command_prints_the_boot_file_and_nft_accepts_it(capsys, netns, tmp_path):
    argv = ["psl", "restrictive", "--domain", "corp.example.org", "--management-from", ADMINS[0],
            "--management-from", ADMINS[1], "--pdp", "2001:db8::10", "--format", "nftables"]  # fmt: skip
    assert main(argv) == 0
    text = capsys.readouterr().out
    compiled = _policy(pdp=["2001:db8::10"])
    assert text == boot_ruleset(compiled).text
    assert text.splitlines()[0] == (
        f"# distsec: default-restrictive firewall, domain corp.example.org, profile isolated, policy {compiled['hash']}"
    )
    path = tmp_path / "r.nft"
    path.write_text(text)
    proc = subprocess.run([*netns, "nft", "-c", "-f", str(path)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--domain", "d.org", "--management-from", "10.0.0.1/8"], "management_from[0]: '10.0.0.1/8' has host bits set"),
        (["--domain", "d.org", "--management-from", "10.0.0.0/8", "--ntp-servers", "ntp.d.org"], "ntp_servers[0]"),
        (["--domain", "d.org"], "the following arguments are required: --management-from"),
        (["--management-from", "10.0.0.0/8"], "the following arguments are required: --domain"),
    ],
)  # fmt: skip
def test_the_command_refuses_wrong_arguments_with_exit_2(argv, expected, capsys):
    try:
        code = main(["psl", "restrictive", *argv])
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and expected in err and "Traceback" not in err
