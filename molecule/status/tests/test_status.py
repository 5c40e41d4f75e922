"""The status file written by distsec.framework.security_status matches the host's real state."""

from __future__ import annotations

import json
import os

import pytest
import testinfra

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]


@pytest.fixture(scope="module")
def host():
    return testinfra.get_host(f"ansible://distsec-status-host?ansible_inventory={INVENTORY}")


@pytest.fixture(scope="module")
def status(host):
    f = host.file("/var/lib/distsec/status.json")
    assert f.exists and f.mode == 0o640 and f.user == "root"
    return json.loads(f.content_string)


def test_platform(status, host):
    assert status["platform"]["os"] == "debian"
    assert status["platform"]["version_scheme"] == "dpkg"
    assert status["platform"]["kernel"] == host.check_output("uname -r")


@pytest.mark.parametrize("package", ["python3", "openssh-server", "nftables", "systemd"])
def test_package_versions_are_dpkg_s(status, host, package):
    assert status["packages"][package]["version"] == host.check_output(f"dpkg-query -W -f '${{Version}}' {package}")


def test_package_names_match_dpkg(status, host):
    rows = host.check_output("dpkg-query -W -f '${binary:Package}\\t${db:Status-Status}\\n'").splitlines()
    installed = {row.split("\t")[0].split(":")[0] for row in rows if row.endswith("\tinstalled")}
    assert set(status["packages"]) == installed


def test_pending_updates_match_apt(status, host):
    sim = host.check_output("apt-get -s -o Debug::NoLocking=1 dist-upgrade")
    pending = [line for line in sim.splitlines() if line.startswith("Inst ")]
    assert status["updates"]["pending_count"] == len(pending)
    security = [line for line in pending if "-security" in line or "Debian-Security" in line]
    assert status["updates"]["security_count"] == len(security)


def test_listener_and_sysctl(status):
    ports = {(s["proto"], s["port"]) for s in status["sockets"]}
    assert ("tcp", 8088) in ports and ("tcp", 22) in ports
    assert status["sysctl"]["net.ipv4.ip_forward"] == "1"


def test_services(status):
    assert status["services"]["ssh.service"]["active"] is True
    assert status["services"]["distsec-status-listener.service"]["active"] is True


def test_network_addresses(status):
    addresses = status["network"]["addresses"]
    assert any(a.startswith("198.51.100.150/") for a in addresses)
    assert any(a.startswith("fd42:d15e:0:2::21/") for a in addresses)
    assert "198.51.100.129" in status["network"]["default_gateways"]


def test_no_secret_material(status, host):
    text = json.dumps(status)
    assert "PRIVATE KEY" not in text


def test_the_status_fits_its_published_schema(status):
    from ansible_collections.distsec.framework.plugins.module_utils._status.schema import STATUS_SCHEMA  # noqa: PLC0415
    from ansible_collections.distsec.framework.plugins.plugin_utils._psl.problems import Problems  # noqa: PLC0415
    from ansible_collections.distsec.framework.plugins.plugin_utils._psl.schema import _Checker  # noqa: PLC0415

    assert _Checker(STATUS_SCHEMA, None, Problems()).errors(status, STATUS_SCHEMA, ()) == []
