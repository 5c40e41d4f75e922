"""Benchmark: PSL validate + compile time and peak memory, by rule count; compile time by host count.

Generates policies in a temporary directory: 1,000 address objects (IPv4 and IPv6 prefixes,
mixed sets and sets nesting other sets), 50 services, 20 host groups, and 100 to 10,000 rules
(services or proto/ports, some with conditions over the Security Status, some with apply_to),
split over three files joined by include. Each size runs in a fresh Python process:

- time: load_policy (read, schema, semantic checks) + compile_policy for the domain default,
  the median of --repeat runs in that process;
- memory: the peak resident set size of that process (getrusage(RUSAGE_SELF).ru_maxrss, read
  by the child itself when it is done), so it includes the interpreter and the imports; the
  RSS after the imports (before the first load) is printed as the baseline;
- for diagnosis, the time again in another process with the shadowed-rule analysis skipped
  (compiler.MAX_SHADOW_COMPARISONS set to 0 in that process only).

Then one policy (1,000 rules) is loaded once and compiled for 1, 10, 100 and 1,000 hosts.

    .venv/bin/python bench/psl_compile.py [--repeat N] [--host-rules N]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time

from ansible_collections.distsec.framework.plugins.plugin_utils._psl import compiler
from ansible_collections.distsec.framework.plugins.plugin_utils._psl.compiler import compile_policy, load_policy
from ansible_collections.distsec.framework.plugins.plugin_utils._psl.problems import PslError

OBJECTS = 1_000
SERVICES = 50
GROUPS = 20
RULE_SIZES = (100, 1_000, 10_000)
HOST_COUNTS = (1, 10, 100, 1_000)
TARGET_RULES, TARGET_SECONDS, TARGET_MB = 10_000, 1.0, 200


def _address(i: int, names: list, rnd: random.Random) -> str:
    kind = i % 10
    if kind < 4:
        return f"[10.{i // 256}.{i % 256}.0/24]"
    if kind < 8:
        return f"[2001:db8:{i:x}::/48]"
    if kind == 8 and len(names) >= 3:
        return "[" + ", ".join(rnd.sample(names, 3)) + "]"  # a set of earlier sets
    return f"[192.0.2.{i % 256}, 2001:db8:ffff::{i:x}]"


def generate(directory: str, rules: int, seed: int = 1) -> str:
    """Write main.yml, objects.yml and rules.yml; return the path of main.yml."""
    rnd = random.Random(seed)  # noqa: S311 - test data, not cryptography
    lines = ["psl: 1", "objects:", "  addresses:"]
    names: list = []
    for i in range(OBJECTS):
        lines.append(f"    net{i}: {_address(i, names, rnd)}")
        names.append(f"net{i}")
    lines.append("  services:")
    for i in range(SERVICES):
        proto = "tcp" if i % 3 else "udp"
        lines.append(f'    svc{i}: {{proto: {proto}, ports: [{1000 + i}, "{20000 + 10 * i}-{20005 + 10 * i}"]}}')
    lines.append("  groups:")
    lines.extend(f"    grp{i}: {{inventory_groups: [grp{i}]}}" for i in range(GROUPS))
    with open(os.path.join(directory, "objects.yml"), "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")

    lines = ["psl: 1", "rules:"]
    for i in range(rules):
        direction = "in" if i % 2 else "out"
        end = "from" if direction == "in" else "to"
        lines += [f"  - id: r{i}", f"    description: generated rule {i}", f"    direction: {direction}"]
        lines.append(f"    {end}: net{rnd.randrange(OBJECTS)}")
        if i % 2:
            lines.append(f"    service: svc{rnd.randrange(SERVICES)}")
        else:
            lines += ["    proto: tcp", f"    ports: [{rnd.randrange(1, 65536)}]"]
        lines.append(f"    action: {('accept', 'drop', 'reject')[i % 3]}")
        if i % 10 == 0:
            lines.append(f"    when: 'packages.pkg{i % 97}.version >= \"1.{i % 13}\"'")
        if i % 5 == 0:
            lines.append(f"    apply_to: grp{rnd.randrange(GROUPS)}")
    with open(os.path.join(directory, "rules.yml"), "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")

    main = os.path.join(directory, "main.yml")
    with open(main, "w", encoding="utf-8") as handle:
        handle.write(
            "psl: 1\ndomain: example.org\ninclude: [objects.yml, rules.yml]\n"
            "defaults: {version_scheme: dpkg}\n"
            "checks:\n"
            "  - {id: ssl, description: OpenSSL current, on_fail: foreign,\n"
            "     package: {name: openssl, at_least: '3.0.13'}}\n"
            "select:\n"
            "  - {profile: foreign, when: 'not any_in(network.addresses, @net1)'}\n"
        )
    return main


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def child_compile(path: str, repeat: int, shadow: bool) -> dict:
    if not shadow:
        compiler.MAX_SHADOW_COMPARISONS = 0
    baseline = _rss_mb()
    times: list = []
    rules = warnings = 0
    while len(times) < repeat and sum(times) < 20:  # one run is enough when it is that slow
        start = time.perf_counter()
        policy = load_policy([path])
        compiled = compile_policy(policy)
        times.append(time.perf_counter() - start)
        rules = sum(len(p["rules"]) for p in compiled["profiles"].values())
        warnings = len(policy.problems.warnings)
        del policy, compiled
    return {
        "seconds": statistics.median(times),
        "runs": len(times),
        "peak_mb": _rss_mb(),
        "baseline_mb": baseline,
        "compiled_rules": rules,
        "warnings": warnings,
    }


def child_hosts(path: str) -> dict:
    policy = load_policy([path])
    out = {}
    for count in HOST_COUNTS:
        start = time.perf_counter()
        hashes = {compile_policy(policy, host=f"ws{i}", groups=[f"grp{i % GROUPS}"])["hash"] for i in range(count)}
        out[str(count)] = {"seconds": time.perf_counter() - start, "distinct": len(hashes)}
    return out


def _child(argv: list) -> dict:
    proc = subprocess.run([sys.executable, __file__, *argv], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"bench child failed ({proc.returncode}):\n{proc.stderr}")
    return json.loads(proc.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per size in its process (median is printed)")
    parser.add_argument("--host-rules", type=int, default=1_000, help="rules in the policy compiled per host")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, path = args.child
        try:
            if kind == "hosts":
                result = child_hosts(path)
            else:
                result = child_compile(path, args.repeat, shadow=kind == "compile")
        except PslError as exc:
            print("\n".join(str(p) for p in exc.problems.sorted()[:20]), file=sys.stderr)
            return 1
        print(json.dumps(result))
        return 0

    print(f"PSL validate + compile (domain default), {OBJECTS} address objects, {SERVICES} services, {GROUPS} groups")
    print(f"time: median of up to {args.repeat} runs (runs); peak RSS: ru_maxrss of a fresh process per size")
    print("(includes the interpreter; 'baseline' is the RSS after the imports). 'no shadow s': the same without")
    print("the shadowed-rule analysis, for diagnosis only.")
    print(f"target: {TARGET_RULES} rules + {OBJECTS} objects in < {TARGET_SECONDS:.0f} s and < {TARGET_MB} MB\n")
    print(
        f"{'rules':>7} {'policy KB':>10} {'validate+compile s':>19} {'runs':>5} {'peak RSS MB':>12} "
        f"{'baseline MB':>12} {'no shadow s':>12} {'warnings':>9}  target"
    )
    with tempfile.TemporaryDirectory() as top:
        for rules in RULE_SIZES:
            directory = os.path.join(top, f"r{rules}")
            os.mkdir(directory)
            path = generate(directory, rules)
            size_kb = sum(os.path.getsize(os.path.join(directory, f)) for f in os.listdir(directory)) / 1024
            r = _child(["--repeat", str(args.repeat), "--child", "compile", path])
            fast = _child(["--repeat", str(args.repeat), "--child", "compile-no-shadow", path])
            verdict = ""
            if rules == TARGET_RULES:
                ok_time, ok_mem = r["seconds"] < TARGET_SECONDS, r["peak_mb"] < TARGET_MB
                verdict = (
                    f"time {'OK' if ok_time else 'MISSED'} (< {TARGET_SECONDS:.0f} s), "
                    f"memory {'OK' if ok_mem else 'MISSED'} (< {TARGET_MB} MB)"
                )
            print(
                f"{rules:>7} {size_kb:>10.0f} {r['seconds']:>19.3f} {r['runs']:>5} {r['peak_mb']:>12.1f} "
                f"{r['baseline_mb']:>12.1f} {fast['seconds']:>12.3f} {r['warnings']:>9}  {verdict}"
            )

        directory = os.path.join(top, "hosts")
        os.mkdir(directory)
        path = generate(directory, args.host_rules)
        hosts = _child(["--child", "hosts", path])
        print(f"\ncompile_policy per host ({args.host_rules} rules, {OBJECTS} objects; loaded once)")
        print(f"{'hosts':>7} {'total s':>9} {'per host ms':>12} {'distinct hashes':>16}")
        for count in HOST_COUNTS:
            h = hosts[str(count)]
            print(f"{count:>7} {h['seconds']:>9.3f} {1000 * h['seconds'] / count:>12.2f} {h['distinct']:>16}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
