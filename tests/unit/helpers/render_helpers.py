"""Shared by the renderer tests: the example policies, rule builders and the golden-file check.

Regenerate golden files with `UPDATE_GOLDEN=1 .venv/bin/python -m pytest -q tests/unit -k golden`.
"""

from __future__ import annotations

import os
from pathlib import Path

from ansible_collections.distsec.framework.plugins.plugin_utils._psl.compiler import compile_policy, load_policy

TOP = Path(__file__).resolve().parents[3]
EXAMPLES = sorted((TOP / "docs" / "examples").glob("*/policy.yml"))
GOLDEN = TOP / "tests" / "unit" / "plugins" / "module_utils" / "render" / "golden"


def example_targets(path):
    """The example's policy and the (host, groups) its tests use, plus the domain default."""
    policy = load_policy([str(path)])
    hosts = {(t.value.get("host"), tuple(t.value.get("groups") or [])) for t in policy.tests} | {(None, ())}
    return policy, sorted(hosts, key=str)


def every_profile(path):
    """(host, groups, profile, compiled, rules) for every profile of the example; all its rules,
    whatever the conditions decide."""
    policy, hosts = example_targets(path)
    for host, groups in hosts:
        compiled = compile_policy(policy, host=host, groups=list(groups))
        for profile, spec in compiled["profiles"].items():
            yield host, groups, profile, compiled, spec["rules"]


def rule(**extra):
    """A compiled rule with every key at its neutral value, then `extra`."""
    built = {"id": "r", "description": "d", "direction": "in", "action": "drop", "from": None, "to": None,
             "protocols": None, "family": None, "interface": None, "state": None, "fields": None, "owner": None,
             "log": None, "when": None, "if_unknown": False}  # fmt: skip
    built.update(extra)
    return built


def entry(proto, ports=None, sports=None, types=None, codes=None):
    return {"proto": proto, "ports": ports, "sports": sports, "types": types, "codes": codes}


def golden_text(path, render_text, error):
    """Every profile of the example rendered; a repeated rendering is written as 'same as ...'."""
    parts = []
    seen = {}
    for host, groups, profile, compiled, rules in every_profile(path):
        title = f"## host {host or '-'} groups {','.join(groups) or '-'} profile {profile}"
        try:
            text = render_text(compiled, profile, rules)
        except error as exc:
            text = f"ERROR: {exc}\n"
        parts.append(f"{title} (same as {seen[text]})\n" if text in seen else f"{title}\n{text}")
        seen.setdefault(text, title[3:])
    return "".join(parts)


def assert_golden(text, name):
    """Compare with golden/NAME (write it with UPDATE_GOLDEN=1)."""
    golden = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text)
    assert golden.exists(), f"{golden} is missing: run with UPDATE_GOLDEN=1"
    assert text == golden.read_text(), f"{golden.name} differs from the renderer: review, then UPDATE_GOLDEN=1"
