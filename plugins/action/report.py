# Copyright: distsec.framework contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin for distsec.framework.report: the fleet compliance report, on the controller.

It reads the play hosts' facts (distsec_status, distsec_run) from hostvars, writes one entry per
host (DEST/hosts/HOST.json) and the reports, and prints the table. It needs no connection to any
host, and it writes in check mode too: the report is the controller's output, and an audit
(drift.yml, check mode) needs it most.
"""

from __future__ import annotations

from collections.abc import Mapping

from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase

from ansible_collections.distsec.framework.plugins.module_utils._enforce.record import run_record
from ansible_collections.distsec.framework.plugins.plugin_utils._report.entries import (
    ReportInputError,
    make_entry,
    write_entries,
)
from ansible_collections.distsec.framework.plugins.plugin_utils._report.output import (
    make_report,
    parse_formats,
    write_reports,
)
from ansible_collections.distsec.framework.plugins.plugin_utils._report.summary import fail_on_reasons, parse_fail_on
from ansible_collections.distsec.framework.plugins.plugin_utils._report.table import render_table

FACT_STATUS = "distsec_status"
FACT_RUN = "distsec_run"
MAX_LISTED = 20


class ReportError(Exception):
    """A problem the task reports as its failure message."""


def _plain(value, depth=0):
    """Templated host data as plain JSON types (mappings, lists, text, numbers)."""
    if depth > 64:
        raise ReportError("a fact is nested deeper than 64 levels")
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, Mapping):
        return {to_text(k): _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, depth + 1) for v in value]
    return to_text(value)


def _as_list(value, name):
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ReportError(f"{name} must be a list of strings")


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _VALID_ARGS = frozenset(("dest", "hosts", "formats", "fail_on", "title"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        try:
            result.update(self._report(dict(self._task.args), task_vars or {}))
        except ReportError as exc:
            result.update(changed=False, failed=True, msg=str(exc))
        return result

    def _fact(self, hostvars, name):
        value = hostvars.get(name)
        if value is None:
            value = (hostvars.get("ansible_facts") or {}).get(name)
        return None if value is None else _plain(value)

    def _entry(self, host, hostvars, active):
        """active: the host is still in the play (not failed, not unreachable)."""
        status, run = self._fact(hostvars, FACT_STATUS), self._fact(hostvars, FACT_RUN)
        try:
            return make_entry(host, status, run, status is not None or run is not None or active)
        except ReportInputError as exc:
            # one host's unusable facts make that host fail in the report, not the report
            problem = str(exc).split(": ", 1)[-1]
            record = run_record(
                host=host,
                mode="audit" if self._task.check_mode else "enforce",
                result="failed",
                error=f"unusable facts from the play: {problem}",
            )
            return make_entry(host, status if isinstance(status, dict) else None, record, True)

    def _report(self, args, task_vars):
        if not args.get("dest"):
            raise ReportError("dest is required (the report directory on the controller)")
        dest = to_text(args["dest"])
        try:
            formats = parse_formats(args.get("formats") or ["all"])
            conditions = parse_fail_on(args.get("fail_on") or [])
        except ValueError as exc:
            raise ReportError(str(exc)) from None
        title = to_text(args["title"]) if args.get("title") else None
        if args.get("hosts") is None:
            hosts = list(task_vars.get("ansible_play_hosts_all") or [])
        else:
            hosts = _as_list(args["hosts"], "hosts")
        if not hosts:
            raise ReportError("no hosts to report on (hosts is empty, and so is ansible_play_hosts_all)")
        hostvars = task_vars.get("hostvars") or {}
        missing = [h for h in hosts if h not in hostvars]
        if missing:
            raise ReportError(f"hosts not in the inventory (no hostvars): {', '.join(missing)}")

        active = set(task_vars.get("ansible_play_hosts") or [])
        entries = [self._entry(host, hostvars[host], host in active) for host in dict.fromkeys(hosts)]
        report = make_report(entries, title=title)
        try:
            write_entries(dest, entries)
            paths = write_reports(report, dest, formats)
        except OSError as exc:
            raise ReportError(f"dest: cannot write the report in {dest}: {exc.strerror or exc}") from None
        if "table" in formats:
            self._display.display(render_table(report).rstrip("\n"))

        totals = report["totals"]
        summary = (
            f"{totals['hosts']} host(s): {totals['compliant']} compliant, {totals['noncompliant']} non-compliant, "
            f"drift on {totals['drift']}, {totals['failed']} failed, {totals['unreachable']} unreachable"
        )
        out = {
            "changed": False,
            "dest": dest,
            "totals": totals,
            "paths": {name: paths.get(name) for name in ("html", "json", "junit", "table")},
            "problems": report["problems"],
            "failed": False,
            "msg": f"report written to {dest}: {summary}",
        }
        reasons = fail_on_reasons(report, conditions)
        if reasons:
            listed = "; ".join(reasons[:MAX_LISTED])
            more = f" (+{len(reasons) - MAX_LISTED} more)" if len(reasons) > MAX_LISTED else ""
            out.update(
                failed=True,
                reasons=reasons,
                msg=f"fail_on ({', '.join(conditions)}): {listed}{more}; the report is in {dest}",
            )
        else:
            out["reasons"] = []
        return out
