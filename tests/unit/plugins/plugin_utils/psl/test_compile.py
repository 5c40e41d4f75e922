"""PSL compile: golden output, determinism, targeting, baseline, and the published schema."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ansible_collections.distsec.framework.plugins.plugin_utils._psl.compiler import (
    canonical_json,
    compile_policy,
    load_policy,
    policy_schema,
)

TOP = Path(__file__).resolve().parents[5]
GOLDEN = Path(__file__).parent / "golden"
MAIL = "docs/examples/mail-client/policy.yml"
DISTSEC = Path(sys.executable).parent / "distsec"


@pytest.fixture(autouse=True)
def _at_top(monkeypatch):
    monkeypatch.chdir(TOP)  # compiled output names files relative to the working directory


@pytest.mark.parametrize(
    ("name", "host", "groups"),
    [("mail-client-ws1", "ws1", ["workstations"]), ("mail-client-default", None, [])],
)
def test_compiled_policy_matches_the_golden_file(name, host, groups):
    compiled = compile_policy(load_policy([MAIL]), host=host, groups=groups)
    text = json.dumps(compiled, indent=2, sort_keys=True) + "\n"
    golden = GOLDEN / f"{name}.json"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text(), f"compiled output changed; review and rerun with UPDATE_GOLDEN=1 ({golden})"


def test_hash_covers_the_content_and_is_stable(tmp_path):
    first = compile_policy(load_policy([MAIL]), host="ws1", groups=["workstations"])
    again = compile_policy(load_policy([MAIL]), host="ws1", groups=["workstations"])
    assert first["hash"] == again["hash"]
    body = dict(first)
    del body["hash"]
    import hashlib

    assert first["hash"] == "sha256:" + hashlib.sha256(canonical_json(body).encode()).hexdigest()
    changed = tmp_path / "policy.yml"
    changed.write_text((TOP / MAIL).read_text().replace("ports: [25, 465, 587]", "ports: [25, 587]"))
    other = compile_policy(load_policy([str(changed)]), host="ws1", groups=["workstations"])
    assert other["hash"] != first["hash"]


def test_targeting_decides_statically_which_rules_a_host_gets():
    policy = load_policy([MAIL])
    ws = compile_policy(policy, host="ws1", groups=["workstations"])
    server = compile_policy(policy, host="mx1", groups=["servers"])

    def ids(compiled):
        return [r["id"] for r in compiled["profiles"]["home"]["rules"]]

    assert "block-mail-old-client" in ids(ws)
    assert "block-mail-old-client" not in ids(server)
    assert ws["target"] == {"host": "ws1", "inventory_groups": ["workstations"], "groups": ["workstations"]}


def test_every_profile_starts_with_the_baseline_and_keeps_management_and_icmpv6():
    compiled = compile_policy(load_policy([MAIL]))
    for name, profile in compiled["profiles"].items():
        ids = [r["id"] for r in profile["rules"]]
        assert ids[:7] == [
            "baseline-loopback-in",
            "baseline-loopback-out",
            "baseline-established-in",
            "baseline-established-out",
            "baseline-icmpv6-in",
            "baseline-icmpv6-out",
            "baseline-management-in",
        ], name
        mgmt = profile["rules"][6]
        assert mgmt["from"] == {"objects": ["admin_net"], "literal": {"ipv4": [], "ipv6": []}}
        nd = profile["rules"][4]["protocols"][0]["types"]
        assert {133, 134, 135, 136, 2}.issubset(nd)  # RS, RA, NS, NA, packet-too-big


def test_turning_the_baseline_off_needs_an_acknowledgement(tmp_path):
    from ansible_collections.distsec.framework.plugins.plugin_utils._psl.problems import PslError

    base = (TOP / MAIL).read_text()
    risky = tmp_path / "risky.yml"
    risky.write_text(base + "\nbaseline:\n  management: false\n")
    with pytest.raises(PslError) as caught:
        load_policy([str(risky)])
    assert "acknowledge_risk" in str(caught.value.problems.errors[0])
    risky.write_text(base + "\nbaseline:\n  management: false\n  acknowledge_risk: console-only lab hosts\n")
    compiled = compile_policy(load_policy([str(risky)]))
    assert "baseline-management-in" not in [r["id"] for r in compiled["profiles"]["home"]["rules"]]


def test_published_schema_is_current():
    published = json.loads((TOP / "docs" / "psl.schema.json").read_text())
    assert published == policy_schema(), "regenerate: .venv/bin/distsec psl schema > docs/psl.schema.json"


def _cli(*args):
    if not DISTSEC.exists():
        pytest.skip("distsec is installed by tools/venv.sh")
    return subprocess.run([str(DISTSEC), "psl", *args], capture_output=True, text=True, check=False, cwd=TOP)


def test_cli_validate_compile_test_explain(tmp_path):
    ok = _cli("validate", MAIL)
    assert ok.returncode == 0 and "valid PSL for domain example.org" in ok.stdout
    compiled = _cli("compile", MAIL, "--host", "ws1", "--group", "workstations")
    assert compiled.returncode == 0 and json.loads(compiled.stdout)["format"] == "distsec.compiled-policy/1"
    tests = _cli("test", MAIL)
    assert tests.returncode == 0 and tests.stdout.strip().endswith("4 passed, 0 failed")
    status = tmp_path / "ss.json"
    status.write_text(json.dumps({"packages": {"thunderbird": {"version": "1:102.0-1"}}}))
    preview = _cli("compile", MAIL, "--host", "ws1", "--group", "workstations", "--status", str(status))
    assert "block-mail-old-client" in json.loads(preview.stdout)["preview"]["active_rules"]
    explained = _cli(
        "explain", MAIL, "--host", "ws1", "--group", "workstations", "--status", str(status),
        "--flow", "tcp 2001:db8::5 -> 2001:db8:25::10:587 out",
    )  # fmt: skip
    assert explained.returncode == 0
    assert "verdict:  REJECT by rule block-mail-old-client" in explained.stdout
    assert "condition 'packages.thunderbird.version < \"1:115.0\"' is true" in explained.stdout


def test_cli_failing_policy_test_exits_1_with_a_diff(tmp_path):
    broken = tmp_path / "policy.yml"
    broken.write_text(
        (TOP / MAIL).read_text().replace("action: reject, rule: block-mail-old-client}", "action: accept}", 1)
    )
    result = _cli("test", str(broken))
    assert result.returncode == 1
    assert "FAIL  an old Thunderbird cannot submit mail" in result.stdout
    assert "- expected: accept" in result.stdout and "+ got:      reject by rule block-mail-old-client" in result.stdout


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (["explain", MAIL, "--flow", "tcp nowhere -> 1.2.3.4:5 out"], 2, "--flow: cannot read flow"),
        (["compile", MAIL, "--status", "/nonexistent.json"], 1, "/nonexistent.json: cannot read"),
        (
            ["compile", MAIL, "--status", "/nonexistent.json", "--now", "yesterday"],
            2,
            "--now: 'yesterday' is not an ISO 8601",
        ),
        (["validate"], 2, "the following arguments are required: PATH"),
        (["validate", "/nonexistent.yml"], 1, "/nonexistent.yml:1:1: error: no such file"),
    ],
)
def test_cli_errors_are_one_line_and_exit_codes_are_right(args, code, text):
    result = _cli(*args)
    assert result.returncode == code, result.stderr
    assert text in result.stderr and "Traceback" not in result.stderr


def test_a_fact_no_collector_reports_is_a_warning(tmp_path):
    policy = tmp_path / "p.yml"
    policy.write_text(
        "psl: 1\ndomain: example.org\nrules:\n"
        '  - {id: r, description: d, direction: out, action: drop, when: "platform.kernal == \\"6.1\\""}\n'
    )
    warnings = [str(p) for p in load_policy([str(policy)]).problems.warnings]
    assert len(warnings) == 1 and "platform has no fact 'kernal'" in warnings[0]


@pytest.mark.parametrize(
    ("source", "code", "text"),
    [
        ("2001:db8:ff::9", 0, ""),
        ("198.51.100.77", 1, "distsec: lockout: profile home: a new connection from 198.51.100.77 to port 22"),
        ("nonsense", 2, "--management-from: 'nonsense' does not appear to be an IPv4 or IPv6 address"),
    ],
)
def test_cli_lockout_guard(source, code, text):
    result = _cli("compile", MAIL, "--format", "nftables", "--management-from", source)
    assert result.returncode == code, result.stderr
    assert text in result.stderr
    if code == 0:
        assert result.stdout.splitlines()[1] == "table inet distsec {"
