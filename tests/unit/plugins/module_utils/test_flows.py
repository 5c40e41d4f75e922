"""Flow strings used by `distsec psl explain` and policy tests."""

from __future__ import annotations

import pytest

from ansible_collections.distsec.framework.plugins.module_utils._evaluate.flows import FlowError, parse_flow


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tcp 2001:db8::5 -> 2001:db8::9:587 out", ("2001:db8::5", "2001:db8::9", None, 587, "out")),
        ("tcp 2001:db8::5 -> [2001:db8::9]:587 out", ("2001:db8::5", "2001:db8::9", None, 587, "out")),
        ("udp [2001:db8::5]:5353 -> [ff02::fb]:5353 in", ("2001:db8::5", "ff02::fb", 5353, 5353, "in")),
        ("tcp 198.51.100.5:40000 -> 198.51.100.9:22 in", ("198.51.100.5", "198.51.100.9", 40000, 22, "in")),
        ("icmpv6 fe80::1 -> ff02::1 in type=nd-neighbor-solicit", ("fe80::1", "ff02::1", None, None, "in")),
        ("icmp 198.51.100.5 -> 198.51.100.9 forward type=8", ("198.51.100.5", "198.51.100.9", None, None, "forward")),
    ],
)
def test_flows_parse(text, expected):
    flow = parse_flow(text)
    assert (str(flow.src), str(flow.dst), flow.sport, flow.dport, flow.direction) == expected


def test_icmp_type_names_and_extras():
    flow = parse_flow("icmpv6 fe80::1 -> ff02::1 in type=nd-neighbor-solicit iface=eth0")
    assert flow.icmp_type == 135 and flow.interface == "eth0"
    assert parse_flow("tcp 2001:db8::5 -> [2001:db8::9]:25 out user=mail").user == "mail"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tcp 2001:db8::5 2001:db8::9:587 out", "expected 'PROTO SRC -> DST DIRECTION'"),
        ("ospf 2001:db8::5 -> 2001:db8::9 out", "unknown protocol 'ospf'"),
        ("tcp 2001:db8::5 -> 2001:db8::9:587 up", "direction must be in, out or forward"),
        ("tcp 2001:db8::5 -> 198.51.100.9:25 out", "mixes IPv4 and IPv6"),
        ("tcp 198.51.100.5 -> 198.51.100.9 out", "needs a destination port"),
        ("tcp 198.51.100.5 -> 198.51.100.9:99999 out", "is not a port"),
        ("icmp 2001:db8::5 -> 2001:db8::9 out", "icmp is IPv4"),
        ("icmpv6 fe80::1 -> ff02::1 in type=bogus", "unknown icmpv6 type 'bogus'"),
        ("tcp 198.51.100.5 -> 198.51.100.9:22 in color=red", "extras are type=T, code=C, iface=I, user=U, group=G"),
        ("tcp 300.1.1.1 -> 198.51.100.9:22 in", "cannot read flow"),
    ],
)
def test_bad_flows_say_what_is_wrong(text, message):
    with pytest.raises(FlowError) as caught:
        parse_flow(text)
    assert message in str(caught.value)
