# PRIVATE: the contract every firewall backend implements, and the logic they share (stdlib only).
#
# The firewall module drives a backend through these steps, whatever the backend:
#   render -> validate (the backend's own checker) -> snapshot -> apply (atomic) ->
#   read back (in_effect vs intended; a difference is reverted) -> commit-confirmed.
# A backend owns only its own objects (our nftables table, our iptables chains, our firewalld
# policies and ipsets) and lists the others without touching them.
#
# No Ansible import: the caller passes `run(argv, stdin) -> (rc, out, err)`.
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

__all__ = [
    "Artefacts",
    "Backend",
    "BackendError",
    "Plan",
    "Runner",
    "atomic_write",
    "rule_diff",
    "sha256",
]

Runner = Callable[[Sequence[str], Optional[str]], Tuple[int, str, str]]
# What a renderer produces: artefact name -> text, e.g. {"ruleset.nft": ...} or
# {"rules.v4": ..., "rules.v6": ...}. Names are stable; the order of keys does not matter.
Artefacts = Dict[str, str]


class BackendError(Exception):
    """The backend refused or failed; `detail` is its own message, `rule` the PSL rule id if known."""

    def __init__(self, message: str, *, detail: str = "", rule: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = (detail or "").strip()
        self.rule = rule

    def __str__(self) -> str:
        text = self.message
        if self.rule:
            text = f"rule {self.rule}: {text}"
        return f"{text}: {self.detail}" if self.detail else text


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def atomic_write(path: str, text: str, mode: int = 0o600) -> None:
    """Write `text` to `path` so a crash leaves the old file or the new one, never a torn one."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, mode=0o750, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def rule_diff(before: Dict[str, List[str]], after: Dict[str, List[str]]) -> Dict[str, List[str]]:
    """Rule-level differences by rule id: {'added': [...], 'removed': [...], 'moved': [...]} as 'chain: id'."""
    added: List[str] = []
    removed: List[str] = []
    moved: List[str] = []
    for chain in sorted(set(before) | set(after)):
        old = before.get(chain, [])
        new = after.get(chain, [])
        if old == new:
            continue
        old_count, new_count = Counter(old), Counter(new)
        added.extend(f"{chain}: {rid}" for rid in dict.fromkeys(new) if new_count[rid] > old_count[rid])
        removed.extend(f"{chain}: {rid}" for rid in dict.fromkeys(old) if old_count[rid] > new_count[rid])
        common_old = [r for r in dict.fromkeys(old) if r in new_count]
        common_new = [r for r in dict.fromkeys(new) if r in old_count]
        if common_old != common_new:
            out_of_place = [r for r, s in zip(common_old, common_new) if r != s]
            moved.append(f"{chain}: order of {', '.join(out_of_place)}")
    return {"added": added, "removed": removed, "moved": moved}


@dataclass
class Plan:
    """What a run would do: changed or not, why, and the rule-level differences."""

    changed: bool
    reason: str
    drift: bool = False
    before: str = ""
    after: str = ""
    rules: Dict[str, List[str]] = field(default_factory=lambda: {"added": [], "removed": [], "moved": []})


class Backend:
    """Base class: subclasses implement the primitives below; idempotence and drift are shared.

    Primitives (raise BackendError on failure, never leave the host half changed):
      render(compiled, profile, rules) -> Artefacts     pure; RenderError on bad input
      validate(artefacts)                              the backend's own checker; no change
      snapshot() -> dict                               JSON-able; restores exactly what we own now
      apply(artefacts)                                 atomic per transaction
      restore(snapshot)                                put a snapshot back (rollback, watchdog)
      current() -> str                                 normalised text of what we own ('' if none)
      expected(artefacts) -> Optional[str]             normalised text `current()` will show after
                                                       apply, when predictable; None otherwise
      in_effect() -> {chain: [rule ids]}               read back from the kernel / daemon
      intended(artefacts) -> {chain: [rule ids]}       the same, from the artefacts
      others() -> [str]                                other owners' tables / chains / policies
    """

    name = "base"

    def __init__(self, run: Runner, state_dir: str) -> None:
        self.run = run
        self.state_dir = state_dir

    # ---- primitives -------------------------------------------------------------------
    def render(self, compiled: Dict[str, Any], profile: str, rules: List[Dict[str, Any]]) -> Artefacts:
        raise NotImplementedError

    def validate(self, artefacts: Artefacts) -> None:
        raise NotImplementedError

    def snapshot(self) -> Dict[str, Any]:
        raise NotImplementedError

    def apply(self, artefacts: Artefacts) -> None:
        raise NotImplementedError

    def restore(self, snapshot: Dict[str, Any]) -> None:
        raise NotImplementedError

    def current(self) -> str:
        raise NotImplementedError

    def expected(self, artefacts: Artefacts) -> Optional[str]:
        return None

    def in_effect(self) -> Dict[str, List[str]]:
        raise NotImplementedError

    def intended(self, artefacts: Artefacts) -> Dict[str, List[str]]:
        raise NotImplementedError

    def others(self) -> List[str]:
        return []

    def in_effect_of(self, current: str) -> Dict[str, List[str]]:
        """in_effect() from a current() text already read; backends that can parse it save a call."""
        return self.in_effect()

    # ---- shared -----------------------------------------------------------------------
    @property
    def record_path(self) -> str:
        return os.path.join(self.state_dir, f"{self.name}.json")

    def record(self) -> Dict[str, Any]:
        try:
            with open(self.record_path, encoding="utf-8") as handle:
                data = json.load(handle)
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def write_record(self, artefacts: Artefacts, current: str, **extra: Any) -> None:
        record = {
            "backend": self.name,
            "artefacts_sha256": sha256(json.dumps(artefacts, sort_keys=True)),
            "current_sha256": sha256(current),
            **extra,
        }
        atomic_write(self.record_path, json.dumps(record, sort_keys=True) + "\n")

    def forget(self) -> None:
        if os.path.exists(self.record_path):
            os.unlink(self.record_path)

    def plan(self, artefacts: Artefacts) -> Plan:
        """Compare what we own now with what `artefacts` would make it; touches nothing."""
        current = self.current()
        record = self.record()
        intended = self.intended(artefacts)
        in_effect = self.in_effect_of(current) if current else {}
        expected = self.expected(artefacts)
        after = (
            expected
            if expected is not None
            else "\n".join(f"{name}:\n{text}" for name, text in sorted(artefacts.items()))
        )
        rules = rule_diff(in_effect, intended)
        if not current:
            return Plan(True, "nothing of ours is loaded", False, "", after, rules)
        same_source = record.get("artefacts_sha256") == sha256(json.dumps(artefacts, sort_keys=True))
        if same_source and record.get("current_sha256") == sha256(current):
            return Plan(False, "up to date", False, current, current, rules)
        if same_source:
            return Plan(True, "drift: changed outside distsec since it was applied", True, current, after, rules)
        if not record:
            return Plan(True, "no record of what was applied", False, current, after, rules)
        return Plan(True, "the policy's ruleset differs from the one applied", False, current, after, rules)
