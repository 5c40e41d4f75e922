# PRIVATE: read PSL files safely, keeping the line and column of every node.
#
# Safety: size caps on every file and on the whole policy, UTF-8 text only, one YAML
# document per file, no anchors/aliases (no alias bombs), no duplicate keys, include
# cycles and depth bounded. Every problem is reported with its file, line and column.
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import yaml

from .problems import Loc, Problems

__all__ = [
    "MAX_FILES",
    "MAX_FILE_BYTES",
    "MAX_INCLUDE_DEPTH",
    "MAX_TOTAL_BYTES",
    "Document",
    "load_documents",
    "parse_text",
]

MAX_FILE_BYTES = 8 * 1024 * 1024
MAX_TOTAL_BYTES = 64 * 1024 * 1024
MAX_FILES = 512
MAX_INCLUDE_DEPTH = 16
MAX_DEPTH = 64  # nesting of mappings and lists inside one document

_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR = "tag:yaml.org,2002:str"
# First characters for which YAML 1.1 may resolve a plain scalar to something other than a
# string (bool, int, float, null, timestamp, merge, value). Everything else is a string,
# which skips PyYAML's per-scalar regex resolution (most of the parse time of big policies).
_MAYBE_TYPED = frozenset("yYnNtTfFoO-+0123456789.~<=")


class _Loader(_BaseLoader):  # type: ignore[misc,valid-type]
    def resolve(self, kind, value, implicit):
        if kind is yaml.ScalarNode and implicit[0] and value and value[0] not in _MAYBE_TYPED:
            return _STR
        return super().resolve(kind, value, implicit)


@dataclass
class Document:
    """One PSL file: its data, and where each value (and each mapping key) stands."""

    file: str
    data: Any
    locs: Dict[Tuple, Tuple[int, int]] = field(default_factory=dict)  # path -> (line, col) of the value
    key_locs: Dict[Tuple, Tuple[int, int]] = field(default_factory=dict)  # path -> (line, col) of its key

    def loc(self, path: Tuple) -> Loc:
        """The location of `path`, or of its nearest located parent."""
        while path not in self.locs and path:
            path = path[:-1]
        return Loc(self.file, *self.locs.get(path, (1, 1)))

    def key_loc(self, path: Tuple) -> Loc:
        found = self.key_locs.get(path)
        return Loc(self.file, *found) if found else self.loc(path)


class _Converter:
    def __init__(self, file: str, problems: Problems) -> None:
        self.file = file
        self.problems = problems
        self.doc = Document(file, None)
        self.seen: set = set()
        self.ok = True
        self.constructor = yaml.constructor.SafeConstructor()  # per document: it caches what it built

    def _loc(self, node) -> Loc:
        return Loc(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def fail(self, node, message: str) -> None:
        self.problems.error(self._loc(node), message)
        self.ok = False

    def convert(self, node, path: Tuple, depth: int = 0) -> Any:
        if id(node) in self.seen:
            self.fail(node, "YAML anchors and aliases are not allowed in PSL; write the value out")
            return None
        self.seen.add(id(node))
        mark = node.start_mark
        self.doc.locs[path] = (mark.line + 1, mark.column + 1)
        if node.tag == _STR and isinstance(node, yaml.ScalarNode):
            return node.value
        if depth > MAX_DEPTH:
            self.fail(node, f"nested deeper than {MAX_DEPTH} levels")
            return None
        if isinstance(node, yaml.MappingNode):
            result: Dict[str, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                    self.fail(key_node, "mapping keys must be plain strings (no merge keys, lists or mappings)")
                    continue
                key = key_node.value
                if key in result:
                    self.fail(key_node, f"duplicate key {key!r} (each key may appear once in a mapping)")
                    continue
                kmark = key_node.start_mark
                self.doc.key_locs[(*path, key)] = (kmark.line + 1, kmark.column + 1)
                result[key] = self.convert(value_node, (*path, key), depth + 1)
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        try:
            value = self.constructor.construct_object(node)
        except (yaml.YAMLError, ValueError, OverflowError) as exc:
            self.fail(node, f"cannot read this value: {exc}")
            return None
        if isinstance(value, (datetime.date, datetime.datetime)):
            return value.isoformat()
        if isinstance(value, bytes):
            self.fail(node, "binary (!!binary) values are not allowed in PSL")
            return None
        return value


def _decode(raw: bytes, file: str, problems: Problems) -> Optional[str]:
    if b"\x00" in raw:
        problems.error(Loc(file, 1, 1), "this is a binary file, not a PSL (YAML) text file")
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        text = raw[: exc.start].decode("utf-8", "replace")
        line = text.count("\n") + 1
        col = len(text) - (text.rfind("\n") + 1) + 1
        problems.error(Loc(file, line, col), f"not UTF-8 text (byte 0x{raw[exc.start]:02x}); save the file as UTF-8")
        return None


def parse_text(text: str, file: str, problems: Problems) -> Optional[Document]:
    """Parse one PSL document from text; None when it cannot be read."""
    if not text.strip():
        problems.error(Loc(file, 1, 1), "the file is empty; a PSL file starts with 'psl: 1'")
        return None
    try:
        nodes = list(yaml.compose_all(text, Loader=_Loader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = Loc(file, mark.line + 1, mark.column + 1) if mark else Loc(file, 1, 1)
        problems.error(loc, f"YAML syntax: {exc.problem or exc.context}")
        return None
    except yaml.YAMLError as exc:
        problems.error(Loc(file, 1, 1), f"YAML syntax: {exc}")
        return None
    if "&" in text:  # an anchor without an alias: not dangerous, but not PSL either
        for event in yaml.parse(text, Loader=_Loader):
            if getattr(event, "anchor", None):
                mark = event.start_mark
                problems.error(
                    Loc(file, mark.line + 1, mark.column + 1),
                    f"YAML anchors (&{event.anchor}) and aliases are not allowed in PSL; write the value out",
                )
                return None
    nodes = [n for n in nodes if n is not None]
    if not nodes:
        problems.error(Loc(file, 1, 1), "the file has no content; a PSL file starts with 'psl: 1'")
        return None
    if len(nodes) > 1:
        second = nodes[1]
        problems.error(
            Loc(file, second.start_mark.line + 1, 1), "one YAML document per PSL file (found a second '---')"
        )
        return None
    converter = _Converter(file, problems)
    data = converter.convert(nodes[0], ())
    if not converter.ok:
        return None
    if not isinstance(data, dict):
        problems.error(Loc(file, 1, 1), "a PSL file is a mapping of sections (psl, domain, objects, rules, ...)")
        return None
    converter.doc.data = data
    return converter.doc


def _read(path: str, display: str, problems: Problems, budget: List[int]) -> Optional[str]:
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        problems.error(Loc(display, 1, 1), f"cannot read the file: {exc.strerror or exc}")
        return None
    if os.path.isdir(path):
        problems.error(Loc(display, 1, 1), "this is a directory; name the PSL files in it")
        return None
    if size > MAX_FILE_BYTES:
        problems.error(
            Loc(display, 1, 1), f"the file is {size} bytes; PSL files are limited to {MAX_FILE_BYTES} bytes (split it)"
        )
        return None
    budget[0] += size
    if budget[0] > MAX_TOTAL_BYTES:
        problems.error(Loc(display, 1, 1), f"the policy is larger than {MAX_TOTAL_BYTES} bytes in all")
        return None
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        problems.error(Loc(display, 1, 1), f"cannot read the file: {exc.strerror or exc}")
        return None
    return _decode(raw, display, problems)


def load_documents(paths: List[str], problems: Problems) -> List[Document]:
    """Load the named files and everything they include, includes first (depth-first).

    A file included twice (a diamond) is loaded once; an include cycle is an error.
    """
    loaded: Dict[str, Document] = {}
    order: List[Document] = []
    budget = [0]

    def visit(path: str, display: str, stack: List[str], include_loc: Optional[Loc]) -> None:
        real = os.path.realpath(path)
        if real in stack:
            chain = " -> ".join([os.path.basename(s) for s in stack[stack.index(real) :]] + [os.path.basename(real)])
            problems.error(include_loc, f"include cycle: {chain}")
            return
        if real in loaded:
            return
        if len(stack) >= MAX_INCLUDE_DEPTH:
            problems.error(include_loc, f"includes nested deeper than {MAX_INCLUDE_DEPTH} files")
            return
        if len(loaded) >= MAX_FILES:
            problems.error(include_loc, f"a policy has at most {MAX_FILES} files")
            return
        if not os.path.exists(path):
            problems.error(include_loc or Loc(display, 1, 1), f"no such file: {display}")
            return
        text = _read(path, display, problems, budget)
        if text is None:
            return
        doc = parse_text(text, display, problems)
        if doc is None:
            return
        loaded[real] = doc
        includes = doc.data.get("include", [])
        if isinstance(includes, str):
            includes = [includes]
        if isinstance(includes, list):
            base = os.path.dirname(path)
            for i, inc in enumerate(includes):
                if not isinstance(inc, str) or not inc:
                    continue  # reported by the schema check
                inc_path = inc if os.path.isabs(inc) else os.path.join(base, inc)
                inc_display = (
                    inc if os.path.isabs(inc) else os.path.normpath(os.path.join(os.path.dirname(display), inc))
                )
                visit(inc_path, inc_display, [*stack, real], doc.loc(("include", i)))
        order.append(doc)

    for p in paths:
        visit(p, p, [], None)
    return order
