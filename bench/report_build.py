"""Benchmark: the fleet report as the fleet grows.

For fleets of 100, 1,000 and 5,000 hosts, each with a Security Status of the size a Debian host
reports (about 170 packages and 60 services: the status collectors' real shape, padded to 25 KB)
and a run record with 12 compliance checks: the time to write the hosts' entries (what the report
action does first: one file per host, written atomically with fsync), to load them back (what
`distsec report build DIR` does), to build the summary, and to render each output; the HTML
size; the process's peak resident memory after the size's build (ru_maxrss: it only grows, so
each row is the peak so far). One host in ten is non-compliant, one in twenty has drift.

    .venv/bin/python bench/report_build.py [--sizes 100,1000,5000]   (default 100,1000)
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time

from ansible_collections.distsec.framework.plugins.module_utils._enforce.record import (
    compliance_of,
    drift_of,
    run_record,
)
from ansible_collections.distsec.framework.plugins.plugin_utils._report.entries import load_entries, write_entries
from ansible_collections.distsec.framework.plugins.plugin_utils._report.machine import render_json, render_junit
from ansible_collections.distsec.framework.plugins.plugin_utils._report.page import render_html
from ansible_collections.distsec.framework.plugins.plugin_utils._report.summary import build_report
from ansible_collections.distsec.framework.plugins.plugin_utils._report.table import render_table

SERVICE = {"active": True, "enabled": True, "state": "running", "load": "loaded"}
CERT = {"valid": True, "revoked": False, "not_after": "2026-12-20T00:00:00Z"}


def _entry(i: int):
    host = f"host-{i:05d}.corp.example.org"
    checks = [
        {"id": f"check-{n}", "description": f"requirement {n}", "severity": "high", "passed": not (n == 0 and i % 10 == 0),
         "on_fail": "isolated", "unknown": []}
        for n in range(12)
    ]  # fmt: skip
    compliance = compliance_of(checks)
    drifted = i % 20 == 0
    run = run_record(
        host=host,
        mode="enforce",
        changed=drifted,
        policy={"source": "stored", "serial": 7, "domain": "corp.example.org", "expires": "2026-11-30T12:00:00Z"},
        profile={"name": "isolated" if not compliance["compliant"] else "home", "reason": "bench"},
        compliance=compliance,
        drift=drift_of(
            drift=drifted, rules={"removed": ["input: ?: tcp dport 9999 accept"]}, applied=True, mode="enforce"
        ),
        firewall={"backend": "nftables", "applied": True, "confirmed": True, "reason": "bench", "rules": {}},
    )
    status = {
        "schema_version": 1,
        "collected_at": "2026-11-23T12:00:00Z",
        "packages": {f"pkg-{n}": {"version": f"1.{n}-1", "arch": "amd64", "scheme": "dpkg"} for n in range(170)},
        "services": {f"svc-{n}.service": dict(SERVICE) for n in range(60)},
        "domain": {
            "enrolled": True,
            "domain": "corp.example.org",
            "state": "member",
            "host": host,
            "certificate": dict(CERT, serial=f"{i:040x}", subject=f"CN={host}"),
        },
        "policy": {"serial": 7, "profile": run["profile"]["name"], "domain": "corp.example.org"},
        "padding": "x" * 12000,
    }
    return {"host": host, "status": status, "run": run, "reachable": True}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000")
    sizes = [int(s) for s in parser.parse_args().sizes.split(",")]
    print(f"{'hosts':>6} {'write':>8} {'load':>8} {'summary':>8} {'table':>7} {'html':>7} {'json':>7} {'junit':>7}"
          f" {'html size':>10} {'peak RSS MB':>12}")  # fmt: skip
    for size in sizes:
        entries = [_entry(i) for i in range(size)]
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            write_entries(tmp, entries)
            t1 = time.perf_counter()
            loaded = load_entries([tmp])
            t2 = time.perf_counter()
            report = build_report(loaded, generated_at="2026-11-23T12:00:00Z")
            t3 = time.perf_counter()
            timings, sizes_out = [], {}
            for name, render in (("table", render_table), ("html", render_html), ("json", render_json),
                                 ("junit", render_junit)):  # fmt: skip
                start = time.perf_counter()
                sizes_out[name] = len(render(report).encode("utf-8"))
                timings.append(time.perf_counter() - start)
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            assert len(os.listdir(os.path.join(tmp, "hosts"))) == size
        print(f"{size:>6} {t1 - t0:>7.2f}s {t2 - t1:>7.2f}s {t3 - t2:>7.2f}s "
              + " ".join(f"{t:>6.2f}s" for t in timings)
              + f" {sizes_out['html'] / 1e6:>8.1f}MB {peak:>12.0f}")  # fmt: skip


if __name__ == "__main__":
    main()
