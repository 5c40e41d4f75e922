"""The iptables backend, both variants (nft and legacy), on the real kernel in throwaway netns."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from ansible_collections.distsec.framework.plugins.module_utils._apply.backend import BackendError
from ansible_collections.distsec.framework.plugins.module_utils._apply.iptables import IptablesBackend
from ansible_collections.distsec.framework.plugins.module_utils._evaluate.decide import active_rules, decide
from ansible_collections.distsec.framework.plugins.plugin_utils._psl.compiler import compile_policy, load_policy

TOP = Path(__file__).resolve().parents[5]
MAIL = TOP / "docs" / "examples" / "mail-client" / "policy.yml"

COUNTERS = re.compile(r" \[\d+:\d+\]$")

pytestmark = pytest.mark.netns


@pytest.fixture(params=["nft", "legacy"])
def variant(request):
    return request.param


@pytest.fixture
def backend(run, netns, tmp_path, variant):
    rc, _out, err = run([*netns, f"iptables-{variant}", "-w", "-L", "-n"])
    if rc != 0:  # legacy needs the ip_tables/ip6_tables modules in the host kernel
        pytest.skip(f"iptables-{variant} does not work in a network namespace here: {err.strip()}")
    return IptablesBackend(run, str(tmp_path / "state"), variant=variant, argv_prefix=netns)


@pytest.fixture
def compiled():
    return compile_policy(load_policy([str(MAIL)]), host="ws1", groups=["workstations"])


def _artefacts(backend, compiled, profile=None):
    decision = decide(compiled, {})
    if profile:
        decision.profile = profile
    return backend.render(compiled, decision.profile, active_rules(compiled, decision))


def _ipt(run, backend, family, *args):
    tool = f"{'iptables' if family == 'ipv4' else 'ip6tables'}-{backend.variant}"
    rc, out, err = run([*backend.argv_prefix, tool, "-w", *args])
    assert rc == 0, err
    return out


def _save(run, backend, family, *args):
    rc, out, err = run([*backend.argv_prefix, backend.binary(family, "save"), *args])
    assert rc == 0, err
    return out


def _foreign(run, backend):
    """Everything in both families that is not ours, without counters and dates."""
    lines = []
    for family in ("ipv4", "ipv6"):
        for line in _save(run, backend, family).splitlines():
            if not line.startswith("#") and "DISTSEC" not in line:
                lines.append(family + " " + COUNTERS.sub("", line))
    return lines


def _docker(run, backend):
    """Another owner: DOCKER-USER with a rule, jumped from FORWARD; a rule in INPUT; a nat table."""
    _ipt(run, backend, "ipv4", "-N", "DOCKER-USER")
    _ipt(run, backend, "ipv4", "-A", "DOCKER-USER", "-s", "10.9.9.9", "-j", "DROP")
    _ipt(run, backend, "ipv4", "-A", "FORWARD", "-j", "DOCKER-USER")
    _ipt(run, backend, "ipv4", "-A", "INPUT", "-s", "10.8.8.8", "-j", "ACCEPT")
    _ipt(run, backend, "ipv4", "-P", "FORWARD", "DROP")
    _ipt(run, backend, "ipv6", "-A", "OUTPUT", "-d", "2001:db8:8::8", "-j", "REJECT")
    _ipt(run, backend, "ipv4", "-t", "nat", "-A", "POSTROUTING", "-o", "lo", "-j", "RETURN")


def _jumps(run, backend, family):
    """(chain, position) of every rule that jumps to one of our chains, from the kernel."""
    found = []
    for chain in ("INPUT", "OUTPUT", "FORWARD"):
        rules = [line for line in _save(run, backend, family).splitlines() if line.startswith(f"-A {chain} ")]
        found += [(chain, i) for i, line in enumerate(rules, 1) if "-j DISTSEC-" in line]
    return found


def test_apply_is_idempotent_and_leaves_other_owners_alone(backend, compiled, run):
    _docker(run, backend)
    foreign = _foreign(run, backend)
    artefacts = _artefacts(backend, compiled)
    assert backend.current() == "" and backend.snapshot()["ipv4"] == {"chains": {}, "jumps": []}
    plan = backend.plan(artefacts)
    assert plan.changed and plan.reason == "nothing of ours is loaded"
    assert "ipv6 DISTSEC-INPUT: baseline-management-in" in plan.rules["added"]
    backend.validate(artefacts)
    for _round in range(3):
        backend.apply(artefacts)
        assert backend.in_effect() == backend.intended(artefacts)
        for family in ("ipv4", "ipv6"):
            assert _jumps(run, backend, family) == [("INPUT", 1), ("OUTPUT", 1), ("FORWARD", 1)]
    assert backend.current() == backend.expected(artefacts)
    assert backend.in_effect()["ipv4 DISTSEC-INPUT"][-1] == "default-in"
    backend.write_record(artefacts, backend.current())
    again = backend.plan(artefacts)
    assert not again.changed and again.reason == "up to date"
    assert again.rules == {"added": [], "removed": [], "moved": []}
    assert _foreign(run, backend) == foreign  # the other owner's chains, rules, policy and table
    assert backend.others() == [
        "ipv4 filter DOCKER-USER",
        "ipv4 filter FORWARD",
        "ipv4 filter INPUT",
        "ipv4 nat",
        "ipv6 filter OUTPUT",
    ]
    snapshot = backend.snapshot()
    backend.restore(snapshot)
    assert _foreign(run, backend) == foreign
    assert backend.current() == backend.expected(artefacts)


def test_a_hand_made_rule_is_drift_named_and_undone(backend, compiled, run):
    artefacts = _artefacts(backend, compiled)
    backend.apply(artefacts)
    backend.write_record(artefacts, backend.current())
    _ipt(run, backend, "ipv4", "-A", "DISTSEC-INPUT", "-p", "tcp", "--dport", "9999", "-j", "ACCEPT")
    plan = backend.plan(artefacts)
    assert plan.changed and plan.drift
    assert plan.rules["removed"] == ["ipv4 DISTSEC-INPUT: ?: -p tcp -m tcp --dport 9999 -j ACCEPT"]
    assert backend.in_effect_of(backend.current()) == backend.in_effect()
    assert "--dport 9999" in plan.before and "--dport 9999" not in plan.after
    backend.apply(artefacts)
    assert backend.in_effect() == backend.intended(artefacts)
    assert "9999" not in backend.current()


def test_a_foreign_rule_before_our_jump_is_drift_and_the_jump_goes_back_to_the_top(backend, compiled, run):
    artefacts = _artefacts(backend, compiled)
    backend.apply(artefacts)
    backend.write_record(artefacts, backend.current())
    _ipt(run, backend, "ipv6", "-I", "INPUT", "1", "-s", "2001:db8:9::9", "-j", "ACCEPT")
    _ipt(run, backend, "ipv6", "-A", "INPUT", "-j", "DISTSEC-INPUT")  # a second jump, by hand
    assert _jumps(run, backend, "ipv6")[:2] == [("INPUT", 2), ("INPUT", 3)]
    plan = backend.plan(artefacts)
    assert plan.changed and plan.drift and "-I INPUT 2 -j DISTSEC-INPUT" in plan.before
    backend.apply(artefacts)
    assert _jumps(run, backend, "ipv6") == [("INPUT", 1), ("OUTPUT", 1), ("FORWARD", 1)]
    assert "-A INPUT -s 2001:db8:9::9/128 -j ACCEPT" in _save(run, backend, "ipv6")


def test_bad_input_is_refused_and_the_previous_rules_stay(backend, compiled, run, variant):
    good = _artefacts(backend, compiled)
    backend.apply(good)
    before = backend.current()
    broken = dict(good)
    broken["rules.v4"] = good["rules.v4"].replace(
        "-p tcp -m multiport --dports 143,993 -m comment --comment allow-mail",
        "-p tcp -m multiport --dports 143,nope -m comment --comment allow-mail",
    )
    assert broken != good
    with pytest.raises(BackendError) as info:
        backend.validate(broken)
    assert info.value.rule == "allow-mail" and "rule allow-mail" in str(info.value)
    with pytest.raises(BackendError):
        backend.apply(broken)
    assert backend.current() == before
    # artefacts may only fill our chains, with plain verdicts
    for bad, message in [
        (good["rules.v4"].replace("COMMIT", "-A INPUT -j DROP\nCOMMIT"), "rules may only go to our declared chains"),
        (
            good["rules.v4"].replace(":DISTSEC-FORWARD - [0:0]", ":DISTSEC-FORWARD - [0:0]\n:OTHER - [0:0]"),
            "only the chains",
        ),
        (good["rules.v4"].replace("-j DROP", "-j DOCKER-USER", 1), "a rule must end in one of -j"),
        (good["rules.v4"].replace("-j DROP", "-t nat -j DROP", 1), "without -t or -g"),
        (good["rules.v4"].replace("COMMIT\n", ""), "no COMMIT"),
        (good["rules.v4"].replace("baseline-loopback-in", 'baseline"loopback'), "unterminated quote"),
        (good["rules.v4"] + "*nat\n", "text after COMMIT"),
        (None, "missing or not text"),
    ]:
        with pytest.raises(BackendError) as info:
            backend.apply({**good, "rules.v4": bad})
        assert message in str(info.value)
    with pytest.raises(BackendError, match="needs exactly the artefacts"):
        backend.apply({"rules.v4": good["rules.v4"]})
    assert backend.current() == before


def test_when_ipv6_fails_after_ipv4_ipv4_is_put_back(backend, compiled):
    backend.apply(_artefacts(backend, compiled))
    before = backend.current()
    other = _artefacts(backend, compiled, profile="isolated")
    # passes --test, but the kernel refuses it: owner is an OUTPUT-only match, and INPUT jumps here
    bad_rule = "-A DISTSEC-INPUT -m owner --uid-owner 0 -m comment --comment owner-in-input -j ACCEPT\n"
    other["rules.v6"] = other["rules.v6"].replace("-A DISTSEC-INPUT ", bad_rule + "-A DISTSEC-INPUT ", 1)
    backend.validate(other)
    with pytest.raises(BackendError) as info:
        backend.apply(other)
    assert "the kernel kept the previous ipv6 rules; ipv4 was put back as it was" in str(info.value)
    # the kernel notices when the jump from INPUT is added (nft) or at COMMIT (legacy): the error
    # names that line, not the rule, and iptables' own message is kept
    assert "(line " in info.value.detail and ("INPUT" in info.value.detail or "COMMIT" in info.value.detail)
    assert backend.current() == before


def test_snapshot_apply_restore_returns_exactly_the_snapshot(backend, compiled, run):
    empty = backend.snapshot()
    backend.apply(_artefacts(backend, compiled))
    backend.restore(empty)
    assert backend.current() == ""
    assert "DISTSEC" not in _save(run, backend, "ipv4") + _save(run, backend, "ipv6")
    # a state made by hand: one chain, jumped from INPUT position 2, another owner's rule first
    _ipt(run, backend, "ipv4", "-A", "INPUT", "-s", "10.7.7.7", "-j", "ACCEPT")
    _ipt(run, backend, "ipv4", "-N", "DISTSEC-INPUT")
    _ipt(
        run,
        backend,
        "ipv4",
        "-A",
        "DISTSEC-INPUT",
        "-s",
        "10.6.6.6",
        "-m",
        "comment",
        "--comment",
        "old rule",
        "-j",
        "DROP",
    )
    _ipt(run, backend, "ipv4", "-A", "INPUT", "-j", "DISTSEC-INPUT")
    old = backend.current()
    snapshot = json.loads(json.dumps(backend.snapshot()))  # JSON-able
    backend.apply(_artefacts(backend, compiled, profile="isolated"))
    assert backend.current() != old
    backend.restore(snapshot)
    assert backend.current() == old
    assert backend.in_effect() == {"ipv4 DISTSEC-INPUT": ["old rule"]}
    assert _jumps(run, backend, "ipv4") == [("INPUT", 2)]
    with pytest.raises(BackendError, match="not an iptables snapshot"):
        backend.restore({"listing": None})
    other = "legacy" if backend.variant == "nft" else "nft"
    with pytest.raises(BackendError, match=f"the snapshot is of the iptables {other} variant"):
        backend.restore({**snapshot, "variant": other})
    assert backend.current() == old


@pytest.fixture
def two_hosts(backend, run):
    """A client namespace wired to the backend's namespace (the server) over a veth pair."""
    server = backend.argv_prefix[-1]
    client = f"distsec-ut-{uuid.uuid4().hex[:8]}"
    veth = uuid.uuid4().hex[:6]
    subprocess.run(["ip", "netns", "add", client], check=True)
    listener = None
    try:
        c = ["ip", "netns", "exec", client]
        s = ["ip", "netns", "exec", server]
        for cmd in (
            [
                "ip",
                "link",
                "add",
                f"s{veth}",
                "netns",
                server,
                "type",
                "veth",
                "peer",
                "name",
                f"c{veth}",
                "netns",
                client,
            ],
            [*s, "ip", "addr", "add", "192.0.2.1/24", "dev", f"s{veth}"],
            [*s, "ip", "addr", "add", "2001:db8:7::1/64", "dev", f"s{veth}", "nodad"],
            [*s, "ip", "link", "set", f"s{veth}", "up"],
            [*c, "ip", "addr", "add", "192.0.2.2/24", "dev", f"c{veth}"],
            [*c, "ip", "addr", "add", "2001:db8:7::2/64", "dev", f"c{veth}", "nodad"],
            [*c, "ip", "link", "set", f"c{veth}", "up"],
        ):
            subprocess.run(cmd, check=True)
        listener = subprocess.Popen(
            [*s, sys.executable, "-c",
             "import socket,threading\n"
             "def serve(port):\n"
             " s=socket.create_server(('::',port),family=socket.AF_INET6,dualstack_ipv6=True)\n"
             " while True:\n  c,a=s.accept(); c.close()\n"
             "threading.Thread(target=serve,args=(8081,),daemon=True).start()\nserve(8080)\n"],
        )  # fmt: skip
        time.sleep(0.3)
        yield c
    finally:
        if listener is not None:
            listener.kill()
            listener.wait()
        subprocess.run(["ip", "netns", "delete", client], check=False)


def _connect_all(run, client):
    """Connect to 8080 and 8081 over IPv4 and IPv6 at once (1 s timeout); {'v4 8080': 'open', ...}."""
    probe = (
        "import json,socket,threading\nout={}\n"
        "def go(fam,addr,port):\n"
        " try:\n  socket.create_connection((addr,port),timeout=1).close(); out[f'{fam} {port}']='open'\n"
        " except OSError as e: out[f'{fam} {port}']=type(e).__name__\n"
        "ts=[threading.Thread(target=go,args=a) for a in [('v4','192.0.2.1',8080),('v4','192.0.2.1',8081),"
        "('v6','2001:db8:7::1',8080),('v6','2001:db8:7::1',8081)]]\n"
        "[t.start() for t in ts]; [t.join() for t in ts]\nprint(json.dumps(out,sort_keys=True))\n"
    )
    rc, out, err = run([*client, sys.executable, "-c", probe])
    assert rc == 0, err
    return json.loads(out)


def _counter(run, backend, family, rule_id):
    for line in _save(run, backend, family, "-c").splitlines():
        if f"--comment {rule_id} " in line:
            return int(re.match(r"\[(\d+):\d+\]", line).group(1))
    raise AssertionError(f"no rule {rule_id} in {family}")


def test_real_packets_over_ipv4_and_ipv6(backend, two_hosts, run, tmp_path):
    """The policy allows port 8080 and drops 8081; the DROP rule's counter shows the dropped SYNs."""
    assert _connect_all(run, two_hosts) == dict.fromkeys(["v4 8080", "v4 8081", "v6 8080", "v6 8081"], "open")
    policy = tmp_path / "web.yml"
    policy.write_text(
        "psl: 1\ndomain: example.org\nmanagement: {from: [192.0.2.0/24]}\nrules:\n"
        "  - {id: allow-web, description: web, direction: in, proto: tcp, ports: [8080], action: accept}\n"
        "  - {id: deny-alt, description: alt, direction: in, proto: tcp, ports: [8081], action: drop}\n"
    )
    compiled = compile_policy(load_policy([str(policy)]), host="web1", groups=[])
    decision = decide(compiled, {})
    artefacts = backend.render(compiled, decision.profile, active_rules(compiled, decision))
    backend.validate(artefacts)
    backend.apply(artefacts)
    assert _connect_all(run, two_hosts) == {"v4 8080": "open", "v4 8081": "TimeoutError", "v6 8080": "open", "v6 8081": "TimeoutError"}  # fmt: skip
    for family in ("ipv4", "ipv6"):
        assert _counter(run, backend, family, "deny-alt") >= 1
        assert _counter(run, backend, family, "allow-web") >= 1
