"""Security Status host collectors (platform, packages, updates, sysctl) on a captured Debian 12 root.

fixtures/host/ is a fake root copied from a real distsec-debian12 container (os-release, /proc,
the dpkg status file after `apt-get remove nftables` and installing libgcc-s1:i386, empty
stand-ins for the apt lists with their real mtimes in _commands/apt-lists-mtimes.txt).
_commands/ holds real command output from that container; _variants/ holds hand-built rpm/dnf
output and malformed files.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from ansible_collections.distsec.framework.plugins.module_utils._status import (  # noqa: F401  # pylint: disable=unused-import
    packages,
    platform,
    sysctl,
    updates,
)
from ansible_collections.distsec.framework.plugins.module_utils._status.base import COLLECTORS, Context, gather

FIXTURES = Path(__file__).parent / "fixtures" / "host"
COMMANDS = FIXTURES / "_commands"
VARIANTS = FIXTURES / "_variants"
NOW = 1795418980.0  # 40 s after the captured security lists were downloaded
UNAME = ("uname", "-m")
APT = tuple(updates.APT_SIMULATE)
DNF_CHECK = tuple(updates.DNF_CHECK_UPDATE)
DNF_SEC = tuple(updates.DNF_SECURITY)
RPM = tuple(packages.RPM_QUERY)


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


class FakeRunner:
    """argv tuple -> (rc, out, err); a program named in no key is 'not installed' (rc 127)."""

    def __init__(self, table):
        self.table = dict(table)
        self.calls = []

    def which(self, name):
        return f"/usr/bin/{name}" if any(argv[0] == name for argv in self.table) else None

    def __call__(self, argv):
        self.calls.append(tuple(argv))
        return self.table[tuple(argv)]


def _ctx(root, table=None, now=NOW):
    runner = FakeRunner(table or {})
    return Context(runner, root=str(root), now=now, which=runner.which), runner


@pytest.fixture(scope="module")
def debian_root(tmp_path_factory):
    """The captured root, with the apt lists' recorded mtimes (git does not keep mtimes)."""
    root = tmp_path_factory.mktemp("debian12") / "root"
    shutil.copytree(FIXTURES, root, ignore=shutil.ignore_patterns("_commands", "_variants"))
    for line in _text(COMMANDS / "apt-lists-mtimes.txt").splitlines():
        mtime, name = line.split(" ", 1)
        os.utime(root / "var/lib/apt/lists" / name, (float(mtime), float(mtime)))
    return root


@pytest.fixture
def variant_root(debian_root, tmp_path):
    """A private copy of the captured root, to change files in."""
    root = tmp_path / "root"
    shutil.copytree(debian_root, root)
    return root


DEBIAN_TABLE = {
    UNAME: (0, _text(COMMANDS / "uname-m.txt"), ""),
    APT: (0, _text(COMMANDS / "apt-get-s-dist-upgrade.txt"), ""),
}


# --- platform -------------------------------------------------------------------------------


def test_platform_debian12(debian_root):
    ctx, runner = _ctx(debian_root, DEBIAN_TABLE)
    assert COLLECTORS["platform"](ctx) == {
        "os": "debian",
        "os_family": "debian",
        "distribution": "Debian GNU/Linux",
        "release": "12",
        "codename": "bookworm",
        "kernel": "6.18.44-fc-v657",
        "architecture": "x86_64",
        "boot_time": "2026-11-23T05:52:05Z",  # btime 1795413125
        "virtualization": "container",
        "version_scheme": "dpkg",
    }
    assert runner.calls == [UNAME]


@pytest.mark.parametrize(
    ("os_release", "expected"),
    [
        pytest.param(
            'NAME="Rocky Linux"\nVERSION_ID="9.4"\nID="rocky"\nID_LIKE="rhel centos fedora"\n',
            {"os": "rocky", "os_family": "rhel", "distribution": "Rocky Linux", "release": "9.4", "codename": None},
            id="rocky",
        ),
        pytest.param(
            'NAME="Red Hat Enterprise Linux"\nVERSION_ID="9.4"\nID="rhel"\nID_LIKE="fedora"\n',
            {"os": "rhel", "os_family": "rhel", "release": "9.4"},
            id="rhel-is-its-own-family",
        ),
        pytest.param(
            'NAME=Ubuntu\nVERSION_ID="24.04"\nID=ubuntu\nID_LIKE=debian\nVERSION_CODENAME=noble\n',
            {"os": "ubuntu", "os_family": "debian", "codename": "noble"},
            id="ubuntu",
        ),
        pytest.param(
            "# comment\nID=fedora\nNAME='Fedora Linux'\nVERSION_ID=40\n",
            {"os": "fedora", "os_family": "fedora", "distribution": "Fedora Linux", "release": "40"},
            id="fedora-no-id-like",
        ),
        pytest.param('ID=x\nNAME="a \\"quoted\\" \\$name"\n', {"distribution": 'a "quoted" $name'}, id="escapes"),
    ],
)
def test_platform_os_release_variants(variant_root, os_release, expected):
    (variant_root / "etc/os-release").write_text(os_release, encoding="utf-8")
    ctx, _runner = _ctx(variant_root, DEBIAN_TABLE)
    result = COLLECTORS["platform"](ctx)
    assert {key: result[key] for key in expected} == expected


@pytest.mark.parametrize(
    ("change", "key", "expected"),
    [
        pytest.param("proc-stat-empty", "boot_time", None, id="empty-proc-stat"),
        pytest.param("no-uname", "architecture", None, id="uname-missing"),
        pytest.param("no-containerenv", "virtualization", "container", id="container-from-pid1-environ"),
        pytest.param("bare-metal", "virtualization", None, id="no-container-marker"),
        pytest.param("rpm-host", "version_scheme", "rpm", id="rpm-scheme"),
        pytest.param("no-package-db", "version_scheme", None, id="no-scheme"),
    ],
)
def test_platform_partial_sources(variant_root, change, key, expected):
    table = dict(DEBIAN_TABLE)
    if change == "proc-stat-empty":
        shutil.copy(VARIANTS / "proc-stat-empty", variant_root / "proc/stat")
    elif change == "no-uname":
        del table[UNAME]
    elif change in ("no-containerenv", "bare-metal"):
        (variant_root / "run/.containerenv").unlink()
        if change == "bare-metal":
            (variant_root / "proc/1/environ").write_bytes(b"PATH=/usr/bin\0HOME=/root\0")
    elif change in ("rpm-host", "no-package-db"):
        (variant_root / "var/lib/dpkg/status").unlink()
        if change == "rpm-host":
            (variant_root / "var/lib/rpm").mkdir()
    ctx, _runner = _ctx(variant_root, table)
    assert COLLECTORS["platform"](ctx)[key] == expected


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        pytest.param(VARIANTS / "os-release-garbage", "no ID field", id="garbage"),
        pytest.param(None, "no os-release file", id="missing"),
    ],
)
def test_platform_unusable_os_release(variant_root, content, reason):
    target = variant_root / "etc/os-release"
    if content is None:
        target.unlink()
    else:
        shutil.copy(content, target)
    ctx, _runner = _ctx(variant_root, DEBIAN_TABLE)
    status = gather(ctx, ["platform"])
    assert "platform" not in status
    assert reason in status["errors"]["platform"]


# --- packages -------------------------------------------------------------------------------


def test_packages_dpkg_real_status(debian_root):
    result = COLLECTORS["packages"](_ctx(debian_root)[0])
    status_text = _text(FIXTURES / "var/lib/dpkg/status")
    # 168 stanzas: 167 installed, of which 3 for both amd64 and i386; nftables only has config-files left.
    assert status_text.count("\nPackage: ") + 1 == 168
    assert status_text.count("Status: install ok installed") == 167
    assert len(result) == 164
    assert "Status: deinstall ok config-files" in status_text
    assert "nftables" not in result
    assert result["python3"] == {"version": "3.11.2-1+b1", "arch": "amd64", "scheme": "dpkg"}
    assert "Package: python3\nStatus: install ok installed" in status_text
    assert result["bsdutils"]["version"] == "1:2.38.1-5+deb12u3"  # epoch kept
    assert result["tzdata"] == {"version": "2026b-0+deb12u1", "arch": "all", "scheme": "dpkg"}
    for name in ("libc6", "libgcc-s1", "gcc-12-base"):
        assert result[name]["arch"] == "amd64"
        assert result[name]["arches"] == ["amd64", "i386"]
    assert result["libc6"]["version"] == "2.36-9+deb12u14"
    assert sum("arches" in entry for entry in result.values()) == 3
    assert all(entry["scheme"] == "dpkg" for entry in result.values())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "Package: a\nStatus: hold ok installed\nVersion: 2:1.0\nArchitecture: amd64\n",
            {"a": {"version": "2:1.0", "arch": "amd64", "scheme": "dpkg"}},
            id="held-is-installed",
        ),
        pytest.param(
            "Package: a\nStatus: install ok half-installed\nVersion: 1\n\nPackage: b\nStatus: purge ok not-installed\n",
            {},
            id="half-and-not-installed",
        ),
        pytest.param(
            "Package: a\nStatus: install ok installed\nDescription: x\n Version: 9\nVersion: 1\n\n\n\n"
            "Package: b\nVersion: 2\nStatus: install ok installed\n",
            {
                "a": {"version": "1", "arch": "", "scheme": "dpkg"},
                "b": {"version": "2", "arch": "", "scheme": "dpkg"},
            },
            id="continuation-lines-and-extra-blank-lines",
        ),
        pytest.param("Package: a\nStatus: install ok installed\nVersion: 1:2.3", {}, id="cut-in-version-line"),
        pytest.param("", {}, id="empty"),
    ],
)
def test_parse_dpkg_status_cases(text, expected):
    assert packages.parse_dpkg_status(text) == expected


def test_packages_truncated_dpkg_status(variant_root):
    shutil.copy(VARIANTS / "dpkg-status-truncated", variant_root / "var/lib/dpkg/status")
    result = COLLECTORS["packages"](_ctx(variant_root)[0])
    # Five complete stanzas survive; bsdutils is cut inside "Version: 1:2.38..." and is dropped.
    assert len(result) == 5
    assert "bsdutils" not in result


@pytest.mark.parametrize(
    ("dpkg_status", "rpm", "error"),
    [
        pytest.param("", None, "lists no installed package", id="empty-dpkg-status"),
        pytest.param(None, None, "no package database found (dpkg or rpm)", id="none"),
        pytest.param(None, (1, "", "error: rpmdb open failed\n"), "rpmdb open failed", id="rpm-fails"),
    ],
)
def test_packages_unusable(variant_root, dpkg_status, rpm, error):
    status_file = variant_root / "var/lib/dpkg/status"
    if dpkg_status is None:
        status_file.unlink()
    else:
        status_file.write_text(dpkg_status, encoding="utf-8")
    ctx, _runner = _ctx(variant_root, {RPM: rpm} if rpm else {})
    assert error in gather(ctx, ["packages"])["errors"]["packages"]


def test_packages_rpm(variant_root):
    (variant_root / "var/lib/dpkg/status").unlink()
    ctx, runner = _ctx(variant_root, {RPM: (0, _text(VARIANTS / "rpm-qa.txt"), "")})
    result = COLLECTORS["packages"](ctx)
    assert runner.calls == [RPM]
    assert result["bash"] == {"version": "5.1.8-9.el9", "arch": "x86_64", "scheme": "rpm"}  # 0: dropped
    assert result["openssl-libs"]["version"] == "1:3.0.7-27.el9"  # real epoch kept
    assert result["glibc"]["arches"] == ["x86_64", "i686"]
    assert result["kernel-core"]["version"] == "5.14.0-427.13.1.el9_4"
    assert result["kernel-core"]["versions"] == ["5.14.0-427.13.1.el9_4", "5.14.0-427.20.1.el9_4"]
    assert "gpg-pubkey" not in result
    assert len(result) == 7


# --- updates --------------------------------------------------------------------------------


def test_updates_apt_real(debian_root):
    ctx, runner = _ctx(debian_root, DEBIAN_TABLE)
    result = COLLECTORS["updates"](ctx)
    assert runner.calls == [APT]
    assert result["source"] == "apt"
    assert result["pending_count"] == 14
    assert result["security_count"] == 14
    # newest *security* list (Packages, 1795418940) taken as "first seen"
    assert result["oldest_security_age"] == 40
    assert result["pending"][0] == {
        "name": "perl-base",
        "from": "5.36.0-7+deb12u3",
        "to": "5.36.0-7+deb12u4",
        "security": True,
    }
    by_name = {item["name"]: item for item in result["pending"]}
    assert by_name["python3.11"]["to"] == "3.11.2-6+deb12u9"  # line ends in " []"
    assert by_name["ca-certificates"]["from"] == "20230311+deb12u1"


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        pytest.param(
            COMMANDS / "apt-get-s-dist-upgrade-none.txt",
            {"pending_count": 0, "security_count": 0, "oldest_security_age": 0, "pending": []},
            id="real-up-to-date",
        ),
        pytest.param(
            VARIANTS / "apt-get-s-mixed.txt",
            {
                "pending_count": 5,
                "security_count": 2,
                "oldest_security_age": 40,
                "pending": [
                    {"name": "tzdata", "from": "2026b-0+deb12u1", "to": "2026f-0+deb12u1", "security": False},
                    {"name": "libc6", "from": "2.36-9+deb12u14", "to": "2.36-9+deb12u15", "security": False},
                    {"name": "libc6:i386", "from": "2.36-9+deb12u14", "to": "2.36-9+deb12u15", "security": False},
                    {"name": "openssl", "from": "3.0.20-1~deb12u2", "to": "3.0.22-1~deb12u2", "security": True},
                    {"name": "linux-image-6.1.0-28-amd64", "from": None, "to": "6.1.119-1", "security": True},
                ],
            },
            id="mixed-new-and-foreign-arch",
        ),
    ],
)
def test_updates_apt_variants(debian_root, output, expected):
    ctx, _runner = _ctx(debian_root, {APT: (0, _text(output), "")})
    result = COLLECTORS["updates"](ctx)
    assert {key: result[key] for key in expected} == expected


@pytest.mark.parametrize(
    ("lists", "expected_age"),
    [
        pytest.param({}, 0, id="no-lists"),
        pytest.param({"x_dists_bookworm_InRelease": 100.0}, 0, id="no-security-list"),
        pytest.param(
            {"s_bookworm-security_InRelease": NOW - 500, "s_bookworm-security_main_binary-amd64_Packages": NOW - 300},
            300,
            id="newest-security-list",
        ),
        pytest.param({"s_jammy-security_main_binary-amd64_Packages.lz4": NOW - 7}, 7, id="compressed-lists"),
    ],
)
def test_updates_apt_first_seen(variant_root, lists, expected_age):
    lists_dir = variant_root / "var/lib/apt/lists"
    shutil.rmtree(lists_dir)
    lists_dir.mkdir()
    for name, mtime in lists.items():
        (lists_dir / name).touch()
        os.utime(lists_dir / name, (mtime, mtime))
    ctx, _runner = _ctx(variant_root, {APT: (0, _text(COMMANDS / "apt-get-s-dist-upgrade.txt"), "")})
    assert COLLECTORS["updates"](ctx)["oldest_security_age"] == expected_age


def test_updates_dnf(variant_root):
    cache = variant_root / "var/cache/dnf/baseos-0123456789abcdef/repodata"
    cache.mkdir(parents=True)
    (cache / "repomd.xml").touch()
    os.utime(cache / "repomd.xml", (NOW - 3600, NOW - 3600))
    table = {
        DNF_CHECK: (100, _text(VARIANTS / "dnf-check-update.txt"), ""),
        DNF_SEC: (0, _text(VARIANTS / "dnf-updateinfo-security.txt"), ""),
        RPM: (0, _text(VARIANTS / "rpm-qa.txt"), ""),
    }
    ctx, runner = _ctx(variant_root, table)
    result = COLLECTORS["updates"](ctx)
    assert runner.calls == [DNF_CHECK, DNF_SEC, RPM]
    assert result == {
        "pending_count": 5,
        "security_count": 3,
        "oldest_security_age": 3600,
        "pending": [
            {"name": "openssl", "from": "1:3.0.7-27.el9", "to": "1:3.0.7-28.el9_4", "security": True},
            {"name": "openssl-libs", "from": "1:3.0.7-27.el9", "to": "1:3.0.7-28.el9_4", "security": True},
            {"name": "python3", "from": "3.9.18-3.el9_4.1", "to": "3.9.18-3.el9_4.3", "security": True},
            {"name": "tzdata", "from": "2024a-1.el9", "to": "2024b-2.el9", "security": False},
            {"name": "a-very-long-package-name-that-wraps", "from": None, "to": "2.0-1.el9", "security": False},
        ],
        "source": "dnf",
    }


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        pytest.param("dnf-updateinfo-security.txt", {"openssl", "openssl-libs", "python3"}, id="dnf4"),
        pytest.param("dnf5-updateinfo-security.txt", {"openssl-libs", "python3"}, id="dnf5"),
    ],
)
def test_parse_dnf_security(fixture, expected):
    assert updates.parse_dnf_security(_text(VARIANTS / fixture)) == expected


@pytest.mark.parametrize(
    ("table", "error"),
    [
        pytest.param({}, "no package manager to ask for updates", id="neither"),
        pytest.param({APT: (100, "", "E: Could not open lock file\n")}, "Could not open lock file", id="apt-fails"),
        pytest.param({DNF_CHECK: (1, "", "Error: Failed to download metadata\n")}, "rc 1", id="dnf-fails"),
        pytest.param(
            {DNF_CHECK: (100, "bash.x86_64 5.2-1 baseos\n", ""), DNF_SEC: (1, "", "boom\n")},
            "updateinfo",
            id="dnf-updateinfo-fails",
        ),
    ],
)
def test_updates_unusable(variant_root, table, error):
    ctx, _runner = _ctx(variant_root, table)
    assert error in gather(ctx, ["updates"])["errors"]["updates"]


def test_updates_dnf_nothing_pending(variant_root):
    ctx, runner = _ctx(variant_root, {DNF_CHECK: (0, "", "")})
    result = COLLECTORS["updates"](ctx)
    assert (result["pending_count"], result["security_count"], result["oldest_security_age"]) == (0, 0, 0)
    assert runner.calls == [DNF_CHECK]


# --- sysctl ---------------------------------------------------------------------------------


def test_sysctl_real(debian_root):
    result = COLLECTORS["sysctl"](_ctx(debian_root)[0])
    assert set(result) == set(sysctl.SYSCTL_KEYS)
    assert result["net.ipv4.ip_forward"] == "1"
    assert result["net.ipv6.conf.all.forwarding"] == "0"
    assert result["kernel.unprivileged_bpf_disabled"] == "2"
    assert result["kernel.randomize_va_space"] == "2"
    assert all(isinstance(value, str) for value in result.values())


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param("1\n", "1", id="newline-stripped"),
        pytest.param("32768\t60999\n", "32768 60999", id="tab-as-space"),
        pytest.param("a\t\tb", "a b", id="tab-run"),
        pytest.param("", "", id="empty"),
    ],
)
def test_sysctl_value_forms(variant_root, content, expected):
    (variant_root / "proc/sys/net/ipv4/ip_forward").write_text(content, encoding="utf-8")
    assert COLLECTORS["sysctl"](_ctx(variant_root)[0])["net.ipv4.ip_forward"] == expected


def test_sysctl_missing_keys_and_none(variant_root):
    (variant_root / "proc/sys/kernel/kptr_restrict").unlink()
    shutil.rmtree(variant_root / "proc/sys/net/ipv6")
    result = COLLECTORS["sysctl"](_ctx(variant_root)[0])
    assert "kernel.kptr_restrict" not in result
    assert not any(key.startswith("net.ipv6.") for key in result)
    assert len(result) == 17 - 1 - 6
    shutil.rmtree(variant_root / "proc/sys")
    status = gather(_ctx(variant_root)[0], ["sysctl"])
    assert status["errors"] == {"sysctl": "no kernel parameter readable under /proc/sys"}


# --- all four together ----------------------------------------------------------------------


def test_gather_debian12(debian_root):
    ctx, _runner = _ctx(debian_root, DEBIAN_TABLE)
    status = gather(ctx, ["platform", "packages", "updates", "sysctl"])
    assert status["errors"] == {}
    assert status["collected_at"] == "2026-11-23T07:29:40Z"
    assert status["platform"]["version_scheme"] == "dpkg"
    assert status["packages"]["openssl"]["version"] == "3.0.20-1~deb12u2"
    assert (status["updates"]["security_count"], status["updates"]["oldest_security_age"]) == (14, 40)
