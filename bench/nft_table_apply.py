"""Benchmark: replacing one nftables table through the core, by rule count.

Runs the real nft in a throwaway network namespace (needs root) and prints, for 10 to 10,000
rules, the time of the whole apply (nft -c, then one nft -f transaction, then reading back)
and of a no-change run (plan only). The apply should stay nearly flat as rules grow, because
it is always one kernel transaction.

    .venv/bin/python bench/nft_table_apply.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

from ansible_collections.distsec.framework.plugins.module_utils._apply.nftables import Nft, TableManager, TableRef

SIZES = (10, 100, 1_000, 10_000)


def _run(argv, stdin=None):
    proc = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def body(rules: int, variant: int) -> str:
    lines = ["chain input {", "  type filter hook input priority filter; policy accept;"]
    for i in range(rules):
        port = 1024 + (i % 60000)
        lines.append(f'  ip6 saddr fd42:{variant:x}::{i:x} tcp dport {port} counter accept comment "r{i}"')
    lines.append("}")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per size (median is printed)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench: needs root (it creates a network namespace)", file=sys.stderr)
        return 2
    ns = f"distsec-bench-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        nft = Nft(_run, argv=["ip", "netns", "exec", ns, "nft"])
        print(f"{'rules':>7} {'apply s':>9} {'no-change s':>12}")
        with tempfile.TemporaryDirectory() as state:
            manager = TableManager(nft, TableRef("inet", "distsec_bench"), state)
            for size in SIZES:
                applies, noops = [], []
                for r in range(args.repeat):
                    content = body(size, r + 1)
                    start = time.perf_counter()
                    manager.apply(content)
                    applies.append(time.perf_counter() - start)
                    start = time.perf_counter()
                    assert not manager.plan(content).changed
                    noops.append(time.perf_counter() - start)
                print(f"{size:>7} {statistics.median(applies):>9.3f} {statistics.median(noops):>12.3f}")
    finally:
        subprocess.run(["ip", "netns", "delete", ns], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
