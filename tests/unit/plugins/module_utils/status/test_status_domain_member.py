"""The domain collector on what MemberStore installs: root CA in ca.crt, issuing CA in chain.crt.

Real openssl and a real MemberStore (tmp_path/etc/distsec) signed by the tiny in-test CA.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

import pytest
from pki_member_helpers import TestCA

from ansible_collections.distsec.framework.plugins.module_utils._pki.identity import build_identity
from ansible_collections.distsec.framework.plugins.module_utils._pki.member import MemberStore
from ansible_collections.distsec.framework.plugins.module_utils._status import domain  # noqa: F401  # pylint: disable=unused-import
from ansible_collections.distsec.framework.plugins.module_utils._status.base import Context, gather

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")

NOW = time.time()
IDENTITY = build_identity("web-1", [], ["198.51.100.71"])


def runner(argv):
    assert not any(str(a).endswith(".key") for a in argv), argv
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture(scope="module")
def ca():
    return TestCA("corp.example.org", now=NOW)


def install(tmp_path, ca, revoke=False, other_crl=False):
    store = MemberStore(str(tmp_path / "etc/distsec"), addresses=lambda: IDENTITY.ip)
    token, csr = store.stage(IDENTITY, "ecdsa-p256")
    cert, serial = ca.sign(csr, dns=IDENTITY.dns, ip=IDENTITY.ip)
    store.install(
        token,
        certificate=cert,
        chain=ca.chain_pem,
        ca=ca.ca_pem,
        domain=ca.domain,
        identity=IDENTITY,
        host="web-1",
    )
    crl = ca.crl([serial] if revoke else ["01"])
    if other_crl:  # the CRL of a retired issuing CA first, as the PDP concatenates them
        crl = TestCA("corp.example.org", now=NOW, label="Retired").crl(["02"]) + crl
    store.refresh(crl=crl)
    return store, serial


def collect(tmp_path, now=NOW):
    result = gather(Context(runner, root=str(tmp_path), now=now), ["domain"])
    facts = result["domain"]
    assert "PRIVATE KEY" not in json.dumps(facts)
    return facts


@pytest.mark.parametrize("other_crl", [False, True], ids=["one-crl", "with-a-retired-issuer-crl"])
def test_member_set_verifies_through_the_chain(tmp_path, ca, other_crl):
    serial = install(tmp_path, ca, other_crl=other_crl)[1]
    facts = collect(tmp_path)
    assert facts["enrolled"] is True and facts["state"] == "member" and facts["host"] == "web-1"
    assert facts["domain"] == "corp.example.org" and facts["left_at"] is None
    cert = facts["certificate"]
    assert cert["serial"] == serial
    assert cert["valid"] is True, cert["reason"]
    assert cert["revoked"] is False and cert["reason"] is None


def test_revoked_member(tmp_path, ca):
    install(tmp_path, ca, revoke=True)
    cert = collect(tmp_path)["certificate"]
    assert cert["valid"] is False and cert["revoked"] is True and "revoked" in cert["reason"]


def test_without_chain_the_root_alone_does_not_verify(tmp_path, ca):
    install(tmp_path, ca)
    os.unlink(tmp_path / "etc/distsec/chain.crt")
    cert = collect(tmp_path)["certificate"]
    assert cert["valid"] is False and "the chain does not verify" in cert["reason"]


def test_after_leaving(tmp_path, ca):
    store = install(tmp_path, ca)[0]
    store.leave("corp.example.org", "web-1")
    facts = collect(tmp_path)
    assert facts["enrolled"] is False and facts["state"] == "left" and facts["host"] == "web-1"
    assert facts["domain"] == "corp.example.org" and facts["left_at"].endswith("Z")
    assert facts["certificate"] is None
