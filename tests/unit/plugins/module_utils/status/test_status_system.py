"""Security Status system collectors (services, sockets, network, time) on output recorded in a Debian 12 container.

fixtures/system/NAME.{out,err,rc} are the stdout, stderr and exit status of one command, captured
with `podman exec` in a container of localhost/distsec-debian12 (systemd 252) booted with
--systemd=always, after adding fd42:abcd::5/64 and an IPv6 default route via fd42:abcd::1 on eth0,
`python3 -m http.server 8080`, and UDP sockets on [fd42:abcd::5]:5514 and 127.0.0.53%lo:5353.
nosystemd-* come from the same image started without systemd. See fixtures/system/README.md.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Dict, Optional, Sequence, Tuple

import pytest

from ansible_collections.distsec.framework.plugins.module_utils._status import (
    network,
    services,
    sockets,
)
from ansible_collections.distsec.framework.plugins.module_utils._status import time as status_time
from ansible_collections.distsec.framework.plugins.module_utils._status.base import (
    COLLECTORS,
    CollectorError,
    Context,
    gather,
)

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "system")
NOW = 1794996800.0  # 2026-11-18T10:13:20Z

Result = Tuple[int, str, str]
ANY4 = "0.0.0.0"  # noqa: S104 - an address in the facts; nothing binds here


def recorded(name: str) -> Result:
    """One recorded command: (exit status, stdout, stderr)."""

    def part(ext: str) -> str:
        path = os.path.join(FIXTURES, f"{name}.{ext}")
        if not os.path.exists(path):
            return ""
        with open(path, encoding="utf-8") as handle:
            return handle.read()

    return int(part("rc").strip() or "0"), part("out"), part("err")


def ok(out: str) -> Result:
    return 0, out, ""


LIST_UNITS = tuple(services.LIST_UNITS)
LIST_UNIT_FILES = tuple(services.LIST_UNIT_FILES)
SS = tuple(sockets.SS)
IP_ADDR = tuple(network.IP_ADDR)
IP_ROUTE4 = tuple(network.IP_ROUTES[0][1])
IP_ROUTE6 = tuple(network.IP_ROUTES[1][1])
TIMEDATECTL = tuple(status_time.TIMEDATECTL)
NTP_IS_ACTIVE = ("systemctl", "is-active", *status_time.NTP_UNITS)

# The container as recorded: every command the collectors run, by argv.
CONTAINER: Dict[Tuple[str, ...], Result] = {
    LIST_UNITS: recorded("list-units"),
    LIST_UNIT_FILES: recorded("list-unit-files"),
    SS: recorded("ss"),
    IP_ADDR: recorded("ip-addr"),
    IP_ROUTE4: recorded("ip-route"),
    IP_ROUTE6: recorded("ip-route6"),
    TIMEDATECTL: recorded("timedatectl"),
    NTP_IS_ACTIVE: recorded("ntp-is-active"),
}
PROC_FILES = {
    "proc/net/tcp": "proc-net-tcp",
    "proc/net/tcp6": "proc-net-tcp6",
    "proc/net/udp": "proc-net-udp",
    "proc/net/udp6": "proc-net-udp6",
    "etc/resolv.conf": "resolv.conf",
}


class FakeHost:
    """A runner over recorded output; a program absent from `installed` is missing (rc 127)."""

    def __init__(self, commands: Dict[Tuple[str, ...], Result], missing: Sequence[str] = ()) -> None:
        self.commands = dict(commands)
        self.missing = set(missing)
        self.calls = []

    def which(self, name: str) -> Optional[str]:
        return None if name in self.missing else f"/usr/bin/{name}"

    def __call__(self, argv: Sequence[str]) -> Result:
        self.calls.append(tuple(argv))
        assert tuple(argv) in self.commands, f"unexpected command {argv}"
        return self.commands[tuple(argv)]


@pytest.fixture
def root(tmp_path):
    """A host root with the container's /proc/net tables and /etc/resolv.conf."""
    for path, name in PROC_FILES.items():
        target = tmp_path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(os.path.join(FIXTURES, f"{name}.out"), target)
    return str(tmp_path)


def context(root: str, replace: Optional[Dict[Tuple[str, ...], Result]] = None, missing: Sequence[str] = ()):
    commands = dict(CONTAINER)
    commands.update(replace or {})
    host = FakeHost(commands, missing)
    return Context(host, root=root, now=NOW, which=host.which)


def test_collectors_register():
    assert {"services", "sockets", "network", "time"} <= set(COLLECTORS)


def test_gather_the_container(root):
    status = gather(context(root), ["services", "sockets", "network", "time"])
    assert status["errors"] == {}
    assert status["collected_at"] == "2026-11-18T10:13:20Z"
    json.dumps(status)  # a fact document: JSON all through


# --- services ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("unit", "expected"),
    [
        ("ssh.service", {"active": True, "enabled": True, "state": "running", "load": "loaded"}),
        ("dbus.service", {"active": True, "enabled": False, "state": "running", "load": "loaded"}),
        ("systemd-journal-flush.service", {"active": True, "enabled": False, "state": "exited", "load": "loaded"}),
        ("distsec-sshd-keygen.service", {"active": False, "enabled": True, "state": "dead", "load": "loaded"}),
        ("systemd-udevd.service", {"active": False, "enabled": False, "state": "dead", "load": "masked"}),
        ("auditd.service", {"active": False, "enabled": False, "state": "dead", "load": "not-found"}),
        # instance: its own masked line in list-unit-files
        ("getty@tty1.service", {"active": False, "enabled": False, "state": "dead", "load": "masked"}),
        # instance without its own line: the static template covers it
        ("modprobe@loop.service", {"active": False, "enabled": False, "state": "dead", "load": "loaded"}),
        # unit files that the manager has not loaded
        ("nftables.service", {"active": False, "enabled": False, "state": "dead", "load": None}),
        ("sshd.service", {"active": False, "enabled": None, "state": "dead", "load": None}),
    ],
)
def test_services_from_the_container(root, unit, expected):
    assert services.collect_services(context(root))[unit] == expected


def test_services_shape(root):
    result = services.collect_services(context(root))
    assert "getty@.service" not in result  # templates are not units
    assert len(result) > 60
    for facts in result.values():
        assert isinstance(facts["active"], bool)
        assert facts["enabled"] in (True, False, None)


@pytest.mark.parametrize(
    ("state", "enabled"),
    [
        ("enabled", True),
        ("enabled-runtime", True),
        ("disabled", False),
        ("static", False),
        ("masked", False),
        ("alias", None),
        ("indirect", None),
        ("generated", None),
        ("something-new", None),
    ],
)
def test_services_enabled_states(root, state, enabled):
    replace = {
        LIST_UNITS: ok("foo.service loaded active running Foo\n"),
        LIST_UNIT_FILES: ok(f"foo.service {state} enabled\n"),
    }
    assert services.collect_services(context(root, replace))["foo.service"]["enabled"] is enabled


def test_services_reloading_is_active_and_markers_are_skipped(root):
    replace = {
        LIST_UNITS: ok("● bar.service loaded reloading reload Bar\nbaz.service loaded failed failed Baz\n"),
        LIST_UNIT_FILES: ok(""),
    }
    result = services.collect_services(context(root, replace))
    assert result["bar.service"] == {"active": True, "enabled": None, "state": "reload", "load": "loaded"}
    assert result["baz.service"] == {"active": False, "enabled": None, "state": "failed", "load": "loaded"}


def test_services_without_unit_files_know_no_enabled(root):
    result = services.collect_services(context(root, {LIST_UNIT_FILES: (1, "", "Failed to list unit files")}))
    assert result["ssh.service"]["active"] is True
    assert result["ssh.service"]["enabled"] is None


def test_services_truncated_lines_are_skipped(root):
    replace = {LIST_UNITS: ok("ssh.service loaded active running OpenBSD\ncron.service loaded\nnot-a-unit x y z\n")}
    result = services.collect_services(context(root, replace))
    assert result["ssh.service"]["active"] is True
    assert "cron.service" not in result


@pytest.mark.parametrize(
    ("replace", "missing", "message"),
    [
        ({}, ["systemctl"], "systemctl is not installed"),
        ({LIST_UNITS: recorded("nosystemd-list-units")}, [], "System has not been booted with systemd"),
        ({LIST_UNITS: (1, "", "")}, [], "exit status 1"),
        ({LIST_UNITS: ok("garbage without columns\n")}, [], "no service unit lines"),
    ],
)
def test_services_cannot_run(root, replace, missing, message):
    with pytest.raises(CollectorError, match=message):
        services.collect_services(context(root, replace, missing))


# --- sockets -------------------------------------------------------------------------------------------------------

CONTAINER_SOCKETS = [
    {"proto": "tcp", "address": ANY4, "port": 22, "process": "sshd", "pid": 33},
    {"proto": "tcp", "address": "::", "port": 22, "process": "sshd", "pid": 33},
    {"proto": "tcp", "address": ANY4, "port": 8080, "process": "python3", "pid": 76},
    {"proto": "udp", "address": "127.0.0.53", "port": 5353, "process": "python3", "pid": 81},
    {"proto": "udp", "address": "fd42:abcd::5", "port": 5514, "process": "python3", "pid": 81},
]


def test_sockets_from_ss(root):
    assert sockets.collect_sockets(context(root)) == CONTAINER_SOCKETS


def test_sockets_from_proc_without_ss(root):
    expected = [dict(s, process=None, pid=None) for s in CONTAINER_SOCKETS]
    assert sockets.collect_sockets(context(root, missing=["ss"])) == expected


def test_sockets_from_proc_when_ss_fails(root):
    result = sockets.collect_sockets(context(root, {SS: (1, "", "Cannot open netlink socket")}))
    assert {(s["proto"], s["address"], s["port"]) for s in result} == {
        (s["proto"], s["address"], s["port"]) for s in CONTAINER_SOCKETS
    }


def test_sockets_without_ss_or_proc(tmp_path):
    with pytest.raises(CollectorError, match="ss is not installed"):
        sockets.collect_sockets(context(str(tmp_path), missing=["ss"]))


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            'tcp LISTEN 0 128 *:22 *:* users:(("sshd",pid=5,fd=3))',
            {"proto": "tcp", "address": "::", "port": 22, "process": "sshd", "pid": 5},
        ),
        (
            'udp UNCONN 0 0 [fe80::1]%eth0:546 [::]:* users:(("dhclient",pid=9,fd=6),("dhclient",pid=10,fd=6))',
            {"proto": "udp", "address": "fe80::1", "port": 546, "process": "dhclient", "pid": 9},
        ),
        (
            "udp UNCONN 0 0 0.0.0.0:68 0.0.0.0:*",
            {"proto": "udp", "address": ANY4, "port": 68, "process": None, "pid": None},
        ),
        (
            'tcp LISTEN 0 4096 [0:0:0:0:0:ffff:7f00:1]:631 [::]:* users:(("cupsd",pid=7,fd=7))',
            {"proto": "tcp", "address": "::ffff:7f00:1", "port": 631, "process": "cupsd", "pid": 7},
        ),
    ],
)
def test_ss_lines(line, expected):
    assert sockets.parse_ss(line + "\n") == [expected]


@pytest.mark.parametrize(
    "line",
    [
        "tcp LISTEN 0 128",  # truncated
        "tcp LISTEN 0 128 0.0.0.0:",  # no port
        "tcp LISTEN 0 128 [::1:22 [::]:*",  # unclosed bracket
        "tcp LISTEN 0 128 host.example:22 *:*",  # not an address
        "tcp LISTEN 0 128 0.0.0.0:99999 *:*",  # not a port
        "raw UNCONN 0 0 *:ipv6-icmp *:*",  # not tcp or udp
        "",
    ],
)
def test_ss_bad_lines_are_skipped(line):
    assert sockets.parse_ss(line + "\n") == []


def test_ss_duplicates_count_once():
    line = 'tcp LISTEN 0 511 0.0.0.0:80 0.0.0.0:* users:(("nginx",pid={},fd=6))\n'
    result = sockets.parse_ss(line.format(100) + line.format(101))
    assert result == [{"proto": "tcp", "address": ANY4, "port": 80, "process": "nginx", "pid": 100}]


def test_proc_net_skips_other_states_and_garbage():
    text = (
        "  sl  local_address rem_address   st\n"
        "   0: 0100007F:0CEA 0100007F:9A3C 01 established\n"
        "   1: 0100007F:0CEA 00000000:0000 0A\n"
        "   2: ZZZZ:0016 00000000:0000 0A\n"
        "   3: 00000000:0016\n"
    )
    assert sockets.parse_proc_net("tcp", text) == [
        {"proto": "tcp", "address": "127.0.0.1", "port": 3306, "process": None, "pid": None}
    ]


# --- network -------------------------------------------------------------------------------------------------------


def test_network_from_the_container(root):
    result = network.collect_network(context(root))
    eth0 = next(i for i in result["interfaces"] if i["name"] == "eth0")
    assert eth0["state"] == "UP"
    assert eth0["mac"] == "ca:c4:77:13:67:f1"
    assert eth0["addresses"] == [
        {"address": "10.88.0.3/16", "family": "ipv4", "scope": "global", "kind": "private"},
        {"address": "fd42:abcd::5/64", "family": "ipv6", "scope": "global", "kind": "ula"},
        {"address": "fe80::c8c4:77ff:fe13:67f1/64", "family": "ipv6", "scope": "link", "kind": "link-local"},
    ]
    lo = next(i for i in result["interfaces"] if i["name"] == "lo")
    assert [(a["address"], a["scope"], a["kind"]) for a in lo["addresses"]] == [
        ("127.0.0.1/8", "host", "loopback"),
        ("::1/128", "host", "loopback"),
    ]
    assert result["addresses"] == ["10.88.0.3/16", "fd42:abcd::5/64", "fe80::c8c4:77ff:fe13:67f1/64"]
    assert result["default_gateways"] == ["10.88.0.1", "fd42:abcd::1"]
    assert result["default_routes"] == [
        {"family": "ipv4", "gateway": "10.88.0.1", "dev": "eth0"},
        {"family": "ipv6", "gateway": "fd42:abcd::1", "dev": "eth0"},
    ]
    assert result["dns_servers"] == ["10.255.255.53"]
    assert result["dns_search"] == []


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("2001:db8::5", "global"),
        ("2a01:4f8::1", "global"),
        ("fd42:abcd::5", "ula"),
        ("fc00::1", "ula"),
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("::1", "loopback"),
        ("127.0.0.53", "loopback"),
        ("169.254.1.1", "link-local"),
        ("10.20.16.5", "private"),
        ("192.168.1.1", "private"),
        ("8.8.8.8", "public"),
    ],
)
def test_address_kinds(address, kind):
    assert network.address_kind(address) == kind


def test_network_multipath_and_device_routes(root):
    routes4 = [
        {
            "dst": "default",
            "nexthops": [{"gateway": "192.0.2.1", "dev": "eth0"}, {"gateway": "192.0.2.2", "dev": "eth1"}],
        },
        {"dst": "default", "dev": "ppp0", "scope": "link"},
        {"dst": "default", "via": {"family": "inet6", "host": "fe80::1"}, "dev": "eth2"},
    ]
    replace = {IP_ROUTE4: ok(json.dumps(routes4)), IP_ROUTE6: (2, "", "RTNETLINK answers: Operation not supported")}
    result = network.collect_network(context(root, replace))
    assert result["default_routes"] == [
        {"family": "ipv4", "gateway": "192.0.2.1", "dev": "eth0"},
        {"family": "ipv4", "gateway": "192.0.2.2", "dev": "eth1"},
        {"family": "ipv4", "gateway": None, "dev": "ppp0"},
        {"family": "ipv4", "gateway": "fe80::1", "dev": "eth2"},
    ]
    assert result["default_gateways"] == ["192.0.2.1", "192.0.2.2", "fe80::1"]


def test_network_no_default_route(root):
    result = network.collect_network(context(root, {IP_ROUTE4: ok("[]\n"), IP_ROUTE6: ok("")}))
    assert result["default_routes"] == []
    assert result["default_gateways"] == []


@pytest.mark.parametrize(
    ("text", "servers", "search"),
    [
        (
            "nameserver 10.0.0.2\nnameserver fe80::1%eth0\nsearch corp.example.org example.org\n",
            ["10.0.0.2", "fe80::1%eth0"],
            ["corp.example.org", "example.org"],
        ),
        ("# comment\n; comment\ndomain example.net\nnameserver 1.1.1.1 # trailing\n", ["1.1.1.1"], ["example.net"]),
        ("search a.example\ndomain b.example\n", [], ["b.example"]),
        ("nameserver\nsearch\noptions edns0\n", [], []),
    ],
)
def test_resolv_conf(text, servers, search):
    assert network.parse_resolv_conf(text) == {"dns_servers": servers, "dns_search": search}


def test_network_without_resolv_conf(tmp_path):
    result = network.collect_network(context(str(tmp_path)))
    assert result["dns_servers"] == []
    assert result["dns_search"] == []


@pytest.mark.parametrize(
    ("replace", "missing", "message"),
    [
        ({}, ["ip"], "ip \\(iproute2\\) is not installed"),
        ({IP_ADDR: ok("[{garbage")}, [], "did not print JSON"),
        ({IP_ADDR: ok('{"ifname": "eth0"}')}, [], "not a list of objects"),
        ({IP_ADDR: (255, "", 'Object "addr" is unknown, try "ip help".\n')}, [], 'Object "addr" is unknown'),
        ({IP_ROUTE4: ok("default via 10.88.0.1 dev eth0")}, [], "did not print JSON"),
    ],
)
def test_network_cannot_run(root, replace, missing, message):
    with pytest.raises(CollectorError, match=message):
        network.collect_network(context(root, replace, missing))


def test_network_skips_unreadable_addresses(root):
    links = [
        {
            "ifname": "tun0",
            "operstate": "UNKNOWN",
            "addr_info": [{"family": "inet", "local": "not-an-ip", "prefixlen": 32}],
        },
        {"ifname": "eth9", "addr_info": [{"family": "inet", "local": "192.0.2.9"}, "junk"]},
        {"no": "name"},
    ]
    result = network.collect_network(context(root, {IP_ADDR: ok(json.dumps(links))}))
    assert result["interfaces"] == [
        {"name": "tun0", "state": "UNKNOWN", "mac": None, "addresses": []},
        {"name": "eth9", "state": None, "mac": None, "addresses": []},
    ]
    assert result["addresses"] == []


# --- time ----------------------------------------------------------------------------------------------------------


def test_time_from_the_container(root):
    assert status_time.collect_time(context(root)) == {
        "now": "2026-11-18T10:13:20Z",
        "synchronized": False,
        "ntp_service": None,
        "timezone": "Etc/UTC",
    }


def test_time_synchronized_with_timesyncd(root):
    states = "\n".join("active" if u == "systemd-timesyncd.service" else "inactive" for u in status_time.NTP_UNITS)
    replace = {
        TIMEDATECTL: ok("Timezone=Europe/Berlin\nNTP=yes\nNTPSynchronized=yes\n"),
        NTP_IS_ACTIVE: (0, states + "\n", ""),
    }
    result = status_time.collect_time(context(root, replace))
    assert result["synchronized"] is True
    assert result["timezone"] == "Europe/Berlin"
    assert result["ntp_service"] == "systemd-timesyncd.service"


def test_time_ntp_units_d_lists_add_candidates(root):
    os.makedirs(os.path.join(root, "usr/lib/systemd/ntp-units.d"))
    with open(os.path.join(root, "usr/lib/systemd/ntp-units.d/80-custom.list"), "w", encoding="utf-8") as handle:
        handle.write("# ours\nmy-ntp.service\nchrony.service\n")
    units = (*status_time.NTP_UNITS, "my-ntp.service")
    states = "inactive\n" * len(status_time.NTP_UNITS) + "active\n"
    replace = {("systemctl", "is-active", *units): (0, states, "")}
    assert status_time.collect_time(context(root, replace))["ntp_service"] == "my-ntp.service"


@pytest.mark.parametrize(
    ("replace", "missing"),
    [
        ({}, ["timedatectl", "systemctl"]),
        ({TIMEDATECTL: recorded("nosystemd-timedatectl"), NTP_IS_ACTIVE: recorded("nosystemd-list-units")}, []),
        ({TIMEDATECTL: ok("garbage\n"), NTP_IS_ACTIVE: ok("active\n")}, []),  # is-active line count mismatch
    ],
)
def test_time_falls_back_to_null(root, replace, missing):
    assert status_time.collect_time(context(root, replace, missing)) == {
        "now": "2026-11-18T10:13:20Z",
        "synchronized": None,
        "ntp_service": None,
        "timezone": None,
    }
