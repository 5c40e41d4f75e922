"""Every example under docs/examples/ is valid, has no warnings, and passes its own tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible_collections.distsec.framework.plugins.plugin_utils._psl.compiler import compile_policy, load_policy
from ansible_collections.distsec.framework.plugins.plugin_utils._psl.testing import run_tests

TOP = Path(__file__).resolve().parents[5]
EXAMPLES = sorted((TOP / "docs" / "examples").glob("*/policy.yml"))


def test_the_seed_scenarios_are_all_there():
    names = {p.parent.name for p in EXAMPLES}
    assert {"enterprise", "home-user", "public-hotspot", "mail-client"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.parent.name)
def test_example_is_valid_and_its_tests_pass(path):
    policy = load_policy([str(path)])
    assert [str(p) for p in policy.problems.warnings] == []
    results = run_tests(policy)
    assert len(results) >= 3, "each example shows its behaviour with tests"
    failed = {r.name: r.failures for r in results if not r.passed}
    assert failed == {}
    assert compile_policy(policy)["hash"].startswith("sha256:")
