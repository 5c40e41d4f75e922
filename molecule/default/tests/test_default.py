"""Verify the converged fleet: the table is really in the kernel and really filters traffic."""

from __future__ import annotations

import json
import os

import pytest
import testinfra

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]


def _host(name):
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}")


@pytest.fixture(scope="module")
def target():
    return _host("distsec-default-target")


@pytest.fixture(scope="module")
def peer():
    return _host("distsec-default-peer")


def _ruleset(host):
    return json.loads(host.check_output("nft -j list ruleset"))["nftables"]


def test_our_table_is_in_the_kernel_with_its_rules(target):
    items = _ruleset(target)
    tables = {(i["table"]["family"], i["table"]["name"]) for i in items if "table" in i}
    assert ("inet", "distsec_smoke") in tables
    chains = [i["chain"] for i in items if "chain" in i and i["chain"]["table"] == "distsec_smoke"]
    assert [(c["name"], c["hook"], c["policy"]) for c in chains] == [("input", "input", "drop")]
    comments = [i["rule"].get("comment") for i in items if "rule" in i and i["rule"]["table"] == "distsec_smoke"]
    assert "management-ssh" in comments and "allow-8080" in comments


def test_the_other_owners_table_is_untouched(target):
    items = _ruleset(target)
    rules = [i["rule"] for i in items if "rule" in i and i["rule"]["table"] == "docker_like"]
    assert len(rules) == 1 and rules[0]["comment"] == "owned by someone else"


def test_the_listeners_run(target):
    for port in (8080, 8081):
        assert target.socket(f"tcp://:::{port}").is_listening


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_allowed_port_connects_from_the_peer(peer, family):
    address = _address(family)
    result = peer.run(f"nc -z -w 3 {address} 8080")
    assert result.rc == 0, result.stderr


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_denied_port_is_dropped_for_the_peer(peer, target, family):
    address = _address(family)
    before = _denied_count(target)
    result = peer.run(f"nc -z -w 2 {address} 8081")
    assert result.rc != 0
    assert _denied_count(target) > before, "the drop was not counted by our table"


def _address(family):
    return {"ipv4": "198.51.100.11", "ipv6": "fd42:d15e:0:1::11"}[family]


def _denied_count(target):
    for item in _ruleset(target):
        rule = item.get("rule")
        if rule and rule["table"] == "distsec_smoke" and rule.get("comment") == "denied":
            return next(e["counter"]["packets"] for e in rule["expr"] if "counter" in e)
    raise AssertionError("rule 'denied' not found")
