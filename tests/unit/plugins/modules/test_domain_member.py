"""distsec.framework.domain_member: its main() run in-process with root = a temporary directory.

The "PDP" is the tiny in-test CA of pki_member_helpers; the host's addresses come from the real
`ip -j addr show` (the identity uses 127.0.0.1, which every host has).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import time

import pytest
from ansible.module_utils.testing import patch_module_args
from pki_member_helpers import TestCA

from ansible_collections.distsec.framework.plugins.module_utils._pki.identity import parse_identity
from ansible_collections.distsec.framework.plugins.modules import domain_member

pytestmark = pytest.mark.skipif(shutil.which("ip") is None, reason="needs the ip command (iproute2)")

DOMAIN = "example.org"
IDENTITY = {"name": "web-1", "dns": ["web-1.example.org"], "ip": ["127.0.0.1"]}
BUILT = parse_identity(IDENTITY)  # what the CA puts in the certificate (the name is a DNS name too)


@pytest.fixture(scope="module")
def ca():
    return TestCA(DOMAIN)


class Host:
    def __init__(self, tmp_path, capsys, ca):
        self.root = tmp_path / "etc"
        self.capsys = capsys
        self.ca = ca
        self.outputs = []

    def run(self, state, *, check=False, diff=False, **extra):
        args = {
            "state": state,
            "root": str(self.root),
            "domain": DOMAIN,
            "host": "web-1",
            "identity": IDENTITY,
            "_ansible_check_mode": check,
            "_ansible_diff": diff,
            **extra,
        }
        with patch_module_args(args), pytest.raises(SystemExit) as exc:
            domain_member.main()
        text = self.capsys.readouterr().out
        self.outputs.append(text)
        out = json.loads(text)
        assert bool(out.get("failed")) == (exc.value.code != 0)
        return out

    def plan(self, **extra):
        return self.run("planned", pdp_time=time.time(), ca_fingerprint=self.ca_fingerprint(), lifetime="30d", **extra)

    def ca_fingerprint(self):
        from ansible_collections.distsec.framework.plugins.module_utils._pki.x509 import fingerprint

        return fingerprint(self.ca.root)

    def present(self, planned, **extra):
        cert = self.ca.sign(planned["csr"], dns=BUILT.dns, ip=BUILT.ip)[0]
        return self.run(
            "present",
            token=planned["token"],
            certificate=cert,
            chain=self.ca.chain_pem,
            ca=self.ca.ca_pem,
            crl=self.ca.crl(),
            trust_root='{"version": 1}\n',
            **extra,
        )

    def snapshot(self):
        files = {}
        for base, dirs, names in os.walk(self.root):
            for name in dirs + names:
                path = os.path.join(base, name)
                if os.path.islink(path):
                    files[path] = os.readlink(path)
                elif os.path.isfile(path):
                    with open(path, "rb") as handle:
                        files[path] = handle.read()
                else:
                    files[path] = "dir"
        return files

    def key_bodies(self):
        """The base64 lines of every private key ever written under root (staged or installed)."""
        lines = set()
        for path, content in self.snapshot().items():
            if path.endswith("host.key") and isinstance(content, bytes):
                lines.update(line for line in content.decode().splitlines() if line and not line.startswith("-----"))
        return lines


@pytest.fixture
def host(tmp_path, capsys, ca):
    return Host(tmp_path, capsys, ca)


def test_join_then_nothing_to_do(host):
    planned = host.plan()
    assert planned["changed"] is True and planned["needed"] is True and planned["reason"] == "not a member"
    assert planned["current"] is None and abs(planned["skew"]) < 60
    assert "BEGIN CERTIFICATE REQUEST" in planned["csr"] and len(planned["token"]) == 16
    keys = host.key_bodies()
    present = host.present(planned)
    assert present["changed"] is True and present["member"] is True
    assert present["changed_files"] == [
        "host.key",
        "host.crt",
        "chain.crt",
        "ca.crt",
        "domain.json",
        "crl.pem",
        "root.json",
    ]
    again = host.plan()
    assert again["changed"] is False and again["needed"] is False and again["reason"] is None
    assert "csr" not in again and "token" not in again
    assert again["current"]["serial"] == present["serial"] and again["current"]["renew_at"] == present["renew_at"]
    keys |= host.key_bodies()
    # a refresh with the same material changes nothing
    installed_crl = (host.root / "crl.pem").read_text()
    same = host.run("present", ca=host.ca.ca_pem, crl=installed_crl, trust_root='{"version": 1}\n')
    assert same["changed"] is False and same["changed_files"] == []
    # the key's PEM body never appears in any result
    assert keys
    for text in host.outputs:
        assert "PRIVATE KEY" not in text
        assert not any(line in text for line in keys)


def test_check_mode_writes_nothing(host):
    planned = host.run("planned", check=True, pdp_time=time.time())
    assert planned["changed"] is True and planned["needed"] is True and "csr" not in planned
    assert not host.root.exists()
    planned = host.plan()
    before = host.snapshot()
    cert = host.ca.sign(planned["csr"], dns=BUILT.dns, ip=BUILT.ip)[0]
    args = dict(token=planned["token"], certificate=cert, chain=host.ca.chain_pem, ca=host.ca.ca_pem, crl=host.ca.crl())
    result = host.run("present", check=True, diff=True, **args)
    assert result["changed"] is True and "host.crt" in result["changed_files"] and "crl.pem" in result["changed_files"]
    assert result["diff"]["before"]["member"] is False and result["diff"]["after"]["member"] is True
    assert result["diff"]["after"]["crl_serials"] == 0
    assert host.snapshot() == before
    assert host.run("aborted", check=True)["changed"] is True
    assert host.snapshot() == before
    # for real now, then absent in check mode
    assert host.run("present", diff=True, **args)["diff"]["after"]["serial"] == result["serial"]
    before = host.snapshot()
    absent = host.run("absent", check=True, diff=True)
    assert absent["changed"] is True and "host.key" in absent["removed"]
    assert host.snapshot() == before


def test_absent_and_aborted(host):
    host.present(host.plan())
    absent = host.run("absent")
    assert absent["changed"] is True and "pki" in absent["removed"]
    assert sorted(os.listdir(host.root)) == ["domain.json"]
    assert host.run("absent")["changed"] is False
    host.plan()
    assert host.run("aborted")["changed"] is True
    assert host.run("aborted")["changed"] is False


def test_refresh_only_leaves_a_non_member_alone(host):
    result = host.run("present", refresh_only=True, crl=host.ca.crl())
    assert result == {"changed": False, "changed_files": [], "member": False, "invocation": result["invocation"]}
    failed = host.run("present", crl=host.ca.crl())
    assert failed["failed"] and failed["msg"].startswith("web-1: this host is not a member")


def test_clock_skew_names_the_host(host):
    result = host.run("planned", pdp_time=time.time() - 3600)
    assert result["failed"] and result["msg"].startswith("web-1: the clock is 1h ahead of the PDP's")
    assert "web-1: web-1" not in result["msg"]
    assert not host.root.exists()


def test_address_mismatch_names_the_address(host):
    result = host.run("planned", pdp_time=time.time(), identity={"name": "web-1", "ip": ["192.0.2.254"]})
    assert result["failed"]
    assert result["msg"].startswith("web-1: address 192.0.2.254 from the inventory is not configured on this host")
    assert not host.root.exists()


def test_a_refused_install_keeps_the_last_good_set(host):
    host.present(host.plan())
    before = host.snapshot()
    planned = host.plan(reissue=True)
    assert planned["reason"] == "reissue was asked for"
    other = host.ca.sign(planned["csr"], name="db-1", ip=IDENTITY["ip"])[0]
    result = host.run("present", token=planned["token"], certificate=other, chain=host.ca.chain_pem, ca=host.ca.ca_pem)
    assert result["failed"] and result["msg"].startswith("web-1: the certificate names CN=db-1")
    assert "Traceback" not in result["msg"]
    assert host.snapshot() == before
    bad_crl = host.run("present", crl=TestCA(DOMAIN, label="Other").crl())
    assert bad_crl["failed"] and "no CRL in the CRL file is signed" in bad_crl["msg"]
    assert host.snapshot() == before


def test_a_bad_crl_is_refused_before_the_install(host):
    planned = host.plan()
    cert = host.ca.sign(planned["csr"], dns=BUILT.dns, ip=BUILT.ip)[0]
    result = host.run(
        "present",
        token=planned["token"],
        certificate=cert,
        chain=host.ca.chain_pem,
        ca=host.ca.ca_pem,
        crl=TestCA(DOMAIN, label="Other").crl(),
    )
    assert result["failed"] and "no CRL" in result["msg"]
    assert not os.path.exists(host.root / "host.crt")


def test_a_certificate_the_crl_revokes_is_replaced(host):
    """A host readmitted after a leave it did not see still holds its revoked set: the plan replaces it."""
    present = host.present(host.plan())
    assert host.plan(crl=host.ca.crl())["needed"] is False
    other = host.ca.crl([present["serial"]], key=host.ca.root_key, issuer_name=host.ca.root.subject)
    assert host.plan(crl=other)["needed"] is False  # listed by a CRL of another issuer: not ours
    planned = host.plan(crl=host.ca.crl([present["serial"]]))
    assert planned["needed"] is True
    assert planned["reason"] == f"the certificate (serial {present['serial']}) is revoked in the domain's CRL"


def test_a_host_behind_the_backdate_is_refused_before_anything_is_staged(host):
    result = host.run("planned", pdp_time=time.time() + 400, max_clock_skew=600)
    assert result["failed"] and result["msg"].startswith("web-1: the clock is 6m4")
    assert "behind the PDP's" in result["msg"] and "would not be valid yet here" in result["msg"]
    assert not host.root.exists()
    ahead = host.run("planned", pdp_time=time.time() - 400, max_clock_skew=600)
    assert ahead["needed"] is True  # ahead: the certificate is already valid here


def test_trust_root_as_base64_is_written_byte_for_byte(host):
    text = '{"signed": {"version": 1}, "signatures": []}\n'
    planned = host.plan()
    host.run(
        "present",
        token=planned["token"],
        certificate=host.ca.sign(planned["csr"], dns=BUILT.dns, ip=BUILT.ip)[0],
        chain=host.ca.chain_pem,
        ca=host.ca.ca_pem,
        crl=host.ca.crl(),
        trust_root_b64=base64.b64encode(text.encode()).decode(),
    )
    assert (host.root / "root.json").read_text() == text
    bad = host.run("present", ca=host.ca.ca_pem, crl=host.ca.crl(), trust_root_b64="%%%")
    assert bad["failed"] and bad["msg"] == "web-1: trust_root_b64 is not base64 of a UTF-8 text"


def test_abort_with_a_token_removes_only_that_request(host):
    first = host.plan()
    staging = host.root / "pki" / "staging"
    assert sorted(os.listdir(staging)) == [first["token"]]
    assert host.run("aborted", token="0123456789abcdef")["changed"] is False  # noqa: S106 - a request token
    assert host.run("aborted", token=first["token"])["changed"] is True
    assert os.listdir(staging) == []


def test_runs_on_one_host_are_serialised(host):
    """While one run holds the host's lock, another one waits for it."""
    import fcntl
    import threading

    host.present(host.plan())
    holder = os.open(host.root, os.O_RDONLY)
    fcntl.flock(holder, fcntl.LOCK_EX)
    done = threading.Event()

    def other():
        host.plan()
        done.set()

    thread = threading.Thread(target=other)
    thread.start()
    assert not done.wait(0.5)
    os.close(holder)
    assert done.wait(10)
    thread.join()
