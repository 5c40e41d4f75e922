"""The host-local audit (plugins/module_utils/_agent): a real trust store, real nft in a network
namespace, the real Security Status of this machine; what it finds, what it writes, its exit status."""

from __future__ import annotations

import io
import json
import os
import stat
import time

import pytest
from agent_helpers import EXTRA_RULE, FAILING_CHECK, POLICY, AuditHost, netns_runner, tamper_bundle

from ansible_collections.distsec.framework.plugins.module_utils._agent import cli
from ansible_collections.distsec.framework.plugins.module_utils._agent.audit import (
    EXIT_CANNOT_RUN,
    EXIT_FINDINGS,
    EXIT_OK,
    AuditError,
    Options,
    summary_line,
)
from ansible_collections.distsec.framework.plugins.module_utils._enforce.record import RUN_SCHEMA, run_record
from ansible_collections.distsec.framework.plugins.module_utils._evaluate.decide import decide
from ansible_collections.distsec.framework.plugins.module_utils._status.schema import STATUS_SCHEMA
from ansible_collections.distsec.framework.plugins.module_utils._trust.canonical import parse_time
from ansible_collections.distsec.framework.plugins.plugin_utils._psl.compiler import compile_policy, load_policy
from ansible_collections.distsec.framework.plugins.plugin_utils._psl.problems import Problems
from ansible_collections.distsec.framework.plugins.plugin_utils._psl.schema import _Checker

pytestmark = pytest.mark.netns

DAY = 86400.0


@pytest.fixture(autouse=True)
def no_passphrase(monkeypatch):
    monkeypatch.delenv("DISTSEC_KEY_PASSPHRASE", raising=False)


@pytest.fixture
def host(tmp_path, run, netns, capsys):
    return AuditHost(tmp_path, netns_runner(run, netns), capsys)


def _schema_violations(status):
    checker = _Checker(STATUS_SCHEMA, None, Problems())
    return checker.errors(status, STATUS_SCHEMA, ())


def test_a_compliant_enforced_host_is_clean_and_the_run_is_recorded(host):
    host.publish()
    host.enforce()
    result = host.audit()
    record = result.record

    assert result.exit_code == EXIT_OK, result.summary
    assert result.summary == "distsec-audit: ws1: profile home, 2/2 checks passed, no drift"
    assert record["schema"] == RUN_SCHEMA and record["mode"] == "audit" and record["result"] == "ok"
    assert record["host"] == "ws1" and record["error"] is None and record["changed"] is False
    assert record["policy"]["source"] == "stored" and record["policy"]["serial"] == 1
    assert record["policy"]["domain"] == "example.org" and record["policy"]["expired"] is False
    assert record["policy"]["hash"] == host.compiled()["hash"]
    assert record["profile"] == {"name": "home", "reason": "no selection matched: the default profile"}
    assert record["compliance"]["compliant"] is True and record["compliance"]["passed"] == 2
    assert record["drift"] == {"found": False, "fixed": False, "rules": []}
    assert record["firewall"]["backend"] == "nftables" and record["firewall"]["applied"] is True
    assert record["firewall"]["reason"] == "up to date"

    # the policy record holds the run (without the checks, which are beside it)
    stored = host.record()
    assert stored["compliant"] is True
    assert [c["id"] for c in stored["checks"]] == ["no-telnetd", "no-such-package"]
    assert stored["last_run"] == {**record, "compliance": {"compliant": True, "passed": 2, "failed": 0}}
    assert stored["serial"] == 1  # what policy_verify wrote is kept

    # the status file was gathered after the record was written, so it holds the run too
    status = host.status()
    assert status["policy"]["last_run"] == stored["last_run"]
    assert status["policy"]["compliant"] is True
    assert _schema_violations(status) == []
    assert stat.S_IMODE(os.stat(host.state / "status.json").st_mode) == 0o640
    assert stat.S_IMODE(os.stat(host.state / "policy.json").st_mode) == 0o640


def test_a_rule_added_by_hand_is_drift_and_the_audit_leaves_it_in_place(host):
    host.publish()
    host.enforce()
    host.nft("insert", "rule", "inet", "distsec", "input", "tcp", "dport", "9999", "accept")
    result = host.audit()

    assert result.exit_code == EXIT_FINDINGS
    assert (
        result.summary == "distsec-audit: ws1: profile home, 2/2 checks passed, drift: input: ?: tcp dport 9999 accept"
    )
    assert result.record["drift"] == {"found": True, "fixed": False, "rules": ["input: ?: tcp dport 9999 accept"]}
    assert result.record["changed"] is True and result.record["result"] == "ok"
    assert result.record["firewall"]["reason"] == "drift: changed outside distsec since it was applied"
    assert result.record["firewall"]["rules"]["removed"] == ["input: ?: tcp dport 9999 accept"]
    assert host.record()["last_run"]["drift"]["found"] is True
    # never changes the firewall: the rule is still there, and a second audit finds it again
    rc, out, _err = host.runner(["nft", "list", "chain", "inet", "distsec", "input"], None)
    assert rc == 0 and "tcp dport 9999 accept" in out
    assert host.audit().record["drift"]["found"] is True


def test_a_table_deleted_by_hand_is_drift(host):
    host.publish()
    host.enforce()
    host.nft("delete", "table", "inet", "distsec")
    result = host.audit()
    assert result.exit_code == EXIT_FINDINGS
    assert result.record["drift"]["found"] is True
    assert result.record["firewall"]["reason"].startswith("drift: nothing of distsec's is loaded any more")
    assert "input: baseline-management-in" in result.record["drift"]["rules"]


def test_a_newer_policy_not_yet_enforced_is_reported_but_is_not_drift(host):
    host.publish()
    host.enforce()
    host.publish(POLICY + EXTRA_RULE)
    result = host.audit()
    assert result.exit_code == EXIT_FINDINGS
    assert result.record["drift"]["found"] is False and result.record["changed"] is True
    assert result.record["policy"]["serial"] == 2
    assert result.record["firewall"]["rules"]["added"] == ["output: ssh-out"]
    assert result.summary.endswith(
        "no drift, but out of date: the policy's ruleset differs from the one applied: output: ssh-out"
    )


def test_a_failed_check_is_non_compliance(host):
    host.publish(POLICY.replace("rules:\n", FAILING_CHECK + "rules:\n"))
    host.enforce()  # the firewall module enforces the check's on_fail profile
    result = host.audit()
    assert result.exit_code == EXIT_FINDINGS
    assert result.record["profile"]["name"] == "quarantine"
    assert result.record["compliance"]["compliant"] is False
    assert (result.record["compliance"]["passed"], result.record["compliance"]["failed"]) == (2, 1)
    assert result.record["drift"]["found"] is False
    assert "profile quarantine, 2/3 checks passed (failed: marker-installed), no drift" in result.summary
    assert host.record()["compliant"] is False


def test_a_host_never_enforced_says_so(host):
    host.publish()
    result = host.audit()
    assert result.exit_code == EXIT_FINDINGS
    assert result.summary == "distsec-audit: ws1: profile home, 2/2 checks passed, never enforced"
    assert result.record["firewall"]["backend"] is None
    assert result.record["firewall"]["reason"].startswith("never enforced")
    assert not (host.state / "firewall").exists()  # nothing created there


def test_no_stored_policy_is_a_failed_run(host):
    result = host.audit()
    assert result.exit_code == EXIT_FINDINGS
    assert result.record["result"] == "failed"
    assert "no accepted policy bundle is stored" in result.record["error"]
    assert "publish" in result.record["error"]
    assert result.summary == "distsec-audit: ws1: no policy, never enforced"
    assert host.record()["compliant"] is None and host.record()["last_run"]["result"] == "failed"


def test_an_expired_policy_is_reported_evaluated_and_nothing_is_changed(host):
    host.publish(expires="2d")
    host.enforce()
    trusted = host.files("trust")
    later = time.time() + 3 * DAY
    result = host.audit(now=later)
    policy = result.record["policy"]
    assert result.exit_code == EXIT_FINDINGS
    assert result.record["result"] == "ok" and policy["expired"] is True and policy["in_grace"] is False
    assert policy["rejected"] is None and policy["serial"] == 1
    # the host's own evaluation of an expired policy: its expired_profile
    assert result.record["profile"] == {"name": "foreign", "reason": "the policy has expired"}
    assert result.summary.startswith(f"distsec-audit: ws1: policy expired at {policy['expires']}, profile foreign")
    assert result.record["firewall"]["rules"]["removed"] == ["input: web-in"]  # a run would enforce foreign
    assert host.files("trust") == trusted


def test_a_restart_since_the_last_enforcement_is_named(host):
    host.publish()
    host.enforce()
    # the ruleset loaded at boot, and a firewall record from before the boot
    host.nft("add", "rule", "inet", "distsec", "input", "tcp", "dport", "22", "accept")
    booted = parse_time(host.audit(policy_file="", status_file="").status["platform"]["boot_time"])
    os.utime(host.state / "firewall" / "nftables.json", (booted - 60, booted - 60))
    result = host.audit()
    assert result.record["drift"]["found"] is True
    assert result.record["firewall"]["reason"].startswith(
        "drift: the host restarted after the policy was last enforced"
    )
    assert result.record["drift"]["rules"] == ["input: ?: tcp dport 22 accept"]
    assert result.summary.endswith(", drift after a restart: input: ?: tcp dport 22 accept")


def test_an_expired_policy_replaced_by_another_is_compared_with_what_was_applied(host, tmp_path):
    """Past the grace period the enforce role enforces the default-restrictive policy: the audit checks
    the firewall against what was applied, not against the expired stored policy."""
    host.publish(expires="2d")
    other = tmp_path / "other.yml"
    other.write_text(POLICY + EXTRA_RULE)
    replacement = compile_policy(load_policy([str(other)]))
    host.enforce(compiled=replacement)
    later = time.time() + 3 * DAY
    result = host.audit(now=later)
    assert result.record["policy"]["expired"] is True and result.exit_code == EXIT_FINDINGS
    assert result.record["drift"]["found"] is False and result.record["changed"] is False
    assert result.record["firewall"]["reason"].startswith(
        f"as applied; the firewall holds policy {replacement['hash']}"
    )
    host.nft("insert", "rule", "inet", "distsec", "input", "tcp", "dport", "9999", "accept")
    assert host.audit(now=later).record["drift"]["found"] is True


@pytest.mark.parametrize(
    ("how", "reason"),
    [("file", "hash-mismatch"), ("manifest", "bad-signature")],
)
def test_a_stored_bundle_changed_on_disk_is_refused(host, how, reason):
    host.publish()
    host.enforce()
    tamper_bundle(host.bundle_path, how)
    trusted = host.files("trust")
    result = host.audit()
    assert result.exit_code == EXIT_FINDINGS
    assert result.record["result"] == "failed"
    assert result.record["policy"]["rejected"]["reason"] == reason
    assert result.record["error"].startswith(f"the stored policy is refused: rejected: {reason}: ")
    assert "changed on disk" in result.record["error"]
    assert result.summary.startswith(f"distsec-audit: ws1: policy refused: {reason}: ")
    assert result.record["compliance"]["compliant"] is None and result.record["drift"]["found"] is False
    assert host.files("trust") == trusted  # nothing deleted or rewritten
    assert host.record()["last_run"]["policy"]["rejected"]["reason"] == reason


def test_an_expired_and_tampered_bundle_is_found_tampered(host):
    host.publish(expires="2d")
    tamper_bundle(host.bundle_path, "file")
    result = host.audit(now=time.time() + 3 * DAY)
    assert result.record["policy"]["rejected"]["reason"] == "hash-mismatch"
    assert result.record["policy"]["expired"] is True
    assert result.exit_code == EXIT_FINDINGS


def test_a_bundle_for_other_hosts_is_refused_with_the_host_named(host):
    host.publish(POLICY, "--target", "ws1")
    assert host.audit().record["policy"]["rejected"] is None
    result = host.audit(host="web9", groups=["webservers"])
    assert result.record["policy"]["rejected"]["reason"] == "wrong-target"
    assert "--host and --groups" in result.record["error"]
    assert result.exit_code == EXIT_FINDINGS


def test_drift_is_found_even_without_a_valid_policy(host):
    host.publish()
    host.enforce()
    host.nft("add", "rule", "inet", "distsec", "output", "tcp", "dport", "7777", "drop")
    tamper_bundle(host.bundle_path, "file")
    result = host.audit()
    assert result.record["drift"]["found"] is True
    assert result.record["firewall"]["reason"] == "drift: changed outside distsec since it was applied"
    assert result.summary.endswith(", drift")


def test_unwritable_record_means_the_audit_cannot_run(host):
    host.publish()
    (host.tmp / "not-a-dir").write_text("x")
    with pytest.raises(AuditError, match=r"cannot write the run record to .*not-a-dir/policy.json"):
        host.audit(policy_file=str(host.tmp / "not-a-dir" / "policy.json"))


def test_a_broken_firewall_record_means_the_audit_cannot_run(host):
    host.publish()
    (host.state / "firewall").mkdir(parents=True)
    (host.state / "firewall" / "nftables.json").write_text("{not json")
    with pytest.raises(AuditError, match="cannot read the firewall module's record"):
        host.audit()


def test_empty_paths_write_nothing(host):
    host.publish()
    host.enforce()
    before = (host.state / "policy.json").read_bytes()
    result = host.audit(policy_file="", status_file="")
    assert result.exit_code == EXIT_OK
    assert (host.state / "policy.json").read_bytes() == before
    assert not (host.state / "status.json").exists()


def test_the_record_agrees_with_the_status_it_wrote(host):
    host.publish(POLICY.replace("rules:\n", FAILING_CHECK + "rules:\n"))
    host.enforce()
    result = host.audit()
    again = decide(host.compiled(), host.status())
    assert [c.id for c in again.checks if not c.passed] == ["marker-installed"]
    assert result.record["compliance"]["checks"] == host.record()["checks"]


# ---- the command line ------------------------------------------------------------------------------
def _cli(host, *argv):
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(
        [
            "--state-dir",
            str(host.state),
            "--trust-root",
            str(host.trust_root),
            "--host",
            "ws1",
            "--groups",
            "workstations, ,laptops",
            *argv,
        ],
        out=out,
        err=err,
        run=host.runner,
    )
    return code, out.getvalue(), err.getvalue()


def test_cli_prints_one_summary_line_and_exits_0_when_clean(host):
    host.publish()
    host.enforce()
    code, out, _err = _cli(host)
    assert code == EXIT_OK
    assert out == "distsec-audit: ws1: profile home, 2/2 checks passed, no drift\n"


def test_cli_json_prints_the_run_record_and_exits_1_on_drift(host):
    host.publish()
    host.enforce()
    host.nft("insert", "rule", "inet", "distsec", "input", "tcp", "dport", "9999", "accept")
    code, out, _err = _cli(host, "--json")
    assert code == EXIT_FINDINGS
    record = json.loads(out)
    assert record["schema"] == RUN_SCHEMA and record["drift"]["rules"] == ["input: ?: tcp dport 9999 accept"]
    assert record == host.record()["last_run"] | {"compliance": record["compliance"]}


def test_cli_exits_2_and_says_why_when_it_cannot_run(host):
    host.publish()
    (host.tmp / "file").write_text("x")
    code, out, err = _cli(host, "--policy-file", str(host.tmp / "file" / "policy.json"))
    assert code == EXIT_CANNOT_RUN and out == ""
    assert err.startswith("distsec-audit: ws1: cannot audit: cannot write the run record to ")
    assert "Traceback" not in err


def test_cli_refuses_a_bad_time_without_a_traceback(host):
    code, out, err = _cli(host, "--now", "yesterday")
    assert code == EXIT_CANNOT_RUN and out == ""
    assert "--now: 'yesterday' is not an ISO 8601 UTC time" in err


def test_cli_groups_and_defaults():
    args = cli.parser().parse_args(["--groups", "a, b,,c"])
    assert cli._groups(args.groups) == ["a", "b", "c"]
    options = Options()
    assert options.trust_dir == "/var/lib/distsec/trust" and options.firewall_dir == "/var/lib/distsec/firewall"
    assert options.policy_path == "/var/lib/distsec/policy.json"
    assert options.status_path == "/var/lib/distsec/status.json"
    assert Options(status_file="").status_path == ""


def test_summary_line_shortens_long_drift():
    rules = [f"input: ?: tcp dport {port} accept" for port in range(9000, 9005)]
    record = run_record(
        host="ws1",
        mode="audit",
        profile={"name": "home"},
        compliance={"compliant": True, "passed": 1, "failed": 0, "checks": []},
        drift={"found": True, "fixed": False, "rules": rules},
        firewall={"backend": "nftables"},
    )
    assert summary_line(record) == (
        "distsec-audit: ws1: profile home, 1/1 checks passed, drift: input: ?: tcp dport 9000 accept; "
        "input: ?: tcp dport 9001 accept; input: ?: tcp dport 9002 accept (+2 more)"
    )
