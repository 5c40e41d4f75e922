"""The iptables renderer: golden files, the kernel's --test for every profile, and what it refuses.

Regenerate the golden files with `UPDATE_GOLDEN=1 .venv/bin/python -m pytest -q tests/unit -k golden`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from render_helpers import EXAMPLES, TOP, assert_golden, golden_text
from render_helpers import entry as _entry
from render_helpers import every_profile as _every_profile
from render_helpers import rule as _rule

from ansible_collections.distsec.framework.plugins.module_utils._apply.iptables import IptablesBackend
from ansible_collections.distsec.framework.plugins.module_utils._evaluate.decide import active_rules, decide
from ansible_collections.distsec.framework.plugins.module_utils._render.iptables import (
    RenderError,
    limit_rate,
    render,
    render_text,
)
from ansible_collections.distsec.framework.plugins.plugin_utils._psl.compiler import compile_policy, load_policy

MAIL = TOP / "docs" / "examples" / "mail-client" / "policy.yml"
VARIANTS = ["nft", "legacy"]


COMPILED = {
    "objects": {
        "addresses": {
            "lan": {"ipv4": ["192.0.2.0/24", "198.51.100.0/25"], "ipv6": ["2001:db8:1::/48"]},
            "v6only": {"ipv4": [], "ipv6": ["2001:db8:2::/64"]},
        }
    },
    "profiles": {"home": {"default": {"in": "drop", "out": "accept", "forward": "reject"}}},
}

# One rule per feature the renderer supports; the backend tests load them into the kernel too.
FEATURES = [
    _rule(id="loopback", interface="lo", action="accept"),
    _rule(id="state", state=["established", "related", "invalid"], action="accept"),
    _rule(
        id="lan-ssh",
        **{"from": {"objects": ["lan"], "literal": {"ipv4": ["203.0.113.7/32"], "ipv6": []}}},
        protocols=[_entry("tcp", ports=[[22, 22]])],
        action="accept",
    ),
    _rule(
        id="many-ports",
        protocols=[_entry("udp", ports=[[p, p] for p in range(1000, 1020)], sports=[[53, 53], [5353, 5353]])],
    ),
    _rule(id="ranges", protocols=[_entry("sctp", ports=[[100, 200]], sports=[[1024, 65535]])], action="reject"),
    _rule(
        id="ping",
        protocols=[_entry("icmp", types=[8, 3], codes=[0, 4]), _entry("icmpv6", types=[128])],
        action="accept",
    ),
    _rule(id="any-icmp", protocols=[_entry("icmp"), _entry("icmpv6")], action="accept"),
    _rule(id="protocols", protocols=[_entry("esp"), _entry("gre"), _entry(99), _entry(132)], action="accept"),
    _rule(id="ah-v4", family="ipv4", protocols=[_entry("ah")], action="accept"),
    _rule(id="v6-only", to={"objects": ["v6only"], "literal": {"ipv4": [], "ipv6": []}}, action="accept"),
    _rule(id="family-v4", family="ipv4", action="accept"),
    _rule(id="fields-v4", fields={"dscp": 46, "ttl": "2-9"}, family="ipv4"),
    _rule(id="fields-v6", fields={"hop_limit": 1}, family="ipv6"),
    _rule(id="ttl-open", fields={"ttl": "0-200"}, family="ipv4"),
    _rule(id="syn", fields={"tcp_flags": ["syn", "ack"]}, protocols=[_entry("tcp", ports=[[80, 80], [443, 443]])]),
    _rule(id="syn-any", fields={"tcp_flags": ["syn"]}),
    _rule(
        id="logged",
        log={"prefix": "distsec a-very-long-log-prefix-beyond-29", "rate": "60/minute"},
        protocols=[_entry("tcp", ports=[[23, 23]])],
    ),
    _rule(id='odd id\'s "quoted" $x', direction="out", action="accept", interface="eth0"),
    _rule(id="owner", direction="out", owner={"user": 0, "group": "root"}, action="accept"),
    _rule(id="owner-name", direction="out", owner={"user": "root"}, action="reject"),
    _rule(id="fwd", direction="forward", interface="veth0", action="accept"),
]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.parent.name)
def test_golden_files(path):
    assert_golden(golden_text(path, render_text, RenderError), f"iptables/{path.parent.name}.rules")


@pytest.mark.netns
@pytest.mark.parametrize("variant", VARIANTS)
def test_every_profile_of_every_example_passes_the_restore_test(variant, run, netns, tmp_path):
    backend = IptablesBackend(run, str(tmp_path), variant=variant, argv_prefix=netns)
    seen = set()
    for path in EXAMPLES:
        for _host, _groups, profile, compiled, rules in _every_profile(path):
            artefacts = render(compiled, profile, rules)
            key = tuple(sorted(artefacts.items()))
            if key not in seen:
                seen.add(key)
                backend.validate(artefacts)  # iptables-restore --test on the exact transaction
    backend.validate(render(COMPILED, "home", FEATURES))
    assert len(seen) >= 10
    assert backend.current() == ""  # --test changed nothing


def test_rendering_is_deterministic_and_names_every_rule():
    compiled = compile_policy(load_policy([str(MAIL)]), host="ws1", groups=["workstations"])
    decision = decide(compiled, {"packages": {"thunderbird": {"version": "1:102.0-1"}}})
    rules = active_rules(compiled, decision)
    first = render(compiled, decision.profile, rules)
    assert first == render(compiled, decision.profile, rules)
    assert set(first) == {"rules.v4", "rules.v6"}
    for text in first.values():
        body = [line for line in text.splitlines() if line.startswith("-")]
        assert all(line.startswith("-A DISTSEC-") and " -m comment --comment " in line for line in body)
        assert not any(" INPUT " in line or line.startswith("-I") for line in body), "jumps are the backend's"
        assert text.startswith("*filter\n:DISTSEC-INPUT - [0:0]\n:DISTSEC-OUTPUT - [0:0]\n:DISTSEC-FORWARD - [0:0]\n")
        assert text.endswith("-A DISTSEC-FORWARD -m comment --comment default-forward -j DROP\nCOMMIT\n")
    for rule in rules:
        assert f"--comment {rule['id']} " in first["rules.v4"] + first["rules.v6"]
    v4, v6 = first["rules.v4"], first["rules.v6"]
    assert "-d 198.51.100.25/32" in v4 and "2001:db8" not in v4
    assert "-d 2001:db8:25::10/128" in v6 and "198.51.100" not in v6
    assert "icmpv6-type 135" in v6 and "icmp6" not in v4
    log = '-m limit --limit 5/min -m comment --comment block-mail-old-client -j LOG --log-prefix "distsec old-mua "'
    assert log in v4
    assert v4.index(log) < v4.index("block-mail-old-client -j REJECT --reject-with icmp-port-unreachable")
    assert "-j REJECT --reject-with icmp6-port-unreachable" in v6
    assert "--comment default-out -j RETURN" in v4  # default accept hands back to the built-in chain


def test_render_text_names_the_commands():
    text = render_text(COMPILED, "home", FEATURES)
    assert text.startswith("# ipv4: iptables-restore --noflush\n*filter\n")
    assert "\nCOMMIT\n# ipv6: ip6tables-restore --noflush\n*filter\n" in text
    assert (
        "-A DISTSEC-FORWARD -m comment --comment default-forward -j REJECT --reject-with icmp-port-unreachable" in text
    )


def test_features_render_as_iptables_writes_them():
    files = render(COMPILED, "home", FEATURES)
    v4, v6 = files["rules.v4"], files["rules.v6"]
    assert "-s 192.0.2.0/24 -p tcp -m tcp --dport 22" in v4 and "-s 203.0.113.7/32 -p tcp" in v4
    assert "-s 2001:db8:1::/48 -p tcp -m tcp --dport 22" in v6 and "203.0.113.7" not in v6
    # 20 ports do not fit one multiport match (15): two rules, both with the source ports
    assert v4.count("-m multiport --sports 53,5353 -m multiport --dports") == 2
    assert "-p sctp -m sctp --sport 1024:65535 --dport 100:200" in v4
    for code in ("8/0", "8/4", "3/0", "3/4"):
        assert f"-p icmp -m icmp --icmp-type {code} -m comment --comment ping" in v4
    assert "--icmpv6-type 128 -m comment --comment ping" in v6 and "icmpv6" not in v4
    assert "-p icmp -m comment --comment any-icmp" in v4 and "-p ipv6-icmp -m comment --comment any-icmp" in v6
    for proto in ("esp", "47", "99", "sctp"):
        assert f"-p {proto} -m comment --comment protocols" in v4 + v6
    assert "-p ah -m comment --comment ah-v4" in v4 and "ah-v4" not in v6
    assert "v6-only" in v6 and "v6-only" not in v4 and "family-v4" not in v6
    assert "-m dscp --dscp 0x2e -m ttl --ttl-gt 1 -m ttl --ttl-lt 10" in v4 and "fields-v4" not in v6
    assert "-m hl --hl-eq 1 -m comment --comment fields-v6" in v6
    assert "-m ttl --ttl-lt 201 -m comment --comment ttl-open" in v4
    assert "-p tcp -m tcp --tcp-flags SYN,ACK SYN,ACK -m multiport --dports 80,443" in v4
    assert "-p tcp -m tcp --tcp-flags SYN SYN -m comment --comment syn-any" in v6
    assert (
        '-m limit --limit 1/sec -m comment --comment logged -j LOG --log-prefix "distsec a-very-long-log-prefi"' in v4
    )
    assert '-o eth0 -m comment --comment "odd id_s _quoted_ _x" -j ACCEPT' in v4  # no quote or $ survives
    assert "-m owner --uid-owner 0 --gid-owner root -m comment --comment owner -j ACCEPT" in v6
    assert "-A DISTSEC-FORWARD -i veth0 -m comment --comment fwd -j ACCEPT" in v4


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            _rule(id="own-in", owner={"user": "root"}),
            "rule own-in: owner matches local sockets; iptables allows it only in OUTPUT",
        ),
        (_rule(id="nh", fields={"next_header": "tcp"}), "rule nh: field next_header cannot be expressed in iptables"),
        (_rule(id="ds", fields={"dscp": "10-12"}), "rule ds: field dscp '10-12' is not a single value"),
        (_rule(id="ttl", fields={"ttl": "9-2"}), "rule ttl: field ttl '9-2' is not a value or range"),
        (
            _rule(id="wild", interface="eth+"),
            "rule wild: interface 'eth+' is not an interface name iptables matches exactly",
        ),
        (_rule(id="inject", interface="lo -j ACCEPT"), "rule inject: interface"),
        (_rule(id="p0", protocols=[_entry(0)]), "rule p0: protocol 0 means 'every protocol'"),
        (_rule(id="ah", protocols=[_entry("ah")]), "rule ah: protocol ah is an IPv6 extension header"),
        (_rule(id="t255", protocols=[_entry("icmp", types=[255])]), "rule t255: icmp type 255 means 'any type'"),
        (
            _rule(id="flags", fields={"tcp_flags": ["syn"]}, protocols=[_entry("udp")]),
            "rule flags: field tcp_flags needs proto tcp",
        ),
        (
            _rule(id="rate", log={"prefix": "x", "rate": "20000/second"}),
            "rule rate: log rate '20000/second' is outside",
        ),
        (_rule(id="rate2", log={"prefix": "x", "rate": "5/fortnight"}), "rule rate2: log rate '5/fortnight'"),
        (_rule(id="usr", direction="out", owner={"user": "root --gid-owner 0"}), "rule usr: owner user"),
        (_rule(id="state", state=["new; drop"]), "rule state: state 'new; drop'"),
    ],
    ids=lambda v: v["id"] if isinstance(v, dict) else None,
)
def test_what_iptables_cannot_express_is_refused_with_the_rule_id(rule, message):
    with pytest.raises(RenderError) as caught:
        render(COMPILED, "home", [rule])
    assert message in str(caught.value)


def test_limit_rates_are_written_as_iptables_save_prints_them():
    assert [limit_rate("r", r) for r in ("5/minute", "60/minute", "10/second", "1/day", "24/day", "3600/hour")] == [
        "5/min", "1/sec", "10/sec", "1/day", "1/hour", "1/sec",
    ]  # fmt: skip


def test_the_cli_prints_the_iptables_format(tmp_path):
    distsec = Path(sys.executable).parent / "distsec"
    if not distsec.exists():
        pytest.skip("distsec is installed by tools/venv.sh")
    argv = [
        str(distsec),
        "psl",
        "compile",
        str(MAIL),
        "--host",
        "ws1",
        "--group",
        "workstations",
        "--format",
        "iptables",
    ]
    result = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("# distsec: domain example.org, profile home, policy sha256:")
    assert lines[1:3] == ["# ipv4: iptables-restore --noflush", "*filter"]
    assert "# ip6tables" not in lines[1] and "# ipv6: ip6tables-restore --noflush" in lines
    from ansible_collections.distsec.framework.plugins.plugin_utils._psl import cli

    assert cli.FORMATS["iptables"] is render_text


@pytest.mark.netns
@pytest.mark.parametrize("variant", VARIANTS)
def test_every_feature_loads_and_reads_back_as_predicted(variant, run, netns, tmp_path):
    """What the kernel lists after the load is what the backend predicted from the files."""
    backend = IptablesBackend(run, str(tmp_path), variant=variant, argv_prefix=netns)
    artefacts = render(COMPILED, "home", FEATURES)
    backend.apply(artefacts)
    assert backend.current() == backend.expected(artefacts)
    assert backend.in_effect() == backend.intended(artefacts)
    assert "odd id_s _quoted_ _x" in backend.in_effect()["ipv4 DISTSEC-OUTPUT"]
    assert "-p gre -m comment --comment protocols" in backend.current()  # written as 47, listed by name
