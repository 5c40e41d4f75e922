# PRIVATE: certificate lifetime maths: durations, the renewal point (two thirds of the lifetime
# by default), whether a certificate must be (re)issued, and the clock check. Pure.
from __future__ import annotations

import re
from typing import Optional, Union

from ansible_collections.distsec.framework.plugins.module_utils._pki.errors import BadRequest, ClockSkew

__all__ = [
    "BACKDATE",
    "DEFAULT_FRACTION",
    "MAX_LIFETIME",
    "MIN_LIFETIME",
    "backdate_for",
    "check_clock",
    "check_lifetime",
    "format_duration",
    "parse_duration",
    "renew_at",
    "renewal_reason",
]

_DURATION_RE = re.compile(r"^([0-9]{1,7}[wdhms])+$")
_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
MIN_LIFETIME = 60
MAX_LIFETIME = 825 * 86400
DEFAULT_FRACTION = 2.0 / 3.0
# notBefore is set up to this far in the past (the default max_clock_skew) so that a host whose clock is behind the
# PDP's accepts a fresh certificate (step-ca does the same). The lifetime counts from notBefore
# (notAfter - notBefore == lifetime), so the backdate is at most a tenth of the lifetime.
BACKDATE = 300


def backdate_for(lifetime: int) -> int:
    """Seconds to set notBefore in the past for a certificate of `lifetime` seconds."""
    return min(BACKDATE, max(0, int(lifetime) // 10))


def parse_duration(value: Union[str, int, float], what: str = "lifetime") -> int:
    """Seconds of 90, '90', '30d', '12h', '1d12h', '2w'. BadRequest when it is not one."""
    if isinstance(value, bool):
        raise BadRequest(f"{what}: {value!r} is not a duration (e.g. 30d, 12h, 90s)")
    if isinstance(value, (int, float)):
        seconds = int(value)
    else:
        text = str(value).strip()
        if text.isdigit():
            seconds = int(text)
        elif _DURATION_RE.match(text):
            seconds = sum(int(n) * _UNITS[u] for n, u in re.findall(r"([0-9]+)([wdhms])", text))
        else:
            raise BadRequest(f"{what}: {value!r} is not a duration (e.g. 30d, 12h, 90s)")
    if seconds <= 0:
        raise BadRequest(f"{what}: {value!r} must be longer than zero")
    return seconds


def check_lifetime(seconds: int) -> int:
    if seconds < MIN_LIFETIME or seconds > MAX_LIFETIME:
        raise BadRequest(
            f"a certificate lifetime of {format_duration(seconds)} is outside "
            f"{format_duration(MIN_LIFETIME)}..{format_duration(MAX_LIFETIME)}"
        )
    return seconds


def format_duration(seconds: float) -> str:
    """'30d', '1d12h', '90s' (the largest units first; '0s' for zero)."""
    seconds = round(seconds)
    if seconds <= 0:
        return "0s"
    out = []
    for unit in ("d", "h", "m", "s"):
        n, seconds = divmod(seconds, _UNITS[unit])
        if n:
            out.append(f"{n}{unit}")
    return "".join(out)


def renew_at(not_before: float, not_after: float, fraction: float = DEFAULT_FRACTION) -> float:
    """The moment `fraction` of the lifetime has passed (a timestamp)."""
    return not_before + (not_after - not_before) * fraction


def renewal_reason(
    now: float,
    not_before: float,
    not_after: float,
    max_lifetime: int,
    fraction: float = DEFAULT_FRACTION,
) -> Optional[str]:
    """Why a certificate valid from not_before to not_after must be replaced now, or None.

    Slack: a certificate issued with BACKDATE counts its lifetime from notBefore, so
    not_after - not_before equals the lifetime asked for; a difference above max_lifetime
    means the limit was lowered since.
    """
    if not 0.0 < fraction < 1.0:
        raise BadRequest(f"renew fraction {fraction!r} must be between 0 and 1")
    if now < not_before:
        return "the certificate is not valid yet (notBefore is in the future)"
    if now >= not_after:
        return "the certificate has expired"
    if not_after - not_before > max_lifetime + 1:
        return (
            f"its lifetime {format_duration(not_after - not_before)} is longer than the limit "
            f"{format_duration(max_lifetime)}"
        )
    due = renew_at(not_before, not_after, fraction)
    if now >= due:
        return f"{round(fraction * 100)}% of its lifetime has passed (renewal was due {format_duration(now - due)} ago)"
    return None


def check_clock(host_now: float, pdp_now: float, max_skew: float, host: str = "the host") -> float:
    """The skew host - PDP in seconds; ClockSkew when its size is above max_skew."""
    skew = host_now - pdp_now
    if abs(skew) > max_skew:
        direction = "ahead of" if skew > 0 else "behind"
        raise ClockSkew(
            f"{host}: the clock is {format_duration(abs(skew))} {direction} the PDP's "
            f"(more than {format_duration(max_skew)}): certificates would look expired or not yet valid; "
            "fix the host's time (NTP) and run the join again"
        )
    return skew
