# PRIVATE: the report as a terminal table: fixed-width columns, a totals line, one line per problem.
#
# Plain text without colour codes (the caller may colour it). ASCII by default: anything else in
# host data becomes "?", so the columns stay aligned and a C-locale terminal or a cron mail shows
# it as it is; control characters (escape sequences) never reach the terminal.
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

__all__ = ["WIDTH", "clean_text", "render_table", "short_serial"]

WIDTH = 100
GAP = "  "
REFUSED_MARK = "*"
INVALID_MARK = "!"


def _clean(text: str, ascii_only: bool) -> str:
    out = []
    for char in text:
        if not char.isprintable() or char in "\t\r\n":
            out.append("?" if char not in "\t\r\n" else " ")
        elif ascii_only and ord(char) > 0x7E:
            out.append("?")
        else:
            out.append(char)
    return "".join(out)


def clean_text(text: str) -> str:
    """Host data for a terminal: control characters (escape sequences) as "?", line breaks as spaces."""
    return _clean(text, ascii_only=False)


def short_serial(serial: Optional[str], length: int = 6) -> str:
    """A certificate serial shortened as git shortens a hash: its first `length` hex digits."""
    if not serial:
        return "-"
    digits = serial.replace(":", "").upper()
    return digits[:length]


def _when(at: Optional[str]) -> str:
    """2026-11-23T12:00:00Z -> 2026-11-23 12:00 (UTC, as the run recorded it)."""
    if not at:
        return "-"
    if len(at) >= 16 and at[10] == "T":
        return f"{at[:10]} {at[11:16]}"
    return at


def _checks(host: Dict[str, Any]) -> str:
    compliance = host["compliance"]
    if compliance["passed"] is None and compliance["failed"] is None:
        return "-"
    return f"{compliance['passed'] or 0}/{compliance['failed'] or 0}"


def _drift(host: Dict[str, Any]) -> str:
    drift = host["drift"]
    if drift is None:
        return "-"
    if not drift["found"]:
        return "none"
    if drift["fixed"]:
        return "fixed"
    return "found" if host["mode"] == "audit" else "unfixed"


def _certificate(host: Dict[str, Any]) -> str:
    cert = host["certificate"]
    if not cert:
        return "-"
    short = short_serial(cert["serial"])
    return short if cert["valid"] is not False else f"{short}{INVALID_MARK}"


def _source(host: Dict[str, Any]) -> str:
    source = host["policy"]["source"] or "-"
    return f"{source}{REFUSED_MARK}" if host["rejected_in_run"] else source


@dataclass
class Column:
    header: str
    cell: Callable[[Dict[str, Any]], str]
    least: int  # narrowest it may be shrunk to
    most: int  # widest it may grow to
    right: bool = False


COLUMNS = {
    "host": Column("HOST", lambda h: h["host"], 10, 28),
    "domain": Column("DOMAIN", lambda h: h["domain"] or "-", 10, 28),
    "policy": Column(
        "POLICY", lambda h: "-" if h["policy"]["serial"] is None else str(h["policy"]["serial"]), 6, 10, right=True
    ),
    "source": Column("SOURCE", _source, 7, 20),
    "cert": Column("CERT", _certificate, 7, 7),
    "profile": Column("PROFILE", lambda h: h["profile"]["name"] or "-", 8, 16),
    "checks": Column("OK/FAIL", _checks, 7, 9),
    "drift": Column("DRIFT", _drift, 7, 7),
    "last_run": Column("LAST RUN", lambda h: _when(h["at"]), 16, 16),
    "mode": Column("MODE", lambda h: h["mode"] or "-", 7, 7),
    "result": Column("RESULT", lambda h: h["result"], 11, 11),
}
# Columns that may be shrunk (with an ellipsis) when the table is wider than the terminal.
SHRINKABLE = ("domain", "host", "profile", "source", "policy")


def _fit(text: str, width: int, ascii_only: bool) -> str:
    if len(text) <= width:
        return text
    ellipsis = "..." if ascii_only else "\u2026"
    return text[: max(width - len(ellipsis), 0)] + ellipsis


def _columns(report: Dict[str, Any]) -> List[str]:
    names = ["host"]
    if len(report["domains"]) > 1:
        names.append("domain")
    return [*names, "policy", "source", "cert", "profile", "checks", "drift", "last_run", "mode", "result"]


def _widths(names: Sequence[str], rows: Sequence[Sequence[str]], limit: int) -> Tuple[Dict[str, int], str]:
    """Each column's width, and the gap between columns, for a table of at most `limit` columns.

    Columns take their widest cell (up to their most); when that is too wide, the widest of the
    shrinkable columns gives up one character at a time down to its least, then the gap narrows
    to one space. A table that still does not fit is left wider than `limit`.
    """
    natural = {}
    for index, name in enumerate(names):
        column = COLUMNS[name]
        wanted = max([len(column.header)] + [len(row[index]) for row in rows])
        natural[name] = max(min(wanted, column.most), len(column.header))
    floors = {n: max(COLUMNS[n].least, len(COLUMNS[n].header)) for n in SHRINKABLE if n in natural}
    for gap in (GAP, " "):
        widths = dict(natural)
        while sum(widths.values()) + len(gap) * (len(names) - 1) > limit:
            candidates = [n for n in floors if widths[n] > floors[n]]
            if not candidates:
                break
            widest = max(candidates, key=lambda n: (widths[n] - floors[n], -SHRINKABLE.index(n)))
            widths[widest] -= 1
        if sum(widths.values()) + len(gap) * (len(names) - 1) <= limit:
            break
    return widths, gap


def _totals_line(totals: Dict[str, int]) -> str:
    parts = [
        f"{totals['hosts']} host{'s' if totals['hosts'] != 1 else ''}",
        f"{totals['compliant']} compliant",
        f"{totals['noncompliant']} non-compliant",
    ]
    if totals["compliance_unknown"]:
        parts.append(f"{totals['compliance_unknown']} unknown")
    drift = f"drift on {totals['drift']}"
    if totals["drift"]:
        drift += f" ({totals['drift_fixed']} fixed)"
    line = f"{', '.join(parts)}; {drift}; {totals['failed']} failed, {totals['unreachable']} unreachable"
    if totals["rejected"]:
        line += f"; {totals['rejected']} refused bundle{'s' if totals['rejected'] != 1 else ''}"
    return line


def render_table(report: Dict[str, Any], *, width: int = WIDTH, ascii_only: bool = True) -> str:
    """The report as text: a title line, the table, a totals line and one line per problem."""
    names = _columns(report)
    rows = [[_clean(COLUMNS[name].cell(host), ascii_only) for name in names] for host in report["hosts"]]
    widths, gap = _widths(names, rows, width)

    def line(cells: Sequence[str]) -> str:
        out = []
        for name, cell in zip(names, cells):
            text = _fit(cell, widths[name], ascii_only)
            out.append(text.rjust(widths[name]) if COLUMNS[name].right else text.ljust(widths[name]))
        return gap.join(out).rstrip()

    domains = ", ".join(report["domains"]) or "no domain"
    title = f"{report['title']}: {domains}, generated {report['generated_at']}"
    lines = [_clean(title, ascii_only), "", line([COLUMNS[name].header for name in names])]
    lines += [line(row) for row in rows]
    lines += ["", _totals_line(report["totals"])]
    hosts = report["hosts"]
    legend = []
    if any(h["rejected_in_run"] for h in hosts):
        legend.append(f"{REFUSED_MARK} the pushed bundle was refused")
    if any(h["certificate"] and h["certificate"]["valid"] is False for h in hosts):
        legend.append(f"{INVALID_MARK} the domain certificate is not valid")
    if legend:
        lines.append(f"({'; '.join(legend)})")
    if report["problems"]:
        lines += [""] + [_clean(problem, ascii_only) for problem in report["problems"]]
    return "\n".join(lines) + "\n"
