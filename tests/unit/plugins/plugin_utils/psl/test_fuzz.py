"""Property tests: whatever the input, the PSL core reports problems and never crashes.

(a) arbitrary bytes as a PSL file, (b) arbitrary and PSL-shaped structures dumped as YAML,
(c) mutations of the mail-client example, (d) the condition parser on arbitrary text, and
(e) the host-side evaluator on arbitrary Security Status. The only exception allowed out of
load_policy is PslError (out of the condition parser: ExprError); the evaluator never raises.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ansible_collections.distsec.framework.plugins.module_utils._evaluate.decide import (
    active_rules,
    decide,
    decide_flow,
)
from ansible_collections.distsec.framework.plugins.module_utils._evaluate.flows import parse_flow
from ansible_collections.distsec.framework.plugins.plugin_utils._psl.compiler import Policy, compile_policy, load_policy
from ansible_collections.distsec.framework.plugins.plugin_utils._psl.expr import (
    FACT_NAMESPACES,
    FUNCTIONS,
    ExprError,
    parse_condition,
    parse_expression,
)
from ansible_collections.distsec.framework.plugins.plugin_utils._psl.problems import PslError
from ansible_collections.distsec.framework.plugins.plugin_utils._psl.testing import run_tests

FAST = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
_counter = itertools.count()


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    """A directory for the generated files (hypothesis does not reset function-scoped fixtures)."""
    return tmp_path_factory.mktemp("psl-fuzz")


def _write(directory: Path, data: bytes) -> Path:
    path = directory / f"case{next(_counter)}.yml"
    path.write_bytes(data)
    return path


def _load(path: Path) -> Optional[Policy]:
    """load_policy: a Policy, or None for a PslError with errors; any other exception fails the test."""
    try:
        return load_policy([str(path)])
    except PslError as exc:
        assert exc.problems.errors, "a PslError must carry at least one error"
        for problem in exc.problems.items:
            assert problem.severity in ("error", "warning")
            assert problem.loc is None or (problem.loc.line >= 1 and problem.loc.col >= 1)
        return None


def _compile_checked(policy: Policy, host: Optional[str] = None, groups: Optional[List[str]] = None) -> dict:
    compiled = compile_policy(policy, host=host, groups=groups)
    assert isinstance(compiled, dict)
    assert isinstance(compiled.get("hash"), str) and compiled["hash"].startswith("sha256:")
    return compiled


# ---- (a) bytes -----------------------------------------------------------------------------------


@FAST
@given(data=st.binary(max_size=2048))
def test_arbitrary_bytes(scratch, data):
    policy = _load(_write(scratch, data))
    if policy is not None:
        _compile_checked(policy)


@FAST
@given(prefix=st.sampled_from([b"psl: 1\ndomain: example.org\n", b"psl: 1\n", b""]), data=st.binary(max_size=512))
def test_bytes_after_a_valid_start(scratch, prefix, data):
    policy = _load(_write(scratch, prefix + data))
    if policy is not None:
        _compile_checked(policy)


# ---- (b) structures as YAML ----------------------------------------------------------------------

TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([0, 1, -1, 65535, 65536, 2**63, 10**400, -(10**400)]),
    st.floats(allow_nan=True, allow_infinity=True),
    TEXT,
)
JSONISH = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(TEXT, st.integers(), st.booleans()), children, max_size=4),
    ),
    max_leaves=30,
)


def _dump(data: Any) -> bytes:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False).encode("utf-8")


@FAST
@given(data=JSONISH)
def test_arbitrary_structures(scratch, data):
    policy = _load(_write(scratch, _dump(data)))
    if policy is not None:
        _compile_checked(policy)


@FAST
@given(data=st.dictionaries(st.sampled_from(["rules", "objects", "checks", "select", "profiles", "include"]), JSONISH))
def test_arbitrary_sections(scratch, data):
    data = {"psl": 1, "domain": "example.org", **{k: v for k, v in data.items() if k != "include"}}
    policy = _load(_write(scratch, _dump(data)))
    if policy is not None:
        _compile_checked(policy)


# Structures shaped like PSL: the right keys, values drawn from plausible (and some wrong) ones.
NAMES = st.sampled_from(["a", "b", "mail", "web", "any", "ws", "Bad Name", ""])
ADDRESSES = st.sampled_from(
    [
        "192.0.2.0/24",
        "2001:db8::/32",
        "2001:db8::/129",
        "10.0.0.1/24",
        "192.0.2.1-192.0.2.9",
        "192.0.2.9-192.0.2.1",
        "2001:db8::1-192.0.2.1",
        "198.51.100.7",
        "::",
        "0.0.0.0/0",
        "not-an-ip",
        "-",
        "/",
        "1/1",
        "::/0",
        "any",
    ]
)
PORTS = st.one_of(
    st.integers(min_value=-5, max_value=70000),
    st.sampled_from(["22", "1000-2000", "2000-1000", "0-99999", "x", "1-", "-1", True]),
)
CONDITIONS = st.sampled_from(
    [
        'packages.x.version < "1.0"',
        "exists(packages.a)",
        "not",
        "",
        "a.b",
        "exist(packages.a)",
        "pkgs.a == 1",
        "any_in(network.addresses, @a)",
        "any_in(network.addresses, @nope)",
        'platform.os < "x"',
        True,
        False,
        {"all": ["exists(packages.a)", {"not": "updates.pending > 3"}]},
        {"any": []},
        {"not": None},
        {"all": "x"},
        'version(packages.a.version, "dpkg") >= "1"',
        'version(packages.a.version, "nope") >= "1"',
        "age(time.now) > 1d",
    ]
)
PROTOS = st.sampled_from(["tcp", "udp", "sctp", "icmp", "icmpv6", "any", 47, 256, "gre"])


def one_or_many(strategy):
    return st.one_of(strategy, st.lists(strategy, max_size=3))


PLAUSIBLE = st.one_of(
    SCALARS, NAMES, ADDRESSES, PORTS, CONDITIONS, PROTOS, st.lists(st.one_of(NAMES, ADDRESSES, PORTS))
)

RULE_VALUES = {
    "id": st.sampled_from(["r1", "r2", "r1", "Bad Id", 5]),
    "description": st.sampled_from(["x", "", 3]),
    "direction": st.sampled_from(["in", "out", "forward", "sideways"]),
    "from": one_or_many(st.one_of(NAMES, ADDRESSES)),
    "to": one_or_many(st.one_of(NAMES, ADDRESSES)),
    "service": one_or_many(NAMES),
    "proto": PROTOS,
    "ports": st.one_of(st.lists(PORTS, max_size=4), PORTS),
    "sports": st.lists(PORTS, max_size=3),
    "icmp_types": st.lists(st.sampled_from(["echo-request", "echo-reply", "nd-redirect", "bogus", 8, 300]), max_size=3),
    "family": st.sampled_from(["ipv4", "ipv6", "any", "ipv5"]),
    "interface": st.sampled_from(["eth0", "lo", ""]),
    "state": st.lists(st.sampled_from(["new", "established", "related", "invalid", "bogus"]), max_size=3),
    "fields": st.fixed_dictionaries(
        {},
        optional={
            "dscp": st.integers(-1, 70),
            "hop_limit": st.sampled_from([1, "1-64", "64-1"]),
            "ttl": st.sampled_from([1, "1-64"]),
            "next_header": st.sampled_from(["tcp", 6, 300]),
            "tcp_flags": st.lists(st.sampled_from(["syn", "ack", "xmas"]), max_size=2),
        },
    ),
    "owner": st.one_of(
        st.just({}), st.fixed_dictionaries({}, optional={"user": st.sampled_from(["www", 0]), "group": st.just(1)})
    ),
    "action": st.sampled_from(["accept", "drop", "reject", "allow"]),
    "log": st.one_of(
        st.booleans(),
        st.fixed_dictionaries(
            {}, optional={"prefix": st.text(max_size=60), "rate": st.sampled_from(["5/minute", "5/year"])}
        ),
    ),
    "when": CONDITIONS,
    "if_unknown": st.sampled_from(["true", "false", True]),
    "apply_to": one_or_many(st.sampled_from(["workstations", "workstation", "ws1", "lab"])),
    "profiles": one_or_many(st.sampled_from(["home", "foreign", "travel", "isolated", "nope"])),
    "descripton": st.just("typo"),
}
RULE_REQUIRED = ("id", "description", "direction", "action")
RULES = st.one_of(
    st.fixed_dictionaries(
        {k: RULE_VALUES[k] for k in RULE_REQUIRED},
        optional={k: v for k, v in RULE_VALUES.items() if k not in RULE_REQUIRED},
    ),
    st.fixed_dictionaries({}, optional=RULE_VALUES),
    PLAUSIBLE,
)
SERVICE_ENTRY = st.fixed_dictionaries(
    {"proto": PROTOS},
    optional={
        "ports": st.lists(PORTS, max_size=3),
        "sports": st.lists(PORTS, max_size=2),
        "types": st.lists(st.sampled_from(["echo-request", "bogus", 8]), max_size=2),
        "codes": st.lists(st.integers(-1, 300), max_size=2),
    },
)
OBJECTS = st.fixed_dictionaries(
    {},
    optional={
        "addresses": st.dictionaries(NAMES, one_or_many(st.one_of(ADDRESSES, NAMES)), max_size=4),
        "services": st.dictionaries(NAMES, st.one_of(SERVICE_ENTRY, st.lists(SERVICE_ENTRY, max_size=2)), max_size=3),
        "groups": st.dictionaries(
            st.sampled_from(["workstations", "lab", "servers"]),
            st.fixed_dictionaries(
                {}, optional={"inventory_groups": st.lists(NAMES, max_size=2), "hosts": st.lists(NAMES, max_size=2)}
            ),
            max_size=2,
        ),
    },
)
CHECK_KINDS = {
    "package": st.fixed_dictionaries(
        {"name": st.sampled_from(["openssl", ""])},
        optional={"at_least": st.just("1.0"), "below": st.just("2"), "absent": st.booleans()},
    ),
    "service": st.fixed_dictionaries(
        {"name": st.just("ssh.service")},
        optional={"state": st.sampled_from(["running", "stopped", "absent", "x"]), "enabled": st.booleans()},
    ),
    "sysctl": st.fixed_dictionaries({"key": st.just("net.ipv4.ip_forward"), "value": st.sampled_from([0, "1", None])}),
    "antivirus": st.fixed_dictionaries({"max_age": st.sampled_from(["2d", "2 days", "0s"])}),
    "certificate": st.fixed_dictionaries({}, optional={"min_remaining": st.sampled_from(["7d", "x"])}),
    "listening": st.fixed_dictionaries({"allowed_ports": st.lists(PORTS, max_size=3)}),
    "condition": CONDITIONS,
}
CHECKS = st.one_of(
    st.fixed_dictionaries(
        {"id": st.sampled_from(["c1", "c2", "c1", "Bad"]), "description": st.just("x")},
        optional={
            **CHECK_KINDS,
            "on_fail": st.sampled_from(["isolated", "foreign", "travel", "nope"]),
            "severity": st.sampled_from(["low", "high", "extreme"]),
            "if_unknown": st.sampled_from(["true", "false"]),
            "apply_to": one_or_many(st.sampled_from(["workstations", "ws1"])),
        },
    ),
    st.fixed_dictionaries({}, optional={"id": st.just("c9"), **CHECK_KINDS}),
)
BASELINE = st.fixed_dictionaries(
    {},
    optional={k: st.booleans() for k in ("loopback", "established", "icmpv6_essentials", "management")}
    | {"acknowledge_risk": st.sampled_from(["short", "a long enough reason"])},
)
PROFILES = st.dictionaries(
    st.sampled_from(["travel", "lab", "home", "Bad Name"]),
    st.fixed_dictionaries(
        {},
        optional={
            "inherit": st.sampled_from(["home", "foreign", "travel", "lab", "nope"]),
            "rank": st.integers(-1, 101),
            "default": st.fixed_dictionaries({}, optional={"in": st.sampled_from(["drop", "accept", "x"])}),
            "baseline": BASELINE,
            "rules": st.lists(RULES, max_size=2),
            "description": st.just("x"),
        },
    ),
    max_size=3,
)
SELECT = st.fixed_dictionaries(
    {},
    optional={
        "profile": st.sampled_from(["home", "travel", "quarantine", "nope"]),
        "when": CONDITIONS,
        "if_unknown": st.sampled_from(["true", "false", 1]),
        "description": st.just("x"),
    },
)
EXCEPTIONS = st.fixed_dictionaries(
    {},
    optional={
        "id": st.sampled_from(["e1", "e1", "Bad"]),
        "description": st.just("x"),
        "apply_to": one_or_many(st.sampled_from(["lab", "ws1"])),
        "add_rules": st.lists(RULES, max_size=2),
        "remove_rules": st.lists(st.sampled_from(["r1", "r2", "nope"]), max_size=2),
        "remove_checks": st.lists(st.sampled_from(["c1", "nope"]), max_size=2),
    },
)
MECHANISMS = {
    "ipsec": st.fixed_dictionaries(
        {},
        optional={
            "connections": st.lists(
                st.fixed_dictionaries(
                    {"id": st.just("x1"), "description": st.just("x"), "peers": one_or_many(NAMES)},
                    optional={
                        "ike_proposals": st.lists(
                            st.sampled_from(["aes256gcm16-prfsha384-ecp384", "3des-md5-modp1024"]), max_size=2
                        ),
                        "services": one_or_many(NAMES),
                        "mode": st.sampled_from(["tunnel", "transport", "x"]),
                    },
                ),
                max_size=2,
            )
        },
    ),
    "patches": st.fixed_dictionaries(
        {},
        optional={
            "on_fail": st.sampled_from(["isolated", "nope", 3]),
            "security_updates_within": st.sampled_from(["7d", "x"]),
        },
    ),
    "services": st.fixed_dictionaries(
        {},
        optional={
            "required": st.lists(st.sampled_from(["a", "b"]), max_size=2),
            "forbidden": st.lists(st.sampled_from(["a", "c"]), max_size=2),
        },
    ),
    "sysctl": st.dictionaries(
        st.sampled_from(["net.ipv4.ip_forward", "bad"]), st.sampled_from([0, "1", None]), max_size=2
    ),
    "antivirus": st.fixed_dictionaries(
        {}, optional={"engine": st.sampled_from(["clamav", "x"]), "max_signature_age": st.just("2d")}
    ),
}
PSL_DOCUMENT = st.fixed_dictionaries(
    {
        "psl": st.sampled_from([1, 1, 1, 1, 2, "1", None]),
        "domain": st.sampled_from(["example.org", "example.org", 5, "bad domain!"]),
    },
    optional={
        "objects": OBJECTS,
        "rules": st.one_of(st.lists(RULES, max_size=4), PLAUSIBLE),
        "profiles": PROFILES,
        "checks": st.lists(CHECKS, max_size=3),
        "select": st.lists(st.one_of(SELECT, PLAUSIBLE), max_size=2),
        "exceptions": st.lists(EXCEPTIONS, max_size=2),
        "baseline": BASELINE,
        "management": st.fixed_dictionaries(
            {}, optional={"from": one_or_many(st.one_of(NAMES, ADDRESSES)), "service": one_or_many(NAMES)}
        ),
        "defaults": st.fixed_dictionaries(
            {},
            optional={
                "version_scheme": st.sampled_from(["dpkg", "rpm", "x"]),
                "if_unknown": st.sampled_from(["true", "maybe"]),
            },
        ),
        "default_profile": st.sampled_from(["home", "travel", "nope"]),
        "metadata": st.fixed_dictionaries(
            {}, optional={"serial": st.integers(-1, 3), "expires": st.sampled_from(["2000-01-01", "x"])}
        ),
        "rulez": PLAUSIBLE,
        **MECHANISMS,
    },
)


@FAST
@given(data=PSL_DOCUMENT)
@example(data={"psl": 1, "domain": "example.org", "checks": [{}]})  # found by this test: a crash, see the report
@example(data={"psl": 1, "domain": "example.org", "select": [{}]})
@example(data={"psl": 1, "domain": "example.org", "exceptions": [{}]})
def test_psl_shaped_structures(scratch, data):
    policy = _load(_write(scratch, _dump(data)))
    if policy is not None:
        _compile_checked(policy)
        _compile_checked(policy, host="ws1", groups=["workstations", "lab"])


# ---- (c) mutations of the example ----------------------------------------------------------------


@st.composite
def _mutated_lines(draw, lines: List[str]) -> List[str]:
    out = list(lines)
    for _step in range(draw(st.integers(min_value=1, max_value=3))):
        if not out:
            break
        kind = draw(st.sampled_from(["delete", "duplicate", "change", "swap"]))
        i = draw(st.integers(min_value=0, max_value=len(out) - 1))
        if kind == "delete":
            del out[i]
        elif kind == "duplicate":
            out.insert(i, out[i])
        elif kind == "swap":
            j = draw(st.integers(min_value=0, max_value=len(out) - 1))
            out[i], out[j] = out[j], out[i]
        else:
            line = out[i]
            at = draw(st.integers(min_value=0, max_value=len(line)))
            char = draw(
                st.one_of(
                    st.sampled_from(list(" :-[]{},#&*!|>'\"\t0123456789.x@")),
                    st.characters(blacklist_categories=("Cs",)),
                )
            )
            out[i] = line[:at] + char + line[at + 1 :]
    return out


@pytest.fixture(scope="module")
def example_lines(mail_client_example) -> List[str]:
    return mail_client_example.read_text(encoding="utf-8").splitlines(keepends=True)


def test_the_example_is_valid_and_its_tests_pass(mail_client_example):
    policy = load_policy([str(mail_client_example)])
    assert not policy.problems.items
    results = run_tests(policy)
    assert len(results) == 4 and all(r.passed for r in results), [r.failures for r in results]


@FAST
@given(data=st.data())
def test_mutated_example(scratch, example_lines, data):
    lines = data.draw(_mutated_lines(example_lines))
    policy = _load(_write(scratch, "".join(lines).encode("utf-8")))
    if policy is not None:
        _compile_checked(policy)
        _compile_checked(policy, host="ws1", groups=["workstations"])
        for result in run_tests(policy):  # a mutated test may fail; it must not crash
            assert isinstance(result.failures, list)


# ---- (d) the condition parser --------------------------------------------------------------------

TOKENS = st.sampled_from(
    [
        *FACT_NAMESPACES,
        *FUNCTIONS,
        "and",
        "or",
        "not",
        "in",
        "true",
        "false",
        "null",
        "(",
        ")",
        "[",
        "]",
        ",",
        ".",
        "==",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        '"1.0"',
        "'x'",
        '"',
        "'",
        "\\",
        "0",
        "1.5",
        "2d",
        "10w",
        "@a",
        "@",
        "version",
        "thunderbird",
        '"dpkg"',
        "-",
        "x.y",
        "99999999999999999999999999",
    ]
)


def _ref_exists(name: str) -> bool:
    return name in ("a", "corp")


# Deep nesting of each bracketing construct, up to the 4096-character limit of an expression.
NESTED = st.builds(
    lambda pair, depth, core: pair[0] * depth + core + pair[1] * depth,
    st.sampled_from([("(", ")"), ("[", "]"), ("not ", ""), ("len(", ")"), ("[(", ")]"), ("lower(", ")")]),
    st.integers(min_value=0, max_value=1300),
    st.sampled_from(["true", "host.x", "", '"a"', "1"]),
)


@FAST
@given(
    text=st.one_of(
        st.text(max_size=200),
        st.lists(TOKENS, max_size=40).map(" ".join),
        st.lists(TOKENS, max_size=40).map("".join),
        NESTED,
    )
)
def test_parse_expression_raises_only_expr_error(text):
    try:
        ast = parse_expression(text, _ref_exists)
    except ExprError as exc:
        assert isinstance(exc.column, int) and 0 <= exc.column <= len(text)
        return
    assert isinstance(ast, list) and ast


def test_parse_expression_deep_list_literal_raises_expr_error():
    """Outside @given (hypothesis raises the recursion limit while it runs, which hides this)."""
    for depth in (500, 1000, 2000):
        with pytest.raises(ExprError):
            parse_expression("[" * depth + "]" * depth)


def test_parse_expression_limits():
    """docs/psl.md 3.17: an expression nests at most 32 levels."""
    with pytest.raises(ExprError):
        parse_expression("(" * 100 + "true" + ")" * 100)
    with pytest.raises(ExprError, match="nested deeper than 32"):
        parse_expression("[" * 40 + "]" * 40 + " == 1")
    with pytest.raises(ExprError):
        parse_expression("not " * 100 + "true")
    with pytest.raises(ExprError):
        parse_expression("true or " * 1000 + "true")
    assert parse_expression("not " * 10 + "true")[0] == "not"


@FAST
@given(
    value=st.one_of(
        JSONISH,
        CONDITIONS,
        st.recursive(
            CONDITIONS,
            lambda c: st.dictionaries(
                st.sampled_from(["all", "any", "not"]), st.one_of(c, st.lists(c, max_size=3)), max_size=2
            ),
            max_leaves=8,
        ),
    )
)
def test_parse_condition_raises_only_expr_error(value):
    try:
        ast = parse_condition(value, _ref_exists)
    except ExprError:
        return
    assert isinstance(ast, list) and ast


# ---- (e) the evaluator ---------------------------------------------------------------------------

# Conditions that read facts in every way the language allows, so random status reaches them all.
EVALUATOR_POLICY = """\
psl: 1
domain: example.org
objects:
  addresses:
    corp: [2001:db8:c0::/48, 10.20.0.0/16]
    pdp: 2001:db8:ff::1
    patch_mirrors: 2001:db8:ff::80
    dns_servers: 2001:db8:ff::53
    ntp_servers: 2001:db8:ff::123
    pki: 2001:db8:ff::443
checks:
  - {id: pkg, description: x, package: {name: openssl, at_least: "3.0", below: "4"}, on_fail: quarantine}
  - {id: svc, description: x, service: {name: ssh.service, state: running, enabled: true}}
  - {id: sys, description: x, sysctl: {key: net.ipv4.ip_forward, value: 0}, on_fail: foreign}
  - {id: av, description: x, antivirus: {max_age: 2d}, on_fail: foreign}
  - {id: cert, description: x, certificate: {min_remaining: 7d}, on_fail: foreign}
  - {id: listen, description: x, listening: {allowed_ports: [22, "8000-8080"]}, on_fail: foreign}
select:
  - profile: foreign
    when: 'any_in(network.addresses, @corp) and not all_in(network.addresses, @corp)'
  - profile: foreign
    when: 'platform.os in platform.allowed or "x" in platform.tags or platform.tags in ["a", "b"]'
  - profile: foreign
    when: 'len(network.dns_search) > 2 and lower(network.dns_search[0]) == "corp" and network.dns_search[1] != 1'
  - profile: quarantine
    when: 'version(platform.kernel, "semver") >= "6.1.0" or version(platform.kernel, "pep440") < "1"'
  - profile: quarantine
    when: 'version(platform.kernel, "rpm") == "1" or version(platform.kernel, "dpkg") != "1"'
  - profile: quarantine
    when: 'age(time.boot) < 1h and until(time.deadline) > 0s and updates.pending >= 1.5 and host.n < host.m'
    if_unknown: "true"
rules:
  - id: old
    description: x
    direction: out
    action: reject
    when: 'packages.thunderbird.version < "1:115.0" and packages["thunder bird"].version == "1"'
"""
FLOWS = [
    parse_flow("tcp 2001:db8::1 -> [2001:db8:25::10]:587 out"),
    parse_flow("udp 192.0.2.1:5353 -> 192.0.2.2:53 out"),
    parse_flow("icmpv6 2001:db8::1 -> 2001:db8::2 in type=135"),
    parse_flow("tcp 198.51.100.9 -> 192.0.2.1:22 in"),
]
NAMESPACE_KEYS = st.sampled_from(
    [
        "version",
        "scheme",
        "active",
        "enabled",
        "valid",
        "revoked",
        "not_after",
        "signatures_updated",
        "addresses",
        "dns_search",
        "os",
        "allowed",
        "tags",
        "kernel",
        "boot",
        "deadline",
        "pending",
        "n",
        "m",
        "version_scheme",
        "certificate",
        "openssl",
        "thunderbird",
        "thunder bird",
        "ssh.service",
        "net.ipv4.ip_forward",
        "port",
    ]
)
STATUS_VALUES = st.one_of(
    SCALARS,
    st.sampled_from(
        [
            "1:102.0-1",
            "3.0.15-1",
            "6.1.0",
            "2026-01-01T00:00:00Z",
            "2001:db8:c0::5/64",
            "10.20.1.1",
            "corp",
            "not a version",
            "",
            "1:",
            "~",
            "1.0.0-alpha+001",
            "v1",
        ]
    ),
)
STATUS_TREE = st.recursive(
    STATUS_VALUES,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(NAMESPACE_KEYS, children, max_size=5)),
    max_leaves=25,
)
# The facts the policies above read: a status built from these reaches every evaluator branch.
FACT_PATHS = [
    ("packages", "openssl", "version"),
    ("packages", "openssl", "scheme"),
    ("packages", "thunderbird", "version"),
    ("packages", "thunderbird", "scheme"),
    ("packages", "thunder bird", "version"),
    ("services", "ssh.service", "active"),
    ("services", "ssh.service", "enabled"),
    ("sysctl", "net.ipv4.ip_forward"),
    ("antivirus", "signatures_updated"),
    ("domain", "certificate", "valid"),
    ("domain", "certificate", "revoked"),
    ("domain", "certificate", "not_after"),
    ("sockets",),
    ("network", "addresses"),
    ("network", "dns_search"),
    ("platform", "os"),
    ("platform", "allowed"),
    ("platform", "tags"),
    ("platform", "kernel"),
    ("platform", "version_scheme"),
    ("time", "boot"),
    ("time", "deadline"),
    ("updates", "pending"),
    ("host", "n"),
    ("host", "m"),
]


# Values at the edges of what a fact can hold after json.load of a host's status file.
EDGE_VALUES = st.sampled_from(
    [
        10**400,
        -(10**400),
        2**1024,
        float("nan"),
        float("inf"),
        -float("inf"),
        1e308,
        ["x"],
        {"a": 1},
        [],
        {},
        "",
        True,
        0,
        -1,
        "2026-01-01T00:00:00Z",
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "2026-13-45",
        [{"port": 22}],
        [{"port": True}],
        [{"port": 70000}],
        [{"nope": 1}],
        ["x", {"port": 1}],
        ["2001:db8:c0::5/64", "10.20.1.1"],
        ["10.20.1.1/99"],
        [["x"]],
        [{"a": 1}],
        "1:115.0",
        "1:99999999999999999999",
    ]
)


def _nest(facts: Dict[tuple, Any]) -> Dict[str, Any]:
    status: Dict[str, Any] = {}
    for path, value in facts.items():
        node = status
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return status


STATUS = st.one_of(
    st.dictionaries(st.sampled_from(FACT_PATHS), st.one_of(EDGE_VALUES, STATUS_TREE), max_size=12).map(_nest),
    st.dictionaries(st.sampled_from([*FACT_NAMESPACES, "sockets"]), STATUS_TREE, max_size=8),
    st.dictionaries(TEXT, JSONISH, max_size=4),
    st.builds(
        lambda ports: {"sockets": [{"port": p} for p in ports]}, st.lists(st.one_of(st.integers(), SCALARS), max_size=4)
    ),
)


@pytest.fixture(scope="module")
def compiled_examples(scratch, mail_client_example) -> List[Dict[str, Any]]:
    path = scratch / "evaluator.yml"
    path.write_text(EVALUATOR_POLICY)
    conditions = load_policy([str(path)])
    example = load_policy([str(mail_client_example)])
    return [
        compile_policy(conditions, host="ws1"),
        compile_policy(example, host="ws1", groups=["workstations"]),
        compile_policy(example),
    ]


def test_evaluator_policy_compiles_cleanly(compiled_examples):
    assert len(compiled_examples[0]["checks"]) == 6
    assert len(compiled_examples[0]["select"]) == 6


@FAST
@given(
    status=STATUS,
    which=st.integers(min_value=0, max_value=2),
    now=st.one_of(
        st.none(), st.floats(allow_nan=False, allow_infinity=False), st.integers(min_value=0, max_value=2**40)
    ),
)
@example(status={"antivirus": {"signatures_updated": 10**400}}, which=0, now=0)  # found by this test
@example(status={"platform": {"os": ["x"], "allowed": {"a": 1}}}, which=0, now=0)
def test_decide_never_raises(compiled_examples, status, which, now):
    compiled = compiled_examples[which]
    decision = decide(compiled, status, now=now)
    assert decision.profile in compiled["profiles"]
    assert decision.compliant == (not decision.failed_checks)
    assert isinstance(active_rules(compiled, decision), list)
    for flow in FLOWS:
        verdict = decide_flow(compiled, decision, flow)
        assert verdict.action in ("accept", "drop", "reject")


def test_decide_on_status_that_is_not_json_like(compiled_examples):
    """Values a status file can hold after json.load, at the edges of what the evaluator expects."""
    for status in ({"packages": None}, {"packages": []}, {"sockets": {}}, {"time": {"boot": math.inf}}):
        assert decide(compiled_examples[0], status, now=0).profile in compiled_examples[0]["profiles"]
