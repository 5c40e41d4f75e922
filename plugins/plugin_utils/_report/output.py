# PRIVATE: the report's formats and files, shared by `distsec report build` and the report action.
from __future__ import annotations

import os
from typing import Any, Callable, Dict, List, Optional, Sequence

from ansible_collections.distsec.framework.plugins.module_utils._enforce.record import utc_now
from ansible_collections.distsec.framework.plugins.module_utils._trust.state import atomic_write_bytes

from .machine import render_json, render_junit
from .page import render_html
from .summary import build_report
from .table import render_table

__all__ = ["FILES", "FORMATS", "make_report", "parse_formats", "write_reports"]

FORMATS = ("table", "html", "json", "junit")
# format -> (file name in the output directory, renderer)
FILES: Dict[str, Any] = {
    "table": ("report.txt", render_table),
    "html": ("report.html", render_html),
    "json": ("report.json", render_json),
    "junit": ("report.junit.xml", render_junit),
}


def parse_formats(value: Any) -> List[str]:
    """Formats from a list or a comma-separated string; "all" is every one. ValueError names a bad one."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not items:
        raise ValueError(f"formats: expected some of {', '.join(FORMATS)} or all, got {value!r}")
    out: List[str] = []
    for item in items:
        name = item.strip().lower() if isinstance(item, str) else item
        if name == "all":
            return list(FORMATS)
        if name not in FORMATS:
            raise ValueError(f"formats: unknown format {name!r} (expected some of {', '.join(FORMATS)} or all)")
        if name not in out:
            out.append(name)
    return out


def make_report(
    entries: Sequence[Dict[str, Any]], *, title: Optional[str] = None, generated_at: Optional[str] = None
) -> Dict[str, Any]:
    return build_report(entries, generated_at=generated_at or utc_now(), title=title)


def write_reports(
    report: Dict[str, Any], directory: str, formats: Sequence[str], *, mode: int = 0o640
) -> Dict[str, str]:
    """Write report.{txt,html,json,junit.xml} (those of `formats`) atomically; format -> path.

    OSError is left to the caller, which names the path.
    """
    os.makedirs(directory, mode=0o750, exist_ok=True)
    paths: Dict[str, str] = {}
    for name in FORMATS:
        if name not in formats:
            continue
        file_name, render = FILES[name]
        path = os.path.join(directory, file_name)
        renderer: Callable[[Dict[str, Any]], str] = render
        atomic_write_bytes(path, renderer(report).encode("utf-8"), mode)
        paths[name] = path
    return paths
