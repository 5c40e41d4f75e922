"""TrustStore: loading with size caps, the first root copy, atomic acceptance, and crashes.

The crash tests fork a child that records a newer bundle (which also rotates the root) and
SIGKILLs itself at one step of writing one file. Afterwards every file is the old or the new
one, the store loads, and the next verification behaves as the surviving state says.
"""

from __future__ import annotations

import json
import os
import signal
import stat

import pytest
from trust_helpers import NOW, bundle, root, trusted_root_v1

from ansible_collections.distsec.framework.plugins.module_utils._trust import state as state_mod
from ansible_collections.distsec.framework.plugins.module_utils._trust.canonical import canonical
from ansible_collections.distsec.framework.plugins.module_utils._trust.root import MAX_ROOT, TrustError
from ansible_collections.distsec.framework.plugins.module_utils._trust.state import (
    MAX_STATE,
    TMP_PREFIX,
    TrustStore,
    atomic_write_bytes,
    read_bundle,
)
from ansible_collections.distsec.framework.plugins.module_utils._trust.verify import MAX_BUNDLE, Rejected

ROOT_V2 = root(2, [2], 1, [1, 2], policy_keys=[101])
BUNDLE_1 = bundle(serial=1)
BUNDLE_2 = bundle(serial=2, signers=[101], roots=[ROOT_V2])
FILES = ("bundle.json", "root.json", "state.json")  # the order accept() writes them in
STEPS = ("before-write", "after-write", "after-fsync", "after-rename", "after-dirsync")


@pytest.fixture
def initial(tmp_path):
    path = tmp_path / "etc-root.json"
    path.write_bytes(canonical(trusted_root_v1()))
    return path


@pytest.fixture
def store(tmp_path, initial):
    return TrustStore(str(tmp_path / "trust"), initial_root_path=str(initial))


def _accept(store, data, now=NOW):
    accepted = store.verify(data, host="web1", groups=[], now=now)
    return accepted, store.accept(data, accepted, now=now)


def _read(store, name):
    with open(os.path.join(store.statedir, name), "rb") as handle:
        return handle.read()


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_first_root_is_copied_from_the_initial_path(store):
    assert not os.path.exists(store.root_path)
    assert store.load_root() == trusted_root_v1()
    assert os.path.exists(store.root_path) and _mode(store.root_path) == 0o644
    assert _mode(store.statedir) == 0o700


def test_no_root_anywhere_is_a_trust_error(tmp_path):
    store = TrustStore(str(tmp_path / "trust"), initial_root_path=str(tmp_path / "missing.json"))
    with pytest.raises(TrustError, match="no trusted root"):
        store.load_root()


@pytest.mark.parametrize(
    "content",
    [b"", b"{", b"[]", canonical(root(1, [1], 1, [])), b" " * (MAX_ROOT + 1)],
    ids=["empty", "not-json", "list", "unsigned", "too-large"],
)
def test_a_bad_initial_root_is_a_trust_error(store, initial, content):
    initial.write_bytes(content)
    with pytest.raises(TrustError):
        store.load_root()
    assert not os.path.exists(store.root_path)


def test_accept_writes_the_three_files(store):
    accepted, state = _accept(store, BUNDLE_1)
    assert state == store.load_state()
    assert state["serial"] == 1 and state["root_version"] == 1 and state["domain"] == "example.org"
    assert state["manifest_sha256"] == accepted.manifest_sha256
    assert state["accepted_at"] == "2027-01-15T08:00:00Z"
    assert store.load_bundle() == BUNDLE_1
    assert (_mode(store.state_path), _mode(store.bundle_path), _mode(store.root_path)) == (0o600, 0o600, 0o644)


def test_accept_of_a_rotating_bundle_stores_the_new_root(store):
    _accept(store, BUNDLE_1)
    state = _accept(store, BUNDLE_2)[1]
    assert store.load_root() == ROOT_V2 and state["root_version"] == 2
    # the old bundle is now refused: its policy key is no longer in the trusted root
    with pytest.raises(Rejected) as caught:
        store.verify(BUNDLE_1, host="web1", groups=[], now=NOW)
    assert caught.value.reason == "threshold-not-met"  # signed by policy key 100, no longer in the root


def test_unchanged_bundle_changes_nothing(store):
    _accept(store, BUNDLE_1, now=NOW)
    before = {name: (store.statedir + "/" + name, os.stat(store.statedir + "/" + name).st_mtime_ns) for name in FILES}
    accepted, state = _accept(store, BUNDLE_1, now=NOW + 100)
    assert accepted.unchanged and state["accepted_at"] == "2027-01-15T08:00:00Z"
    assert before == {name: (path, os.stat(path).st_mtime_ns) for name, (path, mtime) in before.items()}


def test_rollback_after_acceptance(store):
    _accept(store, bundle(serial=5))
    with pytest.raises(Rejected) as caught:
        store.verify(bundle(serial=4), host="web1", groups=[], now=NOW)
    assert caught.value.reason == "rollback"


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("state.json", b"{"),
        ("state.json", b'{"serial": 1}'),
        ("state.json", b" " * (MAX_STATE + 1)),
        ("root.json", b"null"),
    ],
)
def test_corrupt_stored_files_are_trust_errors(store, name, content):
    _accept(store, BUNDLE_1)
    with open(os.path.join(store.statedir, name), "wb") as handle:
        handle.write(content)
    with pytest.raises(TrustError, match=name):
        store.verify(BUNDLE_1, host="web1", groups=[], now=NOW)


def test_read_bundle_is_capped(tmp_path):
    path = tmp_path / "big.bundle.json"
    with open(path, "wb") as handle:
        handle.truncate(MAX_BUNDLE + 100)
    assert len(read_bundle(str(path))) == MAX_BUNDLE + 1


def test_stored_bundle_too_large_is_a_trust_error(store):
    _accept(store, BUNDLE_1)
    with open(store.bundle_path, "wb") as handle:
        handle.truncate(MAX_BUNDLE + 1)
    with pytest.raises(TrustError, match="larger than"):
        store.load_bundle()


def test_atomic_write_leaves_no_temp_on_error(tmp_path, monkeypatch):
    target = tmp_path / "f"
    target.write_bytes(b"old")

    def boom(step, path):
        if step == "after-fsync":
            raise OSError("disk on fire")

    monkeypatch.setattr(state_mod, "FAULT_HOOK", boom)
    with pytest.raises(OSError):
        atomic_write_bytes(str(target), b"new")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f"]


# ------------------------------------------------------------------ crashes


def _crash_child(store: TrustStore, file_name: str, step: str) -> None:
    """In a forked child: accept BUNDLE_2, SIGKILL at (step, file_name)."""

    def hook(at, path):
        if at == step and os.path.basename(path) == file_name:
            os.kill(os.getpid(), signal.SIGKILL)

    state_mod.FAULT_HOOK = hook
    accepted = store.verify(BUNDLE_2, host="web1", groups=[], now=NOW + 10)
    store.accept(BUNDLE_2, accepted, now=NOW + 10)


def _run_killed(store: TrustStore, file_name: str, step: str) -> None:
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 3
        try:
            _crash_child(store, file_name, step)
            code = 0
        finally:
            os._exit(code)
    status = os.waitpid(pid, 0)[1]
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, f"child ended with {status}"


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("file_name", FILES)
def test_crash_while_accepting_leaves_old_or_new(store, file_name, step):
    _accept(store, BUNDLE_1)
    old = {name: _read(store, name) for name in FILES}
    _run_killed(store, file_name, step)

    # every file is exactly the old or the new one; which ones is given by the write order
    done = FILES.index(file_name) + (step in ("after-rename", "after-dirsync"))
    for index, name in enumerate(FILES):
        content = _read(store, name)
        assert (content != old[name]) == (index < done), f"{name} after a kill at {step} of {file_name}"

    # the store loads, and what it says is consistent
    stored_root = store.load_root()
    state = store.load_state()
    assert stored_root["signed"]["version"] == (2 if done >= 2 else 1)
    assert state["serial"] == (2 if done >= 3 else 1)

    # the stored bundle re-verifies against the stored root and state
    again = store.verify(store.load_bundle(), host="web1", groups=[], now=NOW + 20)
    assert again.serial == (2 if done >= 1 else 1)
    assert again.unchanged == (done in (0, 3))

    # pushing the new bundle again completes (or confirms) the acceptance; temps are cleaned
    accepted, state = _accept(store, BUNDLE_2, now=NOW + 30)
    assert accepted.unchanged == (done >= 3)
    assert state["serial"] == 2 and store.load_root() == ROOT_V2
    assert not [n for n in os.listdir(store.statedir) if n.startswith(TMP_PREFIX)]
    with pytest.raises(Rejected):
        store.verify(BUNDLE_1, host="web1", groups=[], now=NOW + 40)


def test_state_file_is_json_with_the_designs_keys(store):
    _accept(store, BUNDLE_1)
    with open(store.state_path, encoding="utf-8") as handle:
        data = json.load(handle)
    assert sorted(data) == ["accepted_at", "domain", "manifest_sha256", "root_version", "serial"]
