"""The firewalld renderer: golden files, firewalld's own checker for every profile, and what it refuses.

Regenerate the golden files with `UPDATE_GOLDEN=1 .venv/bin/python -m pytest -q tests/unit -k golden`.
"""

from __future__ import annotations

import os
import re
import shutil

import pytest
from render_helpers import EXAMPLES, TOP, assert_golden, golden_text
from render_helpers import entry as _entry
from render_helpers import every_profile as _every_profile
from render_helpers import rule as _rule

from ansible_collections.distsec.framework.plugins.module_utils._apply.firewalld import (
    FirewalldBackend,
    rich_rules_of,
)
from ansible_collections.distsec.framework.plugins.module_utils._render.firewalld import (
    RenderError,
    comment_id,
    ipset_name,
    render,
    render_text,
)
from ansible_collections.distsec.framework.plugins.plugin_utils._psl.compiler import compile_policy, load_policy

MAIL = TOP / "docs" / "examples" / "mail-client" / "policy.yml"


COMPILED = {
    "domain": "example.org",
    "objects": {"addresses": {"lan": {"ipv4": ["192.0.2.0/24"], "ipv6": ["2001:db8::/64"]}}},
    "profiles": {"home": {"default": {"in": "drop", "out": "accept", "forward": "reject"}}},
}


def _offline_checker_or_skip():
    if shutil.which("firewall-offline-cmd") and os.geteuid() == 0:
        return
    if os.environ.get("CI"):
        pytest.fail(
            "firewalld's checker needs root and the firewalld package (make host-packages); CI must provide them"
        )
    pytest.skip("firewall-offline-cmd (Debian package firewalld) is not installed or not root: run 'make unit'")


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.parent.name)
def test_golden_files(path):
    assert_golden(golden_text(path, render_text, RenderError), f"firewalld/{path.parent.name}.txt")


def test_the_hotspot_dhcp_rule_is_refused_with_the_rule_and_the_way_out():
    hotspot = TOP / "docs" / "examples" / "public-hotspot" / "policy.yml"
    compiled = compile_policy(load_policy([str(hotspot)]), host="lt-042", groups=["laptops"])
    with pytest.raises(RenderError) as info:
        render(compiled, "foreign", compiled["profiles"]["foreign"]["rules"])
    assert str(info.value) == (
        "rule hotspot-dhcp: firewalld rich rules match a source port or a destination port, not both; "
        "use the nftables backend for this policy"
    )


def test_every_profile_that_renders_passes_firewalld_s_own_checker(run, tmp_path):
    """firewall-offline-cmd --check-config on a copy of /etc/firewalld with our files, and every
    rich rule of ours is in firewalld's own listing, printed exactly as we print it.

    For speed, the distinct renderings are checked together in one configuration: rendering N
    has its policies and ipsets renamed from distsec-NAME to distsec-NNNAME.
    """
    _offline_checker_or_skip()
    unique = {}
    for path in EXAMPLES:
        for _host, _groups, profile, compiled, rules in _every_profile(path):
            try:
                artefacts = render(compiled, profile, rules)
            except RenderError:
                continue  # the golden files hold the error
            unique.setdefault(tuple(sorted(artefacts.items())), f"{path.parent.name} {profile}")
    assert len(unique) >= 10
    together = {}
    for number, artefacts in enumerate(unique):
        for name, text in artefacts:
            together[name.replace("distsec-", f"distsec-{number:02d}")] = text.replace(
                "distsec-", f"distsec-{number:02d}"
            )
    FirewalldBackend(run, str(tmp_path), config_dir="/etc/firewalld").validate(together)
    listing = run(["firewall-offline-cmd", "--list-all-policies"], None)[1]
    assert "distsec-" not in listing  # the check ran on a copy


def test_rendering_is_deterministic_and_names_every_rule():
    compiled = compile_policy(load_policy([str(MAIL)]), host="ws1", groups=["workstations"])
    rules = compiled["profiles"]["home"]["rules"]
    first = render(compiled, "home", rules)
    assert first == render(compiled, "home", rules)
    assert sorted(first) == [
        "ipsets/distsec-admin_net-v6.xml",
        "ipsets/distsec-mail_servers-v4.xml",
        "ipsets/distsec-mail_servers-v6.xml",
        "policies/distsec-fwd.xml",
        "policies/distsec-in.xml",
        "policies/distsec-out.xml",
    ]
    text = "".join(first.values())
    for rule in rules:
        assert f"<!-- rule: {rule['id']}" in text
    assert "<!-- rule: baseline-established-in (left out: firewalld accepts all established" in text
    target, out = rich_rules_of(first["policies/distsec-out.xml"])
    assert target == "CONTINUE"
    assert [p for p, _r in out][:1] == ["baseline-icmpv6-out"]
    assert out[-1] == ("block-mail-elsewhere", 'rule priority="36" port port="993" protocol="tcp" drop')
    assert 'log prefix="distsec old-mua block-mail-old-client " level="warning" limit value="5/m" reject' in out[11][1]
    assert rich_rules_of(first["policies/distsec-fwd.xml"]) == ("DROP", [])


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (_rule(interface="eth0"), "rule r: firewalld rich rules cannot match an interface ('eth0')"),
        (_rule(interface="lo"), "firewalld accepts all loopback traffic before any policy, so a drop rule for lo"),
        (_rule(fields={"ttl": 1}), "cannot match header fields (ttl)"),
        (_rule(direction="out", owner={"user": "root", "group": None}), "cannot match the socket owner"),
        (_rule(state=["invalid"]), "cannot match conntrack state invalid"),
        (_rule(state=["established"]), "so a drop rule for state established cannot be honoured"),
        (_rule(protocols=[_entry("udp", ports=[[67, 67]], sports=[[68, 68]])]), "not both"),
        (_rule(protocols=[_entry("icmp", types=[3], codes=[9])]), "no ICMP type name for icmp type 3 code 9"),
        (_rule(protocols=[_entry("icmpv6", types=[130])]), "no ICMP type name for icmpv6 type 130"),
        (_rule(protocols=[_entry("dccp")]), "protocol 'dccp' cannot be rendered"),
        (_rule(log={"prefix": "x", "rate": "1/day"}), "firewalld refuses the log rate 1/day"),
        (_rule(log={"prefix": "x", "rate": "0/second"}), "log rate '0/second'"),
    ],
)
def test_what_firewalld_cannot_express_is_an_error_naming_the_rule(rule, message):
    with pytest.raises(RenderError) as info:
        render(COMPILED, "home", [rule])
    assert message in str(info.value)
    assert str(info.value).startswith("rule r: ")
    assert str(info.value).endswith("use the nftables backend for this policy")


def test_a_profile_without_the_established_or_loopback_baseline_is_refused():
    compiled = dict(COMPILED, profiles={"kiosk": {"default": COMPILED["profiles"]["home"]["default"], "rules": []}})
    with pytest.raises(RenderError, match="profile kiosk: the baseline's loopback part is turned off"):
        render(compiled, "kiosk", [])


def test_what_firewalld_does_itself_is_left_out_with_a_comment():
    rules = [
        _rule(id="lo-in", action="accept", interface="lo"),
        _rule(id="est", action="accept", state=["established", "related"]),
        _rule(id="new-ssh", action="accept", state=["new"], protocols=[_entry("tcp", ports=[[22, 22]])]),
    ]
    files = render(COMPILED, "home", rules)
    text = files["policies/distsec-in.xml"]
    assert "<!-- rule: lo-in (left out: firewalld accepts all loopback traffic" in text
    assert "<!-- rule: est (left out: firewalld accepts all established and related traffic" in text
    assert rich_rules_of(text) == ("DROP", [("new-ssh", 'rule priority="1" port port="22" protocol="tcp" accept')])
    assert 'target="REJECT"' in files["policies/distsec-fwd.xml"]


def test_addresses_families_and_protocols():
    lan = {"objects": ["lan"], "literal": {"ipv4": ["198.51.100.7/32"], "ipv6": []}}
    rules = [
        _rule(id="a", **{"from": lan}, protocols=[_entry("tcp", ports=[[80, 80], [8000, 8080]]), _entry("esp")]),
        _rule(id="b", protocols=[_entry("icmp", types=[3], codes=[4]), _entry(47)], family="ipv4"),
        _rule(id="c", direction="out", protocols=[_entry("udp", sports=[[53, 53]])], action="reject"),
    ]
    files = render(COMPILED, "home", rules)
    rich = [r for _i, r in rich_rules_of(files["policies/distsec-in.xml"])[1]]
    assert rich == [
        'rule priority="1" family="ipv4" source ipset="distsec-lan-v4" port port="80" protocol="tcp" drop',
        'rule priority="2" family="ipv4" source address="198.51.100.7/32" port port="80" protocol="tcp" drop',
        'rule priority="3" family="ipv6" source ipset="distsec-lan-v6" port port="80" protocol="tcp" drop',
        'rule priority="4" family="ipv4" source ipset="distsec-lan-v4" port port="8000-8080" protocol="tcp" drop',
        'rule priority="5" family="ipv4" source address="198.51.100.7/32" port port="8000-8080" protocol="tcp" drop',
        'rule priority="6" family="ipv6" source ipset="distsec-lan-v6" port port="8000-8080" protocol="tcp" drop',
        'rule priority="7" family="ipv4" source ipset="distsec-lan-v4" protocol value="esp" drop',
        'rule priority="8" family="ipv4" source address="198.51.100.7/32" protocol value="esp" drop',
        'rule priority="9" family="ipv6" source ipset="distsec-lan-v6" protocol value="esp" drop',
        'rule priority="10" family="ipv4" icmp-type name="fragmentation-needed" drop',
        'rule priority="11" family="ipv4" protocol value="47" drop',
    ]
    assert rich_rules_of(files["policies/distsec-out.xml"])[1] == [
        ("c", 'rule priority="1" source-port port="53" protocol="udp" reject')
    ]
    assert "<entry>192.0.2.0/24</entry>" in files["ipsets/distsec-lan-v4.xml"]
    assert '<option name="family" value="inet6"/>' in files["ipsets/distsec-lan-v6.xml"]


def test_names_and_text_are_escaped():
    assert comment_id("a--b---c") == "a-+-b-+-+-c"
    assert comment_id("a--b---c").replace("+", "") == "a--b---c"
    assert ipset_name("mail_servers", "ipv4") == "distsec-mail_servers-v4"
    long_a, long_b = "a_very_long_object_name_one", "a_very_long_object_name_two"
    assert len(ipset_name(long_a, "ipv6")) <= 32
    assert ipset_name(long_a, "ipv6") != ipset_name(long_b, "ipv6")
    with pytest.raises(RenderError):
        ipset_name("bad name", "ipv4")
    compiled = dict(COMPILED, domain="ex--ample.org")
    rule = _rule(id="x--y", log={"prefix": 'a<b>&"c', "rate": "5/minute"}, description="<&>")
    text = render(compiled, "home", [rule])["policies/distsec-in.xml"]
    comments = re.findall(r"<!--(.*?)-->", text, re.S)
    assert comments and not any("--" in c for c in comments)
    assert 'prefix="a_b___c x--y "' in text
    assert rich_rules_of(text)[1][0][0] == "x--y"
