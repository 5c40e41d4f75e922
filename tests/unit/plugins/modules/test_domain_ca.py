"""distsec.framework.domain_ca: its main() run in-process on a real PDP directory in tmp_path.

Every state, check mode (nothing written) and the errors (fail_json naming the host, never a
traceback). The CA underneath is tested in tests/unit/plugins/module_utils/pki/test_ca.py.
"""

from __future__ import annotations

import base64
import ipaddress
import json

import pytest
from ansible.module_utils.testing import patch_module_args
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pki_helpers import make_csr, make_pdp, openssl_verify

from ansible_collections.distsec.framework.plugins.module_utils._pki.ca import DomainCA
from ansible_collections.distsec.framework.plugins.modules import domain_ca

IDENTITY = {"name": "web-1", "dns": ["web-1.example.org"], "ip": ["198.51.100.71"]}
SECRET = "s3cret"  # noqa: S105 - a test passphrase
MATERIAL = {"domain", "ca", "ca_fingerprint", "crl", "trust_root", "trust_root_b64", "now", "removed"}


@pytest.fixture
def pdp(tmp_path):
    return make_pdp(tmp_path)


def run(capsys, pdp, *, check=False, **args):
    """The module's result and whether it failed."""
    with (
        patch_module_args({"pdp_dir": str(pdp), "_ansible_check_mode": check, **args}),
        pytest.raises(SystemExit) as exc,
    ):
        domain_ca.main()
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    out = json.loads(captured.out)
    assert bool(out.get("failed")) == (exc.value.code != 0)
    return out


def snapshot(pdp):
    return {str(p.relative_to(pdp)): p.read_bytes() for p in sorted(pdp.rglob("*")) if p.is_file()}


def csr_for(identity=None):
    identity = identity or IDENTITY
    return make_csr(identity["name"], [identity["name"], *identity["dns"]], identity["ip"])[1]


def test_crl_state_creates_the_crl_once(pdp, capsys):
    first = run(capsys, pdp, state="crl")
    assert first["changed"] is True and set(first) >= MATERIAL
    assert first["crl"] == (pdp / "ca" / "crl.pem").read_text()
    assert first["domain"] == "example.org" and first["removed"] is None and first["trust_root"] is None
    assert first["trust_root_b64"] is None
    assert run(capsys, pdp, state="crl")["changed"] is False


def test_crl_state_works_before_domain_json(pdp, capsys):
    (pdp / "domain.json").unlink()
    out = run(capsys, pdp, state="crl")
    assert out["changed"] is True and out["domain"] is None


def test_material_then_unchanged(pdp, capsys):
    first = run(capsys, pdp, host="web-1")
    assert first["changed"] is True  # the first CRL was made
    assert first["ca"] == (pdp / "ca" / "root.crt").read_text()
    second = run(capsys, pdp, host="web-1")
    assert second["changed"] is False and second["crl"] == first["crl"]
    assert set(second) >= MATERIAL


def test_issued_gives_a_verifiable_certificate(pdp, capsys):
    run(capsys, pdp, state="crl")
    out = run(capsys, pdp, state="issued", host="web-1", csr=csr_for(), identity=IDENTITY, lifetime="7d")
    assert out["changed"] is True and set(out) >= MATERIAL
    assert out["not_after"] - out["not_before"] == 7 * 86400
    assert out["chain"] == (pdp / "ca" / "issuing.crt").read_text()
    cert = x509.load_pem_x509_certificate(out["certificate"].encode())
    assert format(cert.serial_number, "X").rjust(len(out["serial"]), "0") == out["serial"]
    assert openssl_verify(pdp, out["certificate"])[0] == 0
    assert out.get("warnings", []) == []


def test_issued_identity_name_defaults_to_host(pdp, capsys):
    out = run(
        capsys,
        pdp,
        state="issued",
        host="web-1",
        csr=csr_for(),
        identity={"dns": IDENTITY["dns"], "ip": IDENTITY["ip"]},
    )
    assert out["changed"] is True and out["serial"]


def test_issued_check_mode_writes_nothing(pdp, capsys):
    before = snapshot(pdp)
    out = run(capsys, pdp, check=True, state="issued", host="web-1", csr=csr_for(), identity=IDENTITY)
    assert out["changed"] is True and "certificate" not in out and "serial" not in out
    assert out["chain"] == (pdp / "ca" / "issuing.crt").read_text()
    assert snapshot(pdp) == before


def test_issued_refuses_another_identity_naming_the_host(pdp, capsys):
    other = {"name": "web-1", "dns": ["evil.example.org"], "ip": []}
    out = run(capsys, pdp, state="issued", host="web-1", csr=csr_for(other), identity=IDENTITY)
    assert out["failed"] is True
    assert out["msg"].startswith("web-1: the CSR from web-1 names CN=web-1, DNS:evil.example.org, DNS:web-1 but ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"lifetime": "forever"}, "web-1: lifetime: 'forever' is not a duration"),
        ({"lifetime": "900d"}, "web-1: a certificate lifetime of 900d is outside 1m..825d"),
        ({"csr": "garbage"}, "web-1: the CSR cannot be read"),
        ({"identity": {"name": "web 1"}}, "web-1: 'web 1' cannot be a certificate name"),
        ({"csr": None}, "web-1: state=issued needs csr"),
    ],
)
def test_issued_errors_are_fail_json_with_the_host(pdp, capsys, args, message):
    params = {"state": "issued", "host": "web-1", "csr": csr_for(), "identity": IDENTITY, **args}
    out = run(capsys, pdp, **{k: v for k, v in params.items() if v is not None})
    assert out["failed"] is True and out["msg"].startswith(message), out["msg"]


def test_revoked_readmitted_and_removed_host(pdp, capsys):
    issued = run(capsys, pdp, state="issued", host="web-1", csr=csr_for(), identity=IDENTITY)
    check = run(capsys, pdp, check=True, state="revoked", hosts=["web-1", "ghost"])
    assert check["changed"] is True and check["revoked"] == [{"host": "web-1", "serial": issued["serial"]}]
    assert "web-1" not in json.loads((pdp / "ca" / "db.json").read_text())["removed"]
    out = run(capsys, pdp, state="revoked", hosts=["web-1", "ghost"])
    assert out["changed"] is True and out["unknown"] == ["ghost"]
    assert out["revoked"] == [{"host": "web-1", "serial": issued["serial"]}]
    assert out["crl"] == (pdp / "ca" / "crl.pem").read_text()
    assert "error 23" in openssl_verify(pdp, issued["certificate"])[1]
    again = run(capsys, pdp, state="revoked", hosts=["web-1"])
    assert again["changed"] is False and again["revoked"] == [] and again["unknown"] == []

    refused = run(capsys, pdp, host="web-1")
    assert refused["failed"] is True
    assert refused["msg"].startswith("web-1: host web-1 left the domain on ")
    assert refused["msg"].endswith("run join.yml with -e domain_join_readmit=true -l web-1")
    allowed = run(capsys, pdp, host="web-1", allow_removed=True)
    assert allowed["removed"]["serials"] == [issued["serial"]]
    denied = run(capsys, pdp, state="issued", host="web-1", csr=csr_for(), identity=IDENTITY)
    assert denied["failed"] is True and "left the domain" in denied["msg"]

    before = snapshot(pdp)
    assert run(capsys, pdp, check=True, state="readmitted", host="web-1")["changed"] is True
    assert snapshot(pdp) == before
    readmitted = run(capsys, pdp, state="readmitted", host="web-1")
    assert readmitted["changed"] is True and readmitted["readmitted"] is True and readmitted["removed"] is None
    assert run(capsys, pdp, state="readmitted", host="web-1")["changed"] is False
    assert run(capsys, pdp, state="issued", host="web-1", csr=csr_for(), identity=IDENTITY)["serial"]


def test_rotated(pdp, capsys):
    before = snapshot(pdp)
    check = run(capsys, pdp, check=True, state="rotated")
    assert check["changed"] is True and check["rotation"]["retired"] == 1
    assert snapshot(pdp) == before
    out = run(capsys, pdp, state="rotated", issuing_lifetime="400d")
    assert out["changed"] is True and out["rotation"]["retired"] == 1
    assert (pdp / "ca" / "retired" / "1" / "issuing.crt").exists()
    assert out["crl"].count("BEGIN X509 CRL") == 2


def test_passphrase_is_needed_and_never_echoed(tmp_path, capsys):
    pdp = make_pdp(tmp_path, passphrase=SECRET)
    out = run(capsys, pdp, state="issued", host="web-1", csr=csr_for(), identity=IDENTITY)
    assert out["failed"] is True
    assert out["msg"] == (
        f"web-1: PDP directory {pdp}: ca/issuing.key is encrypted: give the CA passphrase "
        "(pdp_init_ca_passphrase / domain_join_ca_passphrase)"
    )
    wrong = run(capsys, pdp, state="crl", passphrase=SECRET + "-not")
    assert wrong["msg"] == f"PDP directory {pdp}: wrong passphrase for ca/issuing.key"
    good = run(capsys, pdp, state="issued", host="web-1", csr=csr_for(), identity=IDENTITY, passphrase=SECRET)
    assert good["changed"] is True
    assert SECRET not in json.dumps(good)


def test_errors_without_host_have_no_prefix(tmp_path, capsys):
    out = run(capsys, tmp_path / "nowhere", state="crl")
    assert out["failed"] is True
    assert out["msg"] == f"PDP directory {tmp_path}/nowhere does not exist; run pdp_init.yml"
    pdp = make_pdp(tmp_path)
    (pdp / "ca" / "db.json").write_text("{")
    out = run(capsys, pdp, state="revoked", hosts=["web-1"])
    assert out["failed"] is True and "ca/db.json is corrupt" in out["msg"]
    out = run(capsys, pdp, state="revoked")
    assert out["msg"] == "state=revoked needs hosts (a list, may be empty)"
    out = run(capsys, pdp, state="crl", crl_validity="soon")
    assert out["msg"].startswith("crl_validity: 'soon' is not a duration")


def test_material_check_mode_writes_nothing(pdp, capsys):
    before = snapshot(pdp)
    out = run(capsys, pdp, check=True, host="web-1")
    assert out["changed"] is True and out["crl"] is None
    assert snapshot(pdp) == before


def test_every_result_carries_the_trust_root_as_base64(pdp, capsys):
    raw = b'{"signed": {"keys": {}, "version": 1}, "signatures": []}\n'
    (pdp / "keys").mkdir()
    (pdp / "keys" / "root.json").write_bytes(raw)
    results = [
        run(capsys, pdp, state="crl"),
        run(capsys, pdp, host="web-1"),
        run(capsys, pdp, check=True, host="web-1"),
        run(capsys, pdp, state="issued", host="web-1", csr=csr_for(), identity=IDENTITY),
        run(capsys, pdp, check=True, state="issued", host="web-1", csr=csr_for(), identity=IDENTITY),
        run(capsys, pdp, state="revoked", hosts=["web-2"]),
        run(capsys, pdp, state="readmitted", host="web-2"),
        run(capsys, pdp, state="rotated", issuing_lifetime="400d"),
    ]
    for out in results:
        assert out.get("failed") is not True, out
        assert base64.b64decode(out["trust_root_b64"]) == raw
        assert out["trust_root"] == raw.decode()


def test_issued_refuses_a_name_another_host_holds(pdp, capsys):
    held = run(capsys, pdp, state="issued", host="web-1", csr=csr_for(), identity=IDENTITY)
    other = {"name": "web-2", "dns": [], "ip": ["198.51.100.71"]}
    for check in (False, True):
        out = run(capsys, pdp, check=check, state="issued", host="web-2", csr=csr_for(other), identity=other)
        assert out["failed"] is True
        assert out["msg"].startswith(
            f"web-2: the CSR from web-2 names IP:198.51.100.71, which web-1 holds (serial {held['serial']}, until "
        )
        assert out["msg"].endswith("); if web-1 is gone, run leave.yml for it first")


def _csr_with_a_network():
    key = ec.generate_private_key(ec.SECP256R1())
    san = [x509.DNSName("web-1"), x509.IPAddress(ipaddress.ip_network("198.51.100.0/24"))]
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "web-1")]))
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode("ascii")


def test_issued_refuses_an_ip_network_in_the_csr(pdp, capsys):
    out = run(capsys, pdp, state="issued", host="web-1", csr=_csr_with_a_network(), identity={"name": "web-1"})
    assert out["failed"] is True
    assert out["msg"] == (
        "web-1: the CSR carries an IP network (198.51.100.0/24) in its subjectAltName; only addresses are allowed"
    )


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (UnsupportedAlgorithm("Signature algorithm OID: 1.2.3 not recognized"), "Signature algorithm OID"),
        (ValueError("error parsing asn1 value"), "error parsing asn1 value"),
        (AttributeError(), "AttributeError"),
    ],
)
def test_issued_unexpected_errors_are_fail_json(pdp, capsys, monkeypatch, error, text):
    def broken(*args, **kwargs):
        raise error

    monkeypatch.setattr(DomainCA, "issue", broken)
    out = run(capsys, pdp, state="issued", host="web-1", csr=csr_for(), identity=IDENTITY)
    assert out["failed"] is True
    assert out["msg"].startswith(f"web-1: the CSR cannot be used: {text}"), out["msg"]
