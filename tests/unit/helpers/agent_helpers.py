"""A "host" for the host-local audit tests: a real key directory and trust store, a policy published
and accepted as policy_verify does, and a firewall enforced in a network namespace as the firewall
module does (the same backend code), so the audit finds exactly what it would on a host."""

from __future__ import annotations

import base64
import json
import subprocess
import time
from pathlib import Path
from typing import Optional

from ansible_collections.distsec.framework.plugins.module_utils._agent.audit import Options, audit
from ansible_collections.distsec.framework.plugins.module_utils._apply.firewall import make_backend
from ansible_collections.distsec.framework.plugins.module_utils._enforce.record import write_policy_record
from ansible_collections.distsec.framework.plugins.module_utils._evaluate.decide import active_rules, decide
from ansible_collections.distsec.framework.plugins.module_utils._status.all import Context, gather
from ansible_collections.distsec.framework.plugins.module_utils._trust.state import TrustStore
from ansible_collections.distsec.framework.plugins.plugin_utils._cli import main as cli

__all__ = ["POLICY", "AuditHost", "netns_runner", "tamper_bundle"]

# Two checks that pass on any Debian machine; a third one is added for non-compliance.
POLICY = """\
psl: 1
domain: example.org
description: host-local audit tests
objects:
  addresses:
    admin_net: [2001:db8:ff::/64]
  services:
    web: [{proto: tcp, ports: [80, 443]}]
    ssh: [{proto: tcp, ports: [22]}]
  groups:
    workstations: {inventory_groups: [workstations]}
management:
  from: admin_net
checks:
  - id: no-telnetd
    description: No telnet server is installed
    severity: high
    package: {name: telnetd, absent: true}
  - id: no-such-package
    description: A package no machine has is absent
    severity: low
    package: {name: distsec-audit-test-no-such-package, absent: true}
rules:
  - id: web-in
    description: Web from the admins
    direction: in
    from: admin_net
    service: web
    action: accept
"""

FAILING_CHECK = """\
  - id: marker-installed
    description: A package no machine has is installed
    severity: critical
    on_fail: quarantine
    package: {name: distsec-audit-test-no-such-package}
"""

EXTRA_RULE = """\
  - id: ssh-out
    description: SSH to the admins
    direction: out
    to: admin_net
    service: ssh
    action: accept
"""

_APT_CACHE: dict = {}


def netns_runner(run, netns):
    """The runner contract with every command in the namespace; `apt-get -s` (3 s here) is run once
    per session and its real output replayed."""

    def runner(argv, stdin=None):
        argv = list(argv)
        if argv[:1] == ["apt-get"]:
            key = tuple(argv)
            if key not in _APT_CACHE:
                _APT_CACHE[key] = run(argv, stdin)
            return _APT_CACHE[key]
        return run([*netns, *argv], stdin)

    return runner


def distsec(*argv):
    try:
        return cli([str(a) for a in argv])
    except SystemExit as exc:
        return exc.code


def tamper_bundle(path: Path, how: str) -> None:
    """Change the stored bundle on disk: one bit of the policy file, or the signed serial."""
    bundle = json.loads(path.read_text())
    if how == "file":
        content = bytearray(base64.b64decode(bundle["files"]["policy.json"]))
        content[len(content) // 2] ^= 0x01
        bundle["files"]["policy.json"] = base64.b64encode(bytes(content)).decode("ascii")
    else:
        bundle["signed"]["serial"] += 1
    path.write_text(json.dumps(bundle))


class AuditHost:
    """The PDP's key directory and one host's state directory (trust/, firewall/, policy.json, status.json)."""

    def __init__(self, tmp_path: Path, runner, capsys):
        self.tmp = tmp_path
        self.runner = runner
        self.capsys = capsys
        self.keys = tmp_path / "keys"
        self.state = tmp_path / "var-lib-distsec"
        self.policy_path = tmp_path / "policy.yml"
        self.serial = 0
        assert distsec("keys", "init", "--dir", self.keys, "--domain", "example.org") == 0
        capsys.readouterr()

    @property
    def trust_root(self) -> Path:
        return self.keys / "root.json"

    @property
    def bundle_path(self) -> Path:
        return self.state / "trust" / "bundle.json"

    def publish(self, text: str = POLICY, *sign_args, expires: str = "3000d", now: Optional[float] = None) -> None:
        """Sign `text` and accept it on the host, as publish.yml and policy_verify do."""
        self.policy_path.write_text(text)
        self.serial += 1
        out = self.tmp / f"policy-{self.serial}.bundle.json"
        code = distsec(
            "bundle", "sign", "--keys", self.keys, "--expires", expires, "--out", out, *sign_args, self.policy_path
        )
        assert code == 0, self.capsys.readouterr()
        self.capsys.readouterr()
        store = TrustStore(str(self.state / "trust"), initial_root_path=str(self.trust_root))
        data = out.read_bytes()
        moment = time.time() if now is None else now
        accepted = store.verify(data, host="ws1", groups=["workstations"], now=moment)
        store.accept(data, accepted, now=moment)
        # policy_verify's part of the policy record
        record = {"domain": accepted.domain, "serial": accepted.serial, "expires": accepted.expires}
        write_policy_record(str(self.state / "policy.json"), record)

    def compiled(self) -> dict:
        bundle = json.loads(self.bundle_path.read_text())
        return json.loads(base64.b64decode(bundle["files"]["policy.json"]))

    def enforce(self, now: Optional[float] = None, compiled: Optional[dict] = None) -> None:
        """What the firewall module does with the stored policy (or `compiled`): decide, render, apply,
        record in the firewall state and in the policy record."""
        compiled = compiled or self.compiled()
        status = gather(Context(lambda argv: self.runner(argv, None)))
        decision = decide(compiled, status, now=now)
        backend = make_backend("nftables", str(self.state / "firewall"), self.runner)
        artefacts = backend.render(compiled, decision.profile, active_rules(compiled, decision))
        backend.apply(artefacts)
        backend.write_record(artefacts, backend.current(), selected="nftables")
        applied = {"domain": compiled["domain"], "hash": compiled["hash"], "profile": decision.profile}
        write_policy_record(str(self.state / "policy.json"), {**applied, "backend": "nftables"})

    def nft(self, *argv) -> None:
        rc, _out, err = self.runner(["nft", *argv], None)
        assert rc == 0, err

    def options(self, **extra) -> Options:
        args = {
            "host": "ws1",
            "groups": ["workstations"],
            "state_dir": str(self.state),
            "trust_root": str(self.trust_root),
            **extra,
        }
        return Options(**args)

    def audit(self, **extra):
        return audit(self.options(**extra), run=self.runner)

    def files(self, under: str = "trust") -> dict:
        return {
            str(p.relative_to(self.state)): p.read_bytes()
            for p in sorted((self.state / under).rglob("*"))
            if p.is_file()
        }

    def record(self) -> dict:
        return json.loads((self.state / "policy.json").read_text())

    def status(self) -> dict:
        return json.loads((self.state / "status.json").read_text())


def run_pyz(pyz: Path, *argv, prefix=(), python="/usr/bin/python3", timeout=120):
    """Run the agent as the timer does (isolated mode: nothing from the environment or the repo)."""
    proc = subprocess.run(
        [*prefix, python, "-I", str(pyz), *map(str, argv)],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        cwd="/",
    )
    return proc.returncode, proc.stdout, proc.stderr
