"""The Windows Defender Firewall renderer (render only): golden files and what it refuses.

Nothing here runs on Windows: the script is checked by golden files and by these rules only.
Regenerate the golden files with `UPDATE_GOLDEN=1 .venv/bin/python -m pytest -q tests/unit -k golden`.
"""

from __future__ import annotations

import pytest
from render_helpers import EXAMPLES, assert_golden, golden_text
from render_helpers import entry as _entry
from render_helpers import rule as _rule

from ansible_collections.distsec.framework.plugins.module_utils._render.windows import (
    RenderError,
    ps_quote,
    render,
    render_text,
)


def _to(*nets):
    return {
        "objects": [],
        "literal": {"ipv4": [n for n in nets if ":" not in n], "ipv6": [n for n in nets if ":" in n]},
    }


COMPILED = {
    "domain": "example.org",
    "objects": {"addresses": {}},
    "profiles": {"home": {"default": {"in": "drop", "out": "accept", "forward": "drop"}}},
}


def _commands(script):
    return [line for line in script.splitlines() if line.startswith("New-NetFirewallRule")]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.parent.name)
def test_golden_files(path):
    assert_golden(golden_text(path, render_text, RenderError), f"windows/{path.parent.name}.ps1.txt")


def test_the_script_states_what_it_is_and_replaces_only_its_group():
    script = render(COMPILED, "home", [_rule(protocols=[_entry("tcp", ports=[[22, 22]])], action="accept")])
    text = script["distsec.ps1"]
    assert list(script) == ["distsec.ps1"]
    assert "RENDER ONLY: this script has not been tested\n# on live Windows hosts" in text
    assert "Get-NetFirewallRule -Group 'distsec' -ErrorAction SilentlyContinue | Remove-NetFirewallRule" in text
    assert _commands(text) == [
        "New-NetFirewallRule -Name 'distsec-r-1' -DisplayName 'r' -Group 'distsec' -Description 'd' "
        "-Direction Inbound -Action Allow -Protocol TCP -LocalPort '22' | Out-Null"
    ]
    assert text.endswith(
        "Set-NetFirewallProfile -Profile Domain,Private,Public -Enabled True "
        "-DefaultInboundAction Block -DefaultOutboundAction Allow\n"
    )


def test_strings_are_single_quoted_with_quotes_doubled():
    assert ps_quote("it's") == "'it''s'"
    assert ps_quote("a\u2019b") == "'a\u2019\u2019b'"  # PowerShell treats typographic quotes as quotes too
    assert ps_quote("x\ny$(z)") == "'x y$(z)'"  # no expansion inside single quotes
    text = render_text(COMPILED, "home", [_rule(description="Bob's $(rm -rf) `n", protocols=[_entry("tcp")])])
    assert "-Description 'Bob''s $(rm -rf) `n'" in text


def test_ports_addresses_icmp_and_families():
    dns = [_entry("udp", ports=[[53, 53]], sports=[[1024, 65535]])]
    to = _to("192.0.2.0/24", "2001:db8::1/128")
    rules = [
        _rule(id="a", direction="out", action="accept", to=to, protocols=dns),
        _rule(id="b", protocols=[_entry("icmp", types=[3], codes=[4]), _entry("esp")], family="ipv4"),
    ]
    text = render_text(COMPILED, "home", rules)
    assert _commands(text) == [
        "New-NetFirewallRule -Name 'distsec-a-1' -DisplayName 'a' -Group 'distsec' -Description 'd' -Direction Outbound "
        "-Action Allow -Protocol UDP -LocalPort '1024-65535' -RemotePort '53' -RemoteAddress '192.0.2.0/24','2001:db8::1' "
        "| Out-Null",
        "New-NetFirewallRule -Name 'distsec-b-1' -DisplayName 'b' -Group 'distsec' -Description 'd' -Direction Inbound "
        "-Action Block -Protocol ICMPv4 -IcmpType '3:4' -RemoteAddress '0.0.0.0/0' | Out-Null",
        "New-NetFirewallRule -Name 'distsec-b-2' -DisplayName 'b' -Group 'distsec' -Description 'd' -Direction Inbound "
        "-Action Block -Protocol 50 -RemoteAddress '0.0.0.0/0' | Out-Null",
    ]


def test_first_match_is_kept_although_windows_blocks_first():
    web = [_entry("tcp", ports=[[443, 443]])]
    rules = [
        _rule(id="allow-partner", action="accept", protocols=web, **{"from": _to("198.51.100.0/25")}),
        _rule(id="deny-https", protocols=web),  # PSL: the partner still gets in
        _rule(id="deny-partner-https", protocols=web, **{"from": _to("198.51.100.0/26")}),  # unreachable
    ]
    text = render_text(COMPILED, "home", rules)
    commands = _commands(text)
    assert len(commands) == 2
    assert "-RemoteAddress '0.0.0.0-198.51.99.255','198.51.100.128-255.255.255.255','::/0'" in commands[1]
    assert "# rule deny-partner-https\n#   a part covered entirely by an earlier accept rule is left out" in text
    overlap = [rules[0], _rule(id="deny-range", protocols=[_entry("tcp", ports=[[400, 500]])])]
    with pytest.raises(RenderError, match="rule deny-range: it overlaps the earlier accept rule allow-partner"):
        render(COMPILED, "home", overlap)


def test_a_catch_all_rule_becomes_the_default_and_what_follows_it_is_unreachable():
    rules = [
        _rule(id="ssh", action="accept", protocols=[_entry("tcp", ports=[[22, 22]])]),
        _rule(id="deny-rest", direction="out", log={"prefix": "x", "rate": "5/minute"}),
        _rule(id="late", direction="out", action="accept", protocols=[_entry("tcp", ports=[[80, 80]])]),
    ]
    text = render_text(COMPILED, "home", rules)
    assert len(_commands(text)) == 1
    assert "# rule late: left out, the catch-all rule deny-rest decides first." in text
    assert "-DefaultInboundAction Block -DefaultOutboundAction Block -LogBlocked True" in text


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (_rule(direction="forward"), "rule r: Windows Defender Firewall does not filter routed (forward) traffic"),
        (_rule(interface="eth0"), "rule r: interface 'eth0' is a Linux interface name"),
        (_rule(fields={"dscp": 10}), "rule r: Windows Firewall cannot match header fields (dscp)"),
        (_rule(direction="out", owner={"user": 0}), "rule r: Windows Firewall rules cannot match a Unix socket owner"),
        (_rule(state=["invalid"]), "rule r: Windows Firewall cannot match connection state invalid"),
        (_rule(state=["established"]), "rule r: Windows Firewall passes replies to allowed connections itself"),
        (
            _rule(protocols=[_entry("sctp", ports=[[9, 9]])]),
            "rule r: Windows Firewall matches ports of TCP and UDP only",
        ),
    ],
)
def test_what_windows_cannot_express_is_an_error_naming_the_rule(rule, message):
    with pytest.raises(RenderError, match=message.replace("(", r"\(").replace(")", r"\)")):
        render(COMPILED, "home", [rule])
