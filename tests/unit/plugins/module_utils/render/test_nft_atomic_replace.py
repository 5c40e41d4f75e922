"""Replacing our table while forbidden traffic arrives lets none of it through (real kernel, real packets).

Found by the firewall scenario's atomicity test: when `nft -f` replaces a table in one
transaction, the kernel sets a new base chain's `policy drop` only after the chain's rules
are live and the old chain is unhooked. A chain that relied on its policy accepted traffic for
that moment (175 datagrams in 500 replacements here). The renderer now ends every drop
chain with an explicit drop rule; this test fails without it.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

import pytest

from ansible_collections.distsec.framework.plugins.module_utils._apply.nftables import Nft, TableRef, replace_script
from ansible_collections.distsec.framework.plugins.module_utils._render.nftables import render
from ansible_collections.distsec.framework.plugins.plugin_utils._psl.compiler import compile_policy, load_policy

POLICY = """\
psl: 1
domain: atomic.test
description: Atomic replacement test
objects:
  addresses:
    peer: [198.51.100.66]
rules:
  - id: web-in
    description: The peer may use the web service
    direction: in
    from: peer
    proto: tcp
    ports: [8080]
    action: accept
"""

ROUNDS = 250  # each round loads one table, then the other: 500 replacements (about 10 s)

# Counts UDP datagrams to 8081 that reach the socket; prints the count when told to stop over loopback.
LISTENER = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 8081))
print("ready", flush=True)
n = 0
while s.recv(64) != b"stop":
    n += 1
print(n, flush=True)
"""

# Sends UDP to 8081 until told to stop on stdin (bounded: 60 s, 2,000,000 datagrams, about 20,000 a second).
SENDER = """
import select, socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
end, sent = time.time() + 60, 0
while time.time() < end and sent < 2000000:
    for _ in range(10):
        s.sendto(b"forbidden", ("198.51.100.65", 8081))
        sent += 1
    time.sleep(0.0005)
    if select.select([sys.stdin], [], [], 0)[0]:
        break
print(sent, flush=True)
"""

COUNTER = """table inet atomic_probe {
  chain input {
    type filter hook input priority -10; policy accept;
    udp dport 8081 counter
  }
}
"""


@pytest.fixture
def wired(netns):
    """The host (198.51.100.65, in `netns`) and a peer namespace (198.51.100.66) on a veth pair."""
    peer = f"distsec-ut-{uuid.uuid4().hex[:8]}"
    veth = uuid.uuid4().hex[:6]
    subprocess.run(["ip", "netns", "add", peer], check=True)
    try:
        for cmd in (
            [
                "ip",
                "link",
                "add",
                f"h{veth}",
                "netns",
                netns[-1],
                "type",
                "veth",
                "peer",
                "name",
                f"p{veth}",
                "netns",
                peer,
            ],
            [*netns, "ip", "addr", "add", "198.51.100.65/24", "dev", f"h{veth}"],
            [*netns, "ip", "link", "set", f"h{veth}", "up"],
            ["ip", "netns", "exec", peer, "ip", "addr", "add", "198.51.100.66/24", "dev", f"p{veth}"],
            ["ip", "netns", "exec", peer, "ip", "link", "set", f"p{veth}", "up"],
        ):
            subprocess.run(cmd, check=True)
        yield netns, ["ip", "netns", "exec", peer]
    finally:
        subprocess.run(["ip", "netns", "delete", peer], check=False)


@pytest.mark.netns
def test_no_forbidden_datagram_passes_while_the_table_is_replaced(wired, run, tmp_path):
    host, peer = wired
    policy = tmp_path / "policy.yml"
    policy.write_text(POLICY)
    compiled = compile_policy(load_policy([str(policy)]), host="h1", groups=[])
    ref = TableRef("inet", "distsec")
    scripts = [
        replace_script(ref, render(compiled, profile, compiled["profiles"][profile]["rules"]))
        for profile in ("home", "foreign")
    ]
    for script in scripts:  # 8081/udp has no rule: only the profiles' default drop forbids it
        assert "8081" not in script and 'counter drop comment "default-in"' in script
    nft = Nft(run, argv=[*host, "nft"])
    nft.apply(scripts[0])
    nft.apply(COUNTER)

    listener = subprocess.Popen([*host, sys.executable, "-c", LISTENER], stdout=subprocess.PIPE, text=True)
    sender = None
    try:
        assert listener.stdout.readline().strip() == "ready"
        sender = subprocess.Popen(
            [*peer, sys.executable, "-c", SENDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        time.sleep(0.3)
        for _round in range(ROUNDS):
            for script in scripts:
                nft.apply(script)
        sent = int(sender.communicate("stop\n", timeout=30)[0])
        subprocess.run(
            [*host, sys.executable, "-c", "import socket; socket.socket(2, 2).sendto(b'stop', ('127.0.0.1', 8081))"],
            check=True,
        )
        arrived = int(listener.communicate(timeout=30)[0].strip())
    finally:
        for proc in (sender, listener):
            if proc and proc.poll() is None:
                proc.kill()
                proc.wait()
    counted = run([*host, "nft", "list", "table", "inet", "atomic_probe"])[1]
    reached = int(counted.split("counter packets ")[1].split()[0])
    assert reached > 10000, f"the forbidden traffic did not flow during the replacements: {counted}"
    assert arrived == 0, (
        f"{arrived} of {reached} forbidden datagrams ({sent} sent) passed during {2 * ROUNDS} replacements"
    )
