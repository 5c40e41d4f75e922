# PRIVATE: Security Status collectors: the registry and the context they run in (stdlib only).
#
# A collector is a function `collect(ctx) -> dict` registered under its name with
# @collector("name"). It reads the host through `ctx` only (commands as argv lists, files
# through ctx.read), so tests run it on fixture files and recorded command output. A
# collector that cannot run raises CollectorError (or anything else): gather() reports it
# under `errors` and the other collectors go on. Collectors never change the host.
from __future__ import annotations

import datetime
import json
import os
import shutil
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

__all__ = ["COLLECTORS", "SCHEMA_VERSION", "CollectorError", "Context", "collector", "gather"]

SCHEMA_VERSION = 1
MAX_READ = 64 * 1024 * 1024

Runner = Callable[[Sequence[str]], Tuple[int, str, str]]
COLLECTORS: Dict[str, Callable[[Context], Dict[str, Any]]] = {}


class CollectorError(Exception):
    """A collector could not gather its facts; the message says why, for people."""


def collector(name: str):
    def register(func):
        COLLECTORS[name] = func
        return func

    return register


class Context:
    """How a collector sees the host: commands, files under `root`, and the clock."""

    def __init__(
        self,
        run: Runner,
        *,
        root: str = "/",
        now: Optional[float] = None,
        which: Optional[Callable[[str], Optional[str]]] = None,
    ) -> None:
        self._run = run
        self.root = root
        self.now = now if now is not None else datetime.datetime.now(datetime.timezone.utc).timestamp()
        self._which = which or shutil.which

    def path(self, path: str) -> str:
        return os.path.join(self.root, path.lstrip("/"))

    def read(self, path: str, limit: int = MAX_READ) -> Optional[str]:
        """A text file's content, or None when it does not exist or cannot be read."""
        chunks: List[str] = []
        size = 0
        try:
            with open(self.path(path), encoding="utf-8", errors="replace") as handle:
                while size < limit:  # in pieces: read(n) would allocate n at once, which /proc refuses
                    chunk = handle.read(min(65536, limit - size))
                    if not chunk:
                        break
                    chunks.append(chunk)
                    size += len(chunk)
        except OSError:
            return None
        return "".join(chunks)

    def read_json(self, path: str, limit: int = 16 * 1024 * 1024) -> Optional[Dict[str, Any]]:
        """A JSON object from a file; None when the file is absent. Anything else is a CollectorError."""
        if not self.exists(path):
            return None
        text = self.read(path, limit=limit + 1)
        if text is None:
            raise CollectorError(f"{path} exists but cannot be read")
        if len(text) > limit:
            raise CollectorError(f"{path} is larger than {limit} bytes")
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise CollectorError(f"{path} is not valid JSON: {exc}") from None
        except RecursionError:
            raise CollectorError(f"{path} is nested too deeply") from None
        if not isinstance(data, dict):
            raise CollectorError(f"{path} must hold a JSON object, not {type(data).__name__}")
        return data

    def exists(self, path: str) -> bool:
        return os.path.exists(self.path(path))

    def listdir(self, path: str) -> List[str]:
        try:
            return sorted(os.listdir(self.path(path)))
        except OSError:
            return []

    def which(self, name: str) -> Optional[str]:
        return self._which(name)

    def run(self, argv: Sequence[str]) -> Tuple[int, str, str]:
        """Run a command (argv list, never a shell). A missing program gives rc 127."""
        if not argv or self.which(argv[0]) is None:
            return 127, "", f"{argv[0] if argv else '?'}: not installed"
        return self._run(list(argv))

    def iso(self, timestamp: float) -> str:
        moment = datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc)
        return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def gather(ctx: Context, names: Optional[Iterable[str]] = None) -> Dict[str, Any]:
    """Run the named collectors (default: all); each failure is reported, never raised."""
    chosen = list(COLLECTORS) if names is None else list(names)
    unknown = [n for n in chosen if n not in COLLECTORS]
    if unknown:
        raise CollectorError(f"unknown collector(s): {', '.join(unknown)}; choose from {', '.join(sorted(COLLECTORS))}")
    status: Dict[str, Any] = {"schema_version": SCHEMA_VERSION, "collected_at": ctx.iso(ctx.now)}
    errors: Dict[str, str] = {}
    durations: Dict[str, float] = {}
    for name in chosen:
        started = time.monotonic()
        try:
            status[name] = COLLECTORS[name](ctx)
        except CollectorError as exc:
            errors[name] = str(exc)
        except Exception as exc:  # noqa: BLE001 - one broken source must not stop the others
            errors[name] = f"{type(exc).__name__}: {exc}"
        durations[name] = round(time.monotonic() - started, 4)
    status["errors"] = errors
    status["durations"] = durations
    return status
