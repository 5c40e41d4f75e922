"""The nftables table manager, against the real nft in a throwaway network namespace."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from ansible_collections.distsec.framework.plugins.module_utils._apply.nftables import (
    Nft,
    NftError,
    TableManager,
    TableRef,
    normalize_listing,
)

BODY = """
chain input {
  type filter hook input priority filter; policy accept;
  tcp dport 8081 counter drop comment "deny-8081"
}
"""


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  tcp dport 22 counter packets 12 bytes 720 accept\n", "  tcp dport 22 counter accept\n"),
        ("  tcp dport 22 accept # handle 4\n", "  tcp dport 22 accept\n"),
        ("  quota 10 mbytes used 512 bytes\n", "  quota 10 mbytes\n"),
        ("table inet t {   \n\n}\n", "table inet t {\n}\n"),
        ("", ""),
    ],
)
def test_normalize_listing_drops_what_traffic_changes(raw, expected):
    assert normalize_listing(raw) == expected


@pytest.mark.parametrize(
    ("family", "name", "message"),
    [
        ("inet6", "ok", "unknown nftables family 'inet6'"),
        ("inet", "1abc", "invalid nftables table name '1abc'"),
        ("inet", "a b", "invalid nftables table name 'a b'"),
        ("inet", "", "invalid nftables table name ''"),
        ("inet", "x" * 65, "at most 64 characters"),
    ],
)
def test_table_ref_rejects_bad_names_with_a_hint(family, name, message):
    with pytest.raises(NftError, match=message.replace("(", r"\(")):
        TableRef(family, name)


def _manager(run, netns, tmp_path, name="distsec_ut"):
    nft = Nft(run, argv=[*netns, "nft"])
    return TableManager(nft, TableRef("inet", name), str(tmp_path / "state"))


@pytest.mark.netns
def test_apply_is_idempotent_and_repairs_drift(run, netns, tmp_path):
    manager = _manager(run, netns, tmp_path)
    first = manager.plan(BODY)
    assert first.changed and first.reason == "table is absent"

    applied = manager.apply(BODY)
    assert applied.changed
    assert 'tcp dport 8081 counter drop comment "deny-8081"' in applied.after
    assert manager.plan(BODY).changed is False

    # A rule added by hand is drift: reported, then removed by the next apply.
    rc, _out, err = run([*netns, "nft", "add", "rule", "inet", "distsec_ut", "input", "tcp", "dport", "9", "accept"])
    assert rc == 0, err
    drift = manager.plan(BODY)
    assert drift.changed and drift.reason.startswith("drift")
    manager.apply(BODY)
    assert "dport 9" not in manager.current()
    assert manager.plan(BODY).changed is False


@pytest.mark.netns
def test_changed_content_is_reported_and_applied(run, netns, tmp_path):
    manager = _manager(run, netns, tmp_path)
    manager.apply(BODY)
    new_body = BODY.replace("8081", "8082")
    plan = manager.plan(new_body)
    assert plan.changed and plan.reason == "content differs from the last applied content"
    assert "8081" in plan.before and "8082" in plan.after
    manager.apply(new_body)
    assert "8082" in manager.current() and "8081" not in manager.current()


@pytest.mark.netns
def test_invalid_content_changes_nothing_and_quotes_nft(run, netns, tmp_path):
    manager = _manager(run, netns, tmp_path)
    manager.apply(BODY)
    before = manager.current()
    with pytest.raises(NftError) as caught:
        manager.apply(BODY.replace("tcp dport 8081", "tcp dport 70000"))
    assert "nothing was changed" in str(caught.value)
    assert "70000" in caught.value.detail  # nft's own message, with the offending token
    assert manager.current() == before


@pytest.mark.netns
def test_other_tables_are_never_touched(run, netns, tmp_path):
    foreign = "table ip docker_like {\n chain forward {\n  type filter hook forward priority 0; policy accept;\n }\n}\n"
    rc, _out, err = run([*netns, "nft", "-f", "-"], foreign)
    assert rc == 0, err
    nft = Nft(run, argv=[*netns, "nft"])
    before = nft.list_table(TableRef("ip", "docker_like"))
    manager = _manager(run, netns, tmp_path)
    manager.apply(BODY)
    manager.apply(BODY.replace("8081", "8083"))
    manager.apply(None)
    assert nft.list_table(TableRef("ip", "docker_like")) == before
    assert nft.list_tables() == [("ip", "docker_like")]


@pytest.mark.netns
def test_absent_deletes_only_our_table(run, netns, tmp_path):
    manager = _manager(run, netns, tmp_path)
    assert manager.plan(None).changed is False
    manager.apply(BODY)
    plan = manager.apply(None)
    assert plan.changed and manager.current() is None
    assert manager.plan(None).changed is False
    # Forgetting the record means a later apply starts from scratch.
    assert manager.plan(BODY).reason == "table is absent"


@pytest.mark.netns
def test_rules_really_filter_traffic(run, netns, tmp_path):
    """Real packets: a listener on 8080 and 8081 in the namespace; only 8081 is dropped."""
    server = subprocess.Popen(
        [
            *netns,
            sys.executable,
            "-c",
            "import socket,time\nsocks=[socket.create_server(('127.0.0.1',p)) for p in (8080,8081)]\ntime.sleep(20)\n",
        ]
    )
    probe = (
        "import socket,sys\n"
        "try:\n socket.create_connection(('127.0.0.1',int(sys.argv[1])),timeout=1.0).close(); print('open')\n"
        "except OSError as e: print(type(e).__name__)\n"
    )
    try:
        for _attempt in range(50):
            if run([*netns, sys.executable, "-c", probe, "8081"])[1].strip() == "open":
                break
            time.sleep(0.1)
        manager = _manager(run, netns, tmp_path)
        manager.apply(BODY)
        assert run([*netns, sys.executable, "-c", probe, "8080"])[1].strip() == "open"
        assert run([*netns, sys.executable, "-c", probe, "8081"])[1].strip() in {"TimeoutError", "timeout"}
        # The drop rule counted the blocked SYNs.
        rc, listing, _err = run([*netns, "nft", "list", "table", "inet", "distsec_ut"])
        assert rc == 0 and "counter packets 0 " not in listing
    finally:
        server.kill()
        server.wait()
