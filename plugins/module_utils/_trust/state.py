# PRIVATE: the host's trusted state (STATEDIR/root.json, bundle.json, state.json), read with size
# caps and written atomically (docs/dev/trust-design.md, "Trusted state on the host").
#
# Runs on hosts: stdlib + cryptography (through verify.py), Python 3.9.
#
# Crash safety: each file is replaced by write temp (same directory) -> fsync -> os.replace ->
# fsync of the directory, so each file is the old or the new one. accept() writes bundle.json,
# then root.json, then state.json: at every point the stored bundle verifies against the stored
# root and state (as the same bundle, or as a newer one that accept() then finishes recording).
from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from typing import Any, Callable, Dict, List, Optional

from ansible_collections.distsec.framework.plugins.module_utils._trust.canonical import (
    StrictJSONError,
    canonical,
    format_time,
    loads_strict,
)
from ansible_collections.distsec.framework.plugins.module_utils._trust.root import (
    MAX_ROOT,
    TrustError,
    check_trusted_root,
)
from ansible_collections.distsec.framework.plugins.module_utils._trust.verify import (
    MAX_BUNDLE,
    Accepted,
    check_state,
    verify_bundle,
)

__all__ = [
    "DEFAULT_INITIAL_ROOT",
    "DEFAULT_STATEDIR",
    "MAX_STATE",
    "TMP_PREFIX",
    "TrustStore",
    "atomic_write_bytes",
    "fsync_dir",
    "read_bundle",
    "read_capped",
    "read_trusted_root",
]

DEFAULT_STATEDIR = "/var/lib/distsec/trust"
DEFAULT_INITIAL_ROOT = "/etc/distsec/root.json"
MAX_STATE = 64 * 1024
TMP_PREFIX = ".tmp-distsec-"

# Tests only: called as FAULT_HOOK(step, path) at each step of atomic_write_bytes (steps:
# "before-write", "after-write", "after-fsync", "after-rename", "after-dirsync"), e.g. to
# kill the process there. None in production.
FAULT_HOOK: Optional[Callable[[str, str], None]] = None


def _fault(step: str, path: str) -> None:
    if FAULT_HOOK is not None:
        FAULT_HOOK(step, path)


def read_capped(path: str, cap: int) -> Optional[bytes]:
    """The file's bytes, None if it does not exist; TrustError if unreadable or larger than `cap`."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(cap + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise TrustError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(data) > cap:
        raise TrustError(f"{path}: larger than {cap} bytes")
    return data


def read_bundle(path: str) -> bytes:
    """A bundle file's bytes, at most MAX_BUNDLE + 1 of them (verify_bundle then says too-large).

    Raises OSError as open() does (FileNotFoundError, PermissionError, ...).
    """
    with open(path, "rb") as handle:
        return handle.read(MAX_BUNDLE + 1)


def fsync_dir(directory: str) -> None:
    """fsync a directory (so a rename in it is durable); a no-op where the file system cannot."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:  # some file systems cannot fsync a directory
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


def atomic_write_bytes(
    path: str, data: bytes, mode: int = 0o600, *, fault: Optional[Callable[[str, str], None]] = None
) -> None:
    """Replace `path` by `data` so that a crash leaves the old file or the new one, never a torn one.

    fault: tests only, called as fault(step, path) at each step instead of this module's FAULT_HOOK
    (the domain PKI's host store passes its own hook).
    """
    hook = fault or _fault
    directory = os.path.dirname(path) or "."
    hook("before-write", path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=TMP_PREFIX)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            hook("after-write", path)
            os.fsync(handle.fileno())
        hook("after-fsync", path)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    hook("after-rename", path)
    fsync_dir(directory)
    hook("after-dirsync", path)


class TrustStore:
    """STATEDIR: the trusted root, the accepted bundle and the trusted state of one host."""

    def __init__(self, statedir: str = DEFAULT_STATEDIR, initial_root_path: str = DEFAULT_INITIAL_ROOT) -> None:
        self.statedir = statedir
        self.initial_root_path = initial_root_path
        self.root_path = os.path.join(statedir, "root.json")
        self.bundle_path = os.path.join(statedir, "bundle.json")
        self.state_path = os.path.join(statedir, "state.json")

    def _ensure_dir(self) -> None:
        try:
            os.makedirs(self.statedir, mode=0o700, exist_ok=True)
        except OSError as exc:
            raise TrustError(f"{self.statedir}: cannot create: {exc.strerror or exc}") from None

    @staticmethod
    def _load_json(path: str, data: bytes) -> Any:
        try:
            return loads_strict(data)
        except StrictJSONError as exc:
            raise TrustError(f"{path}: {exc}") from None

    def load_root(self) -> Dict[str, Any]:
        """The trusted root; copied from the initial root when STATEDIR/root.json is missing."""
        data = read_capped(self.root_path, MAX_ROOT)
        path = self.root_path
        if data is None:
            path = self.initial_root_path
            data = read_capped(path, MAX_ROOT)
            if data is None:
                raise TrustError(
                    f"no trusted root: neither {self.root_path} nor {self.initial_root_path} exists "
                    "(install the domain's root.json, from `distsec keys init`, as the latter)"
                )
        root = self._load_json(path, data)
        try:
            check_trusted_root(root)
        except TrustError as exc:
            raise TrustError(f"{path}: {exc}") from None
        if path != self.root_path:
            self._ensure_dir()
            try:
                atomic_write_bytes(self.root_path, canonical(root), 0o644)
            except OSError as exc:
                raise TrustError(f"{self.root_path}: cannot write: {exc.strerror or exc}") from None
        return root

    def load_state(self) -> Optional[Dict[str, Any]]:
        """The trusted state, None before the first accepted bundle."""
        data = read_capped(self.state_path, MAX_STATE)
        if data is None:
            return None
        try:
            return check_state(self._load_json(self.state_path, data))
        except TrustError as exc:
            raise TrustError(f"{self.state_path}: {exc}") from None

    def load_bundle(self) -> Optional[bytes]:
        """The accepted bundle as received (to re-verify it), None if there is none."""
        return read_capped(self.bundle_path, MAX_BUNDLE)

    def verify(self, data: bytes, *, host: Optional[str], groups: List[str], now: float) -> Accepted:
        """verify_bundle() against this store's trusted root and state (writes nothing but a first root copy)."""
        return verify_bundle(
            data, trusted_root=self.load_root(), state=self.load_state(), host=host, groups=groups, now=now
        )

    def _remove_stale_temps(self) -> None:
        try:
            names = os.listdir(self.statedir)
        except OSError:
            return
        for name in names:
            if name.startswith(TMP_PREFIX):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(self.statedir, name))

    def accept(self, data: bytes, accepted: Accepted, *, now: float) -> Dict[str, Any]:
        """Record an accepted bundle: bundle.json, root.json (if newer), then state.json. Returns the state.

        An unchanged bundle (same serial and manifest) changes nothing.
        """
        current = self.load_state()
        if accepted.unchanged and current is not None:
            return current
        self._ensure_dir()
        self._remove_stale_temps()
        state = {
            "serial": accepted.serial,
            "manifest_sha256": accepted.manifest_sha256,
            "root_version": accepted.root_version,
            "accepted_at": format_time(now),
            "domain": accepted.domain,
        }
        try:
            atomic_write_bytes(self.bundle_path, bytes(data), 0o600)
            stored = read_capped(self.root_path, MAX_ROOT)
            new_root = canonical(accepted.root)
            if stored != new_root:
                atomic_write_bytes(self.root_path, new_root, 0o644)
            atomic_write_bytes(self.state_path, canonical(state) + b"\n", 0o600)
        except OSError as exc:
            raise TrustError(f"{self.statedir}: cannot write the trusted state: {exc.strerror or exc}") from None
        return state


def read_trusted_root(store: TrustStore) -> Dict[str, Any]:
    """The host's trusted root, read without writing anything (TrustStore.load_root copies the initial one)."""
    for path in (store.root_path, store.initial_root_path):
        data = read_capped(path, MAX_ROOT)
        if data is None:
            continue
        try:
            return check_trusted_root(loads_strict(data))
        except (StrictJSONError, TrustError) as exc:
            raise TrustError(f"{path}: {exc}") from None
    raise TrustError(
        f"no trusted root: neither {store.root_path} nor {store.initial_root_path} exists "
        "(install the domain's root.json, from `distsec keys init`, as the latter)"
    )
