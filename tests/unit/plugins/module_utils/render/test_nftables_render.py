"""The nftables renderer: the kernel accepts every rendered rule, and real packets obey them."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from ansible_collections.distsec.framework.plugins.module_utils._apply.nftables import Nft, TableManager, TableRef
from ansible_collections.distsec.framework.plugins.module_utils._evaluate.decide import active_rules, decide
from ansible_collections.distsec.framework.plugins.module_utils._render.nftables import render
from ansible_collections.distsec.framework.plugins.plugin_utils._psl.compiler import compile_policy, load_policy

TOP = Path(__file__).resolve().parents[5]
EXAMPLES = sorted((TOP / "docs" / "examples").glob("*/policy.yml"))
MAIL = TOP / "docs" / "examples" / "mail-client" / "policy.yml"


@pytest.mark.netns
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.parent.name)
def test_every_rule_of_every_profile_passes_the_kernel_check(path, run, netns, tmp_path):
    policy = load_policy([str(path)])
    hosts = {(t.value.get("host"), tuple(t.value.get("groups") or [])) for t in policy.tests} | {(None, ())}
    nft = Nft(run, argv=[*netns, "nft"])
    checked = 0
    for host, groups in sorted(hosts, key=str):
        compiled = compile_policy(policy, host=host, groups=list(groups))
        for profile, spec in compiled["profiles"].items():
            body = render(compiled, profile, spec["rules"])  # all rules: whatever the conditions decide
            TableManager(nft, TableRef("inet", "distsec"), str(tmp_path)).validate(body)
            checked += 1
    assert checked >= 4


def test_rendering_is_deterministic_and_names_every_rule():
    compiled = compile_policy(load_policy([str(MAIL)]), host="ws1", groups=["workstations"])
    decision = decide(compiled, {"packages": {"thunderbird": {"version": "1:102.0-1"}}})
    first = render(compiled, decision.profile, active_rules(compiled, decision))
    again = render(compiled, decision.profile, active_rules(compiled, decision))
    assert first == again
    for rule in active_rules(compiled, decision):
        assert f'comment "{rule["id"]}"' in first
    assert 'limit rate 5/minute log prefix "distsec old-mua "' in first
    upgraded = decide(compiled, {"packages": {"thunderbird": {"version": "1:115.5.0-1"}}})
    assert "block-mail-old-client" not in render(compiled, upgraded.profile, active_rules(compiled, upgraded))


@pytest.fixture
def two_hosts(netns, run):
    """A second namespace (the mail server 198.51.100.25) wired to the first (the client 198.51.100.5)."""
    server = f"distsec-ut-{uuid.uuid4().hex[:8]}"
    client_ns = netns[-1]
    veth = uuid.uuid4().hex[:6]
    subprocess.run(["ip", "netns", "add", server], check=True)
    try:
        cmds = [
            [
                "ip",
                "link",
                "add",
                f"c{veth}",
                "netns",
                client_ns,
                "type",
                "veth",
                "peer",
                "name",
                f"s{veth}",
                "netns",
                server,
            ],
            [*netns, "ip", "addr", "add", "198.51.100.5/24", "dev", f"c{veth}"],
            [*netns, "ip", "link", "set", f"c{veth}", "up"],
            ["ip", "netns", "exec", server, "ip", "addr", "add", "198.51.100.25/24", "dev", f"s{veth}"],
            ["ip", "netns", "exec", server, "ip", "link", "set", f"s{veth}", "up"],
            ["ip", "netns", "exec", server, "ip", "link", "set", "lo", "up"],
        ]
        for cmd in cmds:
            subprocess.run(cmd, check=True)
        listener = subprocess.Popen(
            ["ip", "netns", "exec", server, sys.executable, "-c",
             "import socket,time\ns=socket.create_server(('198.51.100.25',587))\n"
             "while True:\n c,a=s.accept(); c.close()\n"],
        )  # fmt: skip
        time.sleep(0.5)
        yield netns
        listener.kill()
        listener.wait()
    finally:
        subprocess.run(["ip", "netns", "delete", server], check=False)


def _connect(netns, run):
    probe = (
        "import socket\n"
        "try:\n socket.create_connection(('198.51.100.25',587),timeout=2).close(); print('open')\n"
        "except OSError as e: print(type(e).__name__)\n"
    )
    return run([*netns, sys.executable, "-c", probe])[1].strip()


@pytest.mark.netns
def test_the_seed_example_with_real_packets(two_hosts, run, tmp_path):
    """draft-vives 4.3.1: an outdated mail client may not send mail; after the upgrade it may."""
    netns = two_hosts
    assert _connect(netns, run) == "open"
    compiled = compile_policy(load_policy([str(MAIL)]), host="ws1", groups=["workstations"])
    manager = TableManager(Nft(run, argv=[*netns, "nft"]), TableRef("inet", "distsec"), str(tmp_path))
    for version, expected in (("1:102.15.1-1", "ConnectionRefusedError"), ("1:115.5.0-1", "open")):
        decision = decide(compiled, {"packages": {"thunderbird": {"version": version}}})
        manager.apply(render(compiled, decision.profile, active_rules(compiled, decision)))
        assert _connect(netns, run) == expected, version
    listing = run([*netns, "nft", "list", "table", "inet", "distsec"])[1]
    assert 'comment "allow-mail"' in listing and "block-mail-old-client" not in listing
