"""Security Status collectors: firewall, ipsec, antivirus, domain, policy.

Real artefacts where they can be had here: `nft -j list tables` recorded from a network
namespace (and a live namespace test), a certificate chain and CRL made with the openssl
command at test time and read back through the real openssl, ClamAV headers in the real
format. swanctl and libreswan output is recorded text in their documented formats.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import os
import shutil
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from ansible_collections.distsec.framework.plugins.module_utils._status import (  # pylint: disable=unused-import
    antivirus,  # noqa: F401 - registers the collector
    domain,  # noqa: F401
    firewall,  # noqa: F401
    ipsec,  # noqa: F401
    policy,  # noqa: F401
)
from ansible_collections.distsec.framework.plugins.module_utils._status.base import COLLECTORS, Context, gather

FIXTURES = Path(__file__).parent / "fixtures" / "security"
DAY = 86400


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


class Fake:
    """A recorded host: argv -> (rc, out, err) for installed programs; every call is logged."""

    def __init__(self, installed, answers):
        self.installed = set(installed)
        self.answers = {tuple(k): v for k, v in answers.items()}
        self.calls = []

    def which(self, name):
        return f"/usr/sbin/{name}" if name in self.installed else None

    def __call__(self, argv):
        self.calls.append(tuple(argv))
        if tuple(argv) not in self.answers:
            raise AssertionError(f"unexpected command {argv}")
        return self.answers[tuple(argv)]

    def context(self, root="/nonexistent-root", now=1_800_000_000.0):
        return Context(self, root=str(root), now=now, which=self.which)


def real_run(argv):
    proc = subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=30)
    return proc.returncode, proc.stdout, proc.stderr


def one(ctx, name):
    """Run one collector through gather(): (facts or None, error or None)."""
    status = gather(ctx, [name])
    return status.get(name), status["errors"].get(name)


def test_all_collectors_register():
    assert {"firewall", "ipsec", "antivirus", "domain", "policy"} <= set(COLLECTORS)


# --------------------------------------------------------------------------- firewall

NFT_TABLES = ("nft", "-j", "list", "tables")
DISTSEC_LISTING = fixture("nft_list_table_inet_distsec.txt")
DISTSEC_X_LISTING = fixture("nft_list_table_inet_distsec_x.txt")


def nft_answers(listing=DISTSEC_LISTING):
    return {
        NFT_TABLES: (0, fixture("nft_list_tables.json"), ""),
        ("nft", "list", "table", "inet", "distsec"): (0, listing, ""),
        ("nft", "list", "table", "inet", "distsec_x"): (0, DISTSEC_X_LISTING, ""),
    }


@pytest.mark.parametrize(
    ("installed", "answers", "backends"),
    [
        pytest.param(
            {"nft", "iptables", "firewall-cmd", "ufw"},
            {
                ("iptables", "-V"): (0, "iptables v1.8.9 (nf_tables)\n", ""),
                ("firewall-cmd", "--state"): (0, "running\n", ""),
                ("ufw", "status"): (0, "Status: active\n\nTo  Action  From\n", ""),
            },
            {
                "iptables": {"installed": True, "variant": "nf_tables"},
                "firewalld": {"installed": True, "running": True},
                "ufw": {"installed": True, "active": True},
            },
            id="all-running",
        ),
        pytest.param(
            {"nft", "iptables", "firewall-cmd", "ufw"},
            {
                ("iptables", "-V"): (0, "iptables v1.8.7 (legacy)\n", ""),
                ("firewall-cmd", "--state"): (252, "not running\n", ""),
                ("ufw", "status"): (0, "Status: inactive\n", ""),
            },
            {
                "iptables": {"installed": True, "variant": "legacy"},
                "firewalld": {"installed": True, "running": False},
                "ufw": {"installed": True, "active": False},
            },
            id="legacy-stopped-inactive",
        ),
        pytest.param(
            {"nft", "iptables", "ufw"},
            {
                ("iptables", "-V"): (0, "iptables v1.6.1\n", ""),
                ("ufw", "status"): (1, "", "ERROR: You need to be root to run this script\n"),
            },
            {
                "iptables": {"installed": True, "variant": None},
                "firewalld": {"installed": False, "running": None},
                "ufw": {"installed": True, "active": None},
            },
            id="old-iptables-ufw-unreadable",
        ),
        pytest.param(
            {"nft"},
            {},
            {
                "iptables": {"installed": False, "variant": None},
                "firewalld": {"installed": False, "running": None},
                "ufw": {"installed": False, "active": None},
            },
            id="nft-only",
        ),
    ],
)
def test_firewall_backends_and_tables(installed, answers, backends):
    fake = Fake(installed, {**nft_answers(), **answers})
    facts, error = one(fake.context(), "firewall")
    assert error is None
    assert {k: v for k, v in facts["backends"].items() if k != "nftables"} == backends
    assert facts["backends"]["nftables"] == {
        "installed": True,
        "tables": ["inet distsec", "inet distsec_x", "ip docker_like", "ip6 filter"],
    }
    assert facts["distsec"]["present"] is True
    assert facts["distsec"]["tables"] == ["inet distsec", "inet distsec_x"]
    assert facts["other_tables"] == ["ip docker_like", "ip6 filter"]
    expected = hashlib.sha256(
        (DISTSEC_LISTING.replace(" packets 0 bytes 0", "") + DISTSEC_X_LISTING).encode()
    ).hexdigest()
    assert facts["distsec"]["digest"] == "sha256:" + expected


def test_firewall_digest_ignores_counters_but_not_rules():
    def digest(listing):
        facts, error = one(Fake({"nft"}, nft_answers(listing)).context(), "firewall")
        assert error is None
        return facts["distsec"]["digest"]

    base = digest(DISTSEC_LISTING)
    assert digest(DISTSEC_LISTING.replace("packets 0 bytes 0", "packets 912 bytes 73100")) == base
    assert digest(DISTSEC_LISTING.replace("accept\n", "accept # handle 7\n")) == base
    assert digest(DISTSEC_LISTING.replace("dport 22", "dport 2222")) != base


def test_firewall_without_nft_is_a_fact_not_an_error():
    facts, error = one(
        Fake({"iptables"}, {("iptables", "-V"): (0, "iptables v1.8.9 (legacy)", "")}).context(), "firewall"
    )
    assert error is None
    assert facts["backends"]["nftables"] == {"installed": False, "tables": []}
    assert facts["distsec"] == {"present": False, "tables": [], "digest": None, "enforced": None}
    assert facts["other_tables"] == []


def test_firewall_without_our_tables_has_no_digest():
    only_docker = {"nftables": [{"table": {"family": "ip", "name": "docker_like", "handle": 2}}]}
    fake = Fake({"nft"}, {NFT_TABLES: (0, json.dumps(only_docker), "")})
    facts, error = one(fake.context(), "firewall")
    assert error is None
    assert facts["distsec"] == {"present": False, "tables": [], "digest": None, "enforced": None}
    assert facts["other_tables"] == ["ip docker_like"]
    assert fake.calls == [NFT_TABLES]


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ({NFT_TABLES: (1, "", "Error: Operation not permitted\n")}, "Operation not permitted"),
        ({NFT_TABLES: (0, "{not json", "")}, "not the expected JSON"),
        ({NFT_TABLES: (0, "[1, 2]", "")}, "not the expected JSON"),
        (
            {
                **nft_answers(),
                ("nft", "list", "table", "inet", "distsec"): (1, "", "Error: No such file or directory\n"),
            },
            "nft list table inet distsec failed",
        ),
    ],
    ids=["no-privilege", "garbage-json", "json-not-object", "table-vanished"],
)
def test_firewall_unusable_nft_is_an_error(answers, message):
    facts, error = one(Fake({"nft"}, answers).context(), "firewall")
    assert facts is None
    assert message in error


@pytest.mark.netns
def test_firewall_live_in_a_network_namespace(netns, run):
    def nft(*args):
        rc, _out, err = run([*netns, "nft", *args])
        assert rc == 0, err

    ctx = Context(lambda argv: run([*netns, *argv]), root="/nonexistent-root")

    def collect():
        facts, error = one(ctx, "firewall")
        assert error is None
        return facts

    empty = collect()
    assert empty["backends"]["nftables"] == {"installed": True, "tables": []}
    assert empty["distsec"] == {"present": False, "tables": [], "digest": None, "enforced": None}

    nft("add", "table", "inet", "distsec")
    nft("add", "chain", "inet", "distsec", "input", "{ type filter hook input priority 0; policy accept; }")
    nft("add", "table", "ip", "docker_like")
    nft("add", "chain", "ip", "docker_like", "forward_like")
    first = collect()
    assert first["distsec"]["tables"] == ["inet distsec"]
    assert first["other_tables"] == ["ip docker_like"]
    assert first["distsec"]["digest"].startswith("sha256:")

    nft("add", "rule", "ip", "docker_like", "forward_like", "counter", "accept")
    assert collect()["distsec"]["digest"] == first["distsec"]["digest"], "other tables must not change our digest"

    nft("add", "rule", "inet", "distsec", "input", "iif", "lo", "counter", "accept")
    second = collect()
    assert second["distsec"]["digest"] != first["distsec"]["digest"]

    run([*netns, "ping", "-c", "2", "-i", "0.2", "-W", "1", "127.0.0.1"])  # counters move, digest must not
    assert collect()["distsec"]["digest"] == second["distsec"]["digest"]

    nft("add", "table", "inet", "distsec_extra")
    third = collect()
    assert third["distsec"]["tables"] == ["inet distsec", "inet distsec_extra"]
    assert third["distsec"]["digest"] != second["distsec"]["digest"]


# --------------------------------------------------------------------------- ipsec

IPSEC_NONE = {"daemon": None, "installed": False, "running": None, "connections": [], "sas_up": 0}


@pytest.mark.parametrize(
    ("installed", "answers", "expected"),
    [
        pytest.param(
            {"swanctl"},
            {
                ("swanctl", "--stats"): (0, "uptime: 2 hours, since Nov 23 05:00:00 2026\n", ""),
                ("swanctl", "--list-conns"): (0, fixture("swanctl_list_conns.txt"), ""),
                ("swanctl", "--list-sas"): (0, fixture("swanctl_list_sas.txt"), ""),
            },
            {"daemon": "strongswan", "installed": True, "running": True, "connections": ["gw-gw", "rw"], "sas_up": 2},
            id="strongswan-running",
        ),
        pytest.param(
            {"swanctl", "ipsec"},
            {("swanctl", "--stats"): (1, "", "connecting to 'unix:///var/run/charon.vici' failed: No such file\n")},
            {"daemon": "strongswan", "installed": True, "running": False, "connections": [], "sas_up": 0},
            id="strongswan-stopped",
        ),
        pytest.param(
            {"ipsec"},
            {
                ("ipsec", "--version"): (0, "Libreswan 4.12\n", ""),
                ("ipsec", "status"): (0, fixture("libreswan_status.txt"), ""),
                ("ipsec", "whack", "--trafficstatus"): (0, fixture("libreswan_trafficstatus.txt"), ""),
            },
            {
                "daemon": "libreswan",
                "installed": True,
                "running": True,
                "connections": ["west-east", "road"],
                "sas_up": 2,
            },
            id="libreswan-running",
        ),
        pytest.param(
            {"ipsec"},
            {
                ("ipsec", "--version"): (0, "Libreswan 5.0\n", ""),
                ("ipsec", "status"): (0, fixture("libreswan_status.txt").replace("000 ", ""), ""),
                ("ipsec", "whack", "--trafficstatus"): (
                    0,
                    fixture("libreswan_trafficstatus.txt").replace("006 ", "").splitlines()[0] + "\n",
                    "",
                ),
            },
            {
                "daemon": "libreswan",
                "installed": True,
                "running": True,
                "connections": ["west-east", "road"],
                "sas_up": 1,
            },
            id="libreswan5-without-codes",
        ),
        pytest.param(
            {"ipsec"},
            {
                ("ipsec", "--version"): (0, "Libreswan 4.12\n", ""),
                ("ipsec", "status"): (1, "", 'whack: Pluto is not running (no "/run/pluto/pluto.ctl")\n'),
            },
            {"daemon": "libreswan", "installed": True, "running": False, "connections": [], "sas_up": 0},
            id="libreswan-stopped",
        ),
        pytest.param(
            {"ipsec"},
            {
                ("ipsec", "--version"): (0, "Linux strongSwan U5.9.8/K6.1.0\n", ""),
                ("ipsec", "status"): (
                    0,
                    "Security Associations (1 up, 0 connecting):\n     gw-gw[1]: ESTABLISHED 5 minutes ago, ...\n"
                    "     gw-gw{1}:  INSTALLED, TUNNEL, reqid 1, ESP SPIs: c1_i c2_o\n",
                    "",
                ),
            },
            {"daemon": "strongswan", "installed": True, "running": True, "connections": [], "sas_up": 1},
            id="strongswan-stroke",
        ),
        pytest.param(set(), {}, IPSEC_NONE, id="none"),
        pytest.param({"ipsec"}, {("ipsec", "--version"): (1, "", "something else\n")}, IPSEC_NONE, id="unknown-ipsec"),
    ],
)
def test_ipsec(installed, answers, expected):
    facts, error = one(Fake(installed, answers).context(), "ipsec")
    assert error is None
    assert facts == expected


# --------------------------------------------------------------------------- antivirus

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z


def cvd_header(build_time: str, version: int, stime: int = 1_700_000_000) -> bytes:
    text = f"ClamAV-VDB:{build_time}:{version}:2073051:90:0123456789abcdef0123456789abcdef:SIGNATURE:raynman:{stime}"
    return text.encode("ascii").ljust(512, b" ")


def write_db(root: Path, name: str, header: bytes, directory: str = "var/lib/clamav") -> Path:
    path = root / directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    # The header, then gzip-like binary data that does not decode as UTF-8.
    path.write_bytes(header + b"\x1f\x8b\x08\x00\xff\xfe\x00\x80" * 64)
    return path


@pytest.mark.parametrize(
    ("databases", "expected_updated", "expected_version"),
    [
        pytest.param(
            {
                "daily.cvd": cvd_header("15 Jan 2027 06-00 +0000", 27500),
                "main.cvd": cvd_header("16 Sep 2021 08-32 +0000", 62),
            },
            "2027-01-15T06:00:00Z",
            27500,
            id="daily-newest",
        ),
        pytest.param(
            {
                "daily.cld": cvd_header("14 Jan 2027 23-30 -0300", 27499),
                "main.cvd": cvd_header("16 Sep 2021 08-32 +0000", 62),
            },
            "2027-01-15T02:30:00Z",
            27499,
            id="cld-with-offset",
        ),
        pytest.param(
            {
                "daily.cvd": cvd_header("01 Jan 2020 00-00 +0000", 25000),
                "main.cvd": cvd_header("14 Jan 2027 08-00 +0000", 63),
            },
            "2027-01-14T08:00:00Z",
            63,
            id="main-newest",
        ),
        pytest.param(
            {"daily.cvd": cvd_header("not a date", 27501, stime=1_799_990_000)},
            "2027-01-15T05:13:20Z",
            27501,
            id="bad-build-time-uses-stime",
        ),
        pytest.param(
            {
                "bytecode.cvd": cvd_header("15 Jan 2027 07-00 +0000", 335),
                "main.cvd": cvd_header("16 Sep 2021 08-32 +0000", 62),
            },
            "2021-09-16T08:32:00Z",
            62,
            id="bytecode-ignored",
        ),
    ],
)
def test_antivirus_signature_age(tmp_path, databases, expected_updated, expected_version):
    for name, header in databases.items():
        write_db(tmp_path, name, header)
    facts, error = one(Fake(set(), {}).context(root=tmp_path, now=NOW), "antivirus")
    assert error is None
    assert facts["engine"] == "clamav"
    assert facts["installed"] is True
    assert facts["signatures_updated"] == expected_updated
    assert facts["signature_version"] == expected_version
    updated = calendar.timegm(time.strptime(expected_updated, "%Y-%m-%dT%H:%M:%SZ"))
    assert facts["signatures_age"] == int(NOW - updated)
    assert facts["signatures_age"] > 0


def test_antivirus_garbage_header_falls_back_to_mtime(tmp_path):
    path = write_db(tmp_path, "daily.cvd", b"\x00\x01garbage, not a ClamAV header".ljust(512, b"\xff"))
    os.utime(path, (NOW - 3600, NOW - 3600))
    facts, error = one(Fake(set(), {}).context(root=tmp_path, now=NOW), "antivirus")
    assert error is None
    assert facts == {
        "engine": "clamav",
        "installed": True,
        "signatures_updated": "2027-01-15T07:00:00Z",
        "signatures_age": 3600,
        "signature_version": None,
    }


def test_antivirus_database_directory_from_freshclam_conf(tmp_path):
    conf = tmp_path / "etc/clamav/freshclam.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text("# comment\nDatabaseOwner clamav\nDatabaseDirectory /srv/clamdb\n", encoding="utf-8")
    write_db(tmp_path, "daily.cvd", cvd_header("15 Jan 2027 06-00 +0000", 27500), directory="srv/clamdb")
    facts, error = one(Fake(set(), {}).context(root=tmp_path, now=NOW), "antivirus")
    assert error is None
    assert facts["signature_version"] == 27500
    assert facts["signatures_age"] == 2 * 3600


@pytest.mark.parametrize(
    ("installed", "expected"),
    [
        (set(), {"engine": None, "installed": False}),
        ({"clamscan"}, {"engine": "clamav", "installed": True}),
    ],
    ids=["no-clamav", "clamav-without-databases"],
)
def test_antivirus_without_databases(tmp_path, installed, expected):
    facts, error = one(Fake(installed, {}).context(root=tmp_path, now=NOW), "antivirus")
    assert error is None
    assert facts == {**expected, "signatures_updated": None, "signatures_age": None, "signature_version": None}


# --------------------------------------------------------------------------- domain

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")

CA_CONF = """\
[ca]
default_ca = CA_default
[CA_default]
database = index.txt
crlnumber = crlnumber
default_md = sha256
default_crl_days = 30
"""


def _openssl(cwd: Path, *args: str) -> None:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr


def _issue(cwd: Path, ca: str, name: str, subject: str, days: int) -> None:
    _openssl(
        cwd,
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        f"{name}.key",
        "-out",
        f"{name}.csr",
        "-subj",
        subject,
    )
    _openssl(
        cwd,
        "x509",
        "-req",
        "-in",
        f"{name}.csr",
        "-CA",
        f"{ca}.crt",
        "-CAkey",
        f"{ca}.key",
        "-CAcreateserial",
        "-out",
        f"{name}.crt",
        "-days",
        str(days),
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA (30 days), host and other certs (1 day), other revoked in a CRL (30 days), a stranger CA."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    cwd = tmp_path_factory.mktemp("pki")
    for ca, subject in (("ca", "/CN=Distsec Test CA/O=distsec, test"), ("stranger", "/CN=Stranger CA")):
        _openssl(
            cwd,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            f"{ca}.key",
            "-out",
            f"{ca}.crt",
            "-days",
            "30",
            "-subj",
            subject,
        )
    _issue(cwd, "ca", "host", "/CN=host1.corp.example.org", 1)
    _issue(cwd, "ca", "other", "/CN=other.corp.example.org", 1)
    (cwd / "ca.cnf").write_text(CA_CONF, encoding="utf-8")
    (cwd / "index.txt").write_text("", encoding="utf-8")
    (cwd / "crlnumber").write_text("1000\n", encoding="utf-8")
    _openssl(cwd, "ca", "-config", "ca.cnf", "-keyfile", "ca.key", "-cert", "ca.crt", "-revoke", "other.crt")
    _openssl(cwd, "ca", "-config", "ca.cnf", "-keyfile", "ca.key", "-cert", "ca.crt", "-gencrl", "-out", "crl.pem")
    _openssl(
        cwd,
        "ca",
        "-config",
        "ca.cnf",
        "-keyfile",
        "ca.key",
        "-cert",
        "ca.crt",
        "-gencrl",
        "-crlhours",
        "1",
        "-out",
        "crl_1h.pem",
    )
    return cwd


def enrol(root: Path, pki: Path, *, host: str = "host", ca: str = "ca", crl="crl.pem", domain_json=None) -> Path:
    etc = root / "etc/distsec"
    etc.mkdir(parents=True, exist_ok=True)
    shutil.copy(pki / f"{host}.crt", etc / "host.crt")
    shutil.copy(pki / f"{host}.key", etc / "host.key")  # present on a real host; must never be read
    if ca:
        shutil.copy(pki / f"{ca}.crt", etc / "ca.crt")
    if crl:
        shutil.copy(pki / crl, etc / "crl.pem")
    if domain_json is not None:
        (etc / "domain.json").write_text(domain_json, encoding="utf-8")
    return root


class Spy:
    """The real subprocess runner, recording argv, refusing anything that names a key file."""

    def __init__(self):
        self.calls = []

    def __call__(self, argv):
        assert not any(str(a).endswith(".key") for a in argv), argv
        self.calls.append(list(argv))
        return real_run(argv)


def collect_domain(root: Path, now: float):
    spy = Spy()
    facts, error = one(Context(spy, root=str(root), now=now), "domain")
    if facts is not None:
        assert "PRIVATE KEY" not in json.dumps(facts)
        key = (root / "etc/distsec/host.key").read_text(encoding="utf-8")
        assert key.splitlines()[1] not in json.dumps(facts)
    return facts, error, spy


def fingerprint_of(path: Path) -> str:
    der = ssl.PEM_cert_to_DER_cert(path.read_text(encoding="ascii"))
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


@needs_openssl
def test_domain_valid_certificate(tmp_path, pki):
    root = enrol(tmp_path, pki, domain_json='{"domain": "corp.example.org", "extra": 1}')
    now = time.time()
    facts, error, spy = collect_domain(root, now)
    assert error is None
    assert facts["enrolled"] is True
    assert facts["domain"] == "corp.example.org"
    cert = facts["certificate"]
    assert cert["subject"] == "CN=host1.corp.example.org"
    assert cert["issuer"] == "O=distsec\\, test,CN=Distsec Test CA"
    assert cert["fingerprint_sha256"] == fingerprint_of(pki / "host.crt")
    assert len(cert["serial"]) >= 16
    assert int(cert["serial"], 16) > 0
    assert cert["valid"] is True
    assert cert["revoked"] is False
    assert cert["reason"] is None
    assert 0.9 < cert["days_left"] <= 1.0
    assert cert["not_before"] <= Context(real_run).iso(now) < cert["not_after"]
    assert any("-crl_check" in call for call in spy.calls)


@needs_openssl
@pytest.mark.parametrize(
    ("setup", "shift_days", "expected"),
    [
        pytest.param({"host": "other"}, 0, (False, True, "revoked", 1), id="revoked"),
        pytest.param({}, 3, (False, False, "expired at", -1), id="expired"),
        pytest.param({"host": "other"}, 3, (False, True, "revoked", -1), id="expired-and-revoked"),
        pytest.param({}, -2, (False, None, "not valid before", 1), id="not-yet-valid"),
        pytest.param({"ca": "stranger", "crl": ""}, 0, (False, None, "the chain does not verify", 1), id="wrong-ca"),
        pytest.param({"ca": "", "crl": ""}, 0, (True, None, None, 1), id="no-ca-dates-only"),
        pytest.param({"ca": "", "crl": "crl.pem"}, 0, (True, None, None, 1), id="crl-without-ca-unused"),
        pytest.param({"crl": ""}, 0, (True, None, None, 1), id="no-crl"),
        pytest.param({}, 40, (False, None, "CRL", -1), id="stale-crl-revocation-unknown"),
        pytest.param({"crl": "crl_1h.pem"}, 0.125, (True, None, "CRL has expired", 1), id="stale-crl-valid-cert"),
        pytest.param(
            {"host": "other", "crl": "crl_1h.pem"}, 0.125, (False, True, "revoked", 1), id="stale-crl-still-lists-it"
        ),
    ],
)
def test_domain_certificate_states(tmp_path, pki, setup, shift_days, expected):
    """expected: (valid, revoked, words from the reason or None, the sign of days_left)."""
    valid, revoked, reason, days_left_sign = expected
    root = enrol(tmp_path, pki, **setup)
    facts, error, _spy = collect_domain(root, time.time() + shift_days * DAY)
    assert error is None
    cert = facts["certificate"]
    assert cert["valid"] is valid
    assert cert["revoked"] is revoked
    if reason is None:
        assert cert["reason"] is None
    else:
        assert reason in cert["reason"]
    assert (cert["days_left"] > 0) == (days_left_sign > 0)


@needs_openssl
def test_domain_stale_crl_reports_why_revocation_is_unknown(tmp_path, pki):
    facts, error, _spy = collect_domain(enrol(tmp_path, pki), time.time() + 40 * DAY)
    assert error is None
    assert "expired at" in facts["certificate"]["reason"]
    assert "CRL has expired" in facts["certificate"]["reason"]


def test_domain_not_enrolled(tmp_path):
    facts, error = one(Fake(set(), {}).context(root=tmp_path), "domain")
    assert error is None
    assert facts == {
        "enrolled": False,
        "domain": None,
        "state": None,
        "host": None,
        "left_at": None,
        "certificate": None,
    }


@needs_openssl
@pytest.mark.parametrize(
    ("write", "message"),
    [
        (
            {"etc/distsec/host.crt": "-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n"},
            "cannot read the domain certificate",
        ),
        ({"etc/distsec/host.crt": "\x00\x01 not PEM at all"}, "cannot read the domain certificate"),
        ({"etc/distsec/domain.json": "{not json"}, "domain.json is not valid JSON"),
        ({"etc/distsec/domain.json": '["corp.example.org"]'}, "must hold a JSON object"),
    ],
    ids=["garbage-pem", "binary-garbage", "garbage-domain-json", "domain-json-not-object"],
)
def test_domain_malformed_inputs_are_errors(tmp_path, pki, write, message):
    root = enrol(tmp_path, pki)
    for rel, text in write.items():
        (root / rel).write_text(text, encoding="utf-8")
    facts, error, _spy = collect_domain(root, time.time())
    assert facts is None
    assert message in error


@needs_openssl
def test_domain_without_openssl_is_an_error(tmp_path, pki):
    root = enrol(tmp_path, pki)
    ctx = Context(real_run, root=str(root), which=lambda name: None if name == "openssl" else shutil.which(name))
    facts, error = one(ctx, "domain")
    assert facts is None
    assert error == "openssl is needed to read the domain certificate"


# --------------------------------------------------------------------------- policy

POLICY = {
    "domain": "corp.example.org",
    "serial": 42,
    "hash": "sha256:e69d03de82b3312625e36c639fe141f4a20935f9a819dfc23c9a1d0c36850f35",
    "applied_at": "2027-01-15T07:00:00Z",
    "expires": "2027-01-22T07:00:00Z",
    "profile": "default",
    "last_rejection": None,
}


@pytest.mark.parametrize(
    ("content", "expected", "message"),
    [
        pytest.param(None, {}, None, id="absent"),
        pytest.param(json.dumps(POLICY), POLICY, None, id="complete"),
        pytest.param(
            json.dumps({**POLICY, "signature": "c2VjcmV0", "rules": [1]}), POLICY, None, id="unknown-keys-dropped"
        ),
        pytest.param(json.dumps({"serial": 7}), {"serial": 7}, None, id="partial"),
        pytest.param("{}", {}, None, id="empty-object"),
        pytest.param('{"serial": 7', None, "is not valid JSON", id="truncated"),
        pytest.param("\x00\xff garbage", None, "is not valid JSON", id="garbage"),
        pytest.param("[1, 2]", None, "must hold a JSON object, not list", id="list"),
        pytest.param('"policy"', None, "must hold a JSON object, not str", id="string"),
    ],
)
def test_policy(tmp_path, content, expected, message):
    if content is not None:
        path = tmp_path / "var/lib/distsec/policy.json"
        path.parent.mkdir(parents=True)
        path.write_text(content, encoding="utf-8")
    facts, error = one(Fake(set(), {}).context(root=tmp_path), "policy")
    assert facts == expected
    if message is None:
        assert error is None
    else:
        assert message in error


@pytest.mark.netns
def test_firewall_reports_drift_of_what_the_firewall_module_enforced(netns, run, tmp_path):
    from ansible_collections.distsec.framework.plugins.module_utils._apply.nftables import (
        NftablesBackend,
    )

    state = tmp_path / "var" / "lib" / "distsec" / "firewall"
    backend = NftablesBackend(run, str(state), argv=[*netns, "nft"])
    body = (
        'chain input {\n\ttype filter hook input priority filter; policy accept;\n\tcounter comment "default-in"\n}\n'
    )
    backend.apply({"table.nft": body})
    backend.write_record({"table.nft": body}, backend.current(), selected="nftables")
    ctx = Context(lambda argv: run([*netns, *argv]), root=str(tmp_path))

    facts, error = one(ctx, "firewall")
    assert error is None
    assert facts["distsec"]["enforced"] == {"backend": "nftables", "drift": False, "present": True}

    rc, _out, err = run([*netns, "nft", "add", "rule", "inet", "distsec", "input", "tcp", "dport", "9999", "accept"])
    assert rc == 0, err
    facts, error = one(ctx, "firewall")
    assert facts["distsec"]["enforced"] == {"backend": "nftables", "drift": True, "present": True}
