# PRIVATE: the report for machines: JSON (distsec.report/1) and JUnit XML for CI systems.
#
# JUnit: one test suite "distsec compliance"; per host a test case per compliance check
# (classname HOST, name "check ID"), one "firewall drift" and one "run" case. Jenkins
# (junit plugin), GitLab (artifacts:reports:junit) and Azure DevOps read this shape.
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from typing import Any, Dict, List, Optional

from .summary import drift_counts

__all__ = ["render_json", "render_junit", "xml_text"]

SUITE = "distsec compliance"
# Characters XML 1.0 cannot hold at all (ElementTree would write them and make the file invalid).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def render_json(report: Dict[str, Any]) -> str:
    """The report document as JSON, keys sorted, so the same report gives the same bytes."""
    return json.dumps(report, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def xml_text(value: Any) -> str:
    return _NOT_XML.sub("\ufffd", "" if value is None else str(value))


def _case(suite: ET.Element, host: str, name: str) -> ET.Element:
    return ET.SubElement(suite, "testcase", {"classname": xml_text(host), "name": xml_text(name), "time": "0"})


def _child(case: ET.Element, tag: str, message: str, text: Optional[str], kind: Optional[str] = None) -> None:
    attrs = {"message": xml_text(message)}
    if kind:
        attrs["type"] = xml_text(kind)
    element = ET.SubElement(case, tag, attrs)
    if text:
        element.text = xml_text(text)


def _check_case(suite: ET.Element, host: Dict[str, Any], check: Dict[str, Any]) -> str:
    case = _case(suite, host["host"], f"check {check['id']}")
    if check["passed"]:
        return "pass"
    severity = check["severity"] or "unknown severity"
    message = f"check {check['id']} failed ({severity})" + (f" -> {check['on_fail']}" if check["on_fail"] else "")
    body: List[str] = [check["description"] or "(no description)", f"severity: {severity}"]
    if check["on_fail"]:
        body.append(f"on failure the host goes to profile: {check['on_fail']}")
    if check["unknown"]:
        body.append(f"unknown facts (not in the Security Status): {', '.join(check['unknown'])}")
    _child(case, "failure", message, "\n".join(body), severity)
    return "failure"


def _drift_case(suite: ET.Element, host: Dict[str, Any]) -> str:
    case = _case(suite, host["host"], "firewall drift")
    drift = host["drift"]
    if drift is None:
        _child(case, "skipped", "no run record: drift unknown", None)
        return "skipped"
    rules = "\n".join(drift["rules"])
    if drift_counts(host):
        where = "found in audit mode (check mode: nothing was changed)" if host["mode"] == "audit" else "not fixed"
        _child(case, "failure", f"firewall drift {where}", rules or None, "drift")
        return "failure"
    if drift["found"]:
        ET.SubElement(case, "system-out").text = xml_text(f"drift fixed:\n{rules}" if rules else "drift fixed")
    return "pass"


def _run_case(suite: ET.Element, host: Dict[str, Any]) -> str:
    case = _case(suite, host["host"], "run")
    if host["result"] == "unreachable":
        _child(case, "error", "unreachable", host["error"] or "no facts from this run", "unreachable")
        return "error"
    if host["result"] == "failed":
        _child(case, "error", f"run failed: {host['error'] or 'no message'}", host["error"], "failed")
        return "error"
    if host["rejected_in_run"]:
        rejected = host["rejected"]
        out = f"pushed bundle refused: {rejected['reason']}" + (f": {rejected['detail']}" if rejected["detail"] else "")
        ET.SubElement(case, "system-out").text = xml_text(out)
    return "pass"


def render_junit(report: Dict[str, Any]) -> str:
    """The report as JUnit XML (one suite; a case per host x check, plus "firewall drift" and "run")."""
    root = ET.Element("testsuites", {"name": xml_text(report["title"])})
    timestamp = report["generated_at"].rstrip("Z")
    suite = ET.SubElement(root, "testsuite", {"name": SUITE, "timestamp": xml_text(timestamp)})
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("schema", report["schema"]),
        ("generated_at", report["generated_at"]),
        ("generator", report["generator"]),
        ("domains", ", ".join(report["domains"])),
    ):
        ET.SubElement(properties, "property", {"name": name, "value": xml_text(value)})
    counts = {"pass": 0, "failure": 0, "error": 0, "skipped": 0}
    for host in report["hosts"]:
        for check in host["compliance"]["checks"]:
            counts[_check_case(suite, host, check)] += 1
        counts[_drift_case(suite, host)] += 1
        counts[_run_case(suite, host)] += 1
    tests = sum(counts.values())
    for element in (root, suite):
        element.set("tests", str(tests))
        element.set("failures", str(counts["failure"]))
        element.set("errors", str(counts["error"]))
        element.set("skipped", str(counts["skipped"]))
        element.set("time", "0")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
