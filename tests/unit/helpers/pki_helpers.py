"""Shared helpers for the domain PKI tests: a PDP directory with a real CA, real CSRs, openssl."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Iterable, Optional, Tuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from ansible_collections.distsec.framework.plugins.module_utils._pki.ca import (
    certificate_pem,
    new_ca_key,
    new_issuing_ca,
    new_root_ca,
    private_key_pem,
)

DAY = 86400


def make_pdp(
    tmp_path,
    domain: str = "example.org",
    passphrase: Optional[str] = None,
    *,
    root_lifetime: int = 3650 * DAY,
    issuing_lifetime: int = 1825 * DAY,
    now: Optional[float] = None,
) -> Path:
    """PDP_DIR in tmp_path: domain.json, ca/root.{key,crt}, ca/issuing.{key,crt} (keys PKCS#8 PEM,
    encrypted with `passphrase` as community.crypto's openssl_privatekey writes them)."""
    pdp = Path(tmp_path) / "pdp"
    ca = pdp / "ca"
    ca.mkdir(parents=True, mode=0o700)
    os.chmod(pdp, 0o700)
    (pdp / "domain.json").write_text(json.dumps({"domain": domain}))
    root_key = new_ca_key("P-384")
    root = new_root_ca(root_key, domain, root_lifetime, now=now)
    issuing_key = new_ca_key("P-256")
    issuing = new_issuing_ca(issuing_key, root_key, root, domain, issuing_lifetime, number=1, now=now)
    for name, key, cert in (("root", root_key, root), ("issuing", issuing_key, issuing)):
        path = ca / f"{name}.key"
        path.write_bytes(private_key_pem(key, passphrase))
        os.chmod(path, 0o600)
        (ca / f"{name}.crt").write_bytes(certificate_pem(cert))
    return pdp


def make_csr(
    name: str, dns: Iterable[str] = (), ip: Iterable[str] = (), key_type: str = "ecdsa-p256"
) -> Tuple[object, str]:
    """A private key of `key_type` and a CSR (PEM text) for CN=name with the given SANs as written."""
    import ipaddress

    if key_type == "ecdsa-p256":
        key = ec.generate_private_key(ec.SECP256R1())
    elif key_type == "ecdsa-p384":
        key = ec.generate_private_key(ec.SECP384R1())
    elif key_type == "ed25519":
        key = ed25519.Ed25519PrivateKey.generate()
    else:
        raise ValueError(key_type)
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    )
    names = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(a)) for a in ip]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    algorithm = None if key_type == "ed25519" else hashes.SHA256()
    csr = builder.sign(key, algorithm)
    return key, csr.public_bytes(serialization.Encoding.PEM).decode("ascii")


def openssl_verify(pdp: Path, cert_pem: str, *, crl: bool = True, chain: Optional[str] = None, attime=None):
    """(returncode, output) of `openssl verify -CAfile root.crt -untrusted CHAIN [-crl_check -CRLfile crl.pem]`."""
    work = Path(pdp) / "verify"
    work.mkdir(exist_ok=True)
    leaf = work / "leaf.crt"
    leaf.write_text(cert_pem)
    untrusted = work / "chain.crt"
    untrusted.write_text(chain if chain is not None else (Path(pdp) / "ca" / "issuing.crt").read_text())
    argv = ["openssl", "verify", "-CAfile", str(Path(pdp) / "ca" / "root.crt"), "-untrusted", str(untrusted)]
    if crl:
        argv += ["-crl_check", "-CRLfile", str(Path(pdp) / "ca" / "crl.pem")]
    if attime is not None:
        argv += ["-attime", str(int(attime))]
    proc = subprocess.run([*argv, str(leaf)], capture_output=True, text=True, check=False, timeout=30)
    return proc.returncode, proc.stdout + proc.stderr
