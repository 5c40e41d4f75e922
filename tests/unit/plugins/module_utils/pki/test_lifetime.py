"""lifetime: durations, the renewal point, renewal reasons, the backdate and the clock check."""

from __future__ import annotations

import pytest

from ansible_collections.distsec.framework.plugins.module_utils._pki.errors import BadRequest, ClockSkew
from ansible_collections.distsec.framework.plugins.module_utils._pki.lifetime import (
    BACKDATE,
    MAX_LIFETIME,
    MIN_LIFETIME,
    backdate_for,
    check_clock,
    check_lifetime,
    format_duration,
    parse_duration,
    renew_at,
    renewal_reason,
)

DAY = 86400
T0 = 1_800_000_000.0


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (90, 90),
        (90.7, 90),
        ("90", 90),
        (" 30d ", 30 * DAY),
        ("12h", 43200),
        ("1d12h", 129600),
        ("2w", 14 * DAY),
        ("1m30s", 90),
        ("825d", MAX_LIFETIME),
    ],
)
def test_parse_duration(value, seconds):
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("forever", "lifetime: 'forever' is not a duration (e.g. 30d, 12h, 90s)"),
        ("30 d", "is not a duration"),
        ("-5", "is not a duration"),
        ("1y", "is not a duration"),
        ("", "is not a duration"),
        (True, "lifetime: True is not a duration"),
        (0, "lifetime: 0 must be longer than zero"),
        ("0d", "must be longer than zero"),
        (-3, "must be longer than zero"),
    ],
)
def test_parse_duration_refuses(value, message):
    with pytest.raises(BadRequest) as exc:
        parse_duration(value)
    assert message in str(exc.value)


def test_parse_duration_names_what():
    with pytest.raises(BadRequest, match=r"^crl_validity: 'x' is not a duration"):
        parse_duration("x", "crl_validity")


@pytest.mark.parametrize(
    ("seconds", "ok"),
    [(MIN_LIFETIME, True), (MIN_LIFETIME - 1, False), (MAX_LIFETIME, True), (MAX_LIFETIME + 1, False)],
)
def test_check_lifetime(seconds, ok):
    if ok:
        assert check_lifetime(seconds) == seconds
    else:
        with pytest.raises(BadRequest, match=r"outside 1m\.\.825d"):
            check_lifetime(seconds)


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0s"), (-5, "0s"), (59.6, "1m"), (90, "1m30s"), (DAY + 3600, "1d1h"), (30 * DAY, "30d")]
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("lifetime", "backdate"),
    [(60, 6), (120, 12), (599, 59), (2999, 299), (3000, BACKDATE), (30 * DAY, BACKDATE), (5, 0), (9, 0), (10, 1)],
)
def test_backdate_for(lifetime, backdate):
    assert backdate_for(lifetime) == backdate
    assert backdate_for(lifetime) <= lifetime // 10


@pytest.mark.parametrize(("fraction", "at"), [(2 / 3, T0 + 20 * DAY), (0.5, T0 + 15 * DAY), (0.9, T0 + 27 * DAY)])
def test_renew_at(fraction, at):
    assert renew_at(T0, T0 + 30 * DAY, fraction) == pytest.approx(at)


LIMIT = 30 * DAY


@pytest.mark.parametrize(
    ("now", "window", "limit", "fraction", "reason"),
    [
        (T0 + DAY, (T0, T0 + LIMIT), LIMIT, 2 / 3, None),
        (T0 + 20 * DAY - 1, (T0, T0 + LIMIT), LIMIT, 2 / 3, None),
        (T0 + 20 * DAY, (T0, T0 + LIMIT), LIMIT, 2 / 3, "67% of its lifetime has passed (renewal was due 0s ago)"),
        (T0 + 21 * DAY, (T0, T0 + LIMIT), LIMIT, 2 / 3, "67% of its lifetime has passed (renewal was due 1d ago)"),
        (T0 + 16 * DAY, (T0, T0 + LIMIT), LIMIT, 0.5, "50% of its lifetime has passed (renewal was due 1d ago)"),
        (T0 + LIMIT, (T0, T0 + LIMIT), LIMIT, 2 / 3, "the certificate has expired"),
        (T0 + 40 * DAY, (T0, T0 + LIMIT), LIMIT, 2 / 3, "the certificate has expired"),
        (T0 - 1, (T0, T0 + LIMIT), LIMIT, 2 / 3, "the certificate is not valid yet (notBefore is in the future)"),
        (T0 + DAY, (T0, T0 + LIMIT), 7 * DAY, 2 / 3, "its lifetime 30d is longer than the limit 7d"),
        (T0 + DAY, (T0, T0 + LIMIT + 1), LIMIT, 2 / 3, None),  # one second of slack
        (T0 + DAY, (T0, T0 + LIMIT + 2), LIMIT, 2 / 3, "its lifetime 30d2s is longer than the limit 30d"),
    ],
)
def test_renewal_reason(now, window, limit, fraction, reason):
    assert renewal_reason(now, *window, limit, fraction) == reason


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.5, 1.5])
def test_renewal_reason_refuses_a_bad_fraction(fraction):
    with pytest.raises(BadRequest, match="must be between 0 and 1"):
        renewal_reason(T0, T0, T0 + LIMIT, LIMIT, fraction)


@pytest.mark.parametrize(("host_now", "skew"), [(T0, 0), (T0 + 300, 300), (T0 - 300, -300), (T0 + 12.5, 12.5)])
def test_check_clock_within(host_now, skew):
    assert check_clock(host_now, T0, 300) == skew


@pytest.mark.parametrize(
    ("host_now", "message"),
    [
        (T0 + 301, "web-1: the clock is 5m1s ahead of the PDP's (more than 5m)"),
        (T0 - 3600, "web-1: the clock is 1h behind the PDP's (more than 5m)"),
    ],
)
def test_check_clock_outside(host_now, message):
    with pytest.raises(ClockSkew) as exc:
        check_clock(host_now, T0, 300, host="web-1")
    assert str(exc.value).startswith(message)
    assert "fix the host's time (NTP)" in str(exc.value)
