"""distsec.framework.default_restrictive run by real ansible-playbook inside a throwaway network namespace.

Real nft checks and loads the file; systemctl is a recording stand-in (the namespace has no
systemd), passed through the module's internal `_systemctl` option. Connections between two
namespaces show what the loaded ruleset lets through.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

from ansible_collections.distsec.framework.plugins.module_utils._apply.nftables import (
    NftablesBackend,
    TableRef,
    replace_script,
)
from ansible_collections.distsec.framework.plugins.module_utils._apply.restrictive import (
    boot_ruleset,
    header_hash,
    unit_text,
)
from ansible_collections.distsec.framework.plugins.module_utils._evaluate.decide import active_rules, decide
from ansible_collections.distsec.framework.plugins.plugin_utils._psl.restrictive import restrictive_policy

BIN = Path(sys.executable).parent
TOP = Path(__file__).resolve().parents[4]

FAKE_SYSTEMCTL = """#!/bin/sh
here="$(dirname "$0")"
echo "$*" >> "$here/calls.log"
case "$1" in
  is-enabled)
    if [ -f "$here/masked" ]; then echo masked; exit 1; fi
    if [ -f "$here/enabled" ]; then echo enabled; exit 0; fi
    echo disabled; exit 1;;
  enable) touch "$here/enabled";;
  disable) rm -f "$here/enabled";;
  daemon-reload) ;;
  *) echo "fake systemctl: unexpected $*" >&2; exit 3;;
esac
"""

HOST_V4 = "198.51.100.5"
ADMIN_V4 = "198.51.100.10"  # management_from; also a peer address that is not the PDP
PDP_V4 = "198.51.100.20"
OTHER_V4 = "198.51.100.99"  # neither admin nor PDP


def _compiled(**extra):
    params = {"domain": "corp.example.org", "management_from": [f"{ADMIN_V4}/32", "2001:db8:ff::/64"]}
    params.update(extra)
    return restrictive_policy(**params)


class Host:
    """Paths of one test host, a fake systemctl and a playbook runner inside the namespace."""

    def __init__(self, netns, tmp_path):
        self.netns = netns
        self.tmp = tmp_path
        self.path = tmp_path / "etc" / "default-restrictive.nft"
        self.units = tmp_path / "units"
        self.units.mkdir()
        self.unit = self.units / "distsec-default-restrictive.service"
        self.fake = tmp_path / "bin" / "systemctl"
        self.fake.parent.mkdir()
        self.fake.write_text(FAKE_SYSTEMCTL)
        self.fake.chmod(0o755)
        self.fw = tmp_path / "firewall"
        self.policy_file = tmp_path / "policy.json"

    def calls(self):
        log = self.fake.parent / "calls.log"
        lines = log.read_text().splitlines() if log.exists() else []
        log.unlink(missing_ok=True)
        return lines

    def args(self, **extra):
        args = {
            "path": str(self.path),
            "_unit_dir": str(self.units),
            "_systemctl": str(self.fake),
            "firewall_state_dir": str(self.fw),
            "policy_file": str(self.policy_file),
        }
        args.update(extra)
        return args

    def play(self, tasks, *, check=False, diff=False):
        """Each task is the module's arguments; the results in order."""
        book = self.tmp / "play.yml"
        steps = [
            {"name": f"t{i}", "distsec.framework.default_restrictive": a, "ignore_errors": True}
            for i, a in enumerate(tasks)
        ]
        book.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": steps}]))
        env = dict(
            os.environ,
            ANSIBLE_STDOUT_CALLBACK="json",
            ANSIBLE_LOCALHOST_WARNING="false",
            ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
            ANSIBLE_PYTHON_INTERPRETER=sys.executable,
            PATH=f"{BIN}:{os.environ['PATH']}",
            ANSIBLE_COLLECTIONS_PATH=str(TOP / ".ansible" / "collections"),
        )
        argv = [*self.netns, str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(book)]
        argv += ["--check"] * check + ["--diff"] * diff
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False, timeout=180)
        report = json.loads(proc.stdout)
        return [t["hosts"]["localhost"] for t in report["plays"][0]["tasks"]]


@pytest.fixture
def host(netns, tmp_path):
    if not (BIN / "ansible-playbook").exists():
        pytest.skip("ansible-playbook is installed by tools/venv.sh; run the tests from .venv")
    return Host(netns, tmp_path)


def _mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def _nft(netns, *args, stdin=None):
    proc = subprocess.run([*netns, "nft", *args], input=stdin, capture_output=True, text=True, check=False)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.netns
def test_check_run_idempotent_check_idempotent_run(host):
    compiled = _compiled(pdp=[PDP_V4])
    args = host.args(compiled=json.dumps(compiled))

    (checked,) = host.play([args], check=True, diff=True)
    assert checked["changed"] is True, checked
    assert checked["actions"] == [
        f"write {host.path}",
        f"write {host.unit}",
        "systemctl daemon-reload",
        "systemctl enable distsec-default-restrictive.service",
    ]
    assert checked["diff"]["before"] == "" and checked["diff"]["after"].startswith("# distsec: default-restrictive")
    assert not host.path.exists() and not host.unit.exists(), "check mode must not write"
    assert host.calls() == ["is-enabled distsec-default-restrictive.service"], "check mode only asks systemctl"

    (applied,) = host.play([args], diff=True)
    assert applied["changed"] is True and applied["profile"] == "isolated" and applied["hash"] == compiled["hash"]
    assert applied["enforced"] is False and "no firewall record" in applied["enforced_reason"]
    assert applied["rules"]["input"][:2] == ["policy drop", "baseline-loopback-in"]
    assert applied["rules"]["output"][0] == "policy drop" and "baseline-remediation-pdp" in applied["rules"]["output"]
    assert applied["rules"]["forward"] == ["policy drop", "default-forward"]
    assert host.calls() == [
        "is-enabled distsec-default-restrictive.service",
        "daemon-reload",
        "enable distsec-default-restrictive.service",
    ]
    text = host.path.read_text()
    assert text == checked["diff"]["after"] == applied["diff"]["after"]
    assert header_hash(text) == compiled["hash"]
    assert _mode(host.path) == 0o644 and _mode(host.unit) == 0o644
    unit = host.unit.read_text()
    assert "\nDefaultDependencies=no\n" in unit and "\nAfter=nftables.service local-fs.target\n" in unit
    assert "\nBefore=network-pre.target shutdown.target\n" in unit and "\nWantedBy=sysinit.target\n" in unit
    assert f"\nExecStart={shutil.which('nft')} -f {host.path}\n" in unit

    # The very transaction the firewall module's nftables backend loads, behind the header.
    decision = decide(compiled, {})
    artefacts = NftablesBackend(lambda *a: (0, "", ""), str(host.tmp)).render(
        compiled, decision.profile, active_rules(compiled, decision)
    )
    assert text.endswith(replace_script(TableRef("inet", "distsec"), artefacts["table.nft"]))

    again_check = host.play([args], check=True, diff=True)[0]
    assert again_check["changed"] is False and again_check["actions"] == []
    again = host.play([args])[0]
    assert again["changed"] is False and again["actions"] == []
    assert host.calls() == ["is-enabled distsec-default-restrictive.service"] * 2

    # nft -f loads it (twice: it replaces its own table) and leaves other tables alone.
    assert _nft(host.netns, "add", "table", "ip", "docker_like")[0] == 0
    for load in ("onto no table", "onto itself"):
        rc, _out, err = _nft(host.netns, "-f", str(host.path))
        assert rc == 0, (load, err)
    rc, listing, _err = _nft(host.netns, "list", "table", "inet", "distsec")
    assert rc == 0
    assert "hook input priority filter; policy drop;" in listing
    assert "hook output priority filter; policy drop;" in listing
    for rid in ("baseline-loopback-in", "baseline-established-out", "baseline-icmpv6-in", "baseline-management-in"):
        assert f'comment "{rid}"' in listing
    assert _nft(host.netns, "list", "table", "ip", "docker_like")[0] == 0


def test_the_unit_verifies_with_systemd_analyze(tmp_path):
    tool = shutil.which("systemd-analyze")
    nft = shutil.which("nft")
    if tool is None or nft is None:
        pytest.skip("systemd-analyze and nft are not installed here")
    ruleset = tmp_path / "default-restrictive.nft"
    ruleset.write_text(boot_ruleset(_compiled()).text)
    unit = tmp_path / "distsec-default-restrictive.service"
    unit.write_text(unit_text(nft, str(ruleset)))
    proc = subprocess.run([tool, "verify", "--man=no", str(unit)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and "distsec-default-restrictive" not in proc.stderr, proc.stderr
    options = dict(line.split("=", 1) for line in unit.read_text().splitlines() if "=" in line and line[0] != "#")
    assert options["ExecStart"] == f"{nft} -f {ruleset}"
    assert options["Type"] == "oneshot" and options["RemainAfterExit"] == "yes"


@pytest.mark.netns
def test_a_new_policy_rewrites_the_file_but_not_the_unit(host):
    host.play([host.args(compiled=_compiled())])
    host.calls()
    first = host.path.read_text()
    changed = _compiled(dns_servers=["2001:db8::53"])
    (result,) = host.play([host.args(compiled=changed)], diff=True)
    assert result["changed"] is True and result["actions"] == [f"write {host.path}"]
    assert "baseline-remediation-dns-servers" in result["rules"]["output"]
    assert result["diff"]["before"] == first and result["diff"]["after"] == host.path.read_text() != first
    assert host.calls() == ["is-enabled distsec-default-restrictive.service"], "same unit: no reload, no enable"

    host.path.chmod(0o600)
    (fixed,) = host.play([host.args(compiled=changed)])
    assert fixed["changed"] is True and _mode(host.path) == 0o644


@pytest.mark.netns
def test_enforced_tells_a_domain_policy_from_the_default_restrictive_one(host):
    old = _compiled()
    new = _compiled(ntp_servers=["2001:db8::123"])
    host.play([host.args(compiled=old)])
    host.fw.mkdir()
    (host.fw / "nftables.json").write_text("{}")
    results = []
    for hash_in_effect in (old["hash"], new["hash"], "sha256:" + "0" * 64):
        host.policy_file.write_text(json.dumps({"hash": hash_in_effect, "domain": "corp.example.org"}))
        results.append(host.play([host.args(compiled=new)], check=True)[0])
    assert [r["enforced"] for r in results] == [False, False, True], results
    assert "is the default-restrictive one" in results[0]["enforced_reason"]
    assert str(host.fw / "nftables.json") in results[2]["enforced_reason"]


@pytest.mark.netns
def test_absent_disables_and_removes_unit_and_file(host):
    host.play([host.args(compiled=_compiled())])
    host.calls()
    (checked,) = host.play([host.args(state="absent")], check=True, diff=True)
    assert checked["changed"] is True and host.path.exists() and host.unit.exists()
    assert checked["diff"]["after"] == "" and checked["diff"]["before"].startswith("# distsec:")
    assert host.calls() == ["is-enabled distsec-default-restrictive.service"]
    removed, again = host.play([host.args(state="absent"), host.args(state="absent")])
    assert removed["changed"] is True
    assert removed["actions"] == [
        "systemctl disable distsec-default-restrictive.service",
        f"remove {host.unit}",
        "systemctl daemon-reload",
        f"remove {host.path}",
    ]
    assert not host.path.exists() and not host.unit.exists()
    assert again["changed"] is False and again["actions"] == []


@pytest.mark.netns
def test_bad_input_fails_cleanly_and_writes_nothing(host):
    good = _compiled()
    host.play([host.args(compiled=good)])
    before = host.path.read_text()
    host.calls()
    broken = json.loads(json.dumps(good))
    rules = broken["profiles"]["isolated"]["rules"]
    mgmt = next(r for r in rules if r["id"] == "baseline-management-in")
    mgmt["protocols"][0]["ports"] = [[70000, 70000]]  # the renderer passes it on; nft refuses it
    broken["hash"] = "sha256:" + "1" * 64
    results = host.play(
        [
            host.args(compiled=broken),
            host.args(compiled="not json"),
            host.args(compiled={"domain": "x"}),
            host.args(compiled=good, path="/tmp/with space.nft"),
            host.args(compiled=good, unit="../evil.service"),
            host.args(state="present"),
        ]
    )
    for result in results:
        assert result.get("failed") is True, result
        assert "Traceback" not in result["msg"]
    refused, not_json, not_compiled, bad_path, bad_unit, missing = results
    assert refused["msg"].startswith(f"{host.path}: rule baseline-management-in: nft -c rejected the ruleset")
    assert "nothing was written" in refused["msg"] and "70000" in refused["msg"]
    assert not_json["msg"].startswith("compiled: not a mapping and not JSON text")
    assert "restrictive_policy filter" in not_compiled["msg"]
    assert bad_path["msg"].startswith("path: '/tmp/with space.nft' has a space")
    assert bad_unit["msg"].startswith("unit: '../evil.service' is not a systemd service name")
    assert "compiled" in missing["msg"]
    assert host.path.read_text() == before
    assert not any(c.startswith(("enable", "daemon-reload")) for c in host.calls())

    (host.fake.parent / "masked").touch()
    (masked,) = host.play([host.args(compiled=_compiled(pki=["2001:db8::443"]))])
    assert masked.get("failed") is True
    assert "is masked" in masked["msg"] and "systemctl unmask distsec-default-restrictive.service" in masked["msg"]
    assert host.path.read_text() == before, "a masked unit: nothing is written"


# ---- what the loaded ruleset lets through, with real connections ------------------------------


@pytest.fixture
def peer(netns):
    """A second namespace wired to the host (HOST_V4): it holds ADMIN_V4, PDP_V4 and OTHER_V4 and
    listens on 8080 on all of them."""
    name = f"distsec-ut-{uuid.uuid4().hex[:8]}"
    veth = uuid.uuid4().hex[:6]
    subprocess.run(["ip", "netns", "add", name], check=True)
    inside = ["ip", "netns", "exec", name]
    listener = None
    try:
        cmds = [
            ["ip", "link", "add", f"h{veth}", "netns", netns[-1], "type", "veth", "peer", "name", f"p{veth}",
             "netns", name],
            [*netns, "ip", "addr", "add", f"{HOST_V4}/24", "dev", f"h{veth}"],
            [*netns, "ip", "link", "set", f"h{veth}", "up"],
            [*inside, "ip", "link", "set", "lo", "up"],
            [*inside, "ip", "link", "set", f"p{veth}", "up"],
        ] + [[*inside, "ip", "addr", "add", f"{a}/24", "dev", f"p{veth}"] for a in (ADMIN_V4, PDP_V4, OTHER_V4)]  # fmt: skip
        for cmd in cmds:
            subprocess.run(cmd, check=True)
        listener = subprocess.Popen(
            [*inside, sys.executable, "-c",
             "import socket\ns=socket.create_server(('0.0.0.0',8080))\nwhile True:\n c,a=s.accept(); c.close()\n"],
        )  # fmt: skip
        time.sleep(0.5)
        yield inside
    finally:
        if listener is not None:
            listener.kill()
            listener.wait()
        subprocess.run(["ip", "netns", "delete", name], check=False)


def _connect(where, address, port, *, source=None):
    """'open', or the error a connection attempt ends with (timeouts are short: a drop is silent)."""
    probe = (
        "import socket,sys\n"
        "src=(sys.argv[3],0) if len(sys.argv)>3 else None\n"
        "try:\n socket.create_connection((sys.argv[1],int(sys.argv[2])),timeout=1.5,source_address=src).close();"
        " print('open')\n"
        "except OSError as e: print(type(e).__name__)\n"
    )
    argv = [*where, sys.executable, "-c", probe, address, str(port)] + ([source] if source else [])
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30).stdout.strip()


@pytest.mark.netns
def test_the_loaded_ruleset_with_real_connections(netns, peer, tmp_path):
    compiled = _compiled(pdp=[PDP_V4], management_port=2222)
    path = tmp_path / "default-restrictive.nft"
    path.write_text(boot_ruleset(compiled).text)
    server = subprocess.Popen(
        [*netns, sys.executable, "-c",
         "import socket,threading\n"
         "def serve(s):\n while True:\n  c,a=s.accept(); c.close()\n"
         "for addr in (('0.0.0.0',2222),('0.0.0.0',8081)):\n"
         " threading.Thread(target=serve,args=(socket.create_server(addr),)).start()\n"
         "threading.Thread(target=serve,args=(socket.create_server(('::1',8082),family=socket.AF_INET6),)).start()\n"],
    )  # fmt: skip
    try:
        time.sleep(0.5)
        assert _connect(netns, PDP_V4, 8080) == "open", "before: everything is open"
        rc, _out, err = _nft(netns, "-f", str(path))
        assert rc == 0, err
        # loopback, both families
        assert _connect(netns, "127.0.0.1", 8081) == "open"
        assert _connect(netns, "::1", 8082) == "open"
        # management from the admin address only
        assert _connect(peer, HOST_V4, 2222, source=ADMIN_V4) == "open"
        assert _connect(peer, HOST_V4, 2222, source=OTHER_V4) == "TimeoutError"
        assert _connect(peer, HOST_V4, 8081, source=ADMIN_V4) == "TimeoutError", "only the management port"
        # out: only the remediation path to the PDP
        assert _connect(netns, PDP_V4, 8080) == "open"
        # A SYN dropped in output fails connect() with EPERM, or (when the kernel retries) times out;
        # "open" or a refusal by the peer would mean it went out.
        assert _connect(netns, ADMIN_V4, 8080) in ("PermissionError", "TimeoutError"), "output policy drop"
    finally:
        server.kill()
        server.wait()


# ---- the role, in check mode (a real run needs systemd: molecule) ----------------------------


def _role_play(netns, tmp_path, role_vars, *, check=True):
    book = tmp_path / "role.yml"
    play = {"hosts": "localhost", "gather_facts": False, "vars": role_vars,
            "roles": ["distsec.framework.default_restrictive"]}  # fmt: skip
    book.write_text(yaml.safe_dump([play]))
    env = dict(
        os.environ,
        ANSIBLE_STDOUT_CALLBACK="json",
        ANSIBLE_LOCALHOST_WARNING="false",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
        PATH=f"{BIN}:{os.environ['PATH']}",
        ANSIBLE_COLLECTIONS_PATH=str(TOP / ".ansible" / "collections"),
    )
    argv = [*netns, str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", str(book)] + ["--check"] * check
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False, timeout=180)
    report = json.loads(proc.stdout)
    return {t["task"]["name"].split(" : ", 1)[-1]: t["hosts"]["localhost"] for t in report["plays"][0]["tasks"]}


@pytest.mark.netns
def test_the_role_in_check_mode(netns, tmp_path):
    if not shutil.which("systemctl") or not (BIN / "ansible-playbook").exists():
        pytest.skip("needs systemctl (read with is-enabled only) and ansible-playbook")
    base = {
        "distsec_domain": "corp.example.org",
        "distsec_management_networks": ["198.51.100.0/28", "2001:db8:ff::/64"],
        "distsec_pdp_addresses": ["2001:db8::10"],
        "distsec_pki_addresses": ["2001:db8::443"],
        "default_restrictive_path": str(tmp_path / "etc" / "default-restrictive.nft"),
        "default_restrictive_firewall_state_dir": str(tmp_path / "firewall"),
    }
    tasks = _role_play(netns, tmp_path, base)
    install = tasks["Install the ruleset file and the unit that loads it at boot"]
    assert install["changed"] is True and install["enforced"] is False and install["profile"] == "isolated"
    assert "baseline-remediation-pki" in install["rules"]["output"]
    assert install["hash"] == restrictive_policy(
        domain="corp.example.org", management_from=base["distsec_management_networks"],
        pdp=["2001:db8::10"], pki=["2001:db8::443"],
    )["hash"]  # fmt: skip
    loaded = tasks["Enforce it now (lockout guard, commit-confirmed)"]
    assert loaded.get("skipped") is not True and loaded["changed"] is True, loaded
    assert (
        loaded["reason"] == "nothing of ours is loaded" and "input: baseline-management-in" in loaded["rules"]["added"]
    )
    assert not (tmp_path / "etc").exists() and not (tmp_path / "firewall" / "nftables.json").exists()
    assert _nft(netns, "list", "ruleset")[1] == "", "check mode touches no kernel table"

    never = _role_play(netns, tmp_path, {**base, "default_restrictive_load_now": False})
    assert never["Enforce it now (lockout guard, commit-confirmed)"].get("skipped") is True

    locked_out = _role_play(netns, tmp_path, {**base, "distsec_management_networks": []})
    failed = locked_out["Say which variable to fix"]
    assert failed.get("failed") is True
    assert "management_from: give at least one admin address" in failed["msg"]
    assert "distsec_management_networks" in failed["msg"] and "nothing was changed" in failed["msg"]
    assert "Install the ruleset file and the unit that loads it at boot" not in locked_out

    wrong = _role_play(netns, tmp_path, {**base, "default_restrictive_load_now": "maybe"})
    assert any(r.get("failed") and "default_restrictive_load_now" in r["msg"] for r in wrong.values()), wrong
