"""MemberStore: plan, stage, the crash-safe install, refresh and leave, on a tmp_path root.

Real cryptography and a tiny in-test CA (pki_member_helpers); `openssl verify` checks what a
reader of the top-level paths sees; the crash tests fork a child that SIGKILLs itself at every
step of an install.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pki_member_helpers import TestCA, pem

from ansible_collections.distsec.framework.plugins.module_utils._pki import member as member_mod
from ansible_collections.distsec.framework.plugins.module_utils._pki.errors import (
    BadRequest,
    IdentityMismatch,
    InstallFailed,
)
from ansible_collections.distsec.framework.plugins.module_utils._pki.identity import build_identity, identity_of
from ansible_collections.distsec.framework.plugins.module_utils._pki.member import MemberStore, crl_serial_count

NOW = time.time()
DAY = 86400
DOMAIN = "example.org"
IDENTITY = build_identity("web-1", ["web-1.example.org"], ["198.51.100.71"])
LIFETIME = 30 * DAY
FRACTION = 2 / 3
needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


@pytest.fixture(scope="module")
def ca():
    return TestCA(DOMAIN, now=NOW)


class Clock:
    def __init__(self, now=NOW):
        self.value = now

    def __call__(self):
        return self.value


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def store(tmp_path, clock):
    return MemberStore(str(tmp_path / "etc"), now=clock, addresses=lambda: ["127.0.0.1", "198.51.100.71/24", "fd42::7"])


def join(store, ca, identity=IDENTITY, key_type="ecdsa-p256", **sign):
    """stage + sign + install; the certificate's serial."""
    token, csr = store.stage(identity, key_type)
    cert, serial = ca.sign(csr, name=identity.name, dns=identity.dns, ip=identity.ip, **sign)
    store.install(
        token, certificate=cert, chain=ca.chain_pem, ca=ca.ca_pem, domain=ca.domain, identity=identity, host="web-1"
    )
    return serial


def plan(store, identity=IDENTITY, **kw):
    args = dict(
        domain=DOMAIN,
        key_type="ecdsa-p256",
        max_lifetime=LIFETIME,
        fraction=FRACTION,
        ca_fingerprint=None,
    )
    args.update(kw)
    return store.plan(identity, **args)


def snapshot(root):
    """Every entry under root: (kind, mode, bytes or link target)."""
    out = {}
    if not os.path.exists(root):
        return out
    for base, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(base, name)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                out[path] = ("link", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                out[path] = ("dir", stat.S_IMODE(st.st_mode))
            else:
                with open(path, "rb") as handle:
                    out[path] = ("file", stat.S_IMODE(st.st_mode), handle.read())
    return out


def read_text(path):
    with open(path, encoding="ascii") as handle:
        return handle.read()


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def key_matches(directory):
    with open(os.path.join(directory, "host.key"), "rb") as handle:
        key = serialization.load_pem_private_key(handle.read(), None)
    with open(os.path.join(directory, "host.crt"), "rb") as handle:
        cert = x509.load_pem_x509_certificate(handle.read())
    der = serialization.Encoding.DER
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    return key.public_key().public_bytes(der, spki) == cert.public_key().public_bytes(der, spki)


# ------------------------------------------------------------------ plan


def test_plan_not_a_member(store):
    assert store.current() is None
    assert plan(store) == "not a member"


def test_plan_none_for_a_fresh_member(store, ca):
    serial = join(store, ca)
    current = store.current()
    assert current["serial"] == serial and current["state"] == "member" and current["domain"] == DOMAIN
    assert current["identity"] == IDENTITY.as_dict() and current["key_type"] == "ecdsa-p256"
    assert plan(store, ca_fingerprint=current["ca_fingerprint"].upper()) is None


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"domain": "other.org"}, "the host is a member of domain example.org"),
        ({"ca_fingerprint": "00" * 32}, "the domain CA changed"),
        ({"identity": build_identity("web-1", [], ["198.51.100.71"])}, "the identity changed (was CN=web-1"),
        ({"key_type": "ed25519"}, "the key type changed"),
        ({"max_lifetime": 7 * DAY}, "is longer than the limit 7d"),
        ({"reissue": True}, "reissue was asked for"),
    ],
    ids=["other-domain", "ca-changed", "identity-changed", "key-type-changed", "limit-lowered", "reissue"],
)
def test_plan_reasons(store, ca, change, expected):
    join(store, ca)
    kw = dict(change)
    identity = kw.pop("identity", IDENTITY)
    assert expected in plan(store, identity, **kw)


def test_plan_two_thirds_passed(store, ca, clock):
    join(store, ca)
    clock.value = NOW + 19 * DAY
    assert plan(store) is None
    clock.value = NOW + 21 * DAY
    assert "67% of its lifetime has passed" in plan(store)
    clock.value = NOW + 31 * DAY
    assert plan(store) == "the certificate has expired"


def test_plan_order_domain_before_reissue(store, ca):
    join(store, ca)
    assert plan(store, domain="x.org", reissue=True).startswith("the host is a member of domain")


@pytest.mark.parametrize(
    "damage",
    ["other-key", "garbage-cert", "missing-record"],
)
def test_plan_broken(store, ca, damage):
    join(store, ca)
    current = os.path.join(store.pki, "current")
    if damage == "other-key":
        other = TestCA(DOMAIN)  # any other P-256 key
        os.chmod(os.path.join(current, "host.key"), 0o600)
        with open(os.path.join(current, "host.key"), "wb") as handle:
            handle.write(
                other.issuing_key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                )
            )
        why = "host.key does not match host.crt"
    elif damage == "garbage-cert":
        with open(os.path.join(current, "host.crt"), "w") as handle:
            handle.write("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
        why = "cannot be read"
    else:
        os.unlink(store.record_path)
        why = "domain.json is missing"
    reason = plan(store)
    assert reason.startswith("the membership is broken: ") and why in reason
    assert "PRIVATE KEY" not in reason


# ------------------------------------------------------------------ addresses


def test_check_addresses(store):
    store.check_addresses(IDENTITY)
    store.check_addresses(build_identity("web-1"))  # no address: nothing to check
    with pytest.raises(IdentityMismatch) as caught:
        store.check_addresses(build_identity("web-1", [], ["198.51.100.99"]))
    message = str(caught.value)
    assert "address 198.51.100.99 from the inventory is not configured on this host" in message
    assert "198.51.100.71, fd42::7" in message and "127.0.0.1" not in message


def test_check_addresses_with_the_real_ip_command(tmp_path):
    if shutil.which("ip") is None:
        pytest.skip("needs iproute2")
    store = MemberStore(str(tmp_path))
    store.check_addresses(build_identity("web-1", [], ["127.0.0.1"]))
    with pytest.raises(IdentityMismatch, match=r"192\.0\.2\.254"):
        store.check_addresses(build_identity("web-1", [], ["192.0.2.254"]))


# ------------------------------------------------------------------ stage


def test_stage(store):
    token, csr_pem = store.stage(IDENTITY, "ecdsa-p256")
    old = os.path.join(store.staging, token)
    token2, csr_pem2 = store.stage(IDENTITY, "ed25519")
    assert not os.path.exists(old), "the old staging directory is wiped"
    assert os.listdir(store.staging) == [token2]
    directory = os.path.join(store.staging, token2)
    assert len(token2) == 16 and int(token2, 16) >= 0
    assert mode(store.pki) == 0o700 and mode(store.staging) == 0o700 and mode(directory) == 0o700
    assert mode(os.path.join(directory, "host.key")) == 0o600
    with open(os.path.join(directory, "host.key"), "rb") as handle:
        key_pem = handle.read()
    assert key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8, unencrypted
    key = serialization.load_pem_private_key(key_pem, None)
    csr = x509.load_pem_x509_csr(csr_pem2.encode())
    assert csr.is_signature_valid
    der, spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    assert csr.public_key().public_bytes(der, spki) == key.public_key().public_bytes(der, spki)
    assert identity_of(csr) == IDENTITY
    with open(os.path.join(directory, "request.json")) as handle:
        request = json.load(handle)
    assert request["identity"] == IDENTITY.as_dict() and request["key_type"] == "ed25519"
    assert key_pem.decode() not in csr_pem + csr_pem2 + token + token2


def test_stage_refuses_an_unknown_key_type(store):
    with pytest.raises(BadRequest, match="rsa-2048"):
        store.stage(IDENTITY, "rsa-2048")


# ------------------------------------------------------------------ install


@needs_openssl
def test_install_happy_path(store, ca):
    serial = join(store, ca)
    root = store.root
    for name in ("host.key", "host.crt", "chain.crt", "ca.crt"):
        assert os.readlink(os.path.join(root, name)) == f"pki/current/{name}"
    assert os.readlink(os.path.join(store.pki, "current")) == serial
    assert mode(os.path.join(store.pki, serial, "host.key")) == 0o600
    assert mode(os.path.join(store.pki, serial, "host.crt")) == 0o644
    assert not os.path.exists(store.staging)
    with open(store.record_path) as handle:
        record = json.load(handle)
    assert record["state"] == "member" and record["serial"] == serial and record["host"] == "web-1"
    assert record["joined_at"] and record["renewed_at"] is None and record["left_at"] is None
    proc = subprocess.run(
        ["openssl", "verify", "-CAfile", "ca.crt", "-untrusted", "chain.crt", "host.crt"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # a renewal: the old set is removed, joined_at kept, renewed_at set
    serial2 = join(store, ca)
    assert sorted(os.listdir(store.pki)) == sorted(["current", serial2])
    with open(store.record_path) as handle:
        record2 = json.load(handle)
    assert record2["joined_at"] == record["joined_at"] and record2["renewed_at"] and record2["serial"] == serial2
    assert key_matches(os.path.join(store.pki, "current"))


def test_install_returns_what_changed(store, ca):
    token, csr = store.stage(IDENTITY, "ecdsa-p256")
    cert = ca.sign(csr, dns=IDENTITY.dns, ip=IDENTITY.ip)[0]
    args = dict(certificate=cert, chain=ca.chain_pem, ca=ca.ca_pem, domain=DOMAIN, identity=IDENTITY, host="web-1")
    assert store.install(token, **args) == ["host.key", "host.crt", "chain.crt", "ca.crt", "domain.json"]
    token, csr = store.stage(IDENTITY, "ecdsa-p256")
    cert = ca.sign(csr, dns=IDENTITY.dns, ip=IDENTITY.ip)[0]
    args["certificate"] = cert
    assert store.install(token, **args) == ["host.key", "host.crt", "domain.json"]


STRANGER = TestCA(DOMAIN, now=NOW, label="Stranger")


@pytest.mark.parametrize(
    "bad",
    ["wrong-key", "wrong-identity", "chain-not-signing", "ca-not-signing", "expired", "not-yet-valid", "no-token"],
)
def test_install_refusals_keep_the_previous_set(store, ca, bad):
    join(store, ca)
    before = snapshot(store.root)
    token, csr = store.stage(IDENTITY, "ecdsa-p256")
    sign = dict(dns=IDENTITY.dns, ip=IDENTITY.ip)
    chain, root = ca.chain_pem, ca.ca_pem
    if bad == "wrong-key":
        sign["public_key"] = STRANGER.issuing_key.public_key()
    elif bad == "wrong-identity":
        sign["ip"] = ["198.51.100.99"]
    elif bad == "chain-not-signing":
        sign["issuer"] = (ca.issuing_name, STRANGER.issuing_key)
    elif bad == "ca-not-signing":
        root = STRANGER.ca_pem
    elif bad == "expired":
        sign.update(start=NOW - 40 * DAY, lifetime=30 * DAY)
    elif bad == "not-yet-valid":
        sign.update(start=NOW + DAY)
    cert = ca.sign(csr, **sign)[0]
    if bad == "no-token":
        token = "0123456789abcdef"  # noqa: S105 - a request token, not a password
    expected = {
        "wrong-key": "is not for the key staged",
        "wrong-identity": "IP:198.51.100.99 but the inventory says",
        "chain-not-signing": "not signed by the issuing CA",
        "ca-not-signing": "not signed by the root CA",
        "expired": "expired at",
        "not-yet-valid": "is not valid before",
        "no-token": "no staged request",
    }[bad]
    with pytest.raises(InstallFailed, match=expected):
        store.install(token, certificate=cert, chain=chain, ca=root, domain=DOMAIN, identity=IDENTITY, host="web-1")
    assert not os.path.exists(store.staging), "a failed install removes the staging directory"
    after = snapshot(store.root)
    after.pop(store.staging, None)
    assert after == before
    assert plan(store) is None


def test_install_refuses_a_bad_token_format(store, ca):
    with pytest.raises(InstallFailed, match="not a request token"):
        store.install("../../x", certificate="", chain="", ca="", domain=DOMAIN, identity=IDENTITY, host="web-1")


# ------------------------------------------------------------------ crashes

STEPS = (
    "set-dir",
    "set-files",
    "set-key",
    "set-fsync",
    "set-rename",
    "current-symlink",
    "current-swap",
    "pki-fsync",
    "links",
    "before-write",
    "after-write",
    "after-fsync",
    "after-rename",
    "after-dirsync",
    "record",
    "cleanup",
)


def _run_killed(store, ca, step, first=False):
    token, csr = store.stage(IDENTITY, "ecdsa-p256")
    cert, serial = ca.sign(csr, dns=IDENTITY.dns, ip=IDENTITY.ip)
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 3
        try:

            def hook(at, path):
                if at == step:
                    os.kill(os.getpid(), signal.SIGKILL)

            member_mod.FAULT_HOOK = hook
            store.install(
                token,
                certificate=cert,
                chain=ca.chain_pem,
                ca=ca.ca_pem,
                domain=DOMAIN,
                identity=IDENTITY,
                host="web-1",
            )
            code = 0
        finally:
            os._exit(code)
    status = os.waitpid(pid, 0)[1]
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, f"child ended with {status}"
    return serial


@pytest.mark.parametrize("step", STEPS)
def test_crash_during_install_leaves_old_or_new(store, ca, step):
    old = join(store, ca)
    new = _run_killed(store, ca, step)
    current = os.path.join(store.pki, "current")
    serial = os.readlink(current)
    assert serial in (old, new)
    assert key_matches(current), "the key of the current set matches its certificate"
    assert key_matches(store.root), "the top-level paths are one complete set"
    with open(os.path.join(store.root, "host.crt"), "rb") as handle:
        cert = x509.load_pem_x509_certificate(handle.read())
    assert format(cert.serial_number, "X").rjust(len(serial), "0") == serial
    current_state = store.current()
    assert "broken" not in current_state and current_state["serial"] == serial
    # the next join completes and cleans up
    final = join(store, ca)
    assert sorted(os.listdir(store.pki)) == sorted(["current", final])
    assert store.current()["serial"] == final and plan(store) is None


@pytest.mark.parametrize("step", ["current-swap", "links", "record"])
def test_crash_during_a_first_install(store, ca, step):
    new = _run_killed(store, ca, step)
    state = store.current()
    assert state is None or "broken" in state or state["serial"] == new
    assert plan(store) is None or plan(store) in ("not a member",) or plan(store).startswith("the membership is broken")
    final = join(store, ca)
    assert store.current()["serial"] == final and plan(store) is None


# ------------------------------------------------------------------ refresh


def test_refresh(store, ca):
    serial = join(store, ca)
    crl = ca.crl(["0A0B"])
    assert store.refresh(crl=crl, trust_root='{"version": 1}\n') == ["crl.pem", "root.json"]
    mtime = os.stat(store.crl_path).st_mtime_ns
    assert store.refresh(crl=crl, trust_root='{"version": 1}\n') == []
    assert os.stat(store.crl_path).st_mtime_ns == mtime, "an unchanged CRL is not rewritten"
    assert crl_serial_count(read_text(store.crl_path)) == 1
    # several CRLs (current + retired issuer): one signed by our issuer is enough
    other = STRANGER.crl(["01"])
    assert store.refresh(crl=other + ca.crl([serial])) == ["crl.pem"]
    assert crl_serial_count(read_text(store.crl_path)) == 2
    assert store.refresh(trust_root='{"version": 2}\n') == ["root.json"]
    with open(store.trust_root_path) as handle:
        assert json.load(handle) == {"version": 2}


@pytest.mark.parametrize(
    ("crl", "message"),
    [
        ("not a crl", "not a PEM CRL"),
        ("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n", "cannot be read"),
        ("stranger", "no CRL in the CRL file is signed by this host's issuing CA"),
        ("forged", "no CRL in the CRL file is signed by this host's issuing CA"),
    ],
)
def test_refresh_refuses_a_bad_crl(store, ca, crl, message):
    join(store, ca)
    store.refresh(crl=ca.crl())
    before = snapshot(store.root)
    if crl == "stranger":
        crl = STRANGER.crl(["01"])
    elif crl == "forged":  # our issuer's name, another key
        crl = ca.crl(["01"], key=STRANGER.issuing_key)
    with pytest.raises(InstallFailed, match=message):
        store.refresh(crl=crl, trust_root='{"version": 9}')
    assert snapshot(store.root) == before, "nothing is written when one input is refused"


def test_refresh_replaces_a_reissued_root_but_not_a_foreign_one(store, ca):
    join(store, ca)
    reissued = pem(ca.reissued_root())
    assert store.refresh(ca=reissued) == ["ca.crt"]
    assert read_text(os.path.join(store.root, "ca.crt")) == reissued
    assert "broken" not in store.current()
    assert store.refresh(ca=STRANGER.ca_pem) == []
    assert plan(store, ca_fingerprint="11" * 32) == "the domain CA changed"


def test_refresh_of_a_non_member(store, ca):
    with pytest.raises(InstallFailed, match="not a member"):
        store.refresh(crl=ca.crl())


# ------------------------------------------------------------------ abort, leave


def test_abort(store):
    assert store.abort() is False
    store.stage(IDENTITY, "ecdsa-p256")
    assert store.abort(check=True) is True and os.path.isdir(store.staging)
    assert store.abort() is True and not os.path.exists(store.staging)


def test_leave(store, ca, clock):
    serial = join(store, ca)
    store.refresh(crl=ca.crl(), trust_root="{}")
    clock.value = NOW + 100
    removed = store.leave(DOMAIN, "web-1")
    assert set(removed) == {"host.key", "host.crt", "chain.crt", "ca.crt", "pki", "crl.pem", "root.json", "domain.json"}
    assert sorted(os.listdir(store.root)) == ["domain.json"]
    with open(store.record_path) as handle:
        record = json.load(handle)
    assert record["state"] == "left" and record["serial"] == serial
    assert record["left_at"] == member_mod.format_time(NOW + 100)
    assert store.current() is None and plan(store) == "not a member"
    before = snapshot(store.root)
    assert store.leave(DOMAIN, "web-1") == []
    assert snapshot(store.root) == before
    # a host that never joined: nothing to do
    assert MemberStore(os.path.join(store.root, "never")).leave(DOMAIN, "web-1") == []


# ------------------------------------------------------------------ check mode


def test_check_mode_writes_nothing(store, ca):
    assert store.stage(IDENTITY, "ecdsa-p256", check=True) == (None, None)
    assert not os.path.exists(store.root)
    join(store, ca)
    token, csr = store.stage(IDENTITY, "ecdsa-p256")
    cert = ca.sign(csr, dns=IDENTITY.dns, ip=IDENTITY.ip)[0]
    before = snapshot(store.root)
    args = dict(certificate=cert, chain=ca.chain_pem, ca=ca.ca_pem, domain=DOMAIN, identity=IDENTITY, host="web-1")
    assert store.install(token, check=True, **args) == ["host.key", "host.crt", "domain.json"]
    with pytest.raises(InstallFailed):
        store.install(token, check=True, **dict(args, identity=build_identity("db-1")))
    assert store.refresh(crl=ca.crl(), trust_root="{}", ca=pem(ca.reissued_root()), check=True) == [
        "ca.crt",
        "crl.pem",
        "root.json",
    ]
    assert store.abort(check=True) is True
    assert "pki" in store.leave(DOMAIN, "web-1", check=True)
    assert snapshot(store.root) == before
