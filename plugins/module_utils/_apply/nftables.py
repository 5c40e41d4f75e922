# PRIVATE: manage one nftables table as a unit: validate, replace atomically, read back.
#
# No Ansible import: the caller passes a `run` function (argv, stdin) -> (rc, out, err),
# which is AnsibleModule.run_command in the module and subprocess in tests and the CLI.
from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Tuple

from ansible_collections.distsec.framework.plugins.module_utils._apply.backend import Backend, BackendError
from ansible_collections.distsec.framework.plugins.module_utils._render.nftables import render

__all__ = [
    "FAMILIES",
    "Nft",
    "NftError",
    "NftablesBackend",
    "Plan",
    "TableManager",
    "TableRef",
    "normalize_listing",
]

Runner = Callable[[Sequence[str], Optional[str]], Tuple[int, str, str]]

FAMILIES = ("inet", "ip", "ip6", "arp", "bridge", "netdev")
# nft identifiers: a letter or underscore, then letters, digits, '_', '.', '/', '-' (kept short).
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}$")
# Values that change while the ruleset is unchanged: packet/byte counters, quota usage,
# handles printed with -a.
_DYNAMIC = [
    (re.compile(r"\bcounter packets \d+ bytes \d+"), "counter"),
    (re.compile(r"\bpackets \d+ bytes \d+"), ""),
    (re.compile(r"\bused \d+ (bytes|kbytes|mbytes)"), ""),
    (re.compile(r"\s*# handle \d+"), ""),
]


class NftError(Exception):
    """nft refused a command; `detail` is its own message (with line and column)."""

    def __init__(self, message: str, *, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail.strip()

    def __str__(self) -> str:
        return f"{self.message}: {self.detail}" if self.detail else self.message


@dataclass(frozen=True)
class TableRef:
    family: str
    name: str

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise NftError(f"unknown nftables family {self.family!r}; use one of {', '.join(FAMILIES)}")
        if not _NAME_RE.match(self.name):
            raise NftError(
                f"invalid nftables table name {self.name!r}: start with a letter or '_', "
                "then letters, digits, '_', '.', '-' (at most 64 characters)"
            )

    def __str__(self) -> str:
        return f"{self.family} {self.name}"


def normalize_listing(text: str) -> str:
    """The kernel's listing of a table with counters, quota usage and handles removed."""
    lines = []
    for raw in text.splitlines():
        line = raw
        for pattern, repl in _DYNAMIC:
            line = pattern.sub(repl, line)
        line = line.rstrip(" \t")
        if line.strip():
            lines.append(line)
    return "\n".join(lines) + ("\n" if lines else "")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Nft:
    """The nft command, run through an injected runner."""

    def __init__(self, run: Runner, *, argv: Sequence[str] = ("nft",)) -> None:
        self._run = run
        self._argv = list(argv)

    def _call(self, args: Sequence[str], stdin: Optional[str] = None) -> Tuple[int, str, str]:
        return self._run(self._argv + list(args), stdin)

    def check(self, script: str) -> None:
        """Validate a script in the kernel without committing it (nft -c)."""
        rc, _out, err = self._call(["-c", "-f", "-"], script)
        if rc != 0:
            raise NftError("nft -c rejected the ruleset; nothing was changed", detail=err)

    def apply(self, script: str) -> None:
        """Apply a script as one transaction: all of it or nothing."""
        rc, _out, err = self._call(["-f", "-"], script)
        if rc != 0:
            raise NftError("nft -f failed; the kernel kept the previous ruleset", detail=err)

    def list_table(self, ref: TableRef) -> Optional[str]:
        """The kernel's listing of a table, or None when it does not exist."""
        rc, out, err = self._call(["list", "table", ref.family, ref.name])
        if rc == 0:
            return out
        if "No such file or directory" in err or "does not exist" in err:
            return None
        raise NftError(f"cannot list table {ref}", detail=err)

    def list_tables(self) -> list:
        """All tables in the ruleset as (family, name) pairs, from nft -j."""
        rc, out, err = self._call(["-j", "list", "tables"])
        if rc != 0:
            raise NftError("cannot list nftables tables", detail=err)
        try:
            items = json.loads(out or "{}").get("nftables", [])
        except ValueError as exc:
            raise NftError("nft -j printed something that is not JSON", detail=str(exc)) from None
        return [(i["table"]["family"], i["table"]["name"]) for i in items if "table" in i]


def replace_script(ref: TableRef, body: str) -> str:
    """One transaction that creates the table if needed, deletes it and loads the new body.

    Loaded with a single `nft -f`, the kernel swaps old for new atomically: no packet
    ever sees an empty or half-built table. One exception the renderers must cover: the
    kernel gives a new base chain its drop policy only after its rules are live and the old
    chain is unhooked, so each drop chain ends with an explicit drop rule (_render/nftables.py).
    """
    return f"table {ref}\ndelete table {ref}\ntable {ref} {{\n{body.rstrip()}\n}}\n"


def delete_script(ref: TableRef) -> str:
    return f"delete table {ref}\n"


@dataclass
class Plan:
    changed: bool
    reason: str
    before: str
    after: str
    present: bool


class TableManager:
    """Decide, then act, for one table whose whole content we own.

    Idempotence: the record in `state_dir` holds the hash of the source last applied and
    of the kernel's normalised listing right after. A run changes nothing when the
    source is the same and the kernel still lists the same thing; a rule added or removed
    by hand shows up as drift and is undone by the next apply.
    """

    def __init__(self, nft: Nft, ref: TableRef, state_dir: str) -> None:
        self.nft = nft
        self.ref = ref
        self.state_path = os.path.join(state_dir, f"{ref.family}-{ref.name}.json")

    def _record(self) -> dict:
        try:
            with open(self.state_path, encoding="utf-8") as handle:
                data = json.load(handle)
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def _write_record(self, source: str, listing: str) -> None:
        directory = os.path.dirname(self.state_path)
        os.makedirs(directory, mode=0o750, exist_ok=True)
        record = {
            "table": str(self.ref),
            "source_sha256": _sha256(source),
            "listing_sha256": _sha256(listing),
        }
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(record, handle, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.state_path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def _forget(self) -> None:
        if os.path.exists(self.state_path):
            os.unlink(self.state_path)

    def current(self) -> Optional[str]:
        listing = self.nft.list_table(self.ref)
        return None if listing is None else normalize_listing(listing)

    def plan(self, body: Optional[str]) -> Plan:
        """What would change to make the table hold `body` (None: the table is absent)."""
        current = self.current()
        before = current or ""
        if body is None:
            if current is None:
                return Plan(False, "table is absent", before, "", present=False)
            return Plan(True, "table is present and will be deleted", before, "", present=False)
        desired = replace_script(self.ref, body)
        record = self._record()
        if current is None:
            reason = "table is absent"
        elif record.get("source_sha256") != _sha256(desired):
            reason = "content differs from the last applied content" if record else "no record of the applied content"
        elif record.get("listing_sha256") != _sha256(current):
            reason = "drift: the table was changed outside distsec since it was applied"
        else:
            return Plan(False, "table is up to date", before, before, present=True)
        return Plan(
            True, reason, before, normalize_listing(f"table {self.ref} {{\n{body.rstrip()}\n}}\n"), present=True
        )

    def validate(self, body: str) -> None:
        self.nft.check(replace_script(self.ref, body))

    def apply(self, body: Optional[str]) -> Plan:
        """Make it so. Raises NftError without changing anything when nft refuses."""
        plan = self.plan(body)
        if not plan.changed:
            return plan
        if body is None:
            self.nft.apply(delete_script(self.ref))
            self._forget()
            if self.nft.list_table(self.ref) is not None:
                raise NftError(f"table {self.ref} is still listed after it was deleted")
            return plan
        script = replace_script(self.ref, body)
        self.nft.check(script)
        self.nft.apply(script)
        listing = self.current()
        if listing is None:
            raise NftError(f"table {self.ref} is missing right after it was applied")
        self._write_record(script, listing)
        plan.after = listing
        return plan


# ---- the firewall module's nftables backend ------------------------------------------------

_LINE_RE = re.compile(r"^(?:/dev/stdin|-):(\d+):")
_COMMENT_RE = re.compile(r'comment "([^"]*)"\s*$')
_POLICY_RE = re.compile(r"\bpolicy (accept|drop);")


def rule_ids(listing: str) -> dict:
    """{chain: ['policy drop', rule id, ...]} from a table listing or a rendered body.

    A rule without a comment (added by hand) appears as '?: <rule text>'.
    """
    chains: dict = {}
    chain = None
    for raw in listing.splitlines():
        line = raw.strip()
        if line.startswith("chain ") and line.endswith("{"):
            chain = line[len("chain ") : -1].strip()
            chains[chain] = []
        elif chain is not None and line == "}":
            chain = None
        elif chain is not None and line:
            if line.startswith("type "):
                match = _POLICY_RE.search(line)
                chains[chain].append(f"policy {match.group(1) if match else 'accept'}")
                continue
            match = _COMMENT_RE.search(line)
            chains[chain].append(match.group(1) if match else f"?: {line}")
    return chains


class NftablesBackend(Backend):
    """The `inet distsec` table through the Backend contract (see backend.py)."""

    name = "nftables"

    def __init__(self, run: Runner, state_dir: str, *, argv: Sequence[str] = ("nft",), table: str = "inet distsec"):
        super().__init__(run, state_dir)
        family, name = table.split()
        self.ref = TableRef(family, name)
        self.nft = Nft(run, argv=argv)

    def _raise(self, exc: NftError, script: str) -> None:
        rule = None
        for line in exc.detail.splitlines():
            match = _LINE_RE.match(line.strip())
            if match:
                lines = script.splitlines()
                number = int(match.group(1))
                if 0 < number <= len(lines):
                    found = _COMMENT_RE.search(lines[number - 1].strip())
                    rule = found.group(1) if found else None
                break
        raise BackendError(exc.message, detail=exc.detail, rule=rule) from None

    def render(self, compiled, profile, rules):
        return {"table.nft": render(compiled, profile, rules)}

    def validate(self, artefacts) -> None:
        script = replace_script(self.ref, artefacts["table.nft"])
        try:
            self.nft.check(script)
        except NftError as exc:
            self._raise(exc, script)

    def snapshot(self) -> dict:
        """The table as listed now; checked with nft -c, since a rollback must be able to load it."""
        try:
            listing = self.nft.list_table(self.ref)
            if listing is not None:
                self.nft.check(f"table {self.ref}\ndelete table {self.ref}\n{listing}")
        except NftError as exc:
            raise BackendError(
                f"the current {self.ref} cannot be reloaded as it is listed, so a rollback would be impossible; "
                f"nothing was changed (delete the table by hand, then run again)",
                detail=exc.detail,
            ) from None
        return {"backend": self.name, "table": str(self.ref), "listing": listing}

    def apply(self, artefacts) -> None:
        script = replace_script(self.ref, artefacts["table.nft"])
        try:
            self.nft.apply(script)
        except NftError as exc:
            self._raise(exc, script)

    def restore(self, snapshot: dict) -> None:
        listing = snapshot.get("listing")
        try:
            if listing is None:
                if self.nft.list_table(self.ref) is not None:
                    self.nft.apply(delete_script(self.ref))
                return
            self.nft.apply(f"table {self.ref}\ndelete table {self.ref}\n{listing}")
        except NftError as exc:
            raise BackendError(f"cannot restore {self.ref}", detail=str(exc)) from None

    def current(self) -> str:
        try:
            listing = self.nft.list_table(self.ref)
        except NftError as exc:
            raise BackendError(exc.message, detail=exc.detail) from None
        return "" if listing is None else normalize_listing(listing)

    def expected(self, artefacts):
        return None

    def in_effect(self) -> dict:
        return rule_ids(self.current())

    def in_effect_of(self, current: str) -> dict:
        return rule_ids(current)

    def intended(self, artefacts) -> dict:
        return rule_ids(artefacts["table.nft"])

    def others(self) -> list:
        try:
            return [f"{f} {n}" for f, n in self.nft.list_tables() if (f, n) != (self.ref.family, self.ref.name)]
        except NftError as exc:
            raise BackendError(exc.message, detail=exc.detail) from None
