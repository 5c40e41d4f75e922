"""DomainCA: signing, the registry, revocation, CRLs and rotation on a real CA in tmp_path.

Real cryptography keys (PKCS#8 PEM, encrypted as community.crypto writes them) and the real
`openssl verify -crl_check` decide whether a certificate is good or revoked.
"""

from __future__ import annotations

import base64
import json
import multiprocessing
import os
import re
import stat
import threading
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pki_helpers import make_csr, make_pdp, openssl_verify

from ansible_collections.distsec.framework.plugins.module_utils._pki import ca as ca_module
from ansible_collections.distsec.framework.plugins.module_utils._pki.ca import (
    PRUNE_AFTER,
    DomainCA,
    new_ca_key,
    new_issuing_ca,
    new_root_ca,
)
from ansible_collections.distsec.framework.plugins.module_utils._pki.errors import (
    BadRequest,
    CAUnavailable,
    HostRemoved,
    IdentityMismatch,
)
from ansible_collections.distsec.framework.plugins.module_utils._pki.identity import build_identity
from ansible_collections.distsec.framework.plugins.module_utils._pki.lifetime import backdate_for
from ansible_collections.distsec.framework.plugins.module_utils._pki.x509 import (
    fingerprint,
    issued_by,
    not_after,
    not_before,
    serial_hex,
)

DAY = 86400
LIFETIME = 30 * DAY
SECRET = "s3cret"  # noqa: S105 - a test passphrase
WRONG = "wrong"
WEB1 = build_identity("web-1", ["web-1.example.org"], ["198.51.100.71"])


class Clock:
    def __init__(self, now=None):
        self.value = time.time() if now is None else now

    def __call__(self):
        return self.value


@pytest.fixture
def pdp(tmp_path):
    return make_pdp(tmp_path)


def issue(ca, host="web-1", identity=WEB1, key_type="ecdsa-p256", lifetime=LIFETIME):
    csr = make_csr(identity.name, identity.dns, identity.ip, key_type=key_type)[1]
    return ca.issue(host, csr, identity, lifetime)


def load(pem):
    return x509.load_pem_x509_certificate(pem.encode())


def crls(pdp):
    data = (Path(pdp) / "ca" / "crl.pem").read_bytes()
    marker = b"-----BEGIN X509 CRL-----"
    return [x509.load_pem_x509_crl(marker + part) for part in data.split(marker)[1:]]


def crl_number(crl):
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


# ---------------------------------------------------------------------------------------------
# CA profiles


def test_ca_helpers_make_the_profiles_of_the_design():
    root_key, issuing_key = new_ca_key("P-384"), new_ca_key("P-256")
    root = new_root_ca(root_key, "example.org", 3650 * DAY)
    issuing = new_issuing_ca(issuing_key, root_key, root, "example.org", 1825 * DAY, number=3)
    assert root.subject.rfc4514_string() == "O=example.org,CN=example.org Root CA"
    assert root.issuer == root.subject and issued_by(root, root)
    assert issuing.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "example.org Issuing CA 3"
    assert issued_by(issuing, root)
    assert root_key.curve.name == "secp384r1" and issuing_key.curve.name == "secp256r1"
    for cert, pathlen in ((root, None), (issuing, 0)):
        basic = cert.extensions.get_extension_for_class(x509.BasicConstraints)
        assert basic.critical and basic.value.ca and basic.value.path_length == pathlen
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
        assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
        assert not usage.value.digital_signature
        cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    aki = issuing.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    assert round((not_after(root) - not_before(root)) / DAY) == 3650
    with pytest.raises(BadRequest, match="P-256 or P-384"):
        new_ca_key("P-521")


def test_issuing_ca_is_capped_at_the_root():
    root_key = new_ca_key("P-384")
    root = new_root_ca(root_key, "example.org", 100 * DAY)
    issuing = new_issuing_ca(new_ca_key(), root_key, root, "example.org", 1825 * DAY)
    assert not_after(issuing) == not_after(root)


# ---------------------------------------------------------------------------------------------
# issuing


def test_issue_verifies_with_openssl_and_follows_the_profile(pdp):
    clock = Clock()
    ca = DomainCA(str(pdp), now=clock)
    assert ca.refresh_crl() is True
    out = issue(ca)
    assert out["warnings"] == []
    assert set(out) == {"certificate", "chain", "serial", "not_before", "not_after", "fingerprint", "warnings"}
    assert openssl_verify(pdp, out["certificate"]) == (0, f"{pdp}/verify/leaf.crt: OK\n")
    cert = load(out["certificate"])
    assert out["chain"] == (pdp / "ca" / "issuing.crt").read_text()
    assert out["serial"] == serial_hex(cert) and out["fingerprint"] == fingerprint(cert)
    assert cert.serial_number >= 1 << 64 and len(out["serial"]) % 2 == 0 and out["serial"] == out["serial"].upper()
    assert cert.subject.rfc4514_string() == "O=example.org,CN=web-1"
    # lifetime: exactly what was asked, counted from the backdated notBefore
    assert not_before(cert) == out["not_before"] == int(clock.value) - backdate_for(LIFETIME)
    assert not_after(cert) - not_before(cert) == LIFETIME == out["not_after"] - out["not_before"]
    basic = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and not basic.value.ca
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and not usage.value.key_cert_sign
    eku = list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    assert eku == [
        ExtendedKeyUsageOID.SERVER_AUTH,
        ExtendedKeyUsageOID.CLIENT_AUTH,
        x509.ObjectIdentifier("1.3.6.1.5.5.7.3.17"),
    ]
    issuing = x509.load_pem_x509_certificate((pdp / "ca" / "issuing.crt").read_bytes())
    assert issued_by(cert, issuing)
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == issuing.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    db = ca.registry()
    assert db["issued"] == [
        {
            "serial": out["serial"],
            "host": "web-1",
            "issuer": fingerprint(issuing),
            "not_before": out["not_before"],
            "not_after": out["not_after"],
            "fingerprint": out["fingerprint"],
            "identity": WEB1.as_dict(),
        }
    ]
    assert stat.S_IMODE(os.stat(pdp / "ca" / "db.json").st_mode) == 0o600


def test_short_lifetime_backdates_a_tenth(pdp):
    clock = Clock()
    out = issue(DomainCA(str(pdp), now=clock), lifetime=120)
    assert out["not_before"] == int(clock.value) - 12 and out["not_after"] - out["not_before"] == 120


def test_san_is_made_from_the_identity(pdp):
    identity = build_identity("web-1", ["www.example.org", "Web-1.Example.org"], ["2001:db8::1", "198.51.100.71"])
    # the CSR lists the same names in another order and case
    csr = make_csr("web-1", ["WEB-1.example.org", "www.example.org", "web-1"], ["198.51.100.71", "2001:db8::1"])[1]
    out = DomainCA(str(pdp)).issue("web-1", csr, identity, LIFETIME)
    san = load(out["certificate"]).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["web-1", "web-1.example.org", "www.example.org"]
    assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == ["198.51.100.71", "2001:db8::1"]


def test_identity_mismatch_is_refused_naming_both_sides(pdp):
    ca = DomainCA(str(pdp))
    csr = make_csr("web-1", ["evil.example.org"], ["198.51.100.71"])[1]
    with pytest.raises(IdentityMismatch) as exc:
        ca.issue("web-1", csr, WEB1, LIFETIME)
    assert str(exc.value) == (
        "the CSR from web-1 names CN=web-1, DNS:evil.example.org, IP:198.51.100.71 but the inventory "
        "says CN=web-1, DNS:web-1, DNS:web-1.example.org, IP:198.51.100.71; refused"
    )
    assert not (pdp / "ca" / "db.json").exists()


def test_a_name_held_by_another_host_is_refused(pdp):
    clock = Clock()
    ca = DomainCA(str(pdp), now=clock)
    held = issue(ca)
    until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(held["not_after"]))
    cases = [
        (build_identity("web-1"), "CN=web-1"),  # the same CN (domain_join_name) on another host
        (build_identity("web-9", ["web-1.example.org"]), "DNS:web-1.example.org"),
        (build_identity("web-9", [], ["198.51.100.71"]), "IP:198.51.100.71"),
        (build_identity("web-9", ["WEB-1"]), "DNS:web-1"),  # DNS names compare without case
    ]
    for identity, what in cases:
        for check in (False, True):
            csr = make_csr(identity.name, identity.dns, identity.ip)[1]
            with pytest.raises(IdentityMismatch) as exc:
                ca.issue("web-9", csr, identity, LIFETIME, check=check)
            assert str(exc.value) == (
                f"the CSR from web-9 names {what}, which web-1 holds (serial {held['serial']}, until {until}); "
                "if web-1 is gone, run leave.yml for it first"
            )
    assert [e["host"] for e in ca.registry()["issued"]] == ["web-1"]
    # the same host renews; another CN for the same host is its own business
    assert issue(ca)["serial"]
    assert issue(ca, identity=build_identity("web-1-alias", [], ["198.51.100.71"]))["serial"]
    # once web-1 left, or once its certificates expired, the names are free
    other = build_identity("web-9", ["web-1.example.org"])
    ca.revoke_hosts(["web-1"])
    assert issue(ca, "web-9", other)["serial"]
    assert issue(ca, "web-8", build_identity("web-8"), lifetime=3600)["serial"]
    clock.value += 3600
    assert issue(ca, "web-7", build_identity("web-8"))["serial"]


def test_bad_csr_signature_is_refused(pdp):
    csr = make_csr("web-1", WEB1.dns, WEB1.ip)[1]
    der = bytearray(x509.load_pem_x509_csr(csr.encode()).public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01  # inside the signature's last INTEGER: still DER, no longer a valid signature
    bad = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM)
    with pytest.raises(BadRequest, match="signature does not verify"):
        DomainCA(str(pdp)).issue("web-1", bad, WEB1, LIFETIME)
    with pytest.raises(BadRequest, match="CSR cannot be read"):
        DomainCA(str(pdp)).issue("web-1", "not a CSR", WEB1, LIFETIME)


@pytest.mark.parametrize("key_type", ["ecdsa-p256", "ed25519"])
def test_supported_key_types(pdp, key_type):
    ca = DomainCA(str(pdp))
    ca.refresh_crl()
    out = issue(ca, key_type=key_type)
    assert openssl_verify(pdp, out["certificate"])[0] == 0


def test_other_key_types_and_lifetimes_are_refused(pdp):
    ca = DomainCA(str(pdp))
    with pytest.raises(BadRequest, match="has a ecdsa-p384 key; use one of ecdsa-p256, ed25519"):
        issue(ca, key_type="ecdsa-p384")
    with pytest.raises(BadRequest, match="outside"):
        issue(ca, lifetime=900 * DAY)
    with pytest.raises(BadRequest, match="outside"):
        issue(ca, lifetime=10)


def test_lifetime_is_capped_by_the_issuing_ca(tmp_path):
    pdp = make_pdp(tmp_path, issuing_lifetime=10 * DAY)
    out = issue(DomainCA(str(pdp)))
    issuing = x509.load_pem_x509_certificate((pdp / "ca" / "issuing.crt").read_bytes())
    assert out["not_after"] == not_after(issuing) and out["not_after"] - out["not_before"] < LIFETIME
    assert len(out["warnings"]) == 1 and "instead of 30d; rotate the issuing CA" in out["warnings"][0]


def test_check_mode_issue_writes_nothing(pdp):
    out = DomainCA(str(pdp)).issue("web-1", make_csr("web-1", WEB1.dns, WEB1.ip)[1], WEB1, LIFETIME, check=True)
    assert out["certificate"] is None and out["serial"] is None and out["chain"]
    assert sorted(p.name for p in (pdp / "ca").iterdir()) == ["issuing.crt", "issuing.key", "root.crt", "root.key"]


# ---------------------------------------------------------------------------------------------
# revocation


def test_revoke_puts_the_serial_in_the_crl_and_openssl_refuses_it(pdp):
    ca = DomainCA(str(pdp))
    ca.refresh_crl()
    web1, web2 = issue(ca), issue(ca, "web-2", build_identity("web-2"))
    result = ca.revoke_hosts(["web-1", "ghost"])
    assert result == {"revoked": [{"host": "web-1", "serial": web1["serial"]}], "unknown": ["ghost"], "changed": True}
    (crl,) = crls(pdp)
    entry = crl.get_revoked_certificate_by_serial_number(int(web1["serial"], 16))
    assert entry is not None
    assert (
        entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.cessation_of_operation
    )
    assert crl.get_revoked_certificate_by_serial_number(int(web2["serial"], 16)) is None
    assert crl_number(crl) == 2
    code, output = openssl_verify(pdp, web1["certificate"])
    assert code != 0 and "error 23" in output and "certificate revoked" in output
    assert openssl_verify(pdp, web2["certificate"])[0] == 0
    db = ca.registry()
    assert [e["host"] for e in db["issued"]] == ["web-2"]
    assert db["removed"]["web-1"]["serials"] == [web1["serial"]] and db["removed"]["ghost"]["serials"] == []
    assert stat.S_IMODE(os.stat(pdp / "ca" / "crl.pem").st_mode) == 0o644


def test_removed_host_is_refused_by_issue_and_check_host(pdp):
    ca = DomainCA(str(pdp))
    old = issue(ca)
    ca.revoke_hosts(["web-1"])
    with pytest.raises(HostRemoved) as exc:
        issue(ca)
    message = str(exc.value)
    assert message.startswith("host web-1 left the domain on ")
    assert f"(serial {old['serial']} revoked); it cannot renew or re-join until the admin readmits it" in message
    assert message.endswith("run join.yml with -e domain_join_readmit=true -l web-1")
    with pytest.raises(HostRemoved):
        ca.check_host("web-1")
    # Its removal is what a removed host is told, whatever its request names.
    other_csr = make_csr("intruder.test", dns=["intruder.test"])[1]
    with pytest.raises(HostRemoved):
        ca.issue("web-1", other_csr, WEB1, LIFETIME)
    ca.check_host("web-2")
    assert ca.material("web-1")["removed"]["serials"] == [old["serial"]]
    assert ca.material("web-2")["removed"] is None


def test_readmit_lets_the_host_join_again_and_keeps_the_old_serial_revoked(pdp):
    ca = DomainCA(str(pdp))
    old = issue(ca)
    ca.revoke_hosts(["web-1"])
    assert ca.readmit("web-1", check=True) is True
    assert ca.readmit("web-1") is True
    assert ca.readmit("web-1") is False
    new = issue(ca)
    assert openssl_verify(pdp, new["certificate"])[0] == 0
    assert "error 23" in openssl_verify(pdp, old["certificate"])[1]


def test_revoking_twice_changes_nothing(pdp):
    ca = DomainCA(str(pdp))
    issue(ca)
    assert ca.revoke_hosts(["web-1"])["changed"] is True
    before = {p.name: p.read_bytes() for p in (pdp / "ca").iterdir() if p.is_file()}
    assert ca.revoke_hosts(["web-1"]) == {"revoked": [], "unknown": [], "changed": False}
    assert ca.revoke_hosts(["web-1"], check=True)["changed"] is False
    after = {p.name: p.read_bytes() for p in (pdp / "ca").iterdir() if p.is_file()}
    assert after == before


def test_revoke_check_mode_writes_nothing(pdp):
    ca = DomainCA(str(pdp))
    out = issue(ca)
    before = (pdp / "ca" / "db.json").read_bytes()
    assert ca.revoke_hosts(["web-1"], check=True) == {
        "revoked": [{"host": "web-1", "serial": out["serial"]}],
        "unknown": [],
        "changed": True,
    }
    assert (pdp / "ca" / "db.json").read_bytes() == before and not (pdp / "ca" / "crl.pem").exists()


def test_unknown_reason_is_refused(pdp):
    with pytest.raises(BadRequest, match="revocation reason 'bored'"):
        DomainCA(str(pdp)).revoke_hosts(["web-1"], reason="bored")


# ---------------------------------------------------------------------------------------------
# CRL freshness


def test_refresh_crl_creates_the_files_then_keeps_them_until_half_validity(pdp):
    clock = Clock()
    ca = DomainCA(str(pdp), now=clock, crl_validity=14 * DAY)
    assert ca.crl_due() is True
    assert ca.refresh_crl() is True
    assert stat.S_IMODE(os.stat(pdp / "ca" / "db.json").st_mode) == 0o600
    first = (pdp / "ca" / "crl.pem").read_bytes()
    (crl,) = crls(pdp)
    assert crl_number(crl) == 1 and len(list(crl)) == 0
    issuing = x509.load_pem_x509_certificate((pdp / "ca" / "issuing.crt").read_bytes())
    assert crl.is_signature_valid(issuing.public_key()) and crl.issuer == issuing.subject
    record = ca.registry()["crl"][fingerprint(issuing)]
    assert record == {
        "number": 1,
        "this_update": int(clock.value) - 60,
        "next_update": int(clock.value) - 60 + 14 * DAY,
        "serials": [],
    }
    # nothing changed: not regenerated (ECDSA signatures differ every time, so equal bytes mean untouched)
    clock.value += 6 * DAY
    assert ca.crl_due() is False and ca.refresh_crl() is False
    assert ca.material()["crl_refreshed"] is False
    assert (pdp / "ca" / "crl.pem").read_bytes() == first
    # past half of its validity: regenerated, with the next number
    clock.value += 1 * DAY + 61
    assert ca.material(write=False)["crl_due"] is True
    assert (pdp / "ca" / "crl.pem").read_bytes() == first
    material = ca.material()
    assert material["crl_refreshed"] is True
    assert (pdp / "ca" / "crl.pem").read_bytes() != first
    assert material["crl"] == (pdp / "ca" / "crl.pem").read_text()
    assert crl_number(crls(pdp)[0]) == 2
    assert ca.refresh_crl(force=True) is True and crl_number(crls(pdp)[0]) == 3


def test_crl_is_regenerated_when_the_file_was_replaced(pdp):
    ca = DomainCA(str(pdp))
    issue(ca)
    ca.revoke_hosts(["web-1"])
    (pdp / "ca" / "crl.pem").write_text("")
    assert ca.crl_due() is True and ca.refresh_crl() is True
    assert len(list(crls(pdp)[0])) == 1


def test_material_returns_everything_a_host_needs(pdp):
    ca = DomainCA(str(pdp))
    material = ca.material("web-1")
    assert material["domain"] == "example.org"
    assert material["ca"] == (pdp / "ca" / "root.crt").read_text()
    root = x509.load_pem_x509_certificate((pdp / "ca" / "root.crt").read_bytes())
    assert material["ca_fingerprint"] == fingerprint(root)
    assert material["crl"] == (pdp / "ca" / "crl.pem").read_text() and material["crl_refreshed"] is True
    assert material["trust_root"] is None and material["removed"] is None
    assert abs(material["now"] - time.time()) < 5
    assert material["trust_root_b64"] is None
    (pdp / "keys").mkdir()
    raw = '{"signed": {"é": 1}}\n'.encode()
    (pdp / "keys" / "root.json").write_bytes(raw)
    again = ca.material()
    assert again["trust_root"] == raw.decode("utf-8")
    assert base64.b64decode(again["trust_root_b64"]) == raw


def test_material_without_write_writes_nothing(pdp):
    material = DomainCA(str(pdp)).material("web-1", write=False)
    assert material["crl"] is None and material["crl_due"] is True and material["crl_refreshed"] is False
    assert sorted(p.name for p in (pdp / "ca").iterdir()) == ["issuing.crt", "issuing.key", "root.crt", "root.key"]


def test_pruning_drops_expired_entries_and_their_crl_entries(pdp):
    clock = Clock()
    ca = DomainCA(str(pdp), now=clock)
    short = issue(ca, lifetime=3600)
    issue(ca, "web-2", build_identity("web-2"), lifetime=3600)
    ca.revoke_hosts(["web-1"])
    assert len(list(crls(pdp)[0])) == 1
    clock.value = short["not_after"] + PRUNE_AFTER - 60  # expired, but less than a day ago: kept
    assert ca.refresh_crl() is False
    clock.value += 120
    assert ca.refresh_crl() is True
    db = ca.registry()
    assert db["revoked"] == [] and db["issued"] == []
    assert len(list(crls(pdp)[0])) == 0
    assert db["removed"]["web-1"]["serials"] == [short["serial"]]  # the name stays barred


# ---------------------------------------------------------------------------------------------
# concurrency


def _issue_in_child(pdp, index, queue):
    try:
        ca = DomainCA(pdp)
        queue.put(issue(ca, f"host-{index}", build_identity(f"host-{index}"))["serial"])
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        queue.put(repr(exc))


def test_parallel_issue_from_threads_records_every_serial(pdp):
    serials, errors = [], []

    def work(index):
        try:
            serials.append(issue(DomainCA(str(pdp)), f"host-{index}", build_identity(f"host-{index}"))["serial"])
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(e["serial"] for e in DomainCA(str(pdp)).registry()["issued"]) == sorted(serials)
    assert len(set(serials)) == 8


def test_parallel_issue_from_processes_records_every_serial(pdp):
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    children = [context.Process(target=_issue_in_child, args=(str(pdp), n, queue)) for n in range(8)]
    for child in children:
        child.start()
    results = [queue.get(timeout=60) for dummy in children]
    for child in children:
        child.join(timeout=60)
    assert all(len(r) >= 16 and "(" not in r for r in results), results
    assert sorted(e["serial"] for e in DomainCA(str(pdp)).registry()["issued"]) == sorted(results)


# ---------------------------------------------------------------------------------------------
# unavailable CA


def test_encrypted_keys_need_the_right_passphrase(tmp_path):
    pdp = make_pdp(tmp_path, passphrase=SECRET)
    assert b"ENCRYPTED PRIVATE KEY" in (pdp / "ca" / "issuing.key").read_bytes()
    with pytest.raises(CAUnavailable) as exc:
        issue(DomainCA(str(pdp)))
    assert str(exc.value) == (
        f"PDP directory {pdp}: ca/issuing.key is encrypted: give the CA passphrase "
        "(pdp_init_ca_passphrase / domain_join_ca_passphrase)"
    )
    with pytest.raises(CAUnavailable) as exc:
        issue(DomainCA(str(pdp), passphrase=WRONG))
    assert str(exc.value) == f"PDP directory {pdp}: wrong passphrase for ca/issuing.key"
    out = issue(DomainCA(str(pdp), passphrase=SECRET))
    DomainCA(str(pdp), passphrase=SECRET.encode()).refresh_crl()
    assert openssl_verify(pdp, out["certificate"])[0] == 0


def test_passphrase_given_for_unencrypted_keys_is_accepted(pdp):
    assert issue(DomainCA(str(pdp), passphrase=WRONG))["serial"]


def test_missing_and_unreadable_files(tmp_path, pdp):
    with pytest.raises(
        CAUnavailable, match=re.escape(f"PDP directory {tmp_path}/nowhere does not exist; run pdp_init.yml")
    ):
        DomainCA(str(tmp_path / "nowhere")).material()
    (pdp / "ca" / "issuing.key").unlink()
    with pytest.raises(CAUnavailable) as exc:
        issue(DomainCA(str(pdp)))
    assert str(exc.value) == f"PDP directory {pdp}: ca/issuing.key is missing; run pdp_init.yml"
    (pdp / "ca" / "issuing.key").mkdir()  # reading it fails with an errno (EISDIR)
    with pytest.raises(CAUnavailable) as exc:
        issue(DomainCA(str(pdp)))
    assert str(exc.value) == (
        f"PDP directory {pdp}: cannot read ca/issuing.key: Is a directory; run pdp_init.yml (or fix the file's owner)"
    )
    (pdp / "ca" / "root.crt").unlink()
    with pytest.raises(CAUnavailable, match=re.escape("ca/root.crt is missing; run pdp_init.yml")):
        DomainCA(str(pdp)).material(write=False)
    (pdp / "domain.json").unlink()
    with pytest.raises(CAUnavailable, match=re.escape("domain.json is missing; run pdp_init.yml")):
        DomainCA(str(pdp)).domain()


def test_a_key_of_another_ca_is_refused(pdp, tmp_path):
    other = make_pdp(tmp_path / "other")
    (pdp / "ca" / "issuing.key").write_bytes((other / "ca" / "issuing.key").read_bytes())
    with pytest.raises(CAUnavailable, match=re.escape("ca/issuing.key is not the key of ca/issuing.crt")):
        issue(DomainCA(str(pdp)))


def test_corrupt_registry_is_never_reset(pdp):
    ca = DomainCA(str(pdp))
    for content in (
        b"{not json",
        b'{"format": 2}',
        b'{"format": 1, "issued": {}, "revoked": [], "removed": {}, "crl": {}}',
    ):
        (pdp / "ca" / "db.json").write_bytes(content)
        for call in (lambda: issue(ca), ca.refresh_crl, lambda: ca.revoke_hosts(["web-1"]), lambda: ca.check_host("x")):
            with pytest.raises(CAUnavailable, match=r"ca/db\.json is corrupt .*restore it from a backup"):
                call()
        assert (pdp / "ca" / "db.json").read_bytes() == content


# ---------------------------------------------------------------------------------------------
# rotation


def test_rotation_keeps_old_leaves_checkable(pdp):
    ca = DomainCA(str(pdp))
    ca.refresh_crl()
    old_good = issue(ca)
    old_bad = issue(ca, "web-2", build_identity("web-2"))
    old_chain = (pdp / "ca" / "issuing.crt").read_text()
    old_key = (pdp / "ca" / "issuing.key").read_bytes()
    rotation = ca.rotate_issuing(lifetime=100 * DAY)
    assert rotation["changed"] is True and rotation["retired"] == 1
    assert rotation["retired_fingerprint"] == fingerprint(x509.load_pem_x509_certificate(old_chain.encode()))
    assert (pdp / "ca" / "retired" / "1" / "issuing.crt").read_text() == old_chain
    assert (pdp / "ca" / "retired" / "1" / "issuing.key").read_bytes() == old_key
    assert stat.S_IMODE(os.stat(pdp / "ca" / "retired" / "1" / "issuing.key").st_mode) == 0o600
    new_issuing = x509.load_pem_x509_certificate((pdp / "ca" / "issuing.crt").read_bytes())
    assert rotation["fingerprint"] == fingerprint(new_issuing)
    assert new_issuing.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "example.org Issuing CA 2"
    assert round((not_after(new_issuing) - not_before(new_issuing)) / DAY) == 100
    assert len(crls(pdp)) == 2
    new = issue(ca, "web-3", build_identity("web-3"))
    assert load(new["certificate"]).issuer == new_issuing.subject
    ca.revoke_hosts(["web-2"])
    assert len(crls(pdp)) == 2
    assert openssl_verify(pdp, new["certificate"])[0] == 0
    assert openssl_verify(pdp, old_good["certificate"], chain=old_chain)[0] == 0
    code, output = openssl_verify(pdp, old_bad["certificate"], chain=old_chain)
    assert code != 0 and "error 23" in output
    # a second rotation: retired/2, Issuing CA 3, three CRLs
    assert ca.rotate_issuing()["retired"] == 2
    assert len(crls(pdp)) == 3
    assert openssl_verify(pdp, old_good["certificate"], chain=old_chain)[0] == 0
    assert "error 23" in openssl_verify(pdp, old_bad["certificate"], chain=old_chain)[1]


def test_rotation_needs_the_root_key(tmp_path):
    pdp = make_pdp(tmp_path, passphrase=SECRET)
    (pdp / "ca" / "root.key").unlink()
    with pytest.raises(CAUnavailable, match=re.escape("ca/root.key is missing; put the root CA key back")):
        DomainCA(str(pdp), passphrase=SECRET).rotate_issuing()
    assert not (pdp / "ca" / "retired").exists()


def test_rotation_check_mode_writes_nothing(pdp):
    before = {p.name: p.read_bytes() for p in (pdp / "ca").iterdir()}
    result = DomainCA(str(pdp)).rotate_issuing(check=True)
    assert result["changed"] is True and result["retired"] == 1
    assert {p.name: p.read_bytes() for p in (pdp / "ca").iterdir()} == before


def test_rotated_key_is_encrypted_with_the_passphrase(tmp_path):
    pdp = make_pdp(tmp_path, passphrase=SECRET)
    ca = DomainCA(str(pdp), passphrase=SECRET)
    ca.rotate_issuing()
    assert b"ENCRYPTED PRIVATE KEY" in (pdp / "ca" / "issuing.key").read_bytes()
    assert issue(ca)["serial"]


def test_registry_file_is_canonical_json(pdp):
    ca = DomainCA(str(pdp))
    issue(ca)
    data = (pdp / "ca" / "db.json").read_bytes()
    assert data == json.dumps(json.loads(data), sort_keys=True, separators=(",", ":")).encode() + b"\n"


def test_crl_validity_given_once_is_the_schedule_of_later_runs(pdp):
    now = [1_900_000_000.0]
    DomainCA(str(pdp), now=lambda: now[0], crl_validity=2 * DAY).refresh_crl()
    first = (pdp / "ca" / "crl.pem").read_text()
    later = DomainCA(str(pdp), now=lambda: now[0])  # a join: no validity given
    now[0] += DAY - 300  # this_update is a minute in the past
    assert later.material()["crl"] == first  # not yet half of the recorded 2 days
    now[0] += 300
    assert later.material()["crl"] != first  # half passed: re-signed
    crl = x509.load_pem_x509_crl((pdp / "ca" / "crl.pem").read_bytes())
    assert (crl.next_update_utc - crl.last_update_utc).total_seconds() == 2 * DAY


def test_rotation_refuses_a_pair_that_does_not_match(pdp, tmp_path):
    other = make_pdp(tmp_path / "other")
    (pdp / "ca" / "issuing.key").write_bytes((other / "ca" / "issuing.key").read_bytes())
    before = {p.name: p.read_bytes() for p in (pdp / "ca").iterdir()}
    with pytest.raises(CAUnavailable) as exc:
        DomainCA(str(pdp)).rotate_issuing()
    (pdp / "ca" / "db.lock").unlink()
    assert str(exc.value) == (
        f"PDP directory {pdp}: ca/issuing.key is not the key of ca/issuing.crt; restore the pair; nothing was rotated"
    )
    assert {p.name: p.read_bytes() for p in (pdp / "ca").iterdir()} == before


class Crash(Exception):
    pass


ROTATION_STEPS = ["next-key", "next-crt", "next-written", "retire", "retired", "key-replaced", "crt-replaced"]


@pytest.mark.parametrize("step", ROTATION_STEPS)
@pytest.mark.parametrize("passphrase", [None, SECRET])
def test_an_interrupted_rotation_leaves_a_working_ca(tmp_path, monkeypatch, step, passphrase):
    pdp = make_pdp(tmp_path, passphrase=passphrase)
    ca = DomainCA(str(pdp), passphrase=passphrase)
    ca.refresh_crl()
    old = issue(ca)
    old_chain = (pdp / "ca" / "issuing.crt").read_text()

    def fault(name, path=None):
        if name == step:
            raise Crash(name)

    def write_fault(name, path):  # inside atomic_write_bytes: a temporary file is left behind
        if name == "after-fsync" and f"issuing.next/issuing.{step[5:]}" in path:
            raise Crash(step)
        if name == "after-fsync" and step == "retire" and "/retired/" in path:
            raise Crash(step)

    monkeypatch.setattr(ca_module, "FAULT_HOOK", fault)
    monkeypatch.setattr(ca_module, "atomic_write_bytes", _hooked_write(write_fault))
    with pytest.raises(Crash):
        ca.rotate_issuing()
    monkeypatch.setattr(ca_module, "FAULT_HOOK", None)
    monkeypatch.undo()

    fresh = DomainCA(str(pdp), passphrase=passphrase)
    fresh.material(write=False)  # reads only: the pair is found, nothing is written
    assert fresh.refresh_crl(force=True) is True
    new = issue(fresh, "web-2", build_identity("web-2"))
    chain = (pdp / "ca" / "issuing.crt").read_text()
    assert new["chain"] == chain
    assert not (pdp / "ca" / "issuing.next").exists()
    assert openssl_verify(pdp, new["certificate"])[0] == 0
    assert openssl_verify(pdp, old["certificate"], chain=old_chain)[0] == 0
    switched = step in ("key-replaced", "crt-replaced")
    assert (chain != old_chain) is switched
    fresh.revoke_hosts(["web-1", "web-2"])
    assert "error 23" in openssl_verify(pdp, new["certificate"])[1]
    assert "error 23" in openssl_verify(pdp, old["certificate"], chain=old_chain)[1]
    issuers = [c.issuer for c in crls(pdp)]
    assert len(issuers) == len(set(issuers)) == (2 if switched else 1)  # a pair retired but in use: one CRL
    # a rotation after the interruption: one more retired pair, never a duplicate
    rotation = fresh.rotate_issuing()
    assert rotation["retired"] == 1 + switched
    fingerprints = [fingerprint(load((d / "issuing.crt").read_text())) for d in (pdp / "ca" / "retired").iterdir()]
    assert len(fingerprints) == len(set(fingerprints)) == rotation["retired"]
    assert issue(fresh, "web-3", build_identity("web-3"))["serial"]
    assert len(crls(pdp)) == rotation["retired"] + 1


def _hooked_write(hook):
    from ansible_collections.distsec.framework.plugins.module_utils._trust import state

    def write(path, data, mode=0o600):
        previous = state.FAULT_HOOK
        state.FAULT_HOOK = hook
        try:
            state.atomic_write_bytes(path, data, mode)
        finally:
            state.FAULT_HOOK = previous

    return write


def test_a_half_switched_pair_is_used_as_it_is_in_check_mode(pdp, monkeypatch):
    ca = DomainCA(str(pdp))
    ca.refresh_crl()

    def fault(name):
        if name == "key-replaced":
            raise Crash(name)

    monkeypatch.setattr(ca_module, "FAULT_HOOK", fault)
    with pytest.raises(Crash):
        ca.rotate_issuing()
    monkeypatch.setattr(ca_module, "FAULT_HOOK", None)
    before = {str(p): p.read_bytes() for p in (pdp / "ca").rglob("*") if p.is_file()}
    fresh = DomainCA(str(pdp))
    identity = build_identity("web-2")
    out = fresh.issue("web-2", make_csr("web-2", ["web-2"])[1], identity, LIFETIME, check=True)
    assert out["chain"] == (pdp / "ca" / "issuing.next" / "issuing.crt").read_text()
    assert fresh.rotate_issuing(check=True)["retired"] == 2
    assert fresh.crl_due() is True
    assert {str(p): p.read_bytes() for p in (pdp / "ca").rglob("*") if p.is_file()} == before
