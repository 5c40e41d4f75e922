# PRIVATE: the PSL operations as plain functions for the Ansible adapters (filter, action).
from __future__ import annotations

from typing import Any, Dict, List, Optional, Union

from ansible_collections.distsec.framework.plugins.module_utils._evaluate.decide import active_rules, decide

from .compiler import compile_policy, load_policy
from .problems import PslError
from .testing import run_tests

__all__ = ["PolicyInvalid", "compile_paths", "preview", "problem_lines"]


class PolicyInvalid(Exception):
    """The policy has errors; `lines` are the PATH:LINE:COL messages, `warnings` too."""

    def __init__(self, lines: List[str]) -> None:
        self.lines = lines
        super().__init__("invalid PSL policy:\n" + "\n".join(lines))


def problem_lines(problems) -> List[str]:
    return [str(p) for p in problems.sorted()]


def preview(compiled: Dict[str, Any], status: Dict[str, Any], *, now: Optional[float] = None) -> Dict[str, Any]:
    """What the host would get under this Security Status: profile, compliance, active rules."""
    decision = decide(compiled, status, now=now)
    return {
        "profile": decision.profile,
        "reason": decision.reason,
        "compliant": decision.compliant,
        "failed_checks": decision.failed_checks,
        "active_rules": [r["id"] for r in active_rules(compiled, decision)],
        "unknown": decision.evaluator.unknowns,
    }


def _paths(src: Union[str, List[str]]) -> List[str]:
    paths = [src] if isinstance(src, str) else list(src or [])
    if not paths or not all(isinstance(p, str) and p for p in paths):
        raise PolicyInvalid(["src: give a PSL file path or a list of them"])
    return paths


def compile_paths(
    src: Union[str, List[str]],
    *,
    host: Optional[str] = None,
    groups: Optional[List[str]] = None,
    status: Optional[Dict[str, Any]] = None,
    now: Optional[float] = None,
    run_policy_tests: bool = False,
) -> Dict[str, Any]:
    """Validate and compile; with `status`, add a preview of the host's decisions."""
    try:
        policy = load_policy(_paths(src))
    except PslError as exc:
        raise PolicyInvalid(problem_lines(exc.problems)) from None
    compiled = compile_policy(policy, host=host, groups=list(groups or []))
    result: Dict[str, Any] = {
        "compiled": compiled,
        "warnings": [str(p) for p in policy.problems.sorted() if p.severity == "warning"],
    }
    if status is not None:
        result["preview"] = preview(compiled, status, now=now)
    if run_policy_tests:
        tests = run_tests(policy)
        result["tests"] = [{"name": t.name, "passed": t.passed, "failures": t.failures} for t in tests]
    return result
