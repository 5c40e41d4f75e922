"""The Security Status schema: published, current, true of real output, and used by PSL."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from ansible_collections.distsec.framework.plugins.module_utils._status.all import COLLECTORS, Context, gather
from ansible_collections.distsec.framework.plugins.module_utils._status.schema import STATUS_SCHEMA, fact_problem
from ansible_collections.distsec.framework.plugins.plugin_utils._psl.problems import Problems
from ansible_collections.distsec.framework.plugins.plugin_utils._psl.schema import _Checker

TOP = Path(__file__).resolve().parents[5]


def _violations(status):
    checker = _Checker(STATUS_SCHEMA, None, Problems())
    return checker.errors(status, STATUS_SCHEMA, ())


def test_published_schema_is_current():
    assert json.loads((TOP / "docs" / "status.schema.json").read_text()) == STATUS_SCHEMA


def test_every_collector_has_a_place_in_the_schema():
    assert set(COLLECTORS) <= set(STATUS_SCHEMA["properties"])


def test_this_machines_real_status_fits_the_schema():
    def run(argv):
        proc = subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=60)
        return proc.returncode, proc.stdout, proc.stderr

    status = gather(Context(run))
    assert _violations(status) == [], status["errors"]
    assert status["platform"]["kernel"]


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        (["packages", "openssl", "version"], None),
        (["packages", "openssl", "verison"], "packages.openssl has no fact 'verison'"),
        (["platform", "kernal"], "platform has no fact 'kernal'"),
        (["sysctl", "net.ipv4.ip_forward"], None),
        (["sockets", 0, "port"], None),
        (["services", "ssh.service", "active"], None),
        (["domain", "certificate", "not_after"], None),
        (["updates", "oldest_security_age"], None),
    ],
)
def test_fact_paths_are_checked_against_the_schema(path, problem):
    found = fact_problem(path)
    assert (found is None) if problem is None else (problem in found)
