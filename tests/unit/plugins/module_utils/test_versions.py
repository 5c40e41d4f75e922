"""Version ordering per platform (dpkg, rpm, pep440, semver): tables from each specification, then properties."""

from __future__ import annotations

import functools
import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.distsec.framework.plugins.module_utils._evaluate.versions import (
    SCHEMES,
    VersionError,
    compare,
    validate,
)

SIGN = {"<": -1, "=": 0, ">": 1}


def chain(*versions):
    """Every pair of a list that is strictly increasing, as (a, '<', b)."""
    return [(a, "<", b) for i, a in enumerate(versions) for b in versions[i + 1 :]]


# --- tables: (a, relation, b) --------------------------------------------------------------------------------------

DPKG = [
    ("1.0~rc1", "<", "1.0"),
    ("1.0", "<", "1.0+b1"),
    ("1:0.1", ">", "9.9"),
    ("1.0-1", "<", "1.0-2"),
    ("1.0a", "<", "1.0+"),
    ("2.30", ">", "2.4"),
    ("102.0", "<", "115.0"),
    ("1:115.0-1~deb12u1", ">", "1:102.15.1-1~deb12u1"),
    ("0:1.0", "=", "1.0"),
    ("1.0", "=", "1.0-0"),
    ("1.0-0", "=", "1.0-00"),
    ("01.0", "=", "1.0"),
    ("0.0001", "=", "0.1"),
    ("1.2.3-4", "=", "0:1.2.3-4"),
    ("9", "<", "10"),
    ("2:1.0", "<", "10:0.1"),
    ("1.0", "<", "1.0a"),
    ("1.0.0", "<", "1.0.0a"),
    ("1.0a", "<", "1.0b"),
    ("1.0A", "<", "1.0a"),
    ("1.0z", "<", "1.0."),
    ("1.0+", "<", "1.0."),
    ("1.0+dfsg", "<", "1.0+dfsg1"),
    ("3.0.0~alpha1", "<", "3.0.0~beta1"),
    ("1.0-1~bpo12+1", "<", "1.0-1"),
    ("1.0-1", "<", "1.0-1+deb12u1"),
    ("1.0-1+deb12u1", "<", "1.0-1.1"),
    ("1.0-1build1", "<", "1.0-1ubuntu1"),
    ("1.0-1-1", ">", "1.0-1"),
    ("1:2.0:3-1", ">", "1:2.0-1"),
    ("abc", ">", "1.0"),
    ("~~", "<", "~~a"),
    ("~~a", "<", "~"),
    # Debian Policy's example order of suffixes: ~~, ~~a, ~, the empty part, a.
    *chain("1.0~~", "1.0~~a", "1.0~", "1.0", "1.0a"),
]

RPM = [
    ("1.0~rc1", "<", "1.0"),
    ("1.0^git1", ">", "1.0"),
    ("1.0^git1", "<", "1.0.1"),
    ("1.0^git1", "<", "1.0^git2"),
    ("1.0~rc1", "<", "1.0^git1"),
    ("1.0~rc1", "<", "1.0~rc2"),
    ("1.0~~", "<", "1.0~"),
    ("1.0^", "<", "1.0^1"),
    ("1.0", "<", "1.0a"),
    ("1.0a", "<", "1.0.1"),
    ("a", "<", "1"),
    ("2.0", ">", "1.9"),
    ("5.10", ">", "5.9"),
    ("1.010", "=", "1.10"),
    ("1.0.0", "=", "1.0.00"),
    ("1.0", "<", "1.0.0"),
    ("1.0", "=", "1_0"),
    ("1.0+1", "=", "1.0.1"),
    ("1.0.", "=", "1.0"),
    ("1.1.1k", "<", "1.1.1l"),
    ("abc", "<", "abd"),
    ("B", "<", "a"),
    ("1:1.0", ">", "2.0"),
    ("0:1.0-1", "=", "1.0-1"),
    ("1.0-1.el9", "<", "1.0-2.el9"),
    ("1.0-1.el8", "<", "1.0-1.el9"),
    ("2.8.0-1.fc39", "<", "2.8.0-1.fc40"),
    ("1.0-1.el9_2", ">", "1.0-1.el9"),
    ("1.0", "<", "1.0-1"),
    ("2.0", ">", "1.0-9"),
]

PEP440 = [
    *chain("1.0.dev1", "1.0a1", "1.0b1", "1.0rc1", "1.0", "1.0.post1"),
    ("1!0.1", ">", "2.0"),
    ("0!1.0", "=", "1.0"),
    ("1.0", "=", "1.0.0"),
    ("1.01", "=", "1.1"),
    ("1.10", ">", "1.9"),
    ("1.0a2", "<", "1.0a10"),
    ("1.0RC1", "=", "1.0rc1"),
    ("1.0a1.dev1", "<", "1.0a1"),
    ("1.0a1", "<", "1.0a1.post1"),
    ("1.0.post1.dev1", "<", "1.0.post1"),
    ("1.0.post1.dev1", ">", "1.0"),
    ("2.0.dev1", ">", "1.0.post1"),
    ("1.0", "<", "1.0+local"),
    ("1.0+abc", "<", "1.0+1"),
    ("1.0+1", "<", "1.0+1.2"),
    ("1.0+ABC", "=", "1.0+abc"),
    ("1.0+local", "<", "1.0.post1"),
]

SEMVER = [
    # SemVer 2.0.0 §11's examples.
    *chain(
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
    ),
    *chain("1.0.0", "2.0.0", "2.1.0", "2.1.1"),
    ("1.0.0+build.1", "=", "1.0.0+build.2"),
    ("1.0.0-alpha+001", "=", "1.0.0-alpha"),
    ("1.0.0+20130313144700", "=", "1.0.0"),
    ("1.10.0", ">", "1.9.0"),
    ("0.0.0", "<", "0.0.1"),
    ("1.0.0-2", "<", "1.0.0-10"),
    ("1.0.0-1", "<", "1.0.0-a"),
    ("1.0.0-999", "<", "1.0.0--"),
    ("1.0.0-B", "<", "1.0.0-a"),
    ("1.0.0-a", "<", "1.0.0-a-b"),
    ("1.0.0-a.b", "<", "1.0.0-a.b.0"),
    ("1.0.0-x.7.z.92", "<", "1.0.0-x.7.z.93"),
    ("12345678901234567890.0.0", ">", "9999999999999999999.0.0"),
]

TABLES = {"dpkg": DPKG, "rpm": RPM, "pep440": PEP440, "semver": SEMVER}


def cases(scheme):
    return [pytest.param(a, rel, b, id=f"{a} {rel} {b}") for a, rel, b in TABLES[scheme]]


def all_cases():
    return [
        pytest.param(scheme, a, b, id=f"{scheme}: {a} ? {b}")
        for scheme, table in TABLES.items()
        for a, _rel, b in table
    ]


@pytest.mark.parametrize(("a", "rel", "b"), cases("dpkg"))
def test_dpkg_order(a, rel, b):
    assert compare(a, b, "dpkg") == SIGN[rel]


@pytest.mark.parametrize(("a", "rel", "b"), cases("rpm"))
def test_rpm_order(a, rel, b):
    assert compare(a, b, "rpm") == SIGN[rel]


@pytest.mark.parametrize(("a", "rel", "b"), cases("pep440"))
def test_pep440_order(a, rel, b):
    assert compare(a, b, "pep440") == SIGN[rel]


@pytest.mark.parametrize(("a", "rel", "b"), cases("semver"))
def test_semver_order(a, rel, b):
    assert compare(a, b, "semver") == SIGN[rel]


@pytest.mark.parametrize(("scheme", "left", "right"), all_cases())
def test_antisymmetric_and_reflexive(scheme, left, right):
    assert compare(left, right, scheme) == -compare(right, left, scheme)
    assert compare(left, left, scheme) == 0
    assert compare(right, right, scheme) == 0


# --- invalid versions ----------------------------------------------------------------------------------------------

INVALID = {
    "dpkg": [
        ("", "empty version string"),
        ("1:", "empty upstream version"),
        ("1:-1", "empty upstream version"),
        ("-1", "empty upstream version"),
        (":1.0", "empty epoch"),
        ("a:1.0", "epoch is not a number"),
        ("+1:1.0", "epoch is not a number"),
        ("1.0-", "empty revision"),
        ("1.0 beta", "invalid character ' ' in upstream version"),
        (" 1.0", "invalid character ' ' in upstream version"),
        ("1.0_1", "invalid character '_' in upstream version"),
        ("1.0\u00e9", "invalid character"),
        ("1.0-a/b", "invalid character '/' in revision"),
        ("1:2.0-1:3", "invalid character ':' in revision"),
    ],
    "rpm": [
        ("", "empty version string"),
        ("1:", "empty version"),
        (":1.0", "empty epoch"),
        ("x:1.0", "epoch is not a number"),
        ("1.0-", "empty release"),
        ("-1", "empty version"),
        ("1-2-3", "invalid character '-' in version"),
        ("1:2:3", "invalid character ':' in version"),
        ("1.0 beta", "invalid character ' ' in version"),
        ("1.0-1%{?dist}", "invalid character '%' in release"),
        ("1.0-1/2", "invalid character '/' in release"),
    ],
    "pep440": [
        ("", "empty version string"),
        ("v1.0", "leading 'v'"),
        ("1.0alpha1", "expected"),
        ("1.0-1", "expected"),
        ("1.0.a1", "expected"),
        ("1.0rc", "expected"),
        ("1.0.post", "expected"),
        ("1..0", "expected"),
        ("!1.0", "expected"),
        ("1.0+", "expected"),
        ("1.0+a..b", "expected"),
        ("1.0 ", "expected"),
        ("1.0\n", "expected"),
        ("\u0661.0", "expected"),
    ],
    "semver": [
        ("", "empty version string"),
        ("v1.0.0", "leading 'v'"),
        ("1.0", "expected MAJOR.MINOR.PATCH"),
        ("1.0.0.0", "expected MAJOR.MINOR.PATCH"),
        ("01.0.0", "MAJOR has a leading zero"),
        ("1.x.0", "MINOR is not a number"),
        ("1.0.\u0661", "PATCH is not a number"),
        ("1.0.0-", "empty pre-release"),
        ("1.0.0-01", "leading zero"),
        ("1.0.0-a..b", "empty pre-release identifier"),
        ("1.0.0-a_b", "invalid character '_' in pre-release"),
        ("1.0.0+", "empty build metadata"),
        ("1.0.0+a..b", "empty build metadata identifier"),
        ("1.0.0+a+b", "invalid character '+' in build metadata"),
        (" 1.0.0", "MAJOR is not a number"),
        ("1.0.0\n", "PATCH is not a number"),
    ],
}


@pytest.mark.parametrize(
    ("scheme", "version", "reason"),
    [
        pytest.param(scheme, version, reason, id=f"{scheme}: {version!r}")
        for scheme, table in INVALID.items()
        for version, reason in table
    ],
)
def test_invalid_versions_are_refused_with_scheme_and_reason(scheme, version, reason):
    with pytest.raises(VersionError) as excinfo:
        validate(version, scheme)
    message = str(excinfo.value)
    assert message.startswith(f"not a {scheme} version: {version!r} (")
    assert reason in message
    valid = {"dpkg": "1.0", "rpm": "1.0", "pep440": "1.0", "semver": "1.0.0"}[scheme]
    for a, b in ((version, valid), (valid, version)):
        with pytest.raises(VersionError, match=f"not a {scheme} version"):
            compare(a, b, scheme)


def test_message_names_scheme_string_and_problem():
    with pytest.raises(VersionError) as excinfo:
        validate("1:", "dpkg")
    assert str(excinfo.value) == "not a dpkg version: '1:' (empty upstream version)"


@pytest.mark.parametrize("scheme", SCHEMES)
def test_valid_versions_validate(scheme):
    for a, _rel, b in TABLES[scheme]:
        assert validate(a, scheme) is None
        assert validate(b, scheme) is None


def test_version_error_is_a_value_error():
    assert issubclass(VersionError, ValueError)


@pytest.mark.parametrize("scheme", ["deb", "", "DPKG", None])
def test_unknown_scheme_names_the_valid_ones(scheme):
    for call in (lambda: compare("1.0", "1.0", scheme), lambda: validate("1.0", scheme)):
        with pytest.raises(VersionError) as excinfo:
            call()
        assert repr(scheme) in str(excinfo.value)
        assert all(name in str(excinfo.value) for name in SCHEMES)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("version", [None, 1, 1.0, b"1.0"])
def test_non_strings_are_refused(scheme, version):
    with pytest.raises(VersionError, match=f"not a {scheme} version: .*expected a string"):
        validate(version, scheme)


def test_huge_numbers_compare_without_int_conversion():
    big = "9" * 5000
    assert compare(big + "0", big, "dpkg") == 1
    assert compare(f"1.{big}", f"1.{big}0", "rpm") == -1
    assert compare(f"{big}.0", f"{big}", "pep440") == 0
    assert compare(f"{big}.0.0", f"{big}.0.1", "semver") == -1


# --- the reference implementations, where this machine has them ---------------------------------------------------


def test_dpkg_table_agrees_with_dpkg():
    if not shutil.which("dpkg"):
        pytest.skip("dpkg is not installed")
    for a, rel, b in DPKG:
        op = {"<": "lt", "=": "eq", ">": "gt"}[rel]
        proc = subprocess.run(["dpkg", "--compare-versions", a, op, b], capture_output=True, check=False)
        assert proc.returncode == 0, (a, rel, b, proc.stderr)


def test_rpm_table_agrees_with_rpm():
    if not shutil.which("rpm"):
        pytest.skip("rpm is not installed")
    script = "".join(f"print(rpm.vercmp('{a}', '{b}'), ' ') " for a, _rel, b in RPM)
    proc = subprocess.run(["rpm", "--eval", "%{lua: " + script + "}"], capture_output=True, text=True, check=True)
    assert [int(r) for r in proc.stdout.split()] == [SIGN[rel] for _a, rel, _b in RPM]


def test_pep440_table_agrees_with_packaging():
    version = pytest.importorskip("packaging.version")
    for a, rel, b in PEP440:
        va, vb = version.Version(a), version.Version(b)
        assert (va > vb) - (va < vb) == SIGN[rel], (a, rel, b)


# --- properties ----------------------------------------------------------------------------------------------------

DPKG_ALPHABET = "0123456789abzABZ.+~:-"
DPKG_TOKENS = ("0", "1", "2", "9", "10", "01", "a", "b", "Z", "~", "~~", "+", ".")


def is_valid(version, scheme):
    try:
        validate(version, scheme)
    except VersionError:
        return False
    return True


@st.composite
def dpkg_versions(draw):
    """Valid dpkg versions, weighted towards the parts that make ordering interesting."""
    epoch = draw(st.sampled_from(["", "", "0:", "1:", "10:"]))
    has_revision = draw(st.booleans())
    extra = ("-",) if has_revision else ()
    extra += (":",) if epoch else ()
    upstream = draw(st.sampled_from(("0", "1", "2", "9", "a", "~")))
    upstream += "".join(draw(st.lists(st.sampled_from(DPKG_TOKENS + extra), max_size=6)))
    revision = "-" + "".join(draw(st.lists(st.sampled_from(DPKG_TOKENS), min_size=1, max_size=4)))
    return epoch + upstream + (revision if has_revision else "")


@settings(max_examples=500)
@given(st.text(alphabet=DPKG_ALPHABET, max_size=12), st.text(alphabet=DPKG_ALPHABET, max_size=12))
def test_dpkg_random_strings_raise_only_version_error(left, right):
    try:
        rc = compare(left, right, "dpkg")
    except VersionError:
        assert not (is_valid(left, "dpkg") and is_valid(right, "dpkg"))
    else:
        assert rc in (-1, 0, 1)
        assert compare(right, left, "dpkg") == -rc
    for version in (left, right):
        if is_valid(version, "dpkg"):
            assert compare(version, version, "dpkg") == 0


@given(st.sampled_from(SCHEMES), st.text(max_size=20), st.text(max_size=20))
def test_any_text_raises_only_version_error(scheme, a, b):
    try:
        rc = compare(a, b, scheme)
    except VersionError:
        return
    assert rc in (-1, 0, 1)


@given(dpkg_versions())
def test_generated_dpkg_versions_are_valid(version):
    validate(version, "dpkg")


@settings(max_examples=300)
@given(st.lists(dpkg_versions(), min_size=2, max_size=30))
def test_dpkg_sorting_is_consistent(versions):
    ordered = sorted(versions, key=functools.cmp_to_key(lambda a, b: compare(a, b, "dpkg")))
    for i, a in enumerate(ordered):
        for b in ordered[i + 1 :]:
            assert compare(a, b, "dpkg") <= 0, (a, b)


@given(dpkg_versions(), dpkg_versions(), dpkg_versions())
def test_dpkg_order_is_transitive(a, b, c):
    ab, bc, ac = compare(a, b, "dpkg"), compare(b, c, "dpkg"), compare(a, c, "dpkg")
    if ab <= 0 and bc <= 0:
        assert ac <= 0
    if ab == 0 and bc == 0:
        assert ac == 0


RPM_TOKENS = ("0", "1", "2", "10", "01", "a", "b", "Z", "~", "^", ".", "_", "+")


@st.composite
def rpm_versions(draw):
    """Valid rpm EVRs, with '~' and '^' as common as digits and letters."""
    epoch = draw(st.sampled_from(["", "", "0:", "1:"]))
    version = "".join(draw(st.lists(st.sampled_from(RPM_TOKENS), min_size=1, max_size=6)))
    release = "".join(draw(st.lists(st.sampled_from(RPM_TOKENS), min_size=1, max_size=3)))
    return epoch + version + ("-" + release if draw(st.booleans()) else "")


@settings(max_examples=300)
@given(st.lists(rpm_versions(), min_size=2, max_size=30))
def test_rpm_sorting_is_consistent(versions):
    ordered = sorted(versions, key=functools.cmp_to_key(lambda a, b: compare(a, b, "rpm")))
    for i, a in enumerate(ordered):
        assert compare(a, a, "rpm") == 0
        for b in ordered[i + 1 :]:
            assert compare(a, b, "rpm") <= 0, (a, b)
