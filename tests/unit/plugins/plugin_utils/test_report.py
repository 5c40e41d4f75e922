"""The fleet report's core: entries, summaries, totals, fail_on and the four renderers."""

from __future__ import annotations

import copy
import json
import os
import random
import stat
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import ClassVar

import pytest
from report_helpers import AT, DOMAIN, GENERATED, entries, status, write_entries

from ansible_collections.distsec.framework.plugins.module_utils._enforce.record import (
    compliance_of,
    drift_of,
    run_record,
)
from ansible_collections.distsec.framework.plugins.plugin_utils._report.entries import (
    ReportInputError,
    entry_file_name,
    load_entries,
)
from ansible_collections.distsec.framework.plugins.plugin_utils._report.entries import (
    write_entries as write_entry_files,
)
from ansible_collections.distsec.framework.plugins.plugin_utils._report.machine import render_json, render_junit
from ansible_collections.distsec.framework.plugins.plugin_utils._report.page import render_html
from ansible_collections.distsec.framework.plugins.plugin_utils._report.summary import (
    build_report,
    fail_on_reasons,
    parse_fail_on,
    summarize,
)
from ansible_collections.distsec.framework.plugins.plugin_utils._report.table import render_table

GOLDEN = Path(__file__).resolve().parent / "golden" / "report"


def parse_xml(text):
    """Our own JUnit output (no DTD, so no entity expansion)."""
    return ET.fromstring(text)  # noqa: S314


def report(items=None, **kwargs):
    return build_report(entries() if items is None else items, generated_at=GENERATED, **kwargs)


def hosts_by_name(built):
    return {h["host"]: h for h in built["hosts"]}


def assert_golden(text, name):
    """Compare with golden/report/NAME (write it with UPDATE_GOLDEN=1)."""
    golden = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text)
    assert golden.exists(), f"{golden} is missing: run with UPDATE_GOLDEN=1"
    assert text == golden.read_text(), f"{golden.name} differs from the renderer: review, then UPDATE_GOLDEN=1"


# ---------------------------------------------------------------- entries


def test_a_report_directory_loads_one_entry_per_host(tmp_path):
    write_entries(tmp_path)
    loaded = load_entries([str(tmp_path)])
    assert [e["host"] for e in loaded] == ["ws1", "ws2", "ws3", "ws4", "ws5"]
    assert loaded == entries()


def test_listed_files_load_in_order(tmp_path):
    write_entries(tmp_path)
    loaded = load_entries([str(tmp_path / "hosts" / "ws5.json"), str(tmp_path / "hosts" / "ws1.json")])
    assert [e["host"] for e in loaded] == ["ws5", "ws1"]


BAD_ENTRIES = [
    ("{", "not valid JSON: Expecting property name enclosed in double quotes at line 1 column 2"),
    ("[]", "not a report entry: expected an object with host, status, run and reachable, got a list"),
    ('{"status": null, "run": null, "reachable": false}', "host: expected the host's name (a string), got null"),
    ('{"host": "", "reachable": false}', "host: expected the host's name (a string), got a string"),
    ('{"host": "a\\u001bb", "reachable": false}', "is not a host name"),
    ('{"host": "ws1", "status": [], "reachable": true}', "status: expected a Security Status (an object) or null"),
    ('{"host": "ws1", "run": "ok", "reachable": true}', "run: expected a run record (an object) or null, got a string"),
    ('{"host": "ws1", "run": {"schema": "x"}, "reachable": true}', "run.schema: expected 'distsec.run/1', got 'x'"),
    (
        '{"host": "ws1", "run": {"schema": "distsec.run/1", "mode": "dry", "result": "ok"}, "reachable": true}',
        "run.mode: expected one of enforce, audit, got 'dry'",
    ),
    (
        '{"host": "ws1", "run": {"schema": "distsec.run/1", "mode": "audit", "result": "maybe"}, "reachable": true}',
        "run.result: expected one of ok, failed, got 'maybe'",
    ),
    (
        '{"host": "ws1", "run": {"schema": "distsec.run/1", "mode": "audit", "result": "ok", "drift": 3}}',
        "run.drift: expected an object, got a number",
    ),
    ('{"host": "ws1", "reachable": "yes"}', "reachable: expected true or false, got a string"),
]


@pytest.mark.parametrize(("text", "message"), BAD_ENTRIES)
def test_a_bad_entry_file_names_the_file_and_what_is_wrong(tmp_path, text, message):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ReportInputError) as caught:
        load_entries([str(path)])
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)


def test_sources_that_are_not_entries(tmp_path):
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe{}")
    cases = {
        str(tmp_path / "missing"): "no such file or directory",
        str(tmp_path): "no hosts/ directory",
        str(binary): "not UTF-8 text",
    }
    for source, message in cases.items():
        with pytest.raises(ReportInputError, match=message):
            load_entries([source])
    (tmp_path / "hosts").mkdir()
    with pytest.raises(ReportInputError, match=r"hosts: no host entries \(\*\.json\) in it"):
        load_entries([str(tmp_path)])
    with pytest.raises(ReportInputError, match="no sources"):
        load_entries([])


def test_a_host_in_two_files_is_an_error_naming_both(tmp_path):
    write_entries(tmp_path)
    copy_of = tmp_path / "copy.json"
    copy_of.write_text((tmp_path / "hosts" / "ws2.json").read_text())
    with pytest.raises(ReportInputError) as caught:
        load_entries([str(tmp_path), str(copy_of)])
    assert str(caught.value) == f"{copy_of}: host 'ws2' is already in {tmp_path / 'hosts' / 'ws2.json'}"


def test_an_entry_without_reachable_is_reachable_when_it_has_facts(tmp_path):
    path = tmp_path / "e.json"
    path.write_text(json.dumps({"host": "ws9", "status": status("ws9")}))
    (loaded,) = load_entries([str(path)])
    assert loaded["reachable"] is True and loaded["run"] is None


def test_entries_are_written_0640_atomically_and_stale_ones_pruned(tmp_path):
    stale = tmp_path / "hosts" / "gone.json"
    stale.parent.mkdir()
    stale.write_text("{}")
    odd = {"host": "../a/b", "status": None, "run": None, "reachable": False}
    paths = write_entry_files(str(tmp_path), [*entries(), odd])
    assert sorted(os.listdir(tmp_path / "hosts")) == ["%2E.%2Fa%2Fb.json", *(f"ws{i}.json" for i in range(1, 6))]
    assert not stale.exists()
    for path in paths:
        assert Path(path).parent == tmp_path / "hosts"
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert [e["host"] for e in load_entries([str(tmp_path)])] == ["../a/b", *(f"ws{i}" for i in range(1, 6))]


def test_entry_file_names_stay_in_the_directory():
    assert entry_file_name("ws1.corp.example.org") == "ws1.corp.example.org.json"
    assert entry_file_name("2001:db8::1") == "2001:db8::1.json"
    assert entry_file_name(".hidden") == "%2Ehidden.json"
    assert "/" not in entry_file_name("a/../../etc/passwd")


# ---------------------------------------------------------------- summaries


def test_each_column_comes_from_the_run_then_the_status():
    hosts = hosts_by_name(report())
    ws1 = hosts["ws1"]
    assert ws1["domain"] == DOMAIN
    assert ws1["policy"]["serial"] == 7 and ws1["policy"]["source"] == "stored"
    assert ws1["certificate"]["serial"] == "3A5F0C12D4E5F60718293A4B5C6D7E8F90A1B2C3"
    assert ws1["profile"] == {"name": "home", "reason": "no selection matched: the default profile"}
    compliance = ws1["compliance"]
    assert (compliance["compliant"], compliance["passed"], compliance["failed"], compliance["source"]) == (
        True,
        3,
        0,
        "run",
    )
    assert ws1["drift"] == {"found": True, "fixed": True, "rules": ["input: ?: tcp dport 9999 accept"]}
    assert (ws1["at"], ws1["mode"], ws1["result"], ws1["error"]) == (AT, "enforce", "ok", None)
    assert ws1["rejected"] == {"reason": "bad-signature", "detail": "signature 1 of 1 does not verify", "at": None}
    assert ws1["rejected_in_run"] is True

    assert hosts["ws2"]["compliance"]["compliant"] is False and hosts["ws2"]["policy"]["source"] == "pushed"
    ws3 = hosts["ws3"]
    assert (ws3["result"], ws3["domain"], ws3["drift"], ws3["certificate"]) == ("unreachable", None, None, None)
    assert ws3["compliance"]["compliant"] is None
    ws4 = hosts["ws4"]
    assert ws4["result"] == "failed" and ws4["error"].startswith("Apply the policy: nft -f failed")
    assert ws4["drift"] is None, "a failed run that found no drift may not have looked"
    assert ws4["profile"]["name"] == "home", "the status's profile when the run has none"
    assert hosts["ws5"]["mode"] == "audit" and hosts["ws5"]["certificate"]["valid"] is False


def test_without_a_run_record_the_status_policy_speaks():
    stat_ = status("ws6", serial=11, profile="quarantine")
    stat_["policy"].update(
        compliant=False,
        checks=[{"id": "ssh-hardened", "description": "d", "severity": "high", "passed": False, "on_fail": None}],
        last_rejection={"reason": "rollback", "detail": "serial 3 is older than 11", "at": "2026-11-20T08:00:00Z"},
    )
    del stat_["domain"]["domain"]
    host = summarize({"host": "ws6", "status": stat_, "run": None, "reachable": True})
    assert host["result"] == "failed" and host["error"] == (
        "no run record: the host failed before its run, or the play did not run the enforce role"
    )
    assert host["policy"]["serial"] == 11 and host["profile"]["name"] == "quarantine"
    assert host["domain"] is None and host["policy"]["domain"] == DOMAIN
    assert host["compliance"]["source"] == "status"
    assert (host["compliance"]["compliant"], host["compliance"]["passed"], host["compliance"]["failed"]) == (
        False,
        0,
        1,
    )
    assert host["rejected"]["reason"] == "rollback" and host["rejected_in_run"] is False
    assert host["problems"] == [
        "ws6: run failed: no run record: the host failed before its run, or the play did not run the enforce role",
        "ws6: last pushed bundle refused (2026-11-20T08:00:00Z): rollback: serial 3 is older than 11",
        "ws6: check ssh-hardened failed (high)",
    ]


def test_the_runs_domain_when_the_status_has_none():
    entry = entries()[1]
    entry["status"] = None
    host = summarize(entry)
    assert host["domain"] == DOMAIN and host["certificate"] is None and host["policy"]["serial"] == 8


def test_default_restrictive_and_grace_are_problems():
    restrictive, grace = copy.deepcopy(entries()[0]), copy.deepcopy(entries()[0])
    restrictive["run"]["policy"].update(source="default-restrictive", rejected=None)
    grace["run"]["policy"].update(expired=True, in_grace=True, rejected=None)
    assert "ws1: enforcing the default-restrictive policy" in summarize(restrictive)["problems"][0]
    assert summarize(grace)["problems"][0] == (
        "ws1: policy serial 7 expired at 2026-11-30T12:00:00Z: in its grace period"
    )


def test_problem_lines():
    assert report()["problems"] == [
        "ws1: pushed bundle refused: bad-signature: signature 1 of 1 does not verify",
        "ws1: drift fixed: input: ?: tcp dport 9999 accept",
        "ws2: check libssl-patched failed (critical) -> isolated",
        "ws3: unreachable",
        "ws4: run failed: Apply the policy: nft -f failed: Error: Could not process rule: No such file or directory",
        "ws5: check av-signatures failed (medium) -> quarantine [unknown: antivirus.signatures_age]",
        "ws5: drift found (audit): input: ?: tcp dport 23 accept; output: block-telnet",
        "ws5: domain certificate not valid: revoked",
    ]


def test_unfixed_drift_in_enforce_mode_and_long_rule_lists():
    entry = copy.deepcopy(entries()[0])
    rules = [f"input: r{i}" for i in range(5)]
    entry["run"]["drift"] = drift_of(drift=True, rules={"removed": rules}, applied=False, mode="enforce")
    entry["run"]["policy"]["rejected"] = None
    assert summarize(entry)["problems"] == ["ws1: drift not fixed: input: r0; input: r1; input: r2 (+2 more)"]


def test_totals():
    assert report()["totals"] == {
        "hosts": 5,
        "ok": 3,
        "failed": 1,
        "unreachable": 1,
        "compliant": 1,
        "noncompliant": 2,
        "compliance_unknown": 2,
        "drift": 2,
        "drift_fixed": 1,
        "drift_unfixed": 1,
        "rejected": 1,
        "with_problems": 5,
    }


def test_hosts_in_natural_order_and_domains_listed():
    items = [copy.deepcopy(entries()[2]) for _copy in range(3)]
    for item, name in zip(items, ["ws10", "ws2", "db1"]):
        item["host"] = name
    built = report(items)
    assert [h["host"] for h in built["hosts"]] == ["db1", "ws2", "ws10"]
    assert built["domains"] == []
    assert report()["domains"] == [DOMAIN]


def _junk(rng, depth=0):
    kinds = [None, True, 7, -1.5, "", "x", "<b>", [], {}]
    if depth < 3:
        kinds += [[_junk(rng, depth + 1) for _item in range(2)], {k: _junk(rng, depth + 1) for k in ("id", "passed")}]
    return copy.deepcopy(rng.choice(kinds))


def test_host_data_of_any_shape_never_breaks_a_renderer():
    rng = random.Random(8)  # noqa: S311 - reproducible junk, not secrets
    keys = ["domain", "policy", "profile", "compliance", "drift", "firewall", "at", "mode", "error", "changed"]
    for _round in range(300):
        entry = copy.deepcopy(rng.choice(entries()))
        for section in (entry["run"] or {}), (entry["status"] or {}):
            for key in rng.sample(keys, 4):
                section[key] = _junk(rng)
            for value in list(section.values()):
                if isinstance(value, dict) and value:
                    value[rng.choice(list(value))] = _junk(rng)
        built = report([entry])
        name = entry["host"]
        assert name in render_table(built)
        assert f">{name}<" in render_html(built)
        cases = parse_xml(render_junit(built)).findall(".//testcase")
        assert cases and {case.get("classname") for case in cases} == {name}
        assert [h["host"] for h in json.loads(render_json(built))["hosts"]] == [name]


# ---------------------------------------------------------------- fail_on


def test_fail_on_reasons():
    built = report()
    assert fail_on_reasons(built, []) == []
    assert fail_on_reasons(built, ["drift"]) == ["ws5: firewall drift found in audit mode (2 rule change(s))"]
    assert fail_on_reasons(built, ["noncompliant"]) == [
        "ws2: non-compliant: 1 check(s) failed: libssl-patched",
        "ws5: non-compliant: 1 check(s) failed: av-signatures",
    ]
    assert fail_on_reasons(built, ["failed"]) == [
        "ws3: unreachable",
        "ws4: run failed: Apply the policy: nft -f failed: Error: Could not process rule: No such file or directory",
    ]
    assert len(fail_on_reasons(built, ["drift", "noncompliant", "failed"])) == 5
    with pytest.raises(ValueError, match="unknown condition 'bogus'"):
        fail_on_reasons(built, ["bogus"])


def test_fixed_drift_does_not_fail_but_unfixed_drift_does():
    entry = copy.deepcopy(entries()[0])
    assert fail_on_reasons(report([entry]), ["drift"]) == []
    entry["run"]["drift"]["fixed"] = False
    assert fail_on_reasons(report([entry]), ["drift"]) == ["ws1: firewall drift found and not fixed (1 rule change(s))"]


def test_parse_fail_on():
    assert parse_fail_on("drift, noncompliant,drift") == ["drift", "noncompliant"]
    assert parse_fail_on(["FAILED"]) == ["failed"]
    assert parse_fail_on("") == [] and parse_fail_on(None) == []
    with pytest.raises(ValueError, match="expected some of drift, noncompliant, failed"):
        parse_fail_on("drift,compliant")


# ---------------------------------------------------------------- table


def test_table_golden():
    assert_golden(render_table(report()), "report.txt")


def test_table_fits_in_100_columns_and_truncates_long_cells():
    items = entries()
    items[0]["host"] = "workstation-in-the-basement-of-building-7.corp.example.org"
    items[0]["run"]["profile"]["name"] = "a-profile-name-far-too-long-for-a-table"
    text = render_table(report(items))
    table = text.split("\n\n")[1].splitlines()
    assert all(len(line) <= 100 for line in table), max(table, key=len)
    assert table[1] == (
        "workstation...      7 stored* 3A5F0C a-profile... 3/0     fixed 2026-11-23 12:00 enforce ok"
    ), "shrunk to fit, then one space between columns"
    assert "workstation-in-the-basement-of-building-7.corp.example.org: drift fixed" in text, "problems are whole"
    assert "\u2026" not in text
    narrow = render_table(report(items), width=80).split("\n\n")[1].splitlines()
    assert narrow[1].startswith("worksta...      7 stored* 3A5F0C a-pro... 3/0"), "no narrower than the floors"
    assert "a-profile-name-\u2026 " in render_table(report(items), width=140, ascii_only=False)


def test_table_with_two_domains_has_a_domain_column():
    items = entries()
    items[1]["status"]["domain"]["domain"] = "lab.example.org"
    text = render_table(report(items))
    assert "corp.example.org, lab.example.org" in text.splitlines()[0]
    header = text.splitlines()[2]
    assert header.split()[:2] == ["HOST", "DOMAIN"]
    assert all(len(line) <= 100 for line in text.split("\n\n")[1].splitlines())


def test_table_keeps_escape_sequences_and_non_ascii_out():
    items = entries()
    failing = items[1]["run"]["compliance"]["checks"][1]
    failing["id"] = "libssl\x1b[31m-red\u00e9"
    items[1]["run"]["profile"]["name"] = "b\u00fcro"
    text = render_table(report(items))
    assert "\x1b" not in text and "\u00e9" not in text
    assert "ws2: check libssl?[31m-red? failed" in text and "b?ro" in text
    assert all(ord(c) < 128 for c in text)
    wide = render_table(report(items), ascii_only=False)
    assert "b\u00fcro" in wide and "\x1b" not in wide


def test_table_is_fixed_width():
    lines = render_table(report()).split("\n\n")[1].splitlines()
    starts = [line.index("RESULT") for line in lines[:1]]
    assert all(line[starts[0] :].split()[0] in ("RESULT", "ok", "failed", "unreachable") for line in lines)


# ---------------------------------------------------------------- HTML


class _Tags(HTMLParser):
    """Checks that every element is closed in order; collects ids, links, text and <details>."""

    VOID: ClassVar = {"meta", "br", "hr", "img", "input", "link"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.ids, self.hrefs, self.text, self.details = [], [], [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.append(attrs["id"])
        if "href" in attrs:
            self.hrefs.append(attrs["href"])
        if tag == "details":
            self.details.append((attrs["id"], "open" in attrs))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1] if self.stack else None}>"
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def _parse(page):
    parser = _Tags()
    parser.feed(page)
    parser.close()
    assert parser.stack == []
    return parser


def test_html_is_one_self_contained_page():
    page = render_html(report())
    parsed = _parse(page)
    lowered = page.lower()
    for external in ("http:", "https:", "src=", "url(", "@import", "<link", "<script", "//"):
        assert external not in lowered, external
    assert "default-src 'none'" in page
    assert all(href.startswith("#") for href in parsed.hrefs)
    assert {href[1:] for href in parsed.hrefs} <= set(parsed.ids)
    assert parsed.details == [
        ("host-ws1", True),
        ("host-ws2", True),
        ("host-ws3", True),
        ("host-ws4", True),
        ("host-ws5", True),
    ]
    text = " ".join(" ".join(parsed.text).split())
    for needle in (
        "Domain corp.example.org",
        "generated 2026-11-23T12:05:00Z",
        "5 hosts",
        "1 compliant",
        "2 non-compliant",
        "2 with drift (1 fixed)",
        "2 failed / unreachable (1 / 1)",
        "libssl3 is at least 3.0.15",
        "input: ?: tcp dport 23 accept",
        "antivirus.signatures_age",
        "bad-signature: signature 1 of 1 does not verify",
        "CN=ws1.corp.example.org",
        "3A5F0C12D4E5F60718293A4B5C6D7E8F90A1B2C3",
        "Apply the policy: nft -f failed",
        "no selection matched: the default profile",
    ):
        assert needle in text, needle


def test_html_details_are_closed_for_a_host_without_problems():
    clean = copy.deepcopy(entries()[0])
    clean["run"]["drift"] = drift_of(drift=False, rules=None, applied=False, mode="enforce")
    clean["run"]["policy"]["rejected"] = None
    assert _parse(render_html(report([clean]))).details == [("host-ws1", False)]


def test_html_escapes_host_data():
    items = entries()
    evil = "<script>alert(1)</script>"
    items[1]["run"]["compliance"]["checks"][1]["description"] = f"{evil} & \"quoted\" 'single'"
    items[1]["run"]["compliance"]["checks"][1]["id"] = 'x" onmouseover="alert(2)'
    items[4]["run"]["drift"]["rules"] = [f"input: {evil}"]
    items[0]["host"] = f"ws1{evil}"
    items[0]["status"]["domain"]["certificate"]["subject"] = "CN=<img src=x onerror=alert(3)>\x00\x1b"
    page = render_html(report(items, title="<b>title</b>"))
    assert "<script" not in page.lower() and "<img" not in page and "<b>title" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quoted&quot; &#x27;single&#x27;" in page
    assert "x&quot; onmouseover=&quot;alert(2)" in page
    assert "\x00" not in page and "\x1b" not in page
    parsed = _parse(page)
    text = "".join(parsed.text)
    assert evil in text and "CN=<img src=x onerror=alert(3)>" in text
    assert "host-ws1_script_alert_1___script_" in parsed.ids


# ---------------------------------------------------------------- JSON


def test_json_is_deterministic_and_golden():
    text = render_json(report())
    assert render_json(report(list(reversed(entries())))) == text
    data = json.loads(text)
    assert data["schema"] == "distsec.report/1" and data["generated_at"] == GENERATED
    assert [h["host"] for h in data["hosts"]] == ["ws1", "ws2", "ws3", "ws4", "ws5"]
    assert data["totals"]["hosts"] == 5
    assert list(data) == sorted(data)
    assert data["hosts"][1]["compliance"]["checks"][1]["id"] == "libssl-patched"
    assert_golden(text, "report.json")


# ---------------------------------------------------------------- JUnit


def test_junit_counts_and_cases():
    root = parse_xml(render_junit(report()))
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == "distsec compliance"
    cases = suite.findall("testcase")
    assert len(cases) == 9 + 2 * 5
    counts = {
        "tests": len(cases),
        "failures": len(suite.findall("testcase/failure")),
        "errors": len(suite.findall("testcase/error")),
        "skipped": len(suite.findall("testcase/skipped")),
    }
    assert counts == {"tests": 19, "failures": 3, "errors": 2, "skipped": 2}
    for element in (root, suite):
        assert {k: int(element.get(k)) for k in counts} == counts
    by_name = {(c.get("classname"), c.get("name")): c for c in cases}
    failure = by_name[("ws2", "check libssl-patched")].find("failure")
    assert failure.get("message") == "check libssl-patched failed (critical) -> isolated"
    assert failure.get("type") == "critical" and failure.text.startswith("libssl3 is at least 3.0.15")
    unknown = by_name[("ws5", "check av-signatures")].find("failure")
    assert "unknown facts (not in the Security Status): antivirus.signatures_age" in unknown.text
    drift = by_name[("ws5", "firewall drift")].find("failure")
    assert drift.get("message").startswith("firewall drift found in audit mode")
    assert drift.text == "input: ?: tcp dport 23 accept\noutput: block-telnet"
    assert by_name[("ws1", "firewall drift")].find("failure") is None
    assert by_name[("ws1", "firewall drift")].find("system-out").text.startswith("drift fixed")
    assert by_name[("ws3", "run")].find("error").get("message") == "unreachable"
    assert by_name[("ws4", "run")].find("error").get("message").startswith("run failed: Apply the policy")
    assert by_name[("ws3", "firewall drift")].find("skipped") is not None
    assert by_name[("ws2", "run")].find("error") is None


def test_junit_golden():
    assert_golden(render_junit(report()), "report.junit.xml")


def test_junit_survives_characters_xml_cannot_hold():
    items = entries()
    items[1]["run"]["compliance"]["checks"][1]["description"] = "nul\x00 esc\x1b ok\u00e9 <&>"
    root = parse_xml(render_junit(report(items)))
    failure = root.find(".//testcase[@name='check libssl-patched']/failure")
    assert failure.text.startswith("nul\ufffd esc\ufffd ok\u00e9 <&>")


def test_a_run_record_with_no_checks_still_has_drift_and_run_cases():
    record = run_record(host="h", mode="enforce", at=AT, compliance=compliance_of([]))
    root = parse_xml(render_junit(report([{"host": "h", "status": None, "run": record, "reachable": True}])))
    assert [c.get("name") for c in root.iter("testcase")] == ["firewall drift", "run"]
    assert root.get("failures") == "0" and root.get("errors") == "0"
