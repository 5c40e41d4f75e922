# PRIVATE: the report as one self-contained HTML page (inline CSS, no script, no external URL).
#
# Host data is untrusted: every value goes through _e() (html.escape, quotes too) and control
# characters are dropped; the page's Content-Security-Policy forbids scripts and every fetch
# anyway. Per-host sections are <details id="host-NAME">, open when the host has a problem.
from __future__ import annotations

import html
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .table import short_serial

__all__ = ["host_anchor", "render_html"]

_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_NOT_ID = re.compile(r"[^A-Za-z0-9_.:-]")
WRAP_TD = '<td class="w">'
FAILED_TR = '<tr class="failed">'
CSP = "default-src 'none'; style-src 'unsafe-inline'"

CSS = """
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --soft: #f6f8fa;
  --ok: #1a7f37; --ok-bg: #dafbe1; --bad: #cf222e; --bad-bg: #ffebe9;
  --warn: #9a6700; --warn-bg: #fff8c5; --info: #0969da; --info-bg: #ddf4ff; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; color: var(--fg); background: #fff; line-height: 1.45;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans", sans-serif; }
main { max-width: 1200px; margin: 0 auto; padding: 24px 28px 40px; }
header.top { border-bottom: 1px solid var(--line); padding-bottom: 14px; margin-bottom: 20px; }
h1 { font-size: 24px; margin: 0 0 4px; font-weight: 600; }
h2 { font-size: 17px; margin: 28px 0 10px; font-weight: 600; }
h3 { font-size: 14px; margin: 18px 0 6px; font-weight: 600; }
.meta { color: var(--muted); margin: 0; }
.meta b { color: var(--fg); font-weight: 600; }
code, .mono { font-family: ui-monospace, SFMono-Regular, "DejaVu Sans Mono", Menlo, Consolas, monospace;
  font-size: 12.5px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 0; padding: 0; list-style: none; }
.cards li { flex: 1 1 150px; border: 1px solid var(--line); border-left: 5px solid var(--muted);
  border-radius: 6px; padding: 10px 14px; background: #fff; }
.cards .n { display: block; font-size: 28px; font-weight: 600; line-height: 1.1; }
.cards .l { color: var(--muted); }
.cards li.ok { border-left-color: var(--ok); } .cards li.ok .n { color: var(--ok); }
.cards li.bad { border-left-color: var(--bad); } .cards li.bad .n { color: var(--bad); }
.cards li.warn { border-left-color: var(--warn); } .cards li.warn .n { color: var(--warn); }
.cards li.zero .n { color: var(--muted); }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--soft); font-weight: 600; white-space: nowrap; font-size: 13px; }
.scroll { overflow-x: auto; }
table.hosts td { white-space: nowrap; }
table.hosts td.w { white-space: normal; }
table.hosts tbody tr:hover { background: var(--soft); }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
a { color: var(--info); text-decoration: none; }
a:hover { text-decoration: underline; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 12px; font-weight: 600;
  border: 1px solid transparent; white-space: nowrap; }
.b-ok { color: var(--ok); background: var(--ok-bg); border-color: #aceebb; }
.b-bad { color: var(--bad); background: var(--bad-bg); border-color: #ffcecb; }
.b-warn { color: var(--warn); background: var(--warn-bg); border-color: #f5e0a0; }
.b-info { color: var(--info); background: var(--info-bg); border-color: #b6e3ff; }
.b-muted { color: var(--muted); background: var(--soft); border-color: var(--line); }
.muted { color: var(--muted); }
ul.problems { margin: 0; padding: 0; list-style: none; border: 1px solid var(--line); border-radius: 6px; }
ul.problems li { padding: 6px 12px; border-bottom: 1px solid var(--line); }
ul.problems li:last-child { border-bottom: 0; }
ul.problems a { font-weight: 600; }
details.host { border: 1px solid var(--line); border-left: 5px solid var(--ok); border-radius: 6px;
  margin: 0 0 12px; background: #fff; }
details.host.problem { border-left-color: var(--bad); }
details.host.unknown { border-left-color: var(--muted); }
details.host > summary { cursor: pointer; padding: 10px 14px; list-style-position: inside; }
details.host > summary .name { font-weight: 600; font-size: 15px; margin-right: 8px; }
details.host > summary .badge { margin-left: 4px; }
details.host[open] > summary { border-bottom: 1px solid var(--line); background: var(--soft); }
.body { padding: 4px 16px 14px; }
.facts { display: grid; grid-template-columns: repeat(auto-fit, minmax(380px, 1fr)); gap: 10px 14px;
  margin-top: 10px; }
dl { margin: 4px 0 0; display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; }
dt { color: var(--muted); }
dd { margin: 0; overflow-wrap: break-word; min-width: 0; }
.box { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; }
.box h3 { margin-top: 2px; }
.error { border-left: 4px solid var(--bad); background: var(--bad-bg); padding: 8px 12px; margin-top: 12px;
  border-radius: 4px; overflow-wrap: anywhere; }
table.checks td.desc { overflow-wrap: anywhere; }
tr.failed td { background: #fff5f5; }
ul.rules { margin: 4px 0 0; padding-left: 20px; }
footer { margin-top: 32px; padding-top: 10px; border-top: 1px solid var(--line); color: var(--muted);
  font-size: 12px; }
@media print {
  body { font-size: 10pt; }
  main { max-width: none; padding: 0; }
  a { color: inherit; }
  .cards li, details.host, .box { break-inside: avoid; }
  details.host > summary { list-style: none; }
  details.host::details-content { content-visibility: visible; display: block; }
  table.hosts tbody tr:hover { background: none; }
  h2 { break-after: avoid; }
}
"""


def _t(value: Any) -> str:
    """Untrusted text, printable: control characters dropped."""
    return _CONTROL.sub("", "" if value is None else str(value))


def _e(value: Any) -> str:
    return html.escape(_t(value), quote=True)


def _or_dash(value: Any) -> str:
    return '<span class="muted">-</span>' if value is None or value == "" else _e(value)


def _badge(text: str, kind: str) -> str:
    return f'<span class="badge b-{kind}">{_e(text)}</span>'


def host_anchor(name: str) -> str:
    """The id of a host's section: host-NAME (characters an id cannot hold become _)."""
    return "host-" + _NOT_ID.sub("_", _t(name))


def _anchors(hosts: Sequence[Dict[str, Any]]) -> Dict[str, str]:
    anchors: Dict[str, str] = {}
    used = set()
    for host in hosts:
        anchor = base = host_anchor(host["host"])
        number = 2
        while anchor in used:
            anchor, number = f"{base}-{number}", number + 1
        used.add(anchor)
        anchors[host["host"]] = anchor
    return anchors


def _result_badge(host: Dict[str, Any]) -> str:
    return {
        "ok": _badge("ok", "ok"),
        "failed": _badge("failed", "bad"),
        "unreachable": _badge("unreachable", "bad"),
    }[host["result"]]


def _compliance_badge(host: Dict[str, Any], unknown: str = "unknown") -> str:
    compliant = host["compliance"]["compliant"]
    if compliant is None:
        return _badge(unknown, "muted")
    return _badge("compliant", "ok") if compliant else _badge("non-compliant", "bad")


def _drift_badge(host: Dict[str, Any], *, quiet: bool = False) -> str:
    drift = host["drift"]
    if drift is None:
        return "" if quiet else '<span class="muted">-</span>'
    if not drift["found"]:
        return "" if quiet else '<span class="muted">none</span>'
    if drift["fixed"]:
        return _badge("drift fixed", "warn")
    return _badge("drift found (audit)" if host["mode"] == "audit" else "drift not fixed", "bad")


def _checks_cell(host: Dict[str, Any]) -> str:
    compliance = host["compliance"]
    if compliance["passed"] is None and compliance["failed"] is None:
        return ""
    passed, failed = compliance["passed"] or 0, compliance["failed"] or 0
    if failed:
        return f'<span class="muted">{failed} of {passed + failed} failed</span>'
    return f'<span class="muted">{passed} passed</span>'


def _when(at: Optional[str], *, short: bool = False) -> str:
    """2026-11-23T12:00:00Z as 2026-11-23 12:00:00 UTC (short: 2026-11-23 12:00)."""
    if not at:
        return '<span class="muted">-</span>'
    if len(at) == 20 and at[10] == "T" and at.endswith("Z"):
        return _e(f"{at[:10]} {at[11:16]}" if short else f"{at[:10]} {at[11:19]} UTC")
    return _e(at)


def _state(host: Dict[str, Any]) -> str:
    if host["problems"]:
        return "problem"
    if host["compliance"]["compliant"] is None:
        return "unknown"
    return "ok"


def _header(report: Dict[str, Any]) -> List[str]:
    domains = ", ".join(f"<b>{_e(d)}</b>" for d in report["domains"]) or '<span class="muted">no domain</span>'
    label = "Domains" if len(report["domains"]) > 1 else "Domain"
    return [
        '<header class="top">',
        f"<h1>{_e(report['title'])}</h1>",
        f'<p class="meta">{label} {domains} &middot; generated <b>{_e(report["generated_at"])}</b> '
        f"&middot; {_e(report['generator'])}</p>",
        "</header>",
    ]


def _cards(totals: Dict[str, int]) -> List[str]:
    troubled = totals["failed"] + totals["unreachable"]
    cards: List[Tuple[int, str, str]] = [
        (totals["hosts"], "hosts", ""),
        (totals["compliant"], "compliant", "ok"),
        (totals["noncompliant"], "non-compliant", "bad"),
        (totals["drift"], f"with drift ({totals['drift_fixed']} fixed)", "warn"),
        (troubled, f"failed / unreachable ({totals['failed']} / {totals['unreachable']})", "bad"),
    ]
    if totals["compliance_unknown"]:
        cards.insert(3, (totals["compliance_unknown"], "compliance unknown", ""))
    out = ['<ul class="cards" aria-label="Totals">']
    for number, label, kind in cards:
        classes = " ".join(c for c in (kind, "zero" if number == 0 and kind else "") if c)
        attr = f' class="{classes}"' if classes else ""
        out.append(f'<li{attr}><span class="n">{number}</span><span class="l">{_e(label)}</span></li>')
    out.append("</ul>")
    return out


def _summary_table(report: Dict[str, Any], anchors: Dict[str, str]) -> List[str]:
    several = len(report["domains"]) > 1
    heads = ["Host"] + (["Domain"] if several else [])
    heads += ["Result", "Compliance", "Drift", "Profile", "Policy", "Certificate", "Last run"]
    out = [
        '<div class="scroll">',
        '<table class="hosts">',
        "<thead><tr>" + "".join(f"<th>{h}</th>" for h in heads) + "</tr></thead>",
        "<tbody>",
    ]
    for host in report["hosts"]:
        policy = host["policy"]
        serial = "-" if policy["serial"] is None else f"#{policy['serial']}"
        source = f' <span class="muted">{_e(policy["source"])}</span>' if policy["source"] else ""
        if host["rejected_in_run"]:
            source += " " + _badge("refused bundle", "bad")
        elif policy["in_grace"]:
            source += " " + _badge("in grace", "warn")
        cert = host["certificate"]
        if cert:
            cert_cell = f'<span class="mono" title="{_e(cert["serial"])}">{_e(short_serial(cert["serial"]))}</span>'
            if cert["valid"] is False:
                cert_cell += " " + _badge("not valid", "bad")
        else:
            cert_cell = '<span class="muted">-</span>'
        mode = f' <span class="muted">{_e(host["mode"])}</span>' if host["mode"] else ""
        cells = [f'<a href="#{_e(anchors[host["host"]])}"><b>{_e(host["host"])}</b></a>']
        if several:
            cells.append(_or_dash(host["domain"]))
        cells += [
            _result_badge(host),
            f"{_compliance_badge(host)} {_checks_cell(host)}",
            _drift_badge(host),
            _or_dash(host["profile"]["name"]),
            f"{_e(serial)}{source}",
            cert_cell,
            f"{_when(host['at'], short=True)}{mode}",
        ]
        wrap = {len(cells) - 1, len(cells) - 3}  # last run, policy
        out.append(
            "<tr>" + "".join((WRAP_TD if i in wrap else "<td>") + f"{c}</td>" for i, c in enumerate(cells)) + "</tr>"
        )
    out += ["</tbody>", "</table>", "</div>"]
    return out


def _problems(report: Dict[str, Any], anchors: Dict[str, str]) -> List[str]:
    lines = [(h, p) for h in report["hosts"] for p in h["problems"]]
    if not lines:
        return ["<h2>Problems</h2>", '<p class="muted">None: every host is compliant, without drift, and ran.</p>']
    out = [f"<h2>Problems ({len(lines)})</h2>", '<ul class="problems">']
    for host, problem in lines:
        name = host["host"]
        rest = problem[len(name) + 2 :] if problem.startswith(f"{name}: ") else problem
        out.append(f'<li><a href="#{_e(anchors[name])}">{_e(name)}</a>: {_e(rest)}</li>')
    out.append("</ul>")
    return out


def _dl(title: str, rows: Sequence[Tuple[str, str]]) -> List[str]:
    out = ['<div class="box">', f"<h3>{_e(title)}</h3>", "<dl>"]
    for label, value in rows:
        out.append(f"<dt>{_e(label)}</dt><dd>{value}</dd>")
    out += ["</dl>", "</div>"]
    return out


def _yes_no(value: Optional[bool], yes: str = "yes", no: str = "no") -> str:
    if value is None:
        return '<span class="muted">-</span>'
    return _e(yes if value else no)


def _host_facts(host: Dict[str, Any]) -> List[str]:
    policy, profile, cert, firewall = host["policy"], host["profile"], host["certificate"], host["firewall"]
    expires = _or_dash(policy["expires"])
    if policy["expired"]:
        expires += " " + _badge("expired, in grace" if policy["in_grace"] else "expired", "warn")
    rejected = host["rejected"]
    if rejected:
        text = _e(rejected["reason"]) + (f": {_e(rejected['detail'])}" if rejected["detail"] else "")
        if not host["rejected_in_run"]:
            text += f' <span class="muted">(the host\'s last refusal{", " + _e(rejected["at"]) if rejected["at"] else ""})</span>'
        rejected_cell = text
    else:
        rejected_cell = "none"
    out = ['<div class="facts">']
    out += _dl(
        "Policy",
        [
            ("serial", _or_dash(policy["serial"])),
            ("source", _or_dash(policy["source"])),
            ("domain", _or_dash(policy["domain"])),
            ("expires", expires),
            ("refused bundle", rejected_cell),
        ],
    )
    out += _dl(
        "Profile",
        [("profile", _or_dash(profile["name"])), ("why", _or_dash(profile["reason"]))],
    )
    if cert:
        valid = _yes_no(cert["valid"])
        if cert["valid"] is False and cert["reason"]:
            valid += f' <span class="muted">({_e(cert["reason"])})</span>'
        out += _dl(
            "Domain certificate",
            [
                ("subject", _or_dash(cert["subject"])),
                ("serial", f'<span class="mono">{_or_dash(cert["serial"])}</span>'),
                ("not after", _or_dash(cert["not_after"])),
                ("valid", valid),
                ("revoked", _yes_no(cert["revoked"])),
            ],
        )
    else:
        out += _dl("Domain certificate", [("certificate", '<span class="muted">none reported</span>')])
    out += _dl(
        "Last run",
        [
            ("at", _when(host["at"])),
            ("mode", _or_dash(host["mode"])),
            ("result", _result_badge(host)),
            ("firewall", _or_dash(firewall["backend"])),
            ("applied", _yes_no(firewall["applied"])),
            ("firewall change", _or_dash(firewall["reason"])),
        ],
    )
    out.append("</div>")
    return out


def _host_checks(host: Dict[str, Any]) -> List[str]:
    compliance = host["compliance"]
    checks = compliance["checks"]
    where = {"run": "from this run", "status": "as the host last recorded them"}.get(compliance["source"] or "", "")
    note = f' <span class="muted">({where})</span>' if where else ""
    out = [f"<h3>Compliance checks{note}</h3>"]
    if not checks:
        out.append('<p class="muted">No checks reported.</p>')
        return out
    out += [
        '<table class="checks">',
        "<thead><tr><th>Check</th><th>Severity</th><th>Result</th><th>Description</th><th>Unknown facts</th></tr></thead>",
        "<tbody>",
    ]
    for check in checks:
        result = _badge("passed", "ok") if check["passed"] else _badge("failed", "bad")
        if not check["passed"] and check["on_fail"]:
            result += f' <span class="muted">&rarr; {_e(check["on_fail"])}</span>'
        unknown = ", ".join(f"<code>{_e(u)}</code>" for u in check["unknown"]) or '<span class="muted">-</span>'
        out.append(
            ("<tr>" if check["passed"] else FAILED_TR) + f"<td><code>{_e(check['id'])}</code></td>"
            f"<td>{_or_dash(check['severity'])}</td><td>{result}</td>"
            f'<td class="desc">{_or_dash(check["description"])}</td><td>{unknown}</td></tr>'
        )
    out += ["</tbody>", "</table>"]
    return out


def _host_drift(host: Dict[str, Any]) -> List[str]:
    drift = host["drift"]
    out = ["<h3>Firewall drift</h3>"]
    if drift is None:
        out.append('<p class="muted">Unknown: no run record.</p>')
    elif not drift["found"]:
        out.append("<p>None: the firewall was as the policy left it.</p>")
    else:
        if drift["fixed"]:
            what = "Found and fixed: these rule changes restored the policy."
        elif host["mode"] == "audit":
            what = "Found (audit, nothing changed): an enforcing run would make these rule changes."
        else:
            what = "Found and not fixed: these rule changes are still needed."
        out.append(f"<p>{_e(what)}</p>")
        if drift["rules"]:
            out.append(
                '<ul class="rules">' + "".join(f"<li><code>{_e(r)}</code></li>" for r in drift["rules"]) + "</ul>"
            )
    return out


def _host_section(host: Dict[str, Any], anchor: str) -> List[str]:
    state = _state(host)
    opened = " open" if host["problems"] else ""
    badges = [_result_badge(host), _compliance_badge(host, "compliance unknown"), _drift_badge(host, quiet=True)]
    if host["rejected_in_run"]:
        badges.append(_badge("refused bundle", "bad"))
    out = [
        f'<details class="host {state}" id="{_e(anchor)}"{opened}>',
        f'<summary><span class="name">{_e(host["host"])}</span>{" ".join(b for b in badges if b)}'
        + (f' <span class="muted">{_e(host["domain"])}</span>' if host["domain"] else "")
        + "</summary>",
        '<div class="body">',
    ]
    if host["result"] == "unreachable":
        message = host["error"] or "No facts from this run: the host was unreachable, or failed before the run."
        out.append(f'<div class="error"><b>Unreachable.</b> {_e(message)}</div>')
    elif host["result"] == "failed":
        out.append(f'<div class="error"><b>The run failed.</b> {_e(host["error"] or "no message")}</div>')
    if host["has_status"] or host["has_run"]:
        out += _host_facts(host)
        out += _host_checks(host)
        out += _host_drift(host)
    out += ["</div>", "</details>"]
    return out


def render_html(report: Dict[str, Any]) -> str:
    """The report as one HTML page (UTF-8), to open in a browser, print or attach to a mail."""
    anchors = _anchors(report["hosts"])
    body: List[str] = ["<main>"]
    body += _header(report)
    body += _cards(report["totals"])
    body += ["<h2>Hosts</h2>"]
    body += _summary_table(report, anchors) if report["hosts"] else ['<p class="muted">No hosts.</p>']
    body += _problems(report, anchors)
    body += ["<h2>Host details</h2>"]
    for host in report["hosts"]:
        body += _host_section(host, anchors[host["host"]])
    body += [
        f"<footer>{_e(report['schema'])} &middot; built by {_e(report['generator'])} &middot; "
        "the same data as report.json and report.junit.xml</footer>",
        "</main>",
    ]
    head = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f'<meta name="generator" content="{_e(report["generator"])}">',
        f"<title>{_e(report['title'])} - {_e(report['generated_at'])}</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body>",
    ]
    return "\n".join(head + body + ["</body>", "</html>"]) + "\n"
