"""The distsec command: exit codes, help, version, and errors without tracebacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ansible_collections.distsec.framework.plugins.plugin_utils import _cli
from ansible_collections.distsec.framework.plugins.plugin_utils._cli import Command, CommandError, Group, main

TOP = Path(__file__).resolve().parents[4]


def test_version_matches_galaxy_yml(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["--version"])
    assert caught.value.code == 0
    galaxy = yaml.safe_load((TOP / "galaxy.yml").read_text())
    assert capsys.readouterr().out.strip() == f"distsec {galaxy['version']} (distsec.framework)"


def test_help_lists_every_group(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["--help"])
    assert caught.value.code == 0
    out = capsys.readouterr().out
    for group in ("psl", "keys", "bundle", "report"):
        assert f"    {group} " in out


@pytest.mark.parametrize("argv", [[], ["nonsense"], ["--no-such-flag"], ["psl"], ["keys", "extra"]])
def test_usage_errors_exit_2(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    assert code == 2
    assert "Traceback" not in capsys.readouterr().err


def _groups(run):
    def configure(parser):
        parser.add_argument("value")

    group = Group("demo", "a test group", "A test group.")
    group.commands.append(Command("go", "run it", configure, run))
    return {"demo": group}


def test_a_command_runs_and_returns_its_code():
    assert main(["demo", "go", "x"], groups=_groups(lambda args: 0 if args.value == "x" else 1)) == 0


def test_command_error_is_one_line_exit_1(capsys):
    def fail(args):
        raise CommandError("policy.yml:3:5: unknown key 'rulez'")

    assert main(["demo", "go", "x"], groups=_groups(fail)) == 1
    assert capsys.readouterr().err == "distsec: error: policy.yml:3:5: unknown key 'rulez'\n"


def test_a_bug_is_reported_without_traceback(capsys, monkeypatch):
    monkeypatch.delenv("DISTSEC_DEBUG", raising=False)

    def crash(args):
        return {}["missing"]

    assert main(["demo", "go", "x"], groups=_groups(crash)) == 70
    err = capsys.readouterr().err
    assert "internal error: KeyError" in err and "Traceback" not in err


def test_installed_command_runs_the_working_tree():
    """.venv/bin/distsec is what `make venv` installs; it must run this tree's code."""
    exe = Path(sys.executable).parent / "distsec"
    if not exe.exists():
        pytest.skip("distsec is installed by tools/venv.sh; run the tests from .venv")
    proc = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0
    assert Path(_cli.__file__).resolve().is_relative_to(TOP)
    proc = subprocess.run([str(exe), "bogus"], capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and "invalid choice: 'bogus'" in proc.stderr
