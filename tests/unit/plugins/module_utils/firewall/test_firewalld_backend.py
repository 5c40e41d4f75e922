"""The firewalld backend on a temporary configuration directory, with firewalld's own offline tool.

No firewalld daemon runs in these tests. The runner answers every `firewall-cmd` call itself:
"not running" by default, or, for the daemon path, a stand-in daemon whose runtime is whatever
`firewall-offline-cmd` reads from the temporary directory at its last "reload".
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from ansible_collections.distsec.framework.plugins.module_utils._apply.backend import BackendError
from ansible_collections.distsec.framework.plugins.module_utils._apply.firewalld import FirewalldBackend
from ansible_collections.distsec.framework.plugins.module_utils._evaluate.decide import active_rules, decide
from ansible_collections.distsec.framework.plugins.plugin_utils._psl.compiler import compile_policy, load_policy

TOP = Path(__file__).resolve().parents[5]
MAIL = TOP / "docs" / "examples" / "mail-client" / "policy.yml"
FOREIGN_POLICY = """<?xml version="1.0" encoding="utf-8"?>
<policy target="CONTINUE" priority="-100">
  <short>someone else's</short>
  <ingress-zone name="ANY"/>
  <egress-zone name="HOST"/>
  <rule family="ipv4"><source address="203.0.113.0/24"/><service name="ssh"/><accept/></rule>
</policy>
"""


@pytest.fixture
def config_dir(tmp_path):
    if not (shutil.which("firewall-offline-cmd") and os.geteuid() == 0):
        if os.environ.get("CI"):
            pytest.fail("these tests need root and firewall-offline-cmd (make host-packages); CI must provide them")
        pytest.skip("firewall-offline-cmd (Debian package firewalld) is not installed or not root: run 'make unit'")
    etc = tmp_path / "etc"
    for sub in ("zones", "policies", "ipsets", "services", "icmptypes", "helpers"):
        (etc / sub).mkdir(parents=True)
    shutil.copy("/etc/firewalld/firewalld.conf", etc / "firewalld.conf")
    (etc / "policies" / "partner.xml").write_text(FOREIGN_POLICY)
    (etc / "zones" / "office.xml").write_text('<?xml version="1.0"?>\n<zone><short>Office</short></zone>\n')
    return etc


class Runner:
    """Real commands, except firewall-cmd: a daemon that is off, or on and backed by the offline tool."""

    def __init__(self, run, config_dir, daemon=False):
        self.real = run
        self.config_dir = str(config_dir)
        self.daemon = daemon
        self.calls = []
        self.runtime = ""
        self.extra = []  # rich rules added at runtime only (firewall-cmd --add-rich-rule, no --permanent)

    def __call__(self, argv, stdin=None):
        argv = list(argv)
        if argv[0] != "firewall-cmd":
            return self.real(argv, stdin)
        self.calls.append(argv[1:])
        if not self.daemon:
            return 252, "not running\n", ""
        if argv[1:] == ["--state"]:
            return 0, "running\n", ""
        if argv[1:] == ["--reload"]:
            rc, out, err = self.real(
                ["firewall-offline-cmd", "--system-config", self.config_dir, "--list-all-policies"], None
            )
            if rc != 0:
                return rc, out, err
            self.runtime, self.extra = out, []
            return 0, "success\n", ""
        if argv[1:] == ["--list-all-policies"]:
            text = self.runtime
            for rule in self.extra:  # into distsec-in's rich rules
                at = text.index("\n", text.index("rich rules:", text.index("\ndistsec-in "))) + 1
                text = f"{text[:at]}\t{rule}\n{text[at:]}"
            return 0, text, ""
        if argv[1:] in (["--get-zones"], ["--get-policies"]):
            return self.real(["firewall-offline-cmd", "--system-config", self.config_dir, argv[1]], None)
        return 2, "", f"unexpected call {argv}"


@pytest.fixture
def compiled():
    return compile_policy(load_policy([str(MAIL)]), host="ws1", groups=["workstations"])


def _artefacts(backend, compiled, profile=None, status=None):
    decision = decide(compiled, status or {})
    if profile:
        decision.profile = profile
    return backend.render(compiled, decision.profile, active_rules(compiled, decision))


def _files(etc):
    return {str(p.relative_to(etc)): p.read_bytes() for p in sorted(etc.rglob("*")) if p.is_file()}


def test_apply_then_plan_changes_nothing_and_others_are_untouched(run, config_dir, tmp_path, compiled):
    backend = FirewalldBackend(Runner(run, config_dir), str(tmp_path / "state"), config_dir=str(config_dir))
    foreign = _files(config_dir)
    artefacts = _artefacts(backend, compiled)
    plan = backend.plan(artefacts)
    assert plan.changed and plan.reason == "nothing of ours is loaded"
    assert "distsec-in: baseline-management-in" in plan.rules["added"]
    backend.validate(artefacts)
    assert backend.current() == ""  # validate works on a copy
    backend.apply(artefacts)
    assert backend.current() == backend.expected(artefacts)
    assert backend.in_effect() == backend.intended(artefacts)
    assert backend.in_effect()["distsec-in"][:2] == ["target DROP", "baseline-icmpv6-in"]
    backend.write_record(artefacts, backend.current())
    again = backend.plan(artefacts)
    assert not again.changed and again.reason == "up to date"
    assert again.rules == {"added": [], "removed": [], "moved": []}
    after = _files(config_dir)
    assert {k: after[k] for k in foreign} == foreign
    assert sorted(set(after) - set(foreign)) == sorted(artefacts)
    others = backend.others()
    assert "policy partner" in others and "zone office" in others and "zone public" in others
    assert not any("distsec" in o for o in others)


def test_a_hand_added_rich_rule_is_drift_named_and_undone(run, config_dir, tmp_path, compiled):
    backend = FirewalldBackend(Runner(run, config_dir), str(tmp_path / "state"), config_dir=str(config_dir))
    artefacts = _artefacts(backend, compiled)
    backend.apply(artefacts)
    backend.write_record(artefacts, backend.current())
    policy = config_dir / "policies" / "distsec-in.xml"
    hand = '  <rule priority="100" family="ipv4"><port port="9999" protocol="tcp"/><accept/></rule>\n</policy>'
    policy.write_text(policy.read_text().replace("</policy>", hand))
    plan = backend.plan(artefacts)
    assert plan.changed and plan.drift and plan.reason.startswith("drift")
    assert plan.rules["removed"] == [
        'distsec-in: ?: rule priority="100" family="ipv4" port port="9999" protocol="tcp" accept'
    ]
    backend.apply(artefacts)
    assert policy.read_text() == artefacts["policies/distsec-in.xml"]
    assert backend.in_effect() == backend.intended(artefacts)


def test_restore_returns_the_snapshot_exactly_and_stale_files_go(run, config_dir, tmp_path, compiled):
    backend = FirewalldBackend(Runner(run, config_dir), str(tmp_path / "state"), config_dir=str(config_dir))
    empty = backend.snapshot()
    assert empty["files"] == {}
    backend.apply(_artefacts(backend, compiled))
    loaded = backend.snapshot()
    assert "ipsets/distsec-mail_servers-v4.xml" in loaded["files"]
    isolated = _artefacts(backend, compiled, profile="isolated")
    backend.apply(isolated)
    assert not (config_dir / "ipsets" / "distsec-mail_servers-v4.xml").exists()  # no rule uses it any more
    assert set(backend.snapshot()["files"]) == set(isolated)
    backend.restore(loaded)
    assert backend.snapshot() == loaded
    backend.restore(empty)
    assert backend.snapshot() == empty and backend.current() == ""
    assert (config_dir / "policies" / "partner.xml").read_text() == FOREIGN_POLICY


def test_a_bad_artefact_changes_nothing_and_names_the_rule(run, config_dir, tmp_path, compiled):
    backend = FirewalldBackend(Runner(run, config_dir), str(tmp_path / "state"), config_dir=str(config_dir))
    artefacts = _artefacts(backend, compiled)
    backend.apply(artefacts)
    before = _files(config_dir)
    good = artefacts["policies/distsec-out.xml"]
    cases = [
        # firewalld refuses it: an unknown ICMP type
        (good.replace('name="echo-reply"', 'name="echo-replyy"', 1), "firewalld refused the configuration"),
        # firewalld only warns and leaves the rule out (exit code 0): a port out of range
        (good.replace('port="993"', 'port="99999"', 1), "INVALID_PORT: 99999"),
    ]
    for text, message in cases:
        assert text != good
        bad = dict(artefacts, **{"policies/distsec-out.xml": text})
        for step in (backend.validate, backend.apply):
            with pytest.raises(BackendError) as info:
                step(bad)
            assert message in str(info.value)
        assert info.value.rule in ("baseline-icmpv6-out", "allow-mail"), info.value
        assert f"rule {info.value.rule}: " in str(info.value)
        assert _files(config_dir) == before
    for bad in ({"zones/public.xml": "<zone/>"}, {"policies/../x.xml": ""}, {"policies/distsec-in.xml": "<policy"}):
        with pytest.raises(BackendError):
            backend.apply(bad)
        assert _files(config_dir) == before


def test_with_a_running_daemon_it_reloads_and_reads_the_runtime(run, config_dir, tmp_path, compiled):
    runner = Runner(run, config_dir, daemon=True)
    backend = FirewalldBackend(runner, str(tmp_path / "state"), config_dir=str(config_dir))
    artefacts = _artefacts(backend, compiled)
    backend.apply(artefacts)
    assert ["--reload"] in runner.calls
    assert backend.in_effect() == backend.intended(artefacts)
    backend.write_record(artefacts, backend.current())
    runner.extra.append('rule family="ipv4" source address="192.0.2.9" accept')  # runtime only
    assert backend.in_effect()["distsec-in"][1] == '?: rule family="ipv4" source address="192.0.2.9" accept'
    plan = backend.plan(artefacts)
    assert plan.changed and plan.drift  # runtime-only changes are drift too
    assert 'distsec-in: ?: rule family="ipv4" source address="192.0.2.9" accept' in plan.rules["removed"]
    backend.apply(artefacts)
    backend.write_record(artefacts, backend.current())
    assert not backend.plan(artefacts).changed
    backend.restore({"files": {}})
    assert runner.calls[-1] == ["--reload"] and "distsec-in" not in runner.runtime
    assert "policy partner" in backend.others()
