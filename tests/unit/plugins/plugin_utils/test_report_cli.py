"""distsec report build: output, files and exit statuses (0 fine, 1 a fail-on condition holds, 2 usage/input)."""

from __future__ import annotations

import json
import os
import stat

import pytest
from report_helpers import entries, write_entries

from ansible_collections.distsec.framework.plugins.plugin_utils._cli import main

FILES = ["report.html", "report.json", "report.junit.xml", "report.txt"]


def distsec(*argv):
    try:
        return main([str(a) for a in argv])
    except SystemExit as exc:
        return exc.code


@pytest.fixture
def reports(tmp_path):
    return write_entries(tmp_path / "reports")


def test_build_a_directory_prints_the_table_and_writes_every_file_into_it(reports, capsys):
    assert distsec("report", "build", reports) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.startswith("distsec compliance report: corp.example.org, generated ")
    assert "HOST  POLICY  SOURCE   CERT    PROFILE   OK/FAIL  DRIFT  LAST RUN" in out
    assert "ws2: check libssl-patched failed (critical) -> isolated" in out
    for name in FILES:
        assert f"wrote {reports / name}\n" in out
        assert stat.S_IMODE(os.stat(reports / name).st_mode) == 0o640
    assert (reports / "report.txt").read_text() in out
    assert json.loads((reports / "report.json").read_text())["totals"]["hosts"] == 5


@pytest.mark.parametrize(
    ("conditions", "lines"),
    [
        ("drift", ["ws5: firewall drift found in audit mode (2 rule change(s))"]),
        ("failed", ["ws3: unreachable", "ws4: run failed: Apply the policy"]),
        ("noncompliant,drift", ["ws2: non-compliant: 1 check(s) failed: libssl-patched", "ws5: firewall drift"]),
    ],
)
def test_fail_on_exits_1_and_names_each_host_and_reason(reports, capsys, conditions, lines):
    assert distsec("report", "build", reports, "--fail-on", conditions) == 1
    out, err = capsys.readouterr()
    assert "HOST" in out and all((reports / name).exists() for name in FILES), "the reports are written first"
    assert err.startswith(f"distsec: failing ({conditions.replace(',', ', ')}): ")
    for line in lines:
        assert f"\n  {line}" in err


def test_fail_on_reasons_carry_no_control_characters_from_host_data(tmp_path, capsys):
    items = entries()
    ws4 = next(item for item in items if item["host"] == "ws4")
    ws4["run"]["error"] = "boom \x1b]0;owned\x07\x1b[2J\nnext"
    directory = write_entries(tmp_path / "r", [ws4])
    assert distsec("report", "build", directory, "--fail-on", "failed") == 1
    out, err = capsys.readouterr()
    assert "\x1b" not in out and "\x1b" not in err and "\x07" not in err
    assert "\n  ws4: run failed: boom ?]0;owned??[2J next\n" in err


def test_fail_on_that_holds_nowhere_exits_0(tmp_path, capsys):
    clean = write_entries(tmp_path / "r", [entries()[0]])
    assert distsec("report", "build", clean, "--fail-on", "drift,noncompliant,failed") == 0
    assert capsys.readouterr().err == ""


def test_files_to_an_out_directory_and_formats(reports, tmp_path, capsys):
    out_dir = tmp_path / "out"
    files = [reports / "hosts" / "ws1.json", reports / "hosts" / "ws2.json"]
    assert distsec("report", "build", *files, "--out", out_dir, "--format", "json,junit") == 0
    out = capsys.readouterr().out
    assert out == f"wrote {out_dir / 'report.json'}\nwrote {out_dir / 'report.junit.xml'}\n", "no table"
    assert sorted(os.listdir(out_dir)) == ["report.json", "report.junit.xml"]
    assert [h["host"] for h in json.loads((out_dir / "report.json").read_text())["hosts"]] == ["ws1", "ws2"]


def test_files_without_an_out_directory_print_only_the_table(reports, capsys):
    assert distsec("report", "build", reports / "hosts" / "ws3.json", "--title", "Night audit") == 0
    out = capsys.readouterr().out
    assert out.startswith("Night audit: no domain, generated ") and "wrote" not in out
    assert "ws3: unreachable" in out


def test_table_only_writes_only_the_table(reports, capsys):
    assert distsec("report", "build", reports, "--format", "table") == 0
    assert capsys.readouterr().out.endswith(f"\n\nwrote {reports / 'report.txt'}\n")
    assert sorted(os.listdir(reports)) == ["hosts", "report.txt"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--fail-on", "drift,weather"], "--fail-on: unknown condition 'weather'"),
        (["--format", "pdf"], "--format: unknown format 'pdf' (expected some of table, html, json, junit or all)"),
        (["--width", "10"], "--width: at least 40 columns"),
    ],
)
def test_usage_errors_exit_2(reports, capsys, argv, message):
    assert distsec("report", "build", reports, *argv) == 2
    err = capsys.readouterr().err
    assert err == f"distsec: error: {message}\n" or message in err
    assert "Traceback" not in err


def test_html_without_a_destination_is_a_usage_error(reports, capsys):
    assert distsec("report", "build", reports / "hosts" / "ws1.json", "--format", "html") == 2
    assert capsys.readouterr().err == "distsec: error: --format html writes files: give --out DIR\n"


def test_bad_input_exits_2_naming_the_file(reports, tmp_path, capsys):
    bad = reports / "hosts" / "ws9.json"
    bad.write_text('{"host": "ws9", "run": {"schema": "distsec.run/1", "mode": "enforce", "result": 3}}')
    assert distsec("report", "build", reports) == 2
    assert capsys.readouterr().err == (f"distsec: error: {bad}: run.result: expected one of ok, failed, got 3\n")
    assert not (reports / "report.html").exists(), "nothing is written from a bad input"
    assert distsec("report", "build", tmp_path / "nowhere") == 2
    assert capsys.readouterr().err == f"distsec: error: {tmp_path / 'nowhere'}: no such file or directory\n"
    assert distsec("report", "build", tmp_path) == 2
    assert "no hosts/ directory" in capsys.readouterr().err


def test_an_unwritable_destination_exits_2(reports, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert distsec("report", "build", reports, "--out", blocker / "sub") == 2
    err = capsys.readouterr().err
    assert err.startswith(f"distsec: error: {blocker / 'sub'}: cannot write the report: ") and "Traceback" not in err


def test_no_source_is_a_usage_error(capsys):
    assert distsec("report", "build") == 2
    assert "the following arguments are required: SOURCE" in capsys.readouterr().err


def test_report_group_help_lists_build(capsys):
    assert distsec("report", "--help") == 0
    assert "build" in capsys.readouterr().out
