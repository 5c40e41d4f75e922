# PRIVATE: the iptables backend (legacy or nft variant): our three chains in the filter table.
#
# distsec owns DISTSEC-INPUT, DISTSEC-OUTPUT and DISTSEC-FORWARD in the filter table of each
# family and one jump to each, at position 1 of INPUT, OUTPUT and FORWARD. Nothing else is
# touched: other chains, other tables and the built-in chains' policies stay as they are.
#
# One `iptables-restore --noflush` per family is one transaction (legacy: one table replace;
# nft variant: one nftables batch): declaring our chains flushes them, our rules are added,
# the old jumps deleted and new ones inserted, all or nothing. IPv4 and IPv6 are two
# transactions; when IPv6 fails after IPv4 succeeded, IPv4 is put back from a snapshot.
#
# No Ansible import: the caller passes `run(argv, stdin) -> (rc, out, err)`.
from __future__ import annotations

import grp
import pwd
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .._render import iptables as render_iptables
from .._render.iptables import CHAINS, FILES, PROTO_NAMES, quote
from .backend import Artefacts, Backend, BackendError, Runner

__all__ = ["BUILTIN", "VARIANTS", "IptablesBackend", "split_args"]

VARIANTS = ("nft", "legacy")
OURS = tuple(CHAINS.values())  # DISTSEC-INPUT, DISTSEC-OUTPUT, DISTSEC-FORWARD
BUILTIN = {"DISTSEC-INPUT": "INPUT", "DISTSEC-OUTPUT": "OUTPUT", "DISTSEC-FORWARD": "FORWARD"}
_BUILTIN_ORDER = ("INPUT", "OUTPUT", "FORWARD")
_TARGETS = {"ACCEPT", "DROP", "REJECT", "RETURN", "LOG"}
_FORBIDDEN = {"-t", "--table", "-g", "--goto"}
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_LINE = re.compile(r"line:? (\d+)")
_RATE = re.compile(r"([0-9]+)(?:/([a-z]+))?")

# One family's state of what we own: {"chains": {chain: [rule text after "-A CHAIN "]},
# "jumps": [[builtin chain, position, rule text], ...]}.
State = Dict[str, Any]


def split_args(text: str) -> List[str]:
    """Split a rule the way iptables-restore does: blanks separate, "..." quotes, \\ escapes inside quotes."""
    args: List[str] = []
    current: List[str] = []
    started = quoted = escaped = False
    for char in text:
        if quoted:
            if escaped:
                current.append(char)
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                quoted = False
            else:
                current.append(char)
        elif char == '"':
            quoted = started = True
        elif char in " \t\n":
            if started:
                args.append("".join(current))
                current = []
                started = False
        else:
            current.append(char)
            started = True
    if quoted:
        raise ValueError("unterminated quote")
    if started:
        args.append("".join(current))
    return args


def _option(args: List[str], *names: str) -> Optional[str]:
    for index, arg in enumerate(args[:-1]):
        if arg in names:
            return args[index + 1]
    return None


def _target(rest: str) -> Optional[str]:
    try:
        args = split_args(rest)
    except ValueError:
        return None
    return _option(args, "-j", "--jump", "-g", "--goto")


def _rule_id(rest: str) -> str:
    """The comment (our rule id) of a rule, or '?: RULE' when it has none."""
    try:
        comment = _option(split_args(rest), "--comment")
    except ValueError:
        comment = None
    return comment if comment is not None else f"?: {rest}"


def _parse_save(text: str) -> Dict[str, Tuple[Dict[str, str], Dict[str, List[str]]]]:
    """iptables-save output -> {table: ({chain: policy ('-' if user-defined)}, {chain: [rule text]})}."""
    tables: Dict[str, Tuple[Dict[str, str], Dict[str, List[str]]]] = {}
    chains: Dict[str, str] = {}
    rules: Dict[str, List[str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("["):  # a counter prefix from -c
            line = line.split("] ", 1)[-1]
        if not line or line.startswith("#"):
            continue
        if line.startswith("*"):
            chains, rules = {}, {}
            tables[line[1:]] = (chains, rules)
        elif line.startswith(":"):
            parts = line[1:].split()
            chains[parts[0]] = parts[1] if len(parts) > 1 else "-"
            rules.setdefault(parts[0], [])
        elif line.startswith("-A "):
            parts = line.split(" ", 2)
            rules.setdefault(parts[1], []).append(parts[2] if len(parts) > 2 else "")
    return tables


def _family_state(tables: Dict[str, Tuple[Dict[str, str], Dict[str, List[str]]]]) -> Tuple[State, Dict[str, int]]:
    """(what we own, how many other rules each built-in chain has) in one family's filter table."""
    chains, rules = tables.get("filter", ({}, {}))
    state: State = {"chains": {c: list(rules.get(c, [])) for c in OURS if c in chains}, "jumps": []}
    others = {}
    for builtin in _BUILTIN_ORDER:
        count = 0
        for position, rest in enumerate(rules.get(builtin, []), 1):
            if _target(rest) in OURS:
                state["jumps"].append([builtin, position, rest])
            else:
                count += 1
        others[builtin] = count
    return state, others


def _state_text(state: State) -> List[str]:
    lines = [f":{chain} -" for chain in OURS if chain in state["chains"]]
    order = {name: index for index, name in enumerate(_BUILTIN_ORDER)}
    for builtin, position, rest in sorted(state["jumps"], key=lambda j: (order.get(j[0], 9), j[1], j[2])):
        lines.append(f"-I {builtin} {position} {rest}")
    for chain in OURS:
        for rest in state["chains"].get(chain, []):
            lines.append(f"-A {chain} {rest}".rstrip())
    return lines


def _protocol_names() -> Dict[int, str]:
    """Protocol numbers -> the names iptables-save prints (its own list first, then /etc/protocols)."""
    names: Dict[int, str] = {}
    try:
        with open("/etc/protocols", encoding="utf-8") as handle:
            for line in handle:
                parts = line.split("#", 1)[0].split()
                if len(parts) >= 2 and parts[1].isdigit():
                    names.setdefault(int(parts[1]), parts[0])
    except OSError:
        pass
    names.update(PROTO_NAMES)
    return names


def _normalise_rate(value: str) -> Optional[str]:
    m = _RATE.fullmatch(value.lower())
    if not m:
        return None
    unit = m.group(2) or "second"
    for full in ("second", "minute", "hour", "day"):
        if full.startswith(unit):
            try:
                return render_iptables.limit_rate("-", f"{m.group(1)}/{full}")
            except ValueError:
                return None
    return None


def _normalise_rule(rest: str, protocols: Dict[int, str]) -> Optional[str]:
    """A rule as iptables-save will print it back; None when that cannot be predicted."""
    try:
        args = split_args(rest)
    except ValueError:
        return None
    out: List[str] = []
    for index, arg in enumerate(args):
        before = args[index - 1] if index else ""
        value = arg
        if before in ("--comment", "--log-prefix"):
            value = quote(arg)
        elif before in ("-p", "--protocol") and arg.isdigit():
            value = protocols.get(int(arg), arg)
        elif before == "--limit":
            value = _normalise_rate(arg) or ""
        elif before in ("--uid-owner", "--gid-owner") and not arg.isdigit():
            try:
                value = str(pwd.getpwnam(arg).pw_uid if before == "--uid-owner" else grp.getgrnam(arg).gr_gid)
            except KeyError:
                return None
        if not value:
            return None
        out.append(value)
    return " ".join(out)


class IptablesBackend(Backend):
    """Our chains in the filter tables of iptables and ip6tables, through *-restore / *-save."""

    name = "iptables"

    def __init__(self, run: Runner, state_dir: str, *, variant: str = "nft", argv_prefix: Sequence[str] = ()) -> None:
        super().__init__(run, state_dir)
        if variant not in VARIANTS:
            raise BackendError(f"unknown iptables variant {variant!r}; use one of {', '.join(VARIANTS)}")
        self.variant = variant
        self.argv_prefix = list(argv_prefix)

    # ---- commands ---------------------------------------------------------------------
    def binary(self, family: str, tool: str) -> str:
        return f"{'iptables' if family == 'ipv4' else 'ip6tables'}-{self.variant}-{tool}"

    def _call(self, argv: List[str], stdin: Optional[str] = None) -> Tuple[int, str, str]:
        try:
            return self.run(self.argv_prefix + argv, stdin)
        except OSError as exc:
            raise BackendError(f"cannot run {argv[0]}", detail=str(exc)) from None

    def _tables(self, family: str):
        rc, out, err = self._call([self.binary(family, "save")])
        if rc != 0:
            raise BackendError(f"{self.binary(family, 'save')} failed", detail=err)
        return _parse_save(out)

    def _read(self, family: str) -> Tuple[State, Dict[str, int]]:
        return _family_state(self._tables(family))

    def _load(self, family: str, text: str, *, test: bool) -> None:
        argv = [self.binary(family, "restore")] + (["--test"] if test else []) + ["--noflush", "-w"]
        rc, _out, err = self._call(argv, text)
        if rc == 0:
            return
        lines = text.splitlines()
        rule = None
        where = ""
        m = _LINE.search(err or "")
        if m and 1 <= int(m.group(1)) <= len(lines):
            line = lines[int(m.group(1)) - 1]
            where = f"\n(line {m.group(1)}: {line})"
            if line.startswith(("-A ", "-I ", "-D ")) and "--comment" in line:
                rule = _rule_id(line.split(" ", 2)[2])
        if test:
            message = f"{argv[0]} --test rejected the {family} rules; nothing was changed"
        else:
            message = f"{argv[0]} failed; the kernel kept the previous {family} rules"
        raise BackendError(message, detail=(err or "").strip() + where, rule=rule)

    # ---- artefacts --------------------------------------------------------------------
    @staticmethod
    def _parse_artefact(name: str, text: Any) -> Dict[str, List[str]]:
        """The rules of one artefact per chain; refuses anything but our chains and plain verdicts."""
        if not isinstance(text, str):
            raise BackendError(f"artefact {name} is missing or not text")
        chains: Dict[str, List[str]] = {}
        stage = "start"
        for number, raw in enumerate(text.split("\n"), 1):
            line = raw.strip(" \t")
            where = f"artefact {name} line {number}"
            if _CONTROL.search(line):
                raise BackendError(f"{where}: control characters are not allowed")
            if not line or line.startswith("#"):
                continue
            if stage == "start":
                if line != "*filter":
                    raise BackendError(f"{where}: expected *filter, found {line[:80]!r}")
                stage = "body"
            elif stage == "done":
                raise BackendError(f"{where}: text after COMMIT")
            elif line == "COMMIT":
                stage = "done"
            elif line.startswith(":"):
                parts = line[1:].split()
                counters = parts[2:] in ([], ["[0:0]"]) or (len(parts) == 3 and re.fullmatch(r"\[\d+:\d+\]", parts[2]))
                if parts[:2] not in ([c, "-"] for c in OURS) or parts[0] in chains or not counters:
                    raise BackendError(f"{where}: only the chains {', '.join(OURS)} may be declared, once each")
                chains[parts[0]] = []
            elif line.startswith("-A "):
                parts = line.split(" ", 2)
                rest = parts[2] if len(parts) > 2 else ""
                rule = _rule_id(rest) if "--comment" in rest else None
                if parts[1] not in chains:
                    raise BackendError(
                        f"{where}: rules may only go to our declared chains, not {parts[1]!r}", rule=rule
                    )
                try:
                    args = split_args(rest)
                except ValueError as exc:
                    raise BackendError(f"{where}: {exc}", rule=rule) from None
                targets = [args[i + 1] for i, a in enumerate(args[:-1]) if a in ("-j", "--jump")]
                if _FORBIDDEN & set(args) or len(targets) != 1 or targets[0] not in _TARGETS:
                    raise BackendError(
                        f"{where}: a rule must end in one of -j {', '.join(sorted(_TARGETS))}, without -t or -g",
                        rule=rule,
                    )
                chains[parts[1]].append(rest)
            else:
                raise BackendError(f"{where}: only chain declarations, -A rules and COMMIT are allowed")
        if stage != "done":
            raise BackendError(f"artefact {name}: no COMMIT; the file is incomplete")
        missing = [c for c in OURS if c not in chains]
        if missing:
            raise BackendError(f"artefact {name}: chain {missing[0]} is not declared")
        return chains

    def _wanted(self, artefacts: Artefacts) -> Dict[str, State]:
        if not isinstance(artefacts, dict) or set(artefacts) != set(FILES.values()):
            raise BackendError(f"the iptables backend needs exactly the artefacts {', '.join(sorted(FILES.values()))}")
        return {
            family: {
                "chains": self._parse_artefact(name, artefacts[name]),
                "jumps": [[BUILTIN[c], 1, f"-j {c}"] for c in OURS],
            }
            for family, name in FILES.items()
        }

    @staticmethod
    def _transaction(now: State, want: State, others: Dict[str, int]) -> str:
        """One restore input that turns `now` into `want`, touching only our chains and jumps."""
        lines = ["*filter"]
        lines.extend(f":{chain} - [0:0]" for chain in OURS if chain in want["chains"])  # creates or flushes
        lines.extend(f"-D {builtin} {rest}" for builtin, _position, rest in now["jumps"])
        for chain in OURS:
            if chain in now["chains"] and chain not in want["chains"]:
                lines.extend([f"-F {chain}", f"-X {chain}"])
        for chain in OURS:
            lines.extend(f"-A {chain} {rest}".rstrip() for rest in want["chains"].get(chain, []))
        inserted = dict.fromkeys(_BUILTIN_ORDER, 0)
        order = {name: index for index, name in enumerate(_BUILTIN_ORDER)}
        for builtin, position, rest in sorted(want["jumps"], key=lambda j: (order.get(j[0], 9), j[1])):
            limit = others.get(builtin, 0) + inserted.get(builtin, 0) + 1
            lines.append(f"-I {builtin} {max(1, min(int(position), limit))} {rest}")
            inserted[builtin] = inserted.get(builtin, 0) + 1
        lines.append("COMMIT")
        return "\n".join(lines) + "\n"

    # ---- primitives -------------------------------------------------------------------
    def render(self, compiled: Dict[str, Any], profile: str, rules: List[Dict[str, Any]]) -> Artefacts:
        return render_iptables.render(compiled, profile, rules)

    def transactions(self, artefacts: Artefacts) -> Dict[str, str]:
        """The exact restore input apply would load now, per family."""
        wanted = self._wanted(artefacts)
        out = {}
        for family in FILES:
            now, others = self._read(family)
            out[family] = self._transaction(now, wanted[family], others)
        return out

    def validate(self, artefacts: Artefacts) -> None:
        for family, text in self.transactions(artefacts).items():
            self._load(family, text, test=True)

    def snapshot(self) -> Dict[str, Any]:
        return {"backend": self.name, "variant": self.variant, **{f: self._read(f)[0] for f in FILES}}

    def apply(self, artefacts: Artefacts) -> None:
        wanted = self._wanted(artefacts)
        before: Dict[str, State] = {}
        done: List[str] = []
        for family in FILES:
            now, others = self._read(family)
            before[family] = now
            try:
                self._load(family, self._transaction(now, wanted[family], others), test=False)
            except BackendError as exc:
                problems = []
                for previous in done:
                    try:
                        self._restore_family(previous, before[previous])
                    except BackendError as again:
                        problems.append(f"putting {previous} back failed too: {again}")
                if done:
                    exc.message += f"; {', '.join(done)} " + (
                        "could not be put back" if problems else "was put back as it was"
                    )
                    if problems:
                        exc.detail = "\n".join([exc.detail, *problems]).strip()
                raise exc from None
            done.append(family)

    def _restore_family(self, family: str, want: State) -> None:
        now, others = self._read(family)
        if now == want:
            return
        self._load(family, self._transaction(now, want, others), test=False)

    def restore(self, snapshot: Dict[str, Any]) -> None:
        if isinstance(snapshot, dict) and snapshot.get("variant", self.variant) != self.variant:
            raise BackendError(
                f"the snapshot is of the iptables {snapshot.get('variant')} variant; this backend uses {self.variant}"
            )
        for family in FILES:
            state = snapshot.get(family) if isinstance(snapshot, dict) else None
            if (
                not isinstance(state, dict)
                or not isinstance(state.get("chains"), dict)
                or not isinstance(state.get("jumps"), list)
                or not set(state["chains"]) <= set(OURS)
                or not all(isinstance(j, list) and len(j) == 3 and j[0] in _BUILTIN_ORDER for j in state["jumps"])
            ):
                raise BackendError(f"not an iptables snapshot: {family} is missing or malformed")
        problems = []
        for family in FILES:
            try:
                self._restore_family(family, snapshot[family])
            except BackendError as exc:
                problems.append(f"{family}: {exc}")
        if problems:
            raise BackendError("the snapshot could not be restored completely", detail="\n".join(problems))

    def current(self) -> str:
        out: List[str] = []
        for family in FILES:
            lines = _state_text(self._read(family)[0])
            if lines:
                out.append(f"# {family} filter")
                out.extend(lines)
        return "\n".join(out) + "\n" if out else ""

    def expected(self, artefacts: Artefacts) -> Optional[str]:
        try:
            wanted = self._wanted(artefacts)
        except BackendError:
            return None
        protocols = _protocol_names()
        out: List[str] = []
        for family in FILES:
            state = wanted[family]
            chains = {}
            for chain, rules in state["chains"].items():
                normalised = [_normalise_rule(rest, protocols) for rest in rules]
                if any(rule is None for rule in normalised):
                    return None
                chains[chain] = normalised
            out.append(f"# {family} filter")
            out.extend(_state_text({"chains": chains, "jumps": state["jumps"]}))
        return "\n".join(out) + "\n"

    def in_effect(self) -> Dict[str, List[str]]:
        result: Dict[str, List[str]] = {}
        for family in FILES:
            chains = self._read(family)[0]["chains"]
            for chain in OURS:
                if chain in chains:
                    result[f"{family} {chain}"] = [_rule_id(rest) for rest in chains[chain]]
        return result

    def in_effect_of(self, current: str) -> Dict[str, List[str]]:
        """in_effect() from a current() text already read (saves two -save calls in plan)."""
        result: Dict[str, List[str]] = {}
        family = ""
        for line in current.splitlines():
            if line.startswith("# "):
                family = line.split()[1]
            elif line.startswith(":") and family:
                result[f"{family} {line[1:].split()[0]}"] = []
            elif line.startswith("-A ") and family:
                parts = line.split(" ", 2)
                result.setdefault(f"{family} {parts[1]}", []).append(_rule_id(parts[2] if len(parts) > 2 else ""))
        return result

    def intended(self, artefacts: Artefacts) -> Dict[str, List[str]]:
        wanted = self._wanted(artefacts)
        return {
            f"{family} {chain}": [_rule_id(rest) for rest in wanted[family]["chains"][chain]]
            for family in FILES
            for chain in OURS
        }

    def others(self) -> List[str]:
        found: List[str] = []
        for family in FILES:
            for table, (chains, rules) in self._tables(family).items():
                if table != "filter":
                    found.append(f"{family} {table}")
                    continue
                for chain, policy in chains.items():
                    if chain in OURS:
                        continue
                    foreign = [r for r in rules.get(chain, []) if _target(r) not in OURS]
                    if policy == "-" or foreign:
                        found.append(f"{family} filter {chain}")
        return sorted(found)
