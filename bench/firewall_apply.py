"""Benchmark: enforcing a compiled policy with the firewall backends, by rule count.

1. Core, real kernel in a throwaway network namespace (needs root): for policies of 10, 100,
   1,000 and 10,000 PSL rules (each rule one source prefix and one port, IPv4 and IPv6 mixed),
   the time of each step of a run of the nftables backend - compile (PSL -> compiled policy),
   evaluate + render, plan, validate (nft -c), apply (one nft -f transaction) + read-back - and
   of a no-change run (plan only). Apply should stay nearly flat: one kernel transaction.
   The iptables backend (iptables-nft) is timed the same way where it is installed.
2. On a container of the project's image over the podman connection: one playbook compiles a
   1,000-rule policy on the controller and enforces it with distsec.framework.firewall (commit-
   confirmed included). Printed: the compile task, the firewall task, and their sum against the
   target (compile + apply of 1,000 rules under 2 s on a container).

    .venv/bin/python bench/firewall_apply.py [--repeat N] [--no-container]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

from ansible_collections.distsec.framework.plugins.module_utils._apply.nftables import NftablesBackend
from ansible_collections.distsec.framework.plugins.module_utils._evaluate.decide import active_rules, decide
from ansible_collections.distsec.framework.plugins.plugin_utils._psl.compiler import compile_policy, load_policy

TOP = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SIZES = (10, 100, 1_000, 10_000)
TARGET_SECONDS = 2.0
NAME = "distsec-bench-firewall"
ENV = dict(
    os.environ,
    CONTAINERS_CONF=str(TOP / "tools" / "podman" / "containers.conf"),
    ANSIBLE_COLLECTIONS_PATH=str(TOP / ".ansible" / "collections"),
    ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
    ANSIBLE_STDOUT_CALLBACK="json",
)


def _run(argv, stdin=None):
    proc = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def write_policy(directory: str, rules: int, variant: int = 0) -> str:
    lines = ["psl: 1", "domain: bench.test", "rules:"]
    for i in range(rules):
        source = f"2001:db8:{variant:x}:{i:x}::/64" if i % 2 else f"10.{variant}.{i // 256 % 256}.{i % 256}"
        lines += [
            f"  - id: r{i}",
            f"    description: bench rule {i}",
            "    direction: in",
            f'    from: ["{source}"]',
            "    proto: tcp",
            f"    ports: [{1024 + i % 60000}]",
            "    action: accept",
        ]
    path = os.path.join(directory, f"bench-{rules}-{variant}.yml")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return path


def _time(func):
    start = time.perf_counter()
    value = func()
    return time.perf_counter() - start, value


def core_figures(repeat: int) -> None:
    ns = f"distsec-bench-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        backends = [("nftables", lambda state: NftablesBackend(_run, state, argv=["ip", "netns", "exec", ns, "nft"]))]
        try:
            from ansible_collections.distsec.framework.plugins.module_utils._apply.iptables import (  # noqa: PLC0415
                IptablesBackend,
            )

            if shutil.which("iptables-nft-restore"):
                backends.append(
                    (
                        "iptables-nft",
                        lambda state: IptablesBackend(
                            _run, state, variant="nft", argv_prefix=["ip", "netns", "exec", ns]
                        ),
                    )
                )
        except ImportError:
            pass
        with tempfile.TemporaryDirectory() as work:
            for label, factory in backends:
                print(f"\n{label}: one run of the backend, median of {repeat} (seconds)")
                print(
                    f"{'rules':>7} {'compile':>8} {'render':>8} {'plan':>8} {'check':>8} {'apply+rb':>9} {'no-change':>10}"
                )
                backend = factory(os.path.join(work, label))
                for size in SIZES:
                    figures = {k: [] for k in ("compile", "render", "plan", "check", "apply", "noop")}
                    for r in range(repeat):
                        path = write_policy(work, size, r + 1)
                        elapsed, compiled = _time(lambda: compile_policy(load_policy([path])))  # noqa: B023
                        figures["compile"].append(elapsed)

                        def render(compiled=compiled, backend=backend):
                            decision = decide(compiled, {})
                            return backend.render(compiled, decision.profile, active_rules(compiled, decision))

                        elapsed, artefacts = _time(render)
                        figures["render"].append(elapsed)
                        elapsed, plan = _time(lambda: backend.plan(artefacts))  # noqa: B023
                        assert plan.changed
                        figures["plan"].append(elapsed)
                        figures["check"].append(_time(lambda: backend.validate(artefacts))[0])  # noqa: B023

                        def apply(artefacts=artefacts, backend=backend):
                            backend.apply(artefacts)
                            assert backend.in_effect() == backend.intended(artefacts)
                            backend.write_record(artefacts, backend.current())

                        figures["apply"].append(_time(apply)[0])
                        elapsed, again = _time(lambda: backend.plan(artefacts))  # noqa: B023
                        assert not again.changed, again.reason
                        figures["noop"].append(elapsed)
                    m = {k: statistics.median(v) for k, v in figures.items()}
                    print(
                        f"{size:>7} {m['compile']:>8.3f} {m['render']:>8.3f} {m['plan']:>8.3f} {m['check']:>8.3f} "
                        f"{m['apply']:>9.3f} {m['noop']:>10.3f}"
                    )
    finally:
        subprocess.run(["ip", "netns", "delete", ns], check=False)


PLAYBOOK = """
- hosts: {name}
  gather_facts: false
  tasks:
    - name: compile
      distsec.framework.psl:
        src: {policy}
        as_json: true
      register: compiled
    - name: enforce
      distsec.framework.firewall:
        compiled: "{{{{ compiled.compiled_json }}}}"
        backend: nftables
        status: {{}}
        state_dir: /var/lib/distsec/bench-{round}
        confirm_timeout: {confirm}
"""


def container_figures() -> None:
    subprocess.run(["podman", "rm", "-f", NAME], env=ENV, capture_output=True, check=False)
    subprocess.run(
        ["podman", "run", "-d", "--name", NAME, "--systemd=always", "--cap-add", "NET_ADMIN",
         "localhost/distsec-debian12:latest"],
        env=ENV, check=True, capture_output=True,
    )  # fmt: skip
    try:
        subprocess.run(["podman", "exec", NAME, "systemctl", "is-system-running", "--wait"], env=ENV,
                       capture_output=True, check=False)  # fmt: skip
        with tempfile.TemporaryDirectory() as work:
            inventory = os.path.join(work, "inventory.ini")
            with open(inventory, "w", encoding="utf-8") as handle:
                handle.write(
                    f"{NAME} ansible_connection=containers.podman.podman ansible_python_interpreter=/usr/bin/python3\n"
                )
            print("\ncontainer (podman connection): compile 1,000 rules + enforce with distsec.framework.firewall")
            print("(wall times of the tasks; 'on host' is the module's own work, from its durations)")
            print(f"{'confirm':>8} {'compile s':>10} {'firewall s':>11} {'on host s':>10} {'sum s':>7}")
            for confirm in (30, 0):
                rows = []
                for r in range(3):
                    policy = write_policy(work, 1_000, r + 1)
                    book = os.path.join(work, f"play{confirm}-{r}.yml")
                    with open(book, "w", encoding="utf-8") as handle:
                        handle.write(PLAYBOOK.format(name=NAME, policy=policy, round=r, confirm=confirm))
                    proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", inventory, book], env=ENV,
                                          capture_output=True, text=True, check=False)  # fmt: skip
                    tasks = json.loads(proc.stdout)["plays"][0]["tasks"]
                    durations = []
                    for task in tasks:
                        result = task["hosts"][NAME]
                        if result.get("failed") or (task is tasks[1] and not result.get("changed")):
                            raise SystemExit(f"{task['task']['name']} failed or did nothing: {result.get('msg')}")
                        start = datetime.fromisoformat(task["task"]["duration"]["start"].replace("Z", "+00:00"))
                        end = datetime.fromisoformat(task["task"]["duration"]["end"].replace("Z", "+00:00"))
                        durations.append((end - start).total_seconds())
                    on_host = sum(tasks[1]["hosts"][NAME]["durations"].values())
                    rows.append((durations[0], durations[1], on_host, sum(durations)))
                med = [statistics.median(col) for col in zip(*rows)]
                label = f"{confirm} s" if confirm else "off"
                print(f"{label:>8} {med[0]:>10.2f} {med[1]:>11.2f} {med[2]:>10.3f} {med[3]:>7.2f}")
                if confirm == 0:
                    verdict = "met" if med[3] < TARGET_SECONDS else "NOT met"
                    print(
                        f"target: compile + apply of 1,000 rules under {TARGET_SECONDS:.0f} s on a container "
                        f"(one module call): {verdict}; commit-confirmed adds one call over a new connection"
                    )
    finally:
        subprocess.run(["podman", "rm", "-f", NAME], env=ENV, capture_output=True, check=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per size (median is printed)")
    parser.add_argument("--no-container", action="store_true", help="skip the container part")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench: needs root (it creates a network namespace)", file=sys.stderr)
        return 2
    core_figures(args.repeat)
    if not args.no_container:
        container_figures()
    return 0


if __name__ == "__main__":
    sys.exit(main())
