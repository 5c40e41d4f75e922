"""Host-side condition evaluation: three-valued logic, versions, CIDR, ages (table-driven)."""

from __future__ import annotations

import pytest

from ansible_collections.distsec.framework.plugins.module_utils._evaluate.conditions import UNKNOWN, Evaluator
from ansible_collections.distsec.framework.plugins.plugin_utils._psl.expr import ExprError, parse_expression

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z
STATUS = {
    "platform": {"version_scheme": "dpkg"},
    "packages": {
        "thunderbird": {"version": "1:102.15.1-1~deb12u1"},
        "kernel-core": {"version": "5.14.0-362.el9", "scheme": "rpm"},
    },
    "services": {"ssh.service": {"active": True, "enabled": True}},
    "sysctl": {"net.ipv6.conf.all.forwarding": "0"},
    "network": {"addresses": ["2001:db8:10::5/64", "fe80::1/64"], "dns_search": ["corp.example.org"]},
    "antivirus": {"signatures_updated": "2027-01-14T08:00:00Z"},
    "sockets": [{"proto": "tcp", "port": 22}, {"proto": "tcp", "port": 8080}],
}
ADDRESSES = {"home_nets": {"ipv4": ["198.51.100.0/24"], "ipv6": ["2001:db8:10::/48"]}}


def _eval(text, status=None):
    ev = Evaluator(STATUS if status is None else status, ADDRESSES, now=NOW, default_scheme=None)
    return ev.truth3(parse_expression(text, lambda name: name in ADDRESSES)), ev


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ('packages.thunderbird.version < "1:115.0"', True),
        ('packages.thunderbird.version >= "1:102.15"', True),
        ('packages.thunderbird.version < "102.15"', False),  # the epoch wins
        ('packages["kernel-core"].version < "5.14.0-427.el9"', True),  # rpm ordering from the package
        ('version(packages.thunderbird.version, "dpkg") == "1:102.15.1-1~deb12u1"', True),
        ('services["ssh.service"].active == true and services["ssh.service"].enabled', True),
        ('sysctl["net.ipv6.conf.all.forwarding"] == "0"', True),
        ("any_in(network.addresses, @home_nets)", True),
        ("all_in(network.addresses, @home_nets)", False),  # fe80::1 is not in the home nets
        ('"corp.example.org" in network.dns_search', True),
        ('"other.example" not in network.dns_search', True),
        ("age(antivirus.signatures_updated) <= 2d", True),
        ("age(antivirus.signatures_updated) > 12h", True),
        ("exists(packages.clamav)", False),
        ('not exists(packages.clamav) or packages.clamav.version > "1"', True),
        ("len(sockets) == 2", True),
        ('lower("ABC") == "abc"', True),
        ("(1 < 2) and not (3 <= 2)", True),
    ],
)
def test_conditions_table(expr, expected):
    result, ev = _eval(expr)
    assert result is expected, ev.unknowns


@pytest.mark.parametrize(
    ("expr", "reason"),
    [
        ('packages.clamav.version < "1.0"', "not reported: packages.clamav.version"),
        ("age(domain.certificate.not_after) > 1d", "not reported: domain.certificate.not_after"),
        ("time.synchronized == true", "not reported: time.synchronized"),
        ("network.dns_search < 3", "cannot order"),
    ],
)
def test_unknown_facts_are_unknown_with_a_reason(expr, reason):
    result, ev = _eval(expr)
    assert result is UNKNOWN
    assert any(reason in u for u in ev.unknowns), ev.unknowns


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ('packages.clamav.version < "1" and false', False),  # UNKNOWN and false = false
        ('packages.clamav.version < "1" or true', True),  # UNKNOWN or true = true
        ('packages.clamav.version < "1" and true', UNKNOWN),
        ('not (packages.clamav.version < "1")', UNKNOWN),
    ],
)
def test_kleene_logic(expr, expected):
    assert _eval(expr)[0] is expected


def test_if_unknown_decides_the_final_answer():
    ev = Evaluator({}, ADDRESSES, now=NOW)
    ast = parse_expression('packages.x.version < "1"')
    assert ev.truth(ast, if_unknown=False) is False
    assert ev.truth(ast, if_unknown=True) is True


def test_version_scheme_falls_back_to_the_policy_default_and_else_is_unknown():
    ast = parse_expression('packages.x.version < "1.10"')
    status = {"packages": {"x": {"version": "1.9"}}}
    assert Evaluator(status, {}, now=NOW, default_scheme="dpkg").truth3(ast) is True
    ev = Evaluator(status, {}, now=NOW)
    assert ev.truth3(ast) is UNKNOWN and "no version scheme" in ev.unknowns[0]


def test_invalid_version_on_the_host_is_unknown_not_a_crash():
    ev = Evaluator({"packages": {"x": {"version": "not a version!"}}}, {}, now=NOW, default_scheme="dpkg")
    assert ev.truth3(parse_expression('packages.x.version < "1"')) is UNKNOWN
    assert "not a dpkg version" in ev.unknowns[0]


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ('pakages.x.version < "1"', "unknown fact 'pakages' (did you mean 'packages'?)"),
        ('packages.x.name < "abc"', "needs a version ordering"),
        ("exist(packages.x)", "unknown function 'exist' (did you mean 'exists'?)"),
        ("exists(1)", "exists() takes a fact"),
        ('version(packages.x.version, "deb") < "1"', "SCHEME is one of dpkg, rpm, pep440, semver"),
        ("any_in(network.addresses, @nowhere)", "@nowhere is not an address object"),
        ("packages.x.version <", "expected a value"),
        ("true true", "unexpected 'true' (missing 'and' / 'or'?)"),
        ("1 ; 2", "unexpected character ';'"),
        ("(" * 40 + "true" + ")" * 40, "nested deeper than 32 levels"),
    ],
)
def test_parse_errors_are_typed_and_helpful(expr, message):
    with pytest.raises(ExprError) as caught:
        parse_expression(expr, lambda name: name in ADDRESSES)
    assert message in str(caught.value)
