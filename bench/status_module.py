"""Benchmark: the security_status module against setup + package_facts + service_facts.

1. On a real container of the project's image (podman connection, systemd running), run each
   module 3 times with `ansible -m` and print the median wall time of the whole Ansible call,
   the module's own gathering time (the sum of the status' per-collector `durations`) and the
   size of the returned facts.
2. The packages collector on a synthetic host root with 2,000 installed packages (a dpkg
   status file generated in a temporary directory), median of 5 runs: the target is the whole
   module under 0.5 s on a host with 2,000 packages.

    .venv/bin/python bench/status_module.py        (needs podman and the image: make image)
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ansible_collections.distsec.framework.plugins.module_utils._status.all import Context, gather

TOP = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
NAME = "distsec-bench-status"
ENV = dict(
    os.environ,
    CONTAINERS_CONF=str(TOP / "tools" / "podman" / "containers.conf"),
    ANSIBLE_COLLECTIONS_PATH=str(TOP / ".ansible" / "collections"),
    ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
    ANSIBLE_STDOUT_CALLBACK="json",
)


def _ansible(inventory: str, module: str, args: str = "") -> tuple:
    argv = [str(BIN / "ansible"), "-i", inventory, NAME, "-m", module]
    if args:
        argv += ["-a", args]
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=ENV, check=False)
    elapsed = time.perf_counter() - start
    result = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"][NAME]
    if result.get("failed"):
        raise SystemExit(f"{module} failed: {result.get('msg')}")
    return elapsed, result


def container_figures() -> None:
    subprocess.run(["podman", "rm", "-f", NAME], env=ENV, capture_output=True, check=False)
    subprocess.run(
        ["podman", "run", "-d", "--name", NAME, "--systemd=always", "localhost/distsec-debian12:latest"],
        env=ENV, check=True, capture_output=True,
    )  # fmt: skip
    try:
        subprocess.run(
            ["podman", "exec", NAME, "systemctl", "is-system-running", "--wait"],
            env=ENV,
            capture_output=True,
            check=False,
        )
        packages = subprocess.run(
            ["podman", "exec", NAME, "dpkg-query", "-W", "-f", "${binary:Package}\\n"],
            env=ENV, capture_output=True, text=True, check=True,
        ).stdout.count("\n")  # fmt: skip
        with tempfile.NamedTemporaryFile("w", suffix=".ini", delete=False) as inv:
            inv.write(
                f"{NAME} ansible_connection=containers.podman.podman ansible_python_interpreter=/usr/bin/python3\n"
            )
        print(f"container: {packages} packages, podman connection (about 1 s per task whatever it does)\n")
        print(f"{'module':<34} {'wall s':>7} {'gather s':>9} {'facts KB':>9}")
        rows = [
            ("distsec.framework.security_status", "state_file=''"),
            ("ansible.builtin.setup", ""),
            ("ansible.builtin.package_facts", ""),
            ("ansible.builtin.service_facts", ""),
        ]
        peers = 0.0
        for module, args in rows:
            walls, gathers, size = [], [], 0
            for _round in range(3):
                wall, result = _ansible(inv.name, module, args)
                walls.append(wall)
                facts = result.get("ansible_facts", {})
                size = len(json.dumps(facts))
                status = facts.get("distsec_status")
                if status:
                    gathers.append(sum(status["durations"].values()))
            gather_s = f"{statistics.median(gathers):9.3f}" if gathers else f"{'-':>9}"
            print(f"{module:<34} {statistics.median(walls):7.2f} {gather_s} {size / 1024:9.1f}")
            if module != "distsec.framework.security_status":
                peers += statistics.median(walls)
        print(f"{'setup + package_facts + service_facts':<34} {peers:7.2f}   (three tasks)")
        os.unlink(inv.name)
    finally:
        subprocess.run(["podman", "rm", "-f", NAME], env=ENV, capture_output=True, check=False)


def synthetic_packages(count: int = 2000) -> None:
    with tempfile.TemporaryDirectory() as root:
        status = Path(root, "var/lib/dpkg/status")
        status.parent.mkdir(parents=True)
        stanzas = [
            f"Package: pkg{i}\nStatus: install ok installed\nPriority: optional\nSection: misc\n"
            f"Installed-Size: {i}\nMaintainer: Nobody <nobody@example.org>\nArchitecture: amd64\n"
            f"Version: 1:{i % 50}.{i % 7}-{i % 3}+deb12u1\nDepends: libc6 (>= 2.36)\nDescription: package {i}\n"
            f" A long description line that dpkg keeps in the status file for package {i}.\n"
            for i in range(count)
        ]
        status.write_text("\n".join(stanzas))
        ctx = Context(lambda argv: (127, "", "not run"), root=root, which=lambda name: None)
        times = []
        for _round in range(5):
            start = time.perf_counter()
            result = gather(ctx, ["packages"])
            times.append(time.perf_counter() - start)
        assert len(result["packages"]) == count
        print(
            f"\npackages collector, synthetic host with {count} packages: {statistics.median(times) * 1000:.1f} ms (median of 5)"
        )
        print("target: the whole module under 0.5 s on a host with 2,000 packages")


def main() -> int:
    container_figures()
    synthetic_packages()
    return 0


if __name__ == "__main__":
    sys.exit(main())
