# PRIVATE: the fleet report's input: one entry per host, read from and written to files.
#
# An entry is {"host": NAME, "status": <Security Status or null>, "run": <run record or null>,
# "reachable": bool} (docs/dev/enforce-design.md, "The fleet report"). The report action writes
# one per host as DIR/hosts/HOST.json; `distsec report build DIR` (or FILE...) reads them back.
# Host data is untrusted: only the entry's outline is checked here, and the summary reads the
# rest defensively.
from __future__ import annotations

import glob
import json
import os
from typing import Any, Dict, List, Optional, Sequence
from urllib.parse import quote

from ansible_collections.distsec.framework.plugins.module_utils._enforce.record import MODES, RESULTS, RUN_SCHEMA
from ansible_collections.distsec.framework.plugins.module_utils._trust.state import atomic_write_bytes

__all__ = [
    "MAX_ENTRY_BYTES",
    "ReportInputError",
    "check_entry",
    "entry_file_name",
    "load_entries",
    "make_entry",
    "write_entries",
]

MAX_ENTRY_BYTES = 64 * 1024 * 1024
MAX_HOST_NAME = 255
HOSTS_DIR = "hosts"


class ReportInputError(Exception):
    """An entry (or a source of entries) that cannot be used: the message names it and what is wrong."""


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _check_run(run: Dict[str, Any], where: str) -> None:
    schema = run.get("schema")
    if schema != RUN_SCHEMA:
        raise ReportInputError(f"{where}: run.schema: expected {RUN_SCHEMA!r}, got {schema!r} (not a run record)")
    if run.get("mode") not in MODES:
        raise ReportInputError(f"{where}: run.mode: expected one of {', '.join(MODES)}, got {run.get('mode')!r}")
    if run.get("result") not in RESULTS:
        raise ReportInputError(f"{where}: run.result: expected one of {', '.join(RESULTS)}, got {run.get('result')!r}")
    for key in ("policy", "profile", "compliance", "drift", "firewall"):
        if run.get(key) is not None and not isinstance(run[key], dict):
            raise ReportInputError(f"{where}: run.{key}: expected an object, got {_kind(run[key])}")


def check_entry(data: Any, where: str) -> Dict[str, Any]:
    """The entry `data` (from `where`, a file name or a host) in its normal form, or ReportInputError."""
    if not isinstance(data, dict):
        raise ReportInputError(
            f"{where}: not a report entry: expected an object with host, status, run and reachable, got {_kind(data)}"
        )
    host = data.get("host")
    if not isinstance(host, str) or not host.strip():
        raise ReportInputError(f"{where}: host: expected the host's name (a string), got {_kind(host)}")
    if len(host) > MAX_HOST_NAME or not host.isprintable():
        raise ReportInputError(f"{where}: host: {host[:60]!r} is not a host name (printable, up to 255 characters)")
    status, run = data.get("status"), data.get("run")
    if status is not None and not isinstance(status, dict):
        raise ReportInputError(f"{where}: status: expected a Security Status (an object) or null, got {_kind(status)}")
    if run is not None:
        if not isinstance(run, dict):
            raise ReportInputError(f"{where}: run: expected a run record (an object) or null, got {_kind(run)}")
        _check_run(run, where)
    reachable = data.get("reachable", status is not None or run is not None)
    if not isinstance(reachable, bool):
        raise ReportInputError(f"{where}: reachable: expected true or false, got {_kind(reachable)}")
    return {"host": host, "status": status, "run": run, "reachable": reachable}


def make_entry(
    host: str, status: Optional[Dict[str, Any]], run: Optional[Dict[str, Any]], reachable: bool
) -> Dict[str, Any]:
    """An entry from its parts (checked as a loaded one is)."""
    return check_entry({"host": host, "status": status, "run": run, "reachable": reachable}, host)


def _read(path: str) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read(MAX_ENTRY_BYTES + 1)
    except FileNotFoundError:
        raise ReportInputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ReportInputError(f"{path}: is a directory without a hosts/ directory") from None
    except OSError as exc:
        raise ReportInputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ReportInputError(
            f"{path}: not a report entry: not UTF-8 text ({exc.reason} at byte {exc.start})"
        ) from None
    if len(text) > MAX_ENTRY_BYTES:
        raise ReportInputError(f"{path}: larger than {MAX_ENTRY_BYTES // (1024 * 1024)} MiB: not a report entry")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportInputError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except (ValueError, RecursionError) as exc:
        raise ReportInputError(f"{path}: not valid JSON: {exc}") from None


def _entry_files(source: str) -> List[str]:
    if os.path.isdir(source):
        hosts = os.path.join(source, HOSTS_DIR)
        if not os.path.isdir(hosts):
            raise ReportInputError(
                f"{source}: no {HOSTS_DIR}/ directory: expected {os.path.join(source, HOSTS_DIR, 'HOST.json')} "
                "files, as the report action writes them (or give the entry files themselves)"
            )
        files = sorted(glob.glob(os.path.join(glob.escape(hosts), "*.json")))
        if not files:
            raise ReportInputError(f"{hosts}: no host entries (*.json) in it")
        return files
    if not os.path.exists(source):
        raise ReportInputError(f"{source}: no such file or directory")
    return [source]


def load_entries(sources: Sequence[str]) -> List[Dict[str, Any]]:
    """The entries of `sources` (directories holding hosts/*.json, or entry files), one per host."""
    if not sources:
        raise ReportInputError("no sources: give a report directory (DIR/hosts/*.json) or entry files")
    entries: List[Dict[str, Any]] = []
    seen: Dict[str, str] = {}
    for source in sources:
        for path in _entry_files(source):
            entry = check_entry(_read(path), path)
            if entry["host"] in seen:
                raise ReportInputError(f"{path}: host {entry['host']!r} is already in {seen[entry['host']]}")
            seen[entry["host"]] = path
            entries.append(entry)
    return entries


def entry_file_name(host: str) -> str:
    """HOST.json, with what a file name cannot hold (/, a leading dot, NUL, %) percent-encoded."""
    name = quote(host, safe="@:+,=-_.~ ")
    if name.startswith("."):
        name = "%2E" + name[1:]
    return name + ".json"


def write_entries(directory: str, entries: Sequence[Dict[str, Any]], *, prune: bool = True) -> List[str]:
    """Write each entry as DIRECTORY/hosts/HOST.json (mode 0640, atomically); the paths written.

    prune: remove the other *.json files of DIRECTORY/hosts, so that it holds exactly this report's
    hosts and `distsec report build DIRECTORY` rebuilds the same report.
    """
    hosts = os.path.join(directory, HOSTS_DIR)
    os.makedirs(hosts, mode=0o750, exist_ok=True)
    paths = []
    for entry in entries:
        path = os.path.join(hosts, entry_file_name(entry["host"]))
        data = json.dumps(entry, sort_keys=True, indent=1, ensure_ascii=False) + "\n"
        atomic_write_bytes(path, data.encode("utf-8"), 0o640)
        paths.append(path)
    if prune:
        for stale in sorted(set(glob.glob(os.path.join(glob.escape(hosts), "*.json"))) - set(paths)):
            os.unlink(stale)
    return paths
