# PRIVATE: version ordering with each platform's own semantics (dpkg, rpm, pep440, semver).
from __future__ import annotations

import re

__all__ = ["SCHEMES", "VersionError", "compare", "validate"]

SCHEMES = ("dpkg", "rpm", "pep440", "semver")

# Written from the specifications (Debian Policy §5.6.12, rpm's rpmvercmp rules, PEP 440, SemVer 2.0.0).
# Everything is ASCII: character classes are spelled out rather than taken from str.isdigit()/isalpha(),
# which also accept non-ASCII characters. Digit runs are compared as strings (length, then text, after
# dropping leading zeros) so that arbitrarily long numbers never reach int() and its digit limit.

_DIGITS = frozenset("0123456789")
_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_ALNUM = _DIGITS | _LETTERS


class VersionError(ValueError):
    """A string that is not a version in the given scheme, or an unknown scheme."""


def _fail(scheme: str, v: object, reason: str) -> VersionError:
    return VersionError(f"not a {scheme} version: {v!r} ({reason})")


def _num_key(digits: str) -> tuple:
    """Numeric order of a run of ASCII digits, without int()."""
    stripped = digits.lstrip("0")
    return (len(stripped), stripped)


def _sign(a: object, b: object) -> int:
    return (a > b) - (a < b)


def _is_number(s: str) -> bool:
    return bool(s) and all(c in _DIGITS for c in s)


def _bad_char(s: str, allowed: frozenset) -> str | None:
    for c in s:
        if c not in allowed:
            return c
    return None


# --- dpkg ---------------------------------------------------------------------------------------------------------

_DPKG_UPSTREAM_CHARS = _ALNUM | frozenset(".+~:-")
_DPKG_REVISION_CHARS = _ALNUM | frozenset(".+~")


def _split_epoch(scheme: str, v: str) -> tuple:
    """'[epoch:]rest' -> (epoch, rest), shared by dpkg and rpm; the epoch defaults to '0'."""
    if not v:
        raise _fail(scheme, v, "empty version string")
    epoch, colon, rest = v.partition(":")
    if not colon:
        return "0", v
    if not epoch:
        raise _fail(scheme, v, "empty epoch")
    if not _is_number(epoch):
        raise _fail(scheme, v, "epoch is not a number")
    return epoch, rest


def _dpkg_parse(v: str) -> tuple:
    """[epoch:]upstream_version[-debian_revision] -> (epoch key, upstream, revision)."""
    epoch, rest = _split_epoch("dpkg", v)
    upstream, hyphen, revision = rest.rpartition("-")
    if not hyphen:
        upstream, revision = rest, ""
    elif not revision:
        raise _fail("dpkg", v, "empty revision")
    if not upstream:
        raise _fail("dpkg", v, "empty upstream version")
    # dpkg only warns when upstream does not start with a digit; such versions are accepted and ordered.
    bad = _bad_char(upstream, _DPKG_UPSTREAM_CHARS)
    if bad is not None:
        raise _fail("dpkg", v, f"invalid character {bad!r} in upstream version")
    bad = _bad_char(revision, _DPKG_REVISION_CHARS)
    if bad is not None:
        raise _fail("dpkg", v, f"invalid character {bad!r} in revision")
    return _num_key(epoch), upstream, revision


def _dpkg_order(c: str) -> int:
    """Weight of one character of a non-digit part; 0 stands for 'end of part'."""
    if c == "~":
        return -1
    if c in _LETTERS:
        return ord(c)
    return ord(c) + 256


def _dpkg_run(s: str, i: int, digits: bool) -> int:
    """End of the run starting at i of digits (or of non-digits)."""
    while i < len(s) and (s[i] in _DIGITS) == digits:
        i += 1
    return i


def _dpkg_verrevcmp(a: str, b: str) -> int:
    i = j = 0
    while i < len(a) or j < len(b):
        ei, ej = _dpkg_run(a, i, False), _dpkg_run(b, j, False)
        part_a, part_b = a[i:ei], b[j:ej]
        for k in range(max(len(part_a), len(part_b))):
            wa = _dpkg_order(part_a[k]) if k < len(part_a) else 0
            wb = _dpkg_order(part_b[k]) if k < len(part_b) else 0
            if wa != wb:
                return _sign(wa, wb)
        i, j = ei, ej
        ei, ej = _dpkg_run(a, i, True), _dpkg_run(b, j, True)
        rc = _sign(_num_key(a[i:ei]), _num_key(b[j:ej]))
        if rc:
            return rc
        i, j = ei, ej
    return 0


def _dpkg_compare(a: str, b: str) -> int:
    pa, pb = _dpkg_parse(a), _dpkg_parse(b)
    return _sign(pa[0], pb[0]) or _dpkg_verrevcmp(pa[1], pb[1]) or _dpkg_verrevcmp(pa[2], pb[2])


# --- rpm ----------------------------------------------------------------------------------------------------------

# What rpmbuild accepts in Version and Release, less the macro characters (%{}), which never survive expansion.
_RPM_CHARS = _ALNUM | frozenset("._+~^")


def _rpm_parse(v: str) -> tuple:
    """[epoch:]version[-release] -> (epoch key, version, release); a missing release is None."""
    epoch, rest = _split_epoch("rpm", v)
    version, hyphen, release = rest.rpartition("-")
    if not hyphen:
        version, release = rest, None
    elif not release:
        raise _fail("rpm", v, "empty release")
    if not version:
        raise _fail("rpm", v, "empty version")
    bad = _bad_char(version, _RPM_CHARS)
    if bad is not None:
        raise _fail("rpm", v, f"invalid character {bad!r} in version")
    bad = _bad_char(release or "", _RPM_CHARS)
    if bad is not None:
        raise _fail("rpm", v, f"invalid character {bad!r} in release")
    return _num_key(epoch), version, release


def _rpm_segment(s: str, i: int, charset: frozenset) -> int:
    while i < len(s) and s[i] in charset:
        i += 1
    return i


def _rpmvercmp(a: str, b: str) -> int:
    if a == b:
        return 0
    i = j = 0
    while i < len(a) or j < len(b):
        # Anything that is not alphanumeric, '~' or '^' only separates segments.
        while i < len(a) and a[i] not in _ALNUM and a[i] not in "~^":
            i += 1
        while j < len(b) and b[j] not in _ALNUM and b[j] not in "~^":
            j += 1
        ca = a[i] if i < len(a) else ""
        cb = b[j] if j < len(b) else ""
        # '~' sorts before everything, the end of the string included.
        if ca == "~" or cb == "~":
            if ca != "~":
                return 1
            if cb != "~":
                return -1
            i, j = i + 1, j + 1
            continue
        # '^' sorts after the end of the string but before any further segment.
        if ca == "^" or cb == "^":
            if not ca:
                return -1
            if not cb:
                return 1
            if ca != "^":
                return 1
            if cb != "^":
                return -1
            i, j = i + 1, j + 1
            continue
        if not (ca and cb):
            break
        numeric = ca in _DIGITS
        charset = _DIGITS if numeric else _LETTERS
        ei, ej = _rpm_segment(a, i, charset), _rpm_segment(b, j, charset)
        seg_a, seg_b = a[i:ei], b[j:ej]
        if not seg_b:
            # Segments of different kinds: a numeric segment is newer than an alphabetic one.
            return 1 if numeric else -1
        rc = _sign(_num_key(seg_a), _num_key(seg_b)) if numeric else _sign(seg_a, seg_b)
        if rc:
            return rc
        i, j = ei, ej
    # Whichever still has segments left is newer.
    a_done, b_done = i >= len(a), j >= len(b)
    if a_done and b_done:
        return 0
    return -1 if a_done else 1


def _rpm_compare(a: str, b: str) -> int:
    pa, pb = _rpm_parse(a), _rpm_parse(b)
    rc = _sign(pa[0], pb[0]) or _rpmvercmp(pa[1], pb[1])
    if rc:
        return rc
    if pa[2] is None or pb[2] is None:
        # As rpm orders full EVRs: any release, even one of separators only, is newer than none.
        return _sign(pa[2] is not None, pb[2] is not None)
    return _rpmvercmp(pa[2], pb[2])


# --- pep440 -------------------------------------------------------------------------------------------------------

_PEP440_RE = re.compile(
    r"""
    (?:(?P<epoch>[0-9]+)!)?
    (?P<release>[0-9]+(?:\.[0-9]+)*)
    (?:(?P<pre_l>a|b|rc)(?P<pre_n>[0-9]+))?
    (?:\.post(?P<post>[0-9]+))?
    (?:\.dev(?P<dev>[0-9]+))?
    (?:\+(?P<local>[a-z0-9]+(?:\.[a-z0-9]+)*))?
    """,
    re.VERBOSE | re.IGNORECASE | re.ASCII,
)
_PEP440_FORM = "expected [N!]N(.N)*[{a|b|rc}N][.postN][.devN][+local]"
_PEP440_PRE = {"a": 0, "b": 1, "rc": 2}


def _pep440_key(v: str) -> tuple:
    m = _PEP440_RE.fullmatch(v)
    if m is None:
        if not v:
            raise _fail("pep440", v, "empty version string")
        if v[0] in "vV":
            raise _fail("pep440", v, f"a leading 'v' is not accepted; {_PEP440_FORM}")
        raise _fail("pep440", v, _PEP440_FORM)
    release = [_num_key(n) for n in m.group("release").split(".")]
    while len(release) > 1 and release[-1] == (0, ""):  # 1.0 == 1.0.0
        release.pop()
    pre_l, post, dev, local = m.group("pre_l"), m.group("post"), m.group("dev"), m.group("local")
    if pre_l is not None:
        pre = (_PEP440_PRE[pre_l.lower()], _num_key(m.group("pre_n")))
    elif post is None and dev is not None:
        pre = (-1, (0, ""))  # 1.0.dev1 sorts before 1.0a1
    else:
        pre = (3, (0, ""))  # a final release sorts after its pre-releases
    post_key = (0, (0, "")) if post is None else (1, _num_key(post))
    dev_key = (1, (0, "")) if dev is None else (0, _num_key(dev))
    if local is None:
        local_key: tuple = (0, ())
    else:
        local_key = (
            1,
            tuple((1, _num_key(s)) if _is_number(s) else (0, s.lower()) for s in local.split(".")),
        )
    return _num_key(m.group("epoch") or "0"), tuple(release), pre, post_key, dev_key, local_key


def _pep440_compare(a: str, b: str) -> int:
    return _sign(_pep440_key(a), _pep440_key(b))


# --- semver -------------------------------------------------------------------------------------------------------

_SEMVER_IDENT_CHARS = _ALNUM | frozenset("-")


def _semver_identifiers(v: str, text: str, what: str) -> list:
    idents = text.split(".")
    for ident in idents:
        if not ident:
            raise _fail("semver", v, f"empty {what} identifier")
        bad = _bad_char(ident, _SEMVER_IDENT_CHARS)
        if bad is not None:
            raise _fail("semver", v, f"invalid character {bad!r} in {what}")
    return idents


def _semver_key(v: str) -> tuple:
    if not v:
        raise _fail("semver", v, "empty version string")
    if v[0] in "vV":
        raise _fail("semver", v, "a leading 'v' is not part of a semantic version")
    rest, plus, build = v.partition("+")
    if plus:
        if not build:
            raise _fail("semver", v, "empty build metadata")
        _semver_identifiers(v, build, "build metadata")  # validated, then ignored for precedence
    core, hyphen, pre = rest.partition("-")
    pre_key: tuple = (1,)  # a normal version has higher precedence than any of its pre-releases
    if hyphen:
        if not pre:
            raise _fail("semver", v, "empty pre-release")
        idents = []
        for ident in _semver_identifiers(v, pre, "pre-release"):
            if _is_number(ident):
                if len(ident) > 1 and ident[0] == "0":
                    raise _fail("semver", v, f"numeric pre-release identifier {ident!r} has a leading zero")
                idents.append((0, _num_key(ident)))  # numeric identifiers sort before alphanumeric ones
            else:
                idents.append((1, ident))
        pre_key = (0, tuple(idents))
    numbers = core.split(".")
    if len(numbers) != 3:
        raise _fail("semver", v, "expected MAJOR.MINOR.PATCH")
    for name, number in zip(("MAJOR", "MINOR", "PATCH"), numbers):
        if not _is_number(number):
            raise _fail("semver", v, f"{name} is not a number")
        if len(number) > 1 and number[0] == "0":
            raise _fail("semver", v, f"{name} has a leading zero")
    return tuple(_num_key(n) for n in numbers), pre_key


def _semver_compare(a: str, b: str) -> int:
    return _sign(_semver_key(a), _semver_key(b))


# --- public -------------------------------------------------------------------------------------------------------

_COMPARE = {
    "dpkg": _dpkg_compare,
    "rpm": _rpm_compare,
    "pep440": _pep440_compare,
    "semver": _semver_compare,
}


def _check(v: object, scheme: object) -> None:
    if not isinstance(scheme, str) or scheme not in _COMPARE:
        raise VersionError(f"unknown version scheme {scheme!r} (expected one of: {', '.join(SCHEMES)})")
    if not isinstance(v, str):
        raise _fail(scheme, v, f"expected a string, got {type(v).__name__}")


def compare(a: str, b: str, scheme: str) -> int:
    """-1, 0 or 1 as version a sorts before, the same as, or after version b in the scheme."""
    _check(a, scheme)
    _check(b, scheme)
    return _COMPARE[scheme](a, b)


def validate(v: str, scheme: str) -> None:
    """Raise VersionError unless v is a version in the scheme."""
    _check(v, scheme)
    _COMPARE[scheme](v, v)
