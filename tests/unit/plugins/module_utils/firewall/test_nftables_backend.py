"""The nftables backend and the commit-confirmed watchdog, on the real kernel in a netns."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ansible_collections.distsec.framework.plugins.module_utils._apply.backend import BackendError, rule_diff
from ansible_collections.distsec.framework.plugins.module_utils._apply.firewall import Watchdog
from ansible_collections.distsec.framework.plugins.module_utils._apply.nftables import NftablesBackend, rule_ids
from ansible_collections.distsec.framework.plugins.module_utils._evaluate.decide import active_rules, decide
from ansible_collections.distsec.framework.plugins.plugin_utils._psl.compiler import compile_policy, load_policy

TOP = Path(__file__).resolve().parents[5]
MAIL = TOP / "docs" / "examples" / "mail-client" / "policy.yml"

pytestmark = pytest.mark.netns


@pytest.fixture
def compiled():
    return compile_policy(load_policy([str(MAIL)]), host="ws1", groups=["workstations"])


@pytest.fixture
def backend(run, netns, tmp_path):
    return NftablesBackend(run, str(tmp_path / "state"), argv=[*netns, "nft"])


def _artefacts(backend, compiled, profile=None):
    decision = decide(compiled, {})
    if profile:
        decision.profile = profile
    return backend.render(compiled, decision.profile, active_rules(compiled, decision))


def _foreign(run, netns):
    rc, _out, err = run(
        [*netns, "nft", "-f", "-"],
        "table ip docker { chain forward { type filter hook forward priority 0; counter accept; }; }\n",
    )
    assert rc == 0, err


def test_apply_reads_back_and_a_second_plan_changes_nothing(backend, compiled, run, netns):
    _foreign(run, netns)
    artefacts = _artefacts(backend, compiled)
    plan = backend.plan(artefacts)
    assert plan.changed and plan.reason == "nothing of ours is loaded"
    assert "input: baseline-management-in" in plan.rules["added"]
    backend.validate(artefacts)
    backend.apply(artefacts)
    assert backend.in_effect() == backend.intended(artefacts)
    assert backend.in_effect()["input"][0] == "policy drop"
    backend.write_record(artefacts, backend.current())
    again = backend.plan(artefacts)
    assert not again.changed and again.reason == "up to date"
    assert again.rules == {"added": [], "removed": [], "moved": []}
    assert backend.others() == ["ip docker"]


def test_a_hand_made_rule_is_drift_named_and_undone(backend, compiled, run, netns):
    artefacts = _artefacts(backend, compiled)
    backend.apply(artefacts)
    backend.write_record(artefacts, backend.current())
    rc, _out, err = run(
        [*netns, "nft", "insert", "rule", "inet", "distsec", "input", "tcp", "dport", "9999", "accept"], None
    )
    assert rc == 0, err
    plan = backend.plan(artefacts)
    assert plan.changed and plan.drift
    assert plan.rules["removed"] == ["input: ?: tcp dport 9999 accept"]
    backend.apply(artefacts)
    assert "?: tcp dport 9999 accept" not in backend.in_effect()["input"]


def test_a_checker_error_names_the_rule_and_changes_nothing(backend, compiled, run, netns):
    artefacts = _artefacts(backend, compiled)
    backend.apply(artefacts)
    before = backend.current()
    body = artefacts["table.nft"].replace(
        'counter accept comment "baseline-management-in"', 'counter acept comment "baseline-management-in"'
    )
    assert body != artefacts["table.nft"]
    with pytest.raises(BackendError) as info:
        backend.validate({"table.nft": body})
    assert info.value.rule == "baseline-management-in"
    assert "rule baseline-management-in" in str(info.value)
    with pytest.raises(BackendError):
        backend.apply({"table.nft": body})
    assert backend.current() == before


def test_snapshot_restore_round_trip_including_absence(backend, compiled):
    empty = backend.snapshot()
    assert empty["listing"] is None
    backend.apply(_artefacts(backend, compiled))
    loaded = backend.snapshot()
    backend.apply(_artefacts(backend, compiled, profile="isolated"))
    assert backend.current() != ""
    backend.restore(loaded)
    assert backend.in_effect() == rule_ids(loaded["listing"])
    backend.restore(empty)
    assert backend.current() == ""


def test_watchdog_rolls_back_when_not_confirmed(backend, compiled, tmp_path):
    backend.apply(_artefacts(backend, compiled))
    previous = backend.snapshot()
    watchdog = Watchdog(str(tmp_path / "state"))
    token, deadline = watchdog.arm(backend, previous, 1.0)
    backend.apply(_artefacts(backend, compiled, profile="isolated"))
    isolated = backend.in_effect()
    assert watchdog.outcome(token)["outcome"] == "pending"
    while time.time() < deadline + 5 and watchdog.outcome(token)["outcome"] in ("pending", "rolling-back"):
        time.sleep(0.1)
    outcome = watchdog.outcome(token)
    assert outcome["outcome"] == "rolled-back", outcome
    assert backend.in_effect() == rule_ids(previous["listing"]) != isolated
    assert watchdog.confirm(token)["outcome"] == "rolled-back"  # too late


def test_watchdog_keeps_a_confirmed_ruleset(backend, compiled, tmp_path):
    previous = backend.snapshot()
    watchdog = Watchdog(str(tmp_path / "state"))
    token, deadline = watchdog.arm(backend, previous, 1.0)
    artefacts = _artefacts(backend, compiled)
    backend.apply(artefacts)
    assert watchdog.confirm(token)["outcome"] == "confirmed"
    time.sleep(max(0.0, deadline - time.time()) + 0.6)
    assert watchdog.outcome(token)["outcome"] == "confirmed"
    assert backend.in_effect() == backend.intended(artefacts)


def test_rule_diff_names_added_removed_and_moved():
    diff = rule_diff({"input": ["a", "b", "c"]}, {"input": ["b", "a", "d"]})
    assert diff["added"] == ["input: d"] and diff["removed"] == ["input: c"]
    assert diff["moved"] and "a" in diff["moved"][0]


def _wait_final(watchdog, token, limit):
    end = time.time() + limit
    while time.time() < end and watchdog.outcome(token)["outcome"] in ("pending", "rolling-back"):
        time.sleep(0.1)
    return watchdog.outcome(token)


def test_a_second_change_cannot_stack_on_a_pending_one(backend, tmp_path):
    watchdog = Watchdog(str(tmp_path / "state"))
    token = watchdog.arm(backend, backend.snapshot(), 2.0)[0]
    with pytest.raises(BackendError, match="still waiting for its confirmation"):
        watchdog.arm(backend, backend.snapshot(), 2.0)
    assert watchdog.confirm(token)["outcome"] == "confirmed"
    watchdog.arm(backend, backend.snapshot(), 0.5)  # free again


def test_the_window_starts_when_the_run_is_done_and_the_lock_holds_the_watchdog(backend, compiled, tmp_path):
    watchdog = Watchdog(str(tmp_path / "state"))
    watchdog.lock()
    try:
        token = watchdog.arm(backend, backend.snapshot(), 0.5)[0]
        backend.apply(_artefacts(backend, compiled))
        time.sleep(1.0)  # past the first deadline, but the run still holds the lock
        assert watchdog.outcome(token)["outcome"] == "pending"
        watchdog.extend(token, 1.0)
    finally:
        watchdog.unlock()
    time.sleep(0.5)
    assert watchdog.outcome(token)["outcome"] == "pending"  # the new window counts from extend()
    assert _wait_final(watchdog, token, 5)["outcome"] == "rolled-back"
    assert backend.current() == ""


def test_a_stale_pending_token_does_not_block_forever(backend, tmp_path):
    watchdog = Watchdog(str(tmp_path / "state"))
    (tmp_path / "state" / "pending").mkdir(parents=True)
    (tmp_path / "state" / "pending" / "1-abc.pending").write_text(f"{time.time() - 3600}\n")
    assert watchdog.busy() is None
    assert "1-abc.pending" not in watchdog.prune()  # a day must pass before the file goes
