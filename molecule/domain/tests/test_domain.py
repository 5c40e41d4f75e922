"""Domain membership after converge and side_effect: both hosts are members with a valid chain and
CRL, distsec-dom-b was readmitted (its old serial is in the CRL), and no host key is in any log."""

from __future__ import annotations

import datetime
import glob
import json
import os
import subprocess

import pytest
import testinfra

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
EPHEMERAL = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]
HOSTS = {"distsec-dom-a": "198.51.100.71", "distsec-dom-b": "198.51.100.72"}
VERIFY = "openssl verify -CAfile /etc/distsec/ca.crt -untrusted /etc/distsec/chain.crt"


@pytest.fixture(scope="module", params=sorted(HOSTS))
def member(request):
    return request.param, testinfra.get_host(f"ansible://{request.param}?ansible_inventory={INVENTORY}")


def test_chain_verifies(member):
    _name, host = member
    assert host.check_output(f"{VERIFY} /etc/distsec/host.crt").endswith(": OK")


def test_chain_and_crl_verify(member):
    _name, host = member
    out = host.check_output(f"{VERIFY} -crl_check -CRLfile /etc/distsec/crl.pem /etc/distsec/host.crt")
    assert out.endswith(": OK")


def test_key_is_roots_and_private(member):
    _name, host = member
    key = host.file(host.check_output("readlink -f /etc/distsec/host.key"))
    assert key.is_file and key.mode == 0o600 and key.user == "root"


def test_certificate_names_the_host(member):
    name, host = member
    san = host.check_output("openssl x509 -in /etc/distsec/host.crt -noout -ext subjectAltName")
    assert f"DNS:{name}" in san
    assert f"IP Address:{HOSTS[name]}" in san
    subject = host.check_output("openssl x509 -in /etc/distsec/host.crt -noout -subject -nameopt RFC2253")
    assert f"CN={name}" in subject


def _date(text: str) -> datetime.datetime:
    return datetime.datetime.strptime(text.split("=", 1)[1].strip(), "%b %d %H:%M:%S %Y %Z")


def test_lifetime_is_at_most_30_days(member):
    _name, host = member
    start, end = host.check_output("openssl x509 -in /etc/distsec/host.crt -noout -startdate -enddate").splitlines()
    assert datetime.timedelta(0) < _date(end) - _date(start) <= datetime.timedelta(days=30)


def test_membership_record(member):
    name, host = member
    record = json.loads(host.file("/etc/distsec/domain.json").content_string)
    assert record["state"] == "member" and record["host"] == name and record["domain"] == "domain.test"


def test_old_serial_of_dom_b_is_revoked_on_dom_a():
    with open(os.path.join(EPHEMERAL, "dom-b-old-serial"), encoding="utf-8") as handle:
        serial = handle.read().strip()
    host = testinfra.get_host(f"ansible://distsec-dom-a?ansible_inventory={INVENTORY}")
    # crl.pem holds one CRL per issuing CA (two after the rotation); `openssl crl` reads only the
    # first, so each is read on its own (by the controller's openssl).
    marker = "-----BEGIN X509 CRL-----"
    blocks = [marker + part for part in host.file("/etc/distsec/crl.pem").content_string.split(marker)[1:]]
    assert len(blocks) == 2
    texts = [
        subprocess.run(
            ["openssl", "crl", "-noout", "-text"], input=block, capture_output=True, text=True, check=True
        ).stdout
        for block in blocks
    ]
    assert serial and sum(f"Serial Number: {serial}" in text for text in texts) == 1
    b = testinfra.get_host(f"ansible://distsec-dom-b?ansible_inventory={INVENTORY}")
    assert json.loads(b.file("/etc/distsec/domain.json").content_string)["serial"] != serial


def test_security_status_reports_the_membership(member):
    _name, host = member
    facts = host.ansible("distsec.framework.security_status", check=False)["ansible_facts"]["distsec_status"]
    domain = facts["domain"]
    assert domain["enrolled"] is True and domain["domain"] == "domain.test"
    assert domain["certificate"]["valid"] is True, domain["certificate"]["reason"]
    assert domain["certificate"]["revoked"] is False


def _logs() -> dict:
    logs = {}
    for path in sorted(glob.glob(os.path.join(EPHEMERAL, "*.log"))):
        with open(path, encoding="utf-8", errors="replace") as handle:
            logs[path] = handle.read()
    return logs


def test_logs_were_written_and_hold_the_vvv_run():
    logs = _logs()
    names = {os.path.basename(p) for p in logs}
    assert {"ansible.log", "runs.log", "join-vvv.log"} <= names, names
    assert all(text.strip() for text in logs.values())
    assert "ESTABLISH SSH CONNECTION" in logs[os.path.join(EPHEMERAL, "join-vvv.log")]
    assert "ESTABLISH SSH CONNECTION" in logs[os.path.join(EPHEMERAL, "ansible.log")]


def test_no_host_key_in_any_log(member):
    name, host = member
    pem = host.check_output("cat /etc/distsec/host.key")
    body = [line.strip() for line in pem.splitlines() if line.strip() and not line.startswith("-----")]
    assert body, f"{name}: empty key"
    for path, text in _logs().items():
        flat = "".join(text.split())
        assert "".join(body) not in flat, f"{name}'s key body is in {path}"
        for line in body:
            assert line not in text, f"a line of {name}'s key is in {path}"
    assert "PRIVATE KEY" not in _logs()[os.path.join(EPHEMERAL, "join-vvv.log")]
