"""A tiny domain CA for the host-side tests (root P-384, issuing P-256), made with cryptography.

Independent of the real CA (module_utils/_pki/ca.py): it signs what a test asks for, including
wrong things (another identity, expired dates, a stranger's chain), so that the host's checks
can be exercised.
"""

from __future__ import annotations

import datetime
import ipaddress
import secrets
from typing import Iterable, List, Optional, Sequence, Tuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["TestCA", "pem", "utc"]

IPSEC_IKE = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.17")


def utc(timestamp: float) -> datetime.datetime:
    """A naive UTC datetime (what cryptography 38 builders expect and newer ones accept)."""
    return datetime.datetime.utcfromtimestamp(int(timestamp))


def pem(cert) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _name(cn: str, org: Optional[str] = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _ca_cert(subject, key, issuer_name, issuer_key, *, start, end, pathlen):
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(utc(start))
        .not_valid_after(utc(end))
        .add_extension(x509.BasicConstraints(ca=True, path_length=pathlen), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(issuer_key, hashes.SHA384() if isinstance(issuer_key.curve, ec.SECP384R1) else hashes.SHA256())
    )


class TestCA:
    """Root + issuing CA of domain `domain`, valid from `now` - 1 day for 10 years."""

    __test__ = False  # not a pytest class

    def __init__(self, domain: str = "example.org", now: float = 0.0, label: str = "Test") -> None:
        import time

        self.domain = domain
        self.now = now or time.time()
        start, end = self.now - 86400, self.now + 3650 * 86400
        self.root_key = ec.generate_private_key(ec.SECP384R1())
        self.root_name = _name(f"{label} Root CA", domain)
        self.root = _ca_cert(
            self.root_name, self.root_key, self.root_name, self.root_key, start=start, end=end, pathlen=None
        )
        self.issuing_key = ec.generate_private_key(ec.SECP256R1())
        self.issuing_name = _name(f"{label} Issuing CA", domain)
        self.issuing = _ca_cert(
            self.issuing_name, self.issuing_key, self.root_name, self.root_key, start=start, end=end, pathlen=0
        )

    @property
    def ca_pem(self) -> str:
        return pem(self.root)

    @property
    def chain_pem(self) -> str:
        return pem(self.issuing)

    def reissued_root(self) -> x509.Certificate:
        """The root CA certificate made again with the same key and name (another serial)."""
        return _ca_cert(
            self.root_name,
            self.root_key,
            self.root_name,
            self.root_key,
            start=self.now - 86400,
            end=self.now + 3650 * 86400,
            pathlen=None,
        )

    def sign(
        self,
        csr_pem: str,
        *,
        name: Optional[str] = None,
        dns: Sequence[str] = (),
        ip: Sequence[str] = (),
        lifetime: int = 30 * 86400,
        start: Optional[float] = None,
        public_key=None,
        issuer: Optional[Tuple] = None,
    ) -> Tuple[str, str]:
        """(certificate PEM, serial hex) for a CSR: CN=name (the CSR's CN by default), SANs as given."""
        csr = x509.load_pem_x509_csr(csr_pem.encode() if isinstance(csr_pem, str) else csr_pem)
        if name is None:
            name = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        issuer_name, issuer_key = issuer or (self.issuing_name, self.issuing_key)
        start = self.now - 60 if start is None else start
        sans: List = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(a)) for a in ip]
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(name, self.domain))
            .issuer_name(issuer_name)
            .public_key(public_key or csr.public_key())
            .serial_number(int.from_bytes(secrets.token_bytes(16), "big") >> 1 or 1)
            .not_valid_before(utc(start))
            .not_valid_after(utc(start + lifetime))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH, IPSEC_IKE]),
                critical=False,
            )
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(issuer_key, hashes.SHA256())
        serial = format(cert.serial_number, "X")
        return pem(cert), serial if len(serial) % 2 == 0 else "0" + serial

    def crl(self, serials: Iterable[str] = (), *, key=None, issuer_name=None) -> str:
        """A CRL of the issuing CA (or signed by `key`) revoking `serials` (hex)."""
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(issuer_name or self.issuing_name)
            .last_update(utc(self.now - 60))
            .next_update(utc(self.now + 14 * 86400))
            .add_extension(x509.CRLNumber(secrets.randbelow(1000) + 1), critical=False)
        )
        for serial in serials:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(int(serial, 16))
                .revocation_date(utc(self.now - 60))
                .build()
            )
        crl = builder.sign(key or self.issuing_key, hashes.SHA256())
        return crl.public_bytes(serialization.Encoding.PEM).decode("ascii")
