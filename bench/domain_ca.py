"""Benchmark: the PDP side of the domain PKI as a fleet grows.

For fleets of 100, 1,000 and 5,000 hosts (a PDP directory in a temporary directory, real keys):
the time to issue every host's certificate one after the other (each issue takes the lock,
reads and rewrites the registry), the time of one more issue at that size (what a renewal run
pays per host), the registry's size, the time to revoke a tenth of the fleet in one leave run
and re-sign the CRL, the CRL's size, and `material()` (what every join reads). Host keys and
CSRs are made beforehand and not counted.

    .venv/bin/python bench/domain_ca.py [--sizes 100,1000,5000]   (default 100,1000)
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.distsec.framework.plugins.module_utils._pki.ca import (
    DomainCA,
    certificate_pem,
    new_ca_key,
    new_issuing_ca,
    new_root_ca,
    private_key_pem,
)
from ansible_collections.distsec.framework.plugins.module_utils._pki.identity import build_identity

DAY = 86400


def make_pdp(top: Path) -> Path:
    pdp = top / "pdp"
    (pdp / "ca").mkdir(parents=True, mode=0o700)
    (pdp / "domain.json").write_text(json.dumps({"domain": "bench.example"}))
    root_key = new_ca_key("P-384")
    root = new_root_ca(root_key, "bench.example", 3650 * DAY)
    issuing_key = new_ca_key("P-256")
    issuing = new_issuing_ca(issuing_key, root_key, root, "bench.example", 1825 * DAY)
    for name, key, cert in (("root", root_key, root), ("issuing", issuing_key, issuing)):
        (pdp / "ca" / f"{name}.key").write_bytes(private_key_pem(key, None))
        os.chmod(pdp / "ca" / f"{name}.key", 0o600)
        (pdp / "ca" / f"{name}.crt").write_bytes(certificate_pem(cert))
    return pdp


def requests(count: int):
    out = []
    for index in range(count):
        name = f"host-{index:05d}"
        address = f"fd42:be::{index:x}"
        key = ec.generate_private_key(ec.SECP256R1())
        san = x509.SubjectAlternativeName([x509.DNSName(name), x509.IPAddress(ipaddress.ip_address(address))])
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .add_extension(san, critical=False)
            .sign(key, hashes.SHA256())
        )
        pem = csr.public_bytes(serialization.Encoding.PEM).decode()
        out.append((name, pem, build_identity(name, ip=[address])))
    return out


def run(size: int) -> None:
    with tempfile.TemporaryDirectory(prefix="distsec-bench-ca-") as top:
        pdp = make_pdp(Path(top))
        ca = DomainCA(str(pdp))
        ca.refresh_crl()
        batch = requests(size + 1)
        start = time.perf_counter()
        for name, pem, identity in batch[:size]:
            ca.issue(name, pem, identity, 30 * DAY)
        fleet = time.perf_counter() - start
        name, pem, identity = batch[size]
        start = time.perf_counter()
        ca.issue(name, pem, identity, 30 * DAY)
        one = time.perf_counter() - start
        db_size = (pdp / "ca" / "db.json").stat().st_size
        leaving = [n for n, dummy, dummy2 in batch[: max(1, size // 10)]]
        start = time.perf_counter()
        ca.revoke_hosts(leaving)
        revoke = time.perf_counter() - start
        crl_size = (pdp / "ca" / "crl.pem").stat().st_size
        start = time.perf_counter()
        ca.material(batch[-1][0])
        material = time.perf_counter() - start
        print(
            f"{size:>6} hosts: issue all {fleet:7.2f} s ({fleet / size * 1000:5.1f} ms/host), "
            f"one more {one * 1000:6.1f} ms, db.json {db_size / 1024:7.0f} KiB, "
            f"revoke {len(leaving):>4} {revoke * 1000:6.0f} ms, CRL {crl_size / 1024:5.0f} KiB, "
            f"material {material * 1000:5.1f} ms"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000")
    args = parser.parse_args()
    for size in (int(s) for s in args.sizes.split(",")):
        run(size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
