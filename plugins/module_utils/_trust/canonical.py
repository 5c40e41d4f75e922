# PRIVATE: canonical JSON (what is signed) and a strict JSON reader for untrusted documents.
#
# Runs on hosts: stdlib only, Python 3.9.
from __future__ import annotations

import calendar
import json
import re
import time
from typing import Any, List, Tuple

__all__ = ["MAX_INT_DIGITS", "StrictJSONError", "canonical", "format_time", "loads_strict", "parse_time"]

# JSON integers longer than this are refused before int() sees them (a 16 MiB run of digits
# costs minutes on Python 3.9, which has no int-digits limit).
MAX_INT_DIGITS = 20

_TIME_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$")


class StrictJSONError(ValueError):
    """The bytes are not a JSON document of the accepted subset."""


def canonical(obj: Any) -> bytes:
    """The bytes that are signed: sorted keys, no whitespace, UTF-8 (raises ValueError if not encodable)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def _no_duplicates(pairs: List[Tuple[str, Any]]) -> dict:
    out = {}
    for key, value in pairs:
        if key in out:
            raise StrictJSONError(f"duplicate key {key[:64]!r}")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise StrictJSONError(f"{name} is not allowed")


def _no_float(text: str) -> Any:
    raise StrictJSONError(f"non-integer number {text[:32]!r} is not allowed")


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise StrictJSONError(f"integer with more than {MAX_INT_DIGITS} digits")
    return int(text)


def loads_strict(data: bytes) -> Any:
    """Parse UTF-8 JSON: no duplicate keys, no floats, NaN or Infinity, no huge integers."""
    try:
        text = data.decode("utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise StrictJSONError(f"not UTF-8: {exc.reason} at byte {exc.start}") from None
    try:
        return json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_constant=_no_constant,
            parse_float=_no_float,
            parse_int=_int,
        )
    except StrictJSONError:
        raise
    except RecursionError:
        raise StrictJSONError("nested too deeply") from None
    except ValueError as exc:
        raise StrictJSONError(f"not JSON: {exc}") from None


def parse_time(value: Any) -> float:
    """Epoch seconds of an ISO 8601 UTC time written exactly as YYYY-MM-DDTHH:MM:SSZ (ValueError if not)."""
    if not isinstance(value, str) or not _TIME_RE.match(value):
        raise ValueError(f"{str(value)[:40]!r} is not an ISO 8601 UTC time (YYYY-MM-DDTHH:MM:SSZ)")
    try:
        parsed = time.strptime(value, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        raise ValueError(f"{value!r} is not a valid time") from None
    return float(calendar.timegm(parsed))


def format_time(epoch: float) -> str:
    """YYYY-MM-DDTHH:MM:SSZ (UTC, whole seconds)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(epoch)))
