# PRIVATE: located problems (errors and warnings) found in PSL files.
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

__all__ = ["Loc", "Problem", "Problems", "PslError"]

Path = Tuple  # a path into the document: ("rules", 3, "ports")


@dataclass(frozen=True)
class Loc:
    file: str
    line: int  # 1-based
    col: int  # 1-based

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


@dataclass(frozen=True)
class Problem:
    severity: str  # "error" | "warning"
    loc: Optional[Loc]
    message: str

    def __str__(self) -> str:
        where = str(self.loc) if self.loc else "<policy>"
        return f"{where}: {self.severity}: {self.message}"

    def sort_key(self):
        loc = self.loc or Loc("", 0, 0)
        return (loc.file, loc.line, loc.col, self.severity, self.message)


@dataclass
class Problems:
    """Collects every problem of a run, so all of them are reported at once."""

    items: List[Problem] = field(default_factory=list)

    def error(self, loc: Optional[Loc], message: str) -> None:
        self.items.append(Problem("error", loc, message))

    def warning(self, loc: Optional[Loc], message: str) -> None:
        self.items.append(Problem("warning", loc, message))

    @property
    def errors(self) -> List[Problem]:
        return [p for p in self.items if p.severity == "error"]

    @property
    def warnings(self) -> List[Problem]:
        return [p for p in self.items if p.severity == "warning"]

    def sorted(self) -> List[Problem]:
        unique: Dict[Tuple, Problem] = {}
        for p in self.items:
            unique.setdefault(p.sort_key(), p)
        return [unique[k] for k in sorted(unique)]


class PslError(Exception):
    """The policy is invalid: carries every problem found."""

    def __init__(self, problems: Problems) -> None:
        self.problems = problems
        first = problems.errors[0] if problems.errors else None
        super().__init__(str(first) if first else "invalid policy")
