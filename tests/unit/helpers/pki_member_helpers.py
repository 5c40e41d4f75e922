"""A domain CA for the host-side tests: the root and issuing CA come from the collection's own
CA profiles (module_utils/_pki/ca.py); the leaves and CRLs are signed here, because a test must
be able to ask for wrong things (another identity, expired dates, a stranger's chain) so that
the host's checks can be exercised.
"""

from __future__ import annotations

import datetime
import ipaddress
import secrets
import time
from typing import Iterable, List, Optional, Sequence, Tuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["TestCA", "pem", "utc"]

from ansible_collections.distsec.framework.plugins.module_utils._pki.ca import new_ca_key, new_issuing_ca, new_root_ca

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


class TestCA:
    """Root + issuing CA of domain `domain`, valid from `now` - 1 day for 10 years."""

    __test__ = False  # not a pytest class

    def __init__(self, domain: str = "example.org", now: float = 0.0, label: str = "Test") -> None:
        self.domain = domain
        self.now = now or time.time()
        # The collection's own CA profiles (ca.py); another label makes a CA with other names.
        self.ca_domain = domain if label == "Test" else f"{label.lower()}.{domain}"
        self.root_key = new_ca_key("P-384")
        self.root = new_root_ca(self.root_key, self.ca_domain, 3650 * 86400, now=self.now - 86400)
        self.root_name = self.root.subject
        self.issuing_key = new_ca_key("P-256")
        self.issuing = new_issuing_ca(
            self.issuing_key, self.root_key, self.root, self.ca_domain, 3650 * 86400, now=self.now - 86400
        )
        self.issuing_name = self.issuing.subject

    @property
    def ca_pem(self) -> str:
        return pem(self.root)

    @property
    def chain_pem(self) -> str:
        return pem(self.issuing)

    def reissued_root(self) -> x509.Certificate:
        """The root CA certificate made again with the same key and name (another serial)."""
        return new_root_ca(self.root_key, self.ca_domain, 3650 * 86400, now=self.now - 86400)

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
