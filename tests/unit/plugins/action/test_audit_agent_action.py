"""distsec-audit.pyz: built deterministically, runs with the hosts' python3 (Debian's, as here) without
Ansible, audits a namespace's firewall under the service's capability bounding set; the audit_agent
action copies it idempotently; the enforce role's units verify with systemd-analyze."""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import shutil
import subprocess
import zipfile
from pathlib import Path

import jinja2
import pytest
from agent_helpers import AuditHost, netns_runner, run_pyz
from play_helpers import run_play

from ansible_collections.distsec.framework.plugins.module_utils._version import VERSION
from ansible_collections.distsec.framework.plugins.plugin_utils._agent_build import (
    MODULE_UTILS,
    PACKAGE,
    PARENT_PACKAGES,
    build_agent,
)

TOP = Path(__file__).resolve().parents[4]
TEMPLATES = TOP / "roles" / "enforce" / "templates"
HOST_PYTHON = "/usr/bin/python3"  # Debian's, with python3-cryptography, as on the hosts
# CapabilityBoundingSet of distsec-audit.service, in setpriv's spelling
SERVICE_CAPS = "-all,+net_admin,+net_raw,+sys_ptrace,+dac_read_search"
UNIT_VARS = {
    "enforce_audit_agent_path": "/usr/local/lib/distsec/distsec-audit.pyz",
    "enforce_audit_on_calendar": "hourly",
    "enforce_audit_randomized_delay": "15min",
    "enforce_audit_on_boot": "5min",
    "enforce_audit_on_failure": "",
}


@pytest.fixture(scope="module")
def pyz(tmp_path_factory):
    path = tmp_path_factory.mktemp("agent") / "distsec-audit.pyz"
    path.write_bytes(build_agent())
    return path


def _host_python():
    if not os.path.exists(HOST_PYTHON):
        pytest.skip(f"{HOST_PYTHON} (the hosts' interpreter) is not installed here")
    return HOST_PYTHON


# ---- the zipapp --------------------------------------------------------------------------------------
def test_two_builds_are_byte_identical_and_hold_exactly_module_utils():
    first, second = build_agent(), build_agent()
    assert first == second
    assert first.startswith(b"#!/usr/bin/python3\n")
    with zipfile.ZipFile(io.BytesIO(first)) as archive:
        infos = archive.infolist()
    names = [i.filename for i in infos]
    assert names == sorted(names)
    expected = {
        f"{PACKAGE}/{p.relative_to(MODULE_UTILS).as_posix()}"
        for p in Path(MODULE_UTILS).rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert set(names) == expected | set(PARENT_PACKAGES) | {"__main__.py"}
    assert f"{PACKAGE}/_agent/cli.py" in names and f"{PACKAGE}/_trust/verify.py" in names
    for info in infos:
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
        assert info.external_attr >> 16 == 0o100644
        assert info.compress_type == zipfile.ZIP_STORED


def test_file_times_and_modes_do_not_matter_but_content_does(tmp_path):
    copy = tmp_path / "module_utils"
    shutil.copytree(MODULE_UTILS, copy, ignore=shutil.ignore_patterns("__pycache__"))
    for path in copy.rglob("*.py"):  # other times and modes than the collection's files: the same build
        os.utime(path, (2_000_000_000, 2_000_000_000))
        path.chmod(0o600)
    same = build_agent(str(copy))
    assert same == build_agent()
    (copy / "_agent" / "audit.py").write_text((copy / "_agent" / "audit.py").read_text() + "# changed\n")
    assert build_agent(str(copy)) != same


def test_it_refuses_a_directory_that_is_not_module_utils(tmp_path):
    with pytest.raises(FileNotFoundError, match="not the collection's module_utils"):
        build_agent(str(tmp_path))


def test_the_zipapp_runs_with_the_hosts_python_without_ansible(pyz):
    python = _host_python()
    rc, out, err = run_pyz(pyz, "--help", python=python)
    assert rc == 0, err
    assert out.startswith("usage: distsec-audit")
    for option in ("--host", "--groups", "--json", "--state-dir", "--trust-root", "--status-file", "--policy-file"):
        assert option in out
    assert "exit status:" in out
    rc, out, _err = run_pyz(pyz, "--version", python=python)
    assert rc == 0 and out.strip() == f"distsec-audit (distsec.framework {VERSION})"
    # it imports nothing from Ansible: the hosts have none
    probe = subprocess.run(
        [python, "-I", "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
         "import ansible_collections.distsec.framework.plugins.module_utils._agent.cli; "
         "print(sorted(m for m in sys.modules if m == 'ansible' or m.startswith('ansible.')))", str(pyz)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "[]"


def test_a_usage_error_exits_2(pyz):
    rc, _out, err = run_pyz(pyz, "--no-such-option", python=_host_python())
    assert rc == 2 and "unrecognized arguments" in err


@pytest.mark.netns
def test_the_zipapp_audits_a_namespace_under_the_services_capabilities(pyz, tmp_path, run, netns, capsys):
    """The timer's run, end to end: Debian's python3 runs the zipapp in the namespace with the unit's
    capability bounding set and no new privileges; clean, then drift, then the record on disk."""
    python = _host_python()
    if not shutil.which("setpriv"):
        pytest.skip("setpriv (util-linux) is needed to apply the service's capability bounding set")
    if subprocess.run([python, "-c", "import cryptography"], check=False, capture_output=True).returncode:
        pytest.skip(f"{python} has no cryptography (python3-cryptography)")
    host = AuditHost(tmp_path, netns_runner(run, netns), capsys)
    host.publish()
    host.enforce()
    prefix = [*netns, "setpriv", "--bounding-set", SERVICE_CAPS, "--inh-caps", "-all", "--no-new-privs"]
    argv = ["--state-dir", host.state, "--trust-root", host.trust_root, "--host", "ws1", "--groups", "workstations"]

    rc, out, err = run_pyz(pyz, *argv, prefix=prefix, python=python)
    assert rc == 0, (out, err)
    assert out == "distsec-audit: ws1: profile home, 2/2 checks passed, no drift\n"
    status = host.status()
    # nothing the unrestricted audit can read is lost to the bounding set
    assert "firewall" not in status["errors"] and "sockets" not in status["errors"]
    assert status["firewall"]["distsec"]["enforced"] == {"backend": "nftables", "drift": False, "present": True}

    host.nft("insert", "rule", "inet", "distsec", "input", "tcp", "dport", "9999", "accept")
    rc, out, err = run_pyz(pyz, *argv, "--json", prefix=prefix, python=python)
    assert rc == 1, err
    record = json.loads(out)
    assert record["drift"]["rules"] == ["input: ?: tcp dport 9999 accept"]
    assert host.record()["last_run"]["drift"]["found"] is True
    assert host.status()["firewall"]["distsec"]["enforced"]["drift"] is True

    # without CAP_NET_ADMIN nft cannot list: the audit says it cannot run
    rc, out, err = run_pyz(
        pyz, *argv, prefix=[*netns, "setpriv", "--bounding-set", "-all", "--inh-caps", "-all"], python=python
    )
    assert rc == 2 and out == ""
    assert "distsec-audit: ws1: cannot audit: cannot read what the nftables backend owns" in err
    assert err.rstrip().endswith("run it as root with CAP_NET_ADMIN (the distsec-audit service does)")


# ---- the action ----------------------------------------------------------------------------------------
def test_the_action_copies_the_agent_idempotently_and_check_mode_writes_nothing(tmp_path):
    dest = tmp_path / "usr-local-lib" / "distsec" / "distsec-audit.pyz"
    agent = {"distsec.framework.audit_agent": {"dest": str(dest)}}
    look = {"ansible.builtin.stat": {"path": str(dest.parent)}}
    checked, seen, first, again, checked_again = run_play(
        tmp_path, [{**agent, "check_mode": True}, look, agent, agent, {**agent, "check_mode": True}]
    )
    assert checked["changed"] is True and not checked.get("failed"), checked
    assert seen["stat"]["exists"] is False  # check mode wrote nothing, not even the directory
    assert first["changed"] is True, first
    assert dest.read_bytes() == build_agent()
    assert oct(dest.stat().st_mode & 0o7777) == "0o644"
    assert oct(dest.parent.stat().st_mode & 0o7777) == "0o755"
    assert first["agent"] == {"version": VERSION, "sha256": first["agent"]["sha256"], "size": dest.stat().st_size}
    assert again["changed"] is False, again
    assert checked_again["changed"] is False, checked_again

    dest.write_bytes(b"not the agent")
    assert run_play(tmp_path, [agent])[0]["changed"] is True
    assert dest.read_bytes() == build_agent()


def test_the_action_refuses_a_relative_dest_and_unknown_options(tmp_path):
    bad, unknown = run_play(
        tmp_path,
        [
            {"distsec.framework.audit_agent": {"dest": "lib/agent.pyz"}, "ignore_errors": True},
            {"distsec.framework.audit_agent": {"src": "/x"}, "ignore_errors": True},
        ],
    )
    assert bad["failed"] is True and "dest must be an absolute file path" in bad["msg"]
    assert unknown["failed"] is True and "src" in unknown["msg"]


# ---- the systemd units ---------------------------------------------------------------------------------
VARIANTS = {
    "default": {},
    "alerting": {
        "enforce_audit_on_failure": "distsec-alert.service",
        "enforce_audit_on_calendar": "*-*-* 03:00:00",
        "enforce_audit_on_boot": "",
        "enforce_audit_randomized_delay": "1h",
    },
    "broken": {"enforce_audit_on_calendar": "every full moon"},
}


@pytest.fixture(scope="module")
def units(tmp_path_factory):
    """The units of each variant, rendered by ansible.builtin.template in one play: {variant: directory}."""
    top = tmp_path_factory.mktemp("units")
    tasks = []
    for variant, overrides in VARIANTS.items():
        (top / variant).mkdir()
        tasks.extend(
            {
                "ansible.builtin.template": {
                    "src": str(TEMPLATES / f"distsec-audit.{kind}.j2"),
                    "dest": str(top / variant / f"distsec-audit.{kind}"),
                    "mode": "0644",
                },
                "vars": {**UNIT_VARS, **overrides},
            }
            for kind in ("service", "timer")
        )
    results = run_play(top, tasks)
    assert all(not r.get("failed") for r in results), results
    return {variant: top / variant for variant in VARIANTS}


def _verify(directory, *extra):
    tool = shutil.which("systemd-analyze")
    if tool is None:
        return None
    paths = [directory / "distsec-audit.service", directory / "distsec-audit.timer", *extra]
    proc = subprocess.run([tool, "verify", *map(str, paths)], capture_output=True, text=True, check=False)
    return proc.returncode, proc.stderr


def _directives(text):
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))


def test_the_units_render_and_verify(units):
    options = _directives((units["default"] / "distsec-audit.service").read_text())
    assert options["Type"] == "oneshot"
    assert options["ExecStart"] == (
        '/usr/bin/python3 "/usr/local/lib/distsec/distsec-audit.pyz" --host "localhost" --groups "ungrouped"'
    )
    assert options["ProtectSystem"] == "strict" and options["ReadWritePaths"] == "-/var/lib/distsec"
    assert options["NoNewPrivileges"] == "yes" and options["PrivateTmp"] == "yes" and options["Nice"] == "10"
    assert options["CapabilityBoundingSet"] == "CAP_NET_ADMIN CAP_NET_RAW CAP_SYS_PTRACE CAP_DAC_READ_SEARCH"
    assert "OnFailure" not in options
    assert _directives((units["default"] / "distsec-audit.timer").read_text()) == {
        "Description": "distsec host-local audit on a schedule",
        "OnCalendar": "hourly",
        "OnBootSec": "5min",
        "RandomizedDelaySec": "15min",
        "Persistent": "true",
        "Unit": "distsec-audit.service",
        "WantedBy": "timers.target",
    }
    verified = _verify(units["default"])
    if verified is not None:
        assert verified == (0, ""), verified[1]


def test_on_failure_and_schedule_options_reach_the_units(units):
    directory = units["alerting"]
    alert = directory / "distsec-alert.service"
    alert.write_text("[Service]\nType=oneshot\nExecStart=/bin/true\n")
    timer = _directives((directory / "distsec-audit.timer").read_text())
    assert _directives((directory / "distsec-audit.service").read_text())["OnFailure"] == "distsec-alert.service"
    assert timer["OnCalendar"] == "*-*-* 03:00:00" and "OnBootSec" not in timer
    assert timer["RandomizedDelaySec"] == "1h"
    verified = _verify(directory, alert)
    if verified is not None:
        assert verified == (0, ""), verified[1]


def test_systemd_analyze_verify_does_catch_a_bad_schedule(units):
    verified = _verify(units["broken"])
    if verified is None:
        pytest.skip("systemd-analyze is not installed here")
    # systemd-analyze exits 0 on a directive it ignores, so the tests above require an empty stderr
    assert "Failed to parse calendar specification" in verified[1]


def _systemd_argv(exec_start):
    """ExecStart's argv as systemd reads it: specifiers %% and $$ undone, then C-style quoting."""
    return shlex.split(exec_start.replace("%%", "%").replace("$$", "$"))


@pytest.mark.parametrize(
    ("hostname", "groups"),
    [
        ("ws1", ["workstations", "laptops"]),
        ("odd host", []),
        ('we"ird\\na%me$HOME', ["g%1", "g$2"]),
    ],
)
def test_exec_start_quotes_what_the_inventory_names(hostname, groups):
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)  # noqa: S701 - a unit file
    template = environment.from_string((TEMPLATES / "distsec-audit.service.j2").read_text())
    text = template.render(**UNIT_VARS, inventory_hostname=hostname, group_names=groups)
    exec_start = _directives(text)["ExecStart"]
    argv = _systemd_argv(exec_start)
    assert argv == [
        "/usr/bin/python3",
        "/usr/local/lib/distsec/distsec-audit.pyz",
        "--host",
        hostname,
        "--groups",
        ",".join(groups),
    ]
    assert not re.search(r"(?<!%)%(?!%)", exec_start.replace("%%", ""))


# ---- the role's tasks ------------------------------------------------------------------------------------
def test_the_timer_tasks_in_check_mode_change_nothing(tmp_path):
    agent = Path("/usr/local/lib/distsec/distsec-audit.pyz")
    unit = Path("/etc/systemd/system/distsec-audit.timer")
    if agent.exists() or unit.exists():
        pytest.skip("this machine has the audit timer installed")
    role = {"name": "distsec.framework.enforce", "tasks_from": "timer"}
    results = run_play(
        tmp_path,
        [
            {"ansible.builtin.include_role": role, "vars": {**UNIT_VARS, "enforce_audit_timer": timer}}
            for timer in (True, False)
        ],
        check=True,
    )
    assert all(not r.get("failed") for r in results), results
    ran = [(r.get("action"), bool(r.get("changed"))) for r in results if not r.get("skipped")]
    # enabling is skipped: in check mode a first installation has no units yet; removing finds none, so
    # nothing but the stat runs (no module call per file on every run without the timer)
    assert [a for a in ran if a[0] != "ansible.builtin.include_role"] == [
        ("distsec.framework.audit_agent", True),
        ("ansible.builtin.template", True),
        ("ansible.builtin.stat", False),
    ], ran
    assert not agent.exists() and not unit.exists()
