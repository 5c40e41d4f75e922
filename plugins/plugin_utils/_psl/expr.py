# PRIVATE: PSL conditions: a small, safe expression language (no Jinja, no eval).
#
#   packages.thunderbird.version < "115.0"
#   not exists(packages.clamav) or age(antivirus.signatures_updated) > 2d
#   any_in(network.addresses, @home_nets) and network.dns_search[0] == "corp.example.org"
#
# Parsed into a JSON AST (lists) that the host-side evaluator (module_utils/_evaluate)
# reads; the same AST is used for preview on the controller.
from __future__ import annotations

import re
from typing import Any, Callable, List, Optional, Tuple

__all__ = ["FACT_NAMESPACES", "FUNCTIONS", "ExprError", "parse_condition", "parse_expression"]

FACT_NAMESPACES = (
    "platform",
    "packages",
    "updates",
    "services",
    "sockets",
    "firewall",
    "ipsec",
    "network",
    "sysctl",
    "antivirus",
    "domain",
    "policy",
    "time",
    "host",
)
# name -> (min args, max args)
FUNCTIONS = {
    "exists": (1, 1),
    "version": (2, 2),
    "age": (1, 1),
    "until": (1, 1),
    "len": (1, 1),
    "lower": (1, 1),
    "any_in": (2, 2),
    "all_in": (2, 2),
}
SCHEMES = ("dpkg", "rpm", "pep440", "semver")
MAX_LENGTH = 4096
MAX_NESTING = 32

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<dur>[0-9]+(?:s|m|h|d|w)\b)
  | (?P<num>[0-9]+(?:\.[0-9]+)?)
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<ref>@[A-Za-z_][A-Za-z0-9_.-]*)
  | (?P<name>[A-Za-z_][A-Za-z0-9_-]*)
  | (?P<op>==|!=|<=|>=|<|>|\(|\)|\[|\]|,|\.)
    """,
    re.VERBOSE,
)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_KEYWORDS = {"and", "or", "not", "in", "true", "false", "null"}


class ExprError(Exception):
    def __init__(self, message: str, column: int = 0) -> None:
        super().__init__(message)
        self.column = column  # 0-based offset in the expression


def _unescape(body: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


def _tokens(text: str) -> List[Tuple[str, Any, int]]:
    out: List[Tuple[str, Any, int]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ExprError(f"unexpected character {text[pos]!r}", pos)
        kind = m.lastgroup
        raw = m.group()
        if kind == "dur":
            out.append(("dur", int(raw[:-1]) * _UNITS[raw[-1]], pos))
        elif kind == "num":
            out.append(("num", float(raw) if "." in raw else int(raw), pos))
        elif kind == "str":
            out.append(("str", _unescape(raw[1:-1]), pos))
        elif kind == "ref":
            out.append(("ref", raw[1:], pos))
        elif kind == "name":
            out.append(("kw" if raw in _KEYWORDS else "name", raw, pos))
        elif kind == "op":
            out.append(("op", raw, pos))
        pos = m.end()
    out.append(("end", None, len(text)))
    return out


class _Parser:
    def __init__(self, text: str, ref_exists: Callable[[str], bool]) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.i = 0
        self.depth = 0
        self.ref_exists = ref_exists

    def peek(self, kind: str, value: Any = None) -> bool:
        t = self.toks[self.i]
        return t[0] == kind and (value is None or t[1] == value)

    def take(self, kind: str, value: Any = None, what: str = "") -> Tuple[str, Any, int]:
        t = self.toks[self.i]
        if not self.peek(kind, value):
            got = "the end" if t[0] == "end" else repr(t[1])
            raise ExprError(f"expected {what or value or kind}, found {got}", t[2])
        self.i += 1
        return t

    def parse(self) -> list:
        node = self.or_()
        if not self.peek("end"):
            t = self.toks[self.i]
            raise ExprError(f"unexpected {t[1]!r} (missing 'and' / 'or'?)", t[2])
        return node

    def nest(self):
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise ExprError(f"nested deeper than {MAX_NESTING} levels", self.toks[self.i][2])

    def or_(self) -> list:
        items = [self.and_()]
        while self.peek("kw", "or"):
            self.i += 1
            items.append(self.and_())
        return items[0] if len(items) == 1 else ["or", *items]

    def and_(self) -> list:
        items = [self.not_()]
        while self.peek("kw", "and"):
            self.i += 1
            items.append(self.not_())
        return items[0] if len(items) == 1 else ["and", *items]

    def not_(self) -> list:
        if self.peek("kw", "not"):
            self.i += 1
            self.nest()
            inner = self.not_()
            self.depth -= 1
            return ["not", inner]
        return self.comparison()

    def comparison(self) -> list:
        left = self.primary()
        t = self.toks[self.i]
        if t[0] == "op" and t[1] in ("==", "!=", "<", "<=", ">", ">="):
            self.i += 1
            right = self.primary()
            return _comparison(t[1], left, right, t[2])
        if self.peek("kw", "in"):
            self.i += 1
            return ["in", left, self.primary()]
        if self.peek("kw", "not") and self.toks[self.i + 1][:2] == ("kw", "in"):
            self.i += 2
            return ["not", ["in", left, self.primary()]]
        return left

    def primary(self) -> list:
        t = self.toks[self.i]
        kind, value, pos = t
        if kind == "op" and value == "(":
            self.i += 1
            self.nest()
            inner = self.or_()
            self.depth -= 1
            self.take("op", ")", "')'")
            return inner
        if kind == "op" and value == "[":
            self.i += 1
            self.nest()
            items = []
            while not self.peek("op", "]"):
                items.append(self.primary())
                if not self.peek("op", "]"):
                    self.take("op", ",", "',' or ']'")
            self.i += 1
            self.depth -= 1
            return ["list", *items]
        if kind in ("num", "str"):
            self.i += 1
            return ["lit", value]
        if kind == "dur":
            self.i += 1
            return ["dur", value]
        if kind == "ref":
            self.i += 1
            if not self.ref_exists(value):
                raise ExprError(f"@{value} is not an address object (define it under objects.addresses)", pos)
            return ["ref", value]
        if kind == "kw" and value in ("true", "false", "null"):
            self.i += 1
            return ["lit", {"true": True, "false": False, "null": None}[value]]
        if kind == "name":
            self.i += 1
            if self.peek("op", "("):
                return self.call(value, pos)
            return self.path(value, pos)
        got = "the end" if kind == "end" else repr(value)
        raise ExprError(f"expected a value, a fact or a function call, found {got}", pos)

    def call(self, name: str, pos: int) -> list:
        if name not in FUNCTIONS:
            hint = _close(name, list(FUNCTIONS))
            raise ExprError(f"unknown function {name!r}{hint}; functions: {', '.join(FUNCTIONS)}", pos)
        self.take("op", "(")
        args = []
        while not self.peek("op", ")"):
            self.nest()
            args.append(self.or_())
            self.depth -= 1
            if not self.peek("op", ")"):
                self.take("op", ",", "',' or ')'")
        self.i += 1
        low, high = FUNCTIONS[name]
        if not low <= len(args) <= high:
            raise ExprError(f"{name}() takes {low} argument(s), got {len(args)}", pos)
        if name == "exists" and args[0][0] != "fact":
            raise ExprError("exists() takes a fact, e.g. exists(packages.clamav)", pos)
        if name == "version" and (args[1][0] != "lit" or args[1][1] not in SCHEMES):
            raise ExprError(f"version(x, SCHEME): SCHEME is one of {', '.join(SCHEMES)} (a quoted string)", pos)
        return ["call", name, *args]

    def path(self, first: str, pos: int) -> list:
        if first not in FACT_NAMESPACES:
            hint = _close(first, list(FACT_NAMESPACES))
            raise ExprError(f"unknown fact {first!r}{hint}; facts start with: {', '.join(FACT_NAMESPACES)}", pos)
        parts: List[Any] = [first]
        while True:
            if self.peek("op", "."):
                self.i += 1
                t = self.toks[self.i]
                if t[0] not in ("name", "kw", "num"):
                    raise ExprError("expected a name after '.'", t[2])
                self.i += 1
                parts.append(str(t[1]))
            elif self.peek("op", "["):
                self.i += 1
                t = self.toks[self.i]
                if t[0] not in ("str", "num"):
                    raise ExprError("expected a quoted key or an index inside [ ]", t[2])
                self.i += 1
                parts.append(t[1])
                self.take("op", "]", "']'")
            else:
                return ["fact", *parts]


def _close(word: str, options: List[str]) -> str:
    import difflib  # noqa: PLC0415 - only on the error path

    hint = difflib.get_close_matches(word, options, n=1)
    return f" (did you mean {hint[0]!r}?)" if hint else ""


def _is_versionish(node: list) -> Optional[str]:
    """'auto' when the node is a version fact, the scheme for version(x, s), else None."""
    if node[0] == "call" and node[1] == "version":
        return node[3][1]
    if node[0] == "fact" and str(node[-1]).endswith("version"):
        return "auto"
    return None


def _stringish(node: list) -> bool:
    return (node[0] == "lit" and isinstance(node[1], str)) or node[0] == "fact"


def _comparison(op: str, left: list, right: list, pos: int) -> list:
    for a, b in ((left, right), (right, left)):
        a_num = a[0] == "dur" or (a[0] == "lit" and isinstance(a[1], (int, float)) and not isinstance(a[1], bool))
        a_num = a_num or (a[0] == "call" and a[1] in ("len", "age", "until"))
        if a_num and b[0] == "lit" and isinstance(b[1], str):
            raise ExprError(f"'{op}' compares a number with the string {b[1]!r}; write the number without quotes", pos)
    if op in ("==", "!="):
        scheme = _is_versionish(left) or _is_versionish(right)
        if scheme:
            return ["vcmp", op, _unwrap(left), _unwrap(right), None if scheme == "auto" else scheme]
        return ["cmp", op, left, right]
    scheme = _is_versionish(left) or _is_versionish(right)
    if scheme:
        return ["vcmp", op, _unwrap(left), _unwrap(right), None if scheme == "auto" else scheme]
    for side in (left, right):
        if side[0] == "fact" and isinstance(side[-1], str) and _close(side[-1], ["version"]):
            raise ExprError(f"'{op}' needs a version ordering; {side[-1]!r}{_close(side[-1], ['version'])}", pos)
    if (left[0] == "lit" and isinstance(left[1], str)) or (right[0] == "lit" and isinstance(right[1], str)):
        raise ExprError(
            f"'{op}' between strings needs a version ordering: compare a package's .version fact, "
            'or wrap a side in version(x, "dpkg"|"rpm"|"pep440"|"semver")',
            pos,
        )
    return ["cmp", op, left, right]


def _unwrap(node: list) -> list:
    return node[2] if node[0] == "call" and node[1] == "version" else node


def parse_expression(text: str, ref_exists: Callable[[str], bool] = lambda name: True) -> list:
    if len(text) > MAX_LENGTH:
        raise ExprError(f"expression longer than {MAX_LENGTH} characters")
    return _Parser(text, ref_exists).parse()


def parse_condition(value: Any, ref_exists: Callable[[str], bool] = lambda name: True) -> list:
    """A condition as written in PSL (string, bool, {all|any|not: ...}) -> AST.

    Raises ExprError with `path` (the position inside nested all/any/not) in `.args`.
    """
    if isinstance(value, bool):
        return ["lit", value]
    if isinstance(value, str):
        return parse_expression(value, ref_exists)
    if isinstance(value, dict) and len(value) == 1:
        ((key, inner),) = value.items()
        if key == "not":
            return ["not", parse_condition(inner, ref_exists)]
        if key in ("all", "any") and isinstance(inner, list) and inner:
            return ["and" if key == "all" else "or", *[parse_condition(v, ref_exists) for v in inner]]
    raise ExprError("a condition is an expression string, true/false, or a mapping with one key: all, any or not")
