"""Verify the enforced fleet with real traffic: allowed flows connect, denied flows are blocked."""

from __future__ import annotations

import json
import os
import shlex
import socket

import pytest
import testinfra

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
TARGETS = {
    "distsec-fw-nft": ("198.51.100.201", "fd42:d15e:0:3::201"),
    "distsec-fw-ipt": ("198.51.100.202", "fd42:d15e:0:3::202"),
    "distsec-fw-fwd": ("198.51.100.203", "fd42:d15e:0:3::203"),
}
BACKEND = {"distsec-fw-nft": "nftables", "distsec-fw-ipt": "iptables", "distsec-fw-fwd": "firewalld"}
PEER = ("198.51.100.210", "fd42:d15e:0:3::210")


def _host(name):
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}")


@pytest.fixture(scope="module")
def peer():
    return _host("distsec-fw-peer")


def _connect(host, address, port):
    """Run a TCP connect on `host`: 'ok', 'refused' or 'timeout' (bounded by 2 s)."""
    script = (
        "import socket,sys\n"
        "try:\n"
        f"    socket.create_connection(({address!r}, {port}), timeout=2).close(); print('ok')\n"
        "except ConnectionRefusedError: print('refused')\n"
        "except OSError: print('timeout')\n"
    )
    return host.check_output(f"python3 -c {shlex.quote(script)}").strip()


def _rule_packets(host, name, rule_id, verdict):
    """Packets counted by our rule `rule_id` with `verdict` (accept, drop), both families."""
    if BACKEND[name] == "nftables":
        items = json.loads(host.check_output("nft -j list table inet distsec"))["nftables"]
        total = 0
        for item in items:
            rule = item.get("rule")
            if rule and rule.get("comment") == rule_id and any(verdict in e for e in rule["expr"]):
                total += sum(e["counter"]["packets"] for e in rule["expr"] if "counter" in e)
        return total
    total = 0
    for save in ("iptables-nft-save", "ip6tables-nft-save"):
        for line in host.check_output(f"{save} -c -t filter").splitlines():
            if f"--comment {rule_id} " in line and line.endswith(f"-j {verdict.upper()}"):
                total += int(line[1 : line.index(":")])
    return total


@pytest.mark.parametrize("name", sorted(TARGETS))
@pytest.mark.parametrize("family", [0, 1], ids=["ipv4", "ipv6"])
def test_the_peer_reaches_the_allowed_port_and_not_the_denied_one(peer, name, family):
    address = TARGETS[name][family]
    target = _host(name)
    counted = BACKEND[name] != "firewalld"  # firewalld's rich rules carry no counters
    before = _rule_packets(target, name, "probe-port-denied", "drop") if counted else 0
    assert _connect(peer, address, 8080) == "ok"
    assert _connect(peer, address, 8081) == "timeout"
    if counted:
        assert _rule_packets(target, name, "probe-port-denied", "drop") > before


@pytest.mark.parametrize("name", sorted(TARGETS))
@pytest.mark.parametrize("family", [0, 1], ids=["ipv4", "ipv6"])
def test_outbound_the_target_reaches_9090_and_is_refused_9091(name, family):
    target = _host(name)
    assert _connect(target, PEER[family], 9090) == "ok"
    assert _connect(target, PEER[family], 9091) == "refused"  # reject answers at once


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_only_the_admin_reaches_ssh(peer, name):
    for address in TARGETS[name]:
        with socket.create_connection((address, 22), timeout=3) as sock:  # the controller is the admin
            assert sock.recv(64).startswith(b"SSH-")
        assert _connect(peer, address, 22) == "timeout"


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_icmpv6_neighbour_discovery_keeps_working(peer, name):
    address = TARGETS[name][1]
    peer.check_output(f"ip -6 neigh flush to {address}")
    assert peer.run(f"ping -6 -c 1 -W 2 {address}").rc == 0
    neigh = peer.check_output(f"ip -6 neigh show to {address}")
    assert neigh and "FAILED" not in neigh and "INCOMPLETE" not in neigh


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_the_other_owners_table_is_untouched(name):
    target = _host(name)
    items = json.loads(target.check_output("nft -j list table ip docker_like"))["nftables"]
    rules = [i["rule"] for i in items if "rule" in i]
    assert len(rules) == 1 and rules[0]["comment"] == "owned by someone else"
    if BACKEND[name] == "iptables":
        saved = target.check_output("iptables-nft-save -t filter")
        assert '-A DOCKER-USER -m comment --comment "owned by someone else" -j RETURN' in saved
        assert "-A FORWARD -j DOCKER-USER" in saved
        jumps = [line for line in saved.splitlines() if line.endswith("-j DISTSEC-INPUT")]
        assert jumps == ["-A INPUT -j DISTSEC-INPUT"]
    if BACKEND[name] == "firewalld":
        assert target.check_output("firewall-cmd --state") == "running"
        policies = target.check_output("firewall-cmd --get-policies").split()
        assert {"distsec-in", "distsec-out", "distsec-fwd"} <= set(policies)
        rich = target.check_output("firewall-cmd --policy distsec-in --list-rich-rules")
        assert 'port port="8080" protocol="tcp"' in rich and "8081" in rich


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_the_policy_record_names_domain_profile_and_backend(name):
    target = _host(name)
    record = json.loads(target.file("/var/lib/distsec/policy.json").content_string)
    assert record["domain"] == "firewall.test" and record["profile"] == "home"
    assert record["hash"].startswith("sha256:") and record["backend"] == BACKEND[name]
    assert not target.run("ls /var/lib/distsec/firewall/pending/*.pending").stdout.strip()
