# PRIVATE: the firewall module's core: pick a backend, plan, apply with read-back, and the
# commit-confirmed watchdog that reverts the host by itself (stdlib only, no Ansible import).
#
# Commit-confirmed, as network operating systems do it:
#   1. the run snapshots what we own, writes it to STATE/pending/TOKEN.json and arms a watchdog:
#      a detached process on the host (double fork, own session) that restores the snapshot at
#      the deadline unless TOKEN is confirmed before;
#   2. it applies the new ruleset and returns `pending: TOKEN`;
#   3. the controller opens a NEW connection and confirms (the action plugin does this). A new
#      connection is the proof that matters: an existing SSH session survives through
#      `ct state established` even when new connections are blocked.
# Exactly one of confirm and roll back wins: each renames TOKEN.pending, and rename is atomic.
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import signal
import subprocess
import time
import uuid
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ansible_collections.distsec.framework.plugins.module_utils._apply.backend import (
    Backend,
    BackendError,
    atomic_write,
)
from ansible_collections.distsec.framework.plugins.module_utils._apply.firewalld import FirewalldBackend
from ansible_collections.distsec.framework.plugins.module_utils._apply.iptables import IptablesBackend
from ansible_collections.distsec.framework.plugins.module_utils._apply.nftables import NftablesBackend

__all__ = [
    "BACKENDS",
    "Watchdog",
    "choose_backend",
    "make_backend",
    "subprocess_runner",
]

BACKENDS = ("nftables", "iptables", "iptables-legacy", "firewalld")


def subprocess_runner(argv: Sequence[str], stdin: Optional[str] = None) -> Tuple[int, str, str]:
    """The runner contract, on subprocess: works in the module and in the detached watchdog."""
    try:
        proc = subprocess.run(
            list(argv),
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
            env={**os.environ, "LC_ALL": "C", "LANG": "C"},
        )
    except FileNotFoundError as exc:
        return 127, "", f"{argv[0]}: command not found ({exc})"
    except subprocess.TimeoutExpired:
        return 124, "", f"{argv[0]}: timed out after 120 s"
    return proc.returncode, proc.stdout, proc.stderr


def choose_backend(requested: str, status: Dict[str, Any], which) -> Tuple[str, str]:
    """(backend name, why) for `requested` ('auto' or a name), from the Security Status and PATH."""
    if requested != "auto":
        return requested, "chosen by the task"
    backends = (status.get("firewall") or {}).get("backends") or {}
    firewalld = backends.get("firewalld") or {}
    if firewalld.get("running"):
        return "firewalld", "firewalld is running (its rules would be reloaded over ours)"
    if firewalld.get("running") is None and which("firewall-cmd"):
        rc, _out, _err = subprocess_runner(["firewall-cmd", "--state"])
        if rc == 0:
            return "firewalld", "firewalld is running (its rules would be reloaded over ours)"
    if which("nft"):
        return "nftables", "nft is installed (the default on Linux)"
    iptables = backends.get("iptables") or {}
    if iptables.get("variant") == "legacy" and which("iptables-legacy-restore"):
        return "iptables-legacy", "nft is missing; iptables runs the legacy variant"
    if which("iptables-nft-restore"):
        return "iptables", "nft is missing; iptables-nft is installed"
    if which("iptables-legacy-restore"):
        return "iptables-legacy", "only iptables-legacy is installed"
    raise BackendError(
        "no firewall backend found on the host: install nftables (recommended), iptables or firewalld, "
        "or set backend explicitly"
    )


def make_backend(name: str, state_dir: str, run=subprocess_runner) -> Backend:
    """The backend object for `name`; its state lives in `state_dir`."""
    if name == "nftables":
        return NftablesBackend(run, state_dir)
    if name in ("iptables", "iptables-legacy"):
        return IptablesBackend(run, state_dir, variant="legacy" if name == "iptables-legacy" else "nft")
    if name == "firewalld":
        return FirewalldBackend(run, state_dir)
    raise BackendError(f"unknown firewall backend {name!r}; use one of {', '.join(BACKENDS)}")


class Watchdog:
    """The host-side timer of commit-confirmed. Files live in STATE/pending/.

    The run holds `pending/.lock` from arming until the new ruleset is applied, read back and
    recorded; the watchdog takes the same lock before it rolls back, so the two never act on
    the ruleset at once. The deadline is the content of TOKEN.pending, which the run sets anew
    once its work is done (so a slow apply never eats the controller's confirmation window)
    and the watchdog re-reads on every poll.
    """

    def __init__(self, state_dir: str) -> None:
        self.dir = os.path.join(state_dir, "pending")
        self._lock_fd: Optional[int] = None

    def _path(self, token: str, suffix: str) -> str:
        if not token or not all(c in "0123456789abcdef-" for c in token):
            raise BackendError(f"invalid confirmation token {token!r}")
        return os.path.join(self.dir, f"{token}.{suffix}")

    # ---- the lock ------------------------------------------------------------------------
    def lock(self, timeout: float = 60.0) -> None:
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        fd = os.open(os.path.join(self.dir, ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        end = time.time() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.time() > end:
                    os.close(fd)
                    raise BackendError(
                        f"another distsec firewall run holds {self.dir}/.lock; try again when it is done"
                    ) from None
                time.sleep(0.1)
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    # ---- arming ----------------------------------------------------------------------------
    def busy(self) -> Optional[str]:
        """A token still waiting for its confirmation, if any (a run must not stack on it)."""
        if not os.path.isdir(self.dir):
            return None
        for name in sorted(os.listdir(self.dir)):
            if name.endswith(".pending"):
                token = name[: -len(".pending")]
                deadline = self._deadline(token)
                # A deadline long past: its watchdog is gone (the host rebooted); not blocking.
                if deadline is not None and deadline > time.time() - 120:
                    return token
        return None

    def _deadline(self, token: str) -> Optional[float]:
        try:
            with open(self._path(token, "pending"), encoding="utf-8") as handle:
                return float(handle.read().strip())
        except (OSError, ValueError):
            return None

    def extend(self, token: str, timeout: float) -> float:
        """Start the confirmation window now (after the apply); returns the new deadline."""
        deadline = time.time() + timeout
        atomic_write(self._path(token, "pending"), f"{deadline}\n")
        return deadline

    def arm(self, backend: Backend, snapshot: Dict[str, Any], timeout: float) -> Tuple[str, float]:
        """Start the detached watchdog (call with the lock held); returns (token, deadline)."""
        pending = self.busy()
        if pending:
            raise BackendError(
                f"an earlier change (token {pending}) is still waiting for its confirmation; "
                "wait until it is confirmed or rolled back, then run again"
            )
        token = f"{int(time.time())}-{uuid.uuid4().hex[:12]}"
        deadline = time.time() + timeout
        snapshot = {**snapshot, "_record": backend.record()}  # rolled back together with the ruleset
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        atomic_write(
            self._path(token, "json"),
            json.dumps({"backend": backend.name, "deadline": deadline, "snapshot": snapshot}, sort_keys=True),
        )
        atomic_write(self._path(token, "pending"), f"{deadline}\n")
        ready_r, ready_w = os.pipe()
        pid = os.fork()
        if pid:
            os.close(ready_w)
            os.waitpid(pid, 0)  # the first child exits at once; the grandchild is the watchdog
            ready = select.select([ready_r], [], [], 10.0)[0]
            answer = os.read(ready_r, 16) if ready else b""
            os.close(ready_r)
            if answer != b"ready":
                os.rename(self._path(token, "pending"), self._path(token, "cancelled"))
                raise BackendError("the rollback watchdog did not start on the host; nothing was changed")
            return token, deadline
        try:  # first child
            os.close(ready_r)
            os.setsid()
            if os.fork():
                os._exit(0)
            # grandchild: no terminal, no inherited pipes (the SSH session must be able to end)
            self._lock_fd = None
            signal.signal(signal.SIGHUP, signal.SIG_IGN)
            os.chdir("/")
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            os.write(ready_w, b"ready")
            os.closerange(3, 65536)  # also the inherited lock descriptor and the pipe
            self._watch(backend, snapshot, token)
        finally:
            os._exit(0)
        return token, deadline  # pragma: no cover (never reached)

    def _watch(self, backend: Backend, snapshot: Dict[str, Any], token: str) -> None:
        pending = self._path(token, "pending")
        while True:
            deadline = self._deadline(token)
            if deadline is None and not os.path.exists(pending):
                return  # confirmed or cancelled
            if deadline is not None and time.time() >= deadline:
                self.lock(timeout=3600)  # the run may still be applying: wait for it
                try:
                    deadline = self._deadline(token)
                    if deadline is None or time.time() < deadline:
                        continue  # confirmed, cancelled or extended meanwhile
                    try:
                        os.rename(pending, self._path(token, "rolling-back"))
                    except OSError:
                        return  # confirmed at the last moment
                    self.roll_back(backend, snapshot, token, "not confirmed before the deadline")
                    return
                finally:
                    self.unlock()
            time.sleep(0.2)

    def roll_back(self, backend: Backend, snapshot: Dict[str, Any], token: str, why: str) -> Dict[str, Any]:
        outcome: Dict[str, Any] = {"outcome": "rolled-back", "why": why, "at": time.time()}
        try:
            backend.restore(snapshot)
            if snapshot.get("_record"):
                atomic_write(backend.record_path, json.dumps(snapshot["_record"], sort_keys=True) + "\n")
            else:
                backend.forget()
        except Exception as exc:  # noqa: BLE001 - the watchdog must always leave a result behind
            outcome = {"outcome": "rollback-failed", "why": why, "error": str(exc), "at": time.time()}
        atomic_write(self._path(token, "result"), json.dumps(outcome, sort_keys=True) + "\n")
        return outcome

    def cancel(self, token: str) -> bool:
        """Disarm without rolling back (the run reverted by itself). True when it was still pending."""
        try:
            os.rename(self._path(token, "pending"), self._path(token, "cancelled"))
            return True
        except OSError:
            return False

    def confirm(self, token: str) -> Dict[str, Any]:
        """Keep the new ruleset. {'outcome': 'confirmed'} or what happened instead."""
        try:
            os.rename(self._path(token, "pending"), self._path(token, "confirmed"))
        except OSError:
            return self.outcome(token)
        self._cleanup(token)
        return {"outcome": "confirmed", "at": time.time()}

    def outcome(self, token: str) -> Dict[str, Any]:
        """What became of a token: pending, confirmed, rolled-back, rollback-failed, rolling-back, unknown."""
        result = self._path(token, "result")
        if os.path.exists(result):
            try:
                with open(result, encoding="utf-8") as handle:
                    return json.load(handle)
            except (OSError, ValueError):
                pass
        deadline = self._deadline(token)
        if deadline is not None:
            return {"outcome": "pending", "remaining": round(deadline - time.time(), 2)}
        for state in ("confirmed", "rolling-back", "cancelled"):
            if os.path.exists(self._path(token, state)):
                return {"outcome": state}
        return {"outcome": "unknown"}

    def _cleanup(self, token: str) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self._path(token, "json"))

    def prune(self, keep_seconds: float = 7 * 86400) -> List[str]:
        """Remove old token files (results are kept a week for the report); a pending one only
        when its deadline is a day past (its watchdog is gone, e.g. after a reboot)."""
        removed: List[str] = []
        if not os.path.isdir(self.dir):
            return removed
        limit = time.time() - keep_seconds
        for name in os.listdir(self.dir):
            path = os.path.join(self.dir, name)
            try:
                if name.endswith(".pending"):
                    deadline = self._deadline(name[: -len(".pending")])
                    stale = deadline is None or deadline < time.time() - 86400
                else:
                    stale = not name.startswith(".") and os.path.getmtime(path) < limit
                if stale:
                    os.unlink(path)
                    removed.append(name)
            except (OSError, BackendError):
                pass
        return removed
