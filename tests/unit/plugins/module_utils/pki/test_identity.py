"""identity: building, normalising and reading back a host's identity (CN + subjectAltName)."""

from __future__ import annotations

import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pki_helpers import make_csr

from ansible_collections.distsec.framework.plugins.module_utils._pki.errors import BadRequest
from ansible_collections.distsec.framework.plugins.module_utils._pki.identity import (
    Identity,
    build_identity,
    identity_of,
    is_dns_name,
    parse_identity,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("web-1", True),
        ("web-1.example.org", True),
        ("a" * 63, True),
        ("a" * 64, False),
        (".".join(["a" * 60] * 5), False),  # 304 characters
        ("", False),
        ("web_1", False),
        ("-web", False),
        ("web-", False),
        ("web..org", False),
        ("web.org.", False),
        ("198.51.100.71", False),
        ("2001:db8::1", False),
        ("web-1\n", False),
        ("web-1.example.org\n", False),
    ],
)
def test_is_dns_name(text, expected):
    assert is_dns_name(text) is expected


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("web-1",), Identity("web-1", ("web-1",), ())),
        (("Web-1", ["WWW.example.org", "www.example.org"]), Identity("Web-1", ("web-1", "www.example.org"), ())),
        (("web_1",), Identity("web_1", (), ())),  # not a hostname: CN only
        (("10.0.0.1",), Identity("10.0.0.1", (), ())),
        (
            ("db", [], ["2001:DB8::0001", "198.51.100.71", " 10.0.0.2 ", "198.51.100.71"]),
            Identity("db", ("db",), ("10.0.0.2", "198.51.100.71", "2001:db8::1")),
        ),
    ],
)
def test_build_identity_normalises(args, expected):
    assert build_identity(*args) == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("web 1",), "'web 1' cannot be a certificate name"),
        (("x" * 65,), "cannot be a certificate name"),
        (("",), "'' cannot be a certificate name"),
        (("web-1", ["bad_name"]), "'bad_name' is not a DNS name"),
        (("web-1", [], ["300.1.1.1"]), "'300.1.1.1' is not an IP address"),
        (("web-1\n",), "'web-1\\n' cannot be a certificate name"),
        (("web-1", ["web-1.example.org\n"]), "'web-1.example.org\\n' is not a DNS name"),
        (("web-1", [], ["fe80::1%eth0"]), "'fe80::1%eth0': a certificate cannot carry an IPv6 zone (%eth0)"),
    ],
)
def test_build_identity_refuses(args, message):
    with pytest.raises(BadRequest) as exc:
        build_identity(*args)
    assert message in str(exc.value)


def test_describe_and_as_dict():
    identity = build_identity("web-1", ["web-1.example.org"], ["198.51.100.71"])
    assert identity.describe() == "CN=web-1, DNS:web-1, DNS:web-1.example.org, IP:198.51.100.71"
    assert identity.as_dict() == {"name": "web-1", "dns": ["web-1", "web-1.example.org"], "ip": ["198.51.100.71"]}
    assert build_identity("x_y").describe() == "CN=x_y"


def test_parse_identity_defaults_the_name():
    assert parse_identity({"dns": [], "ip": ["10.0.0.1"]}, default_name="web-1") == build_identity(
        "web-1", (), ["10.0.0.1"]
    )
    assert parse_identity(None, default_name="web-1") == build_identity("web-1")
    assert parse_identity({"name": "db", "dns": None, "ip": None}, default_name="web-1") == build_identity("db")


@pytest.mark.parametrize("key_type", ["ecdsa-p256", "ed25519"])
def test_identity_of_a_csr_matches_the_built_one(key_type):
    pem = make_csr("web-1", ["WEB-1.example.org", "web-1"], ["2001:db8::1", "198.51.100.71"], key_type)[1]
    csr = x509.load_pem_x509_csr(pem.encode())
    assert identity_of(csr) == build_identity("web-1", ["web-1.example.org"], ["198.51.100.71", "2001:db8::1"])


@pytest.mark.parametrize("network", ["10.0.0.0/8", "2001:db8::/32"])
def test_identity_of_refuses_an_ip_network(network):
    key = ec.generate_private_key(ec.SECP256R1())
    san = x509.SubjectAlternativeName([x509.DNSName("web-1"), x509.IPAddress(ipaddress.ip_network(network))])
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "web-1")]))
        .add_extension(san, critical=False)
        .sign(key, hashes.SHA256())
    )
    csr = x509.load_pem_x509_csr(csr.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(BadRequest) as exc:
        identity_of(csr)
    assert str(exc.value) == (
        f"the CSR carries an IP network ({network}) in its subjectAltName; only addresses are allowed"
    )


def test_identity_of_without_san_or_cn():
    csr = x509.load_pem_x509_csr(make_csr("web_1")[1].encode())
    assert identity_of(csr) == Identity("web_1", (), ())
