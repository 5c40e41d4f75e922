#!/usr/bin/python
# Copyright: distsec.framework contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
---
module: report
short_description: Write the fleet compliance report on the controller (table, HTML, JSON, JUnit)
version_added: 0.1.0
description:
  - Builds the fleet compliance report of the play's hosts from their facts C(distsec_status) (the Security
    Status, M(distsec.framework.security_status)) and C(distsec_run) (the run record the C(enforce) role
    sets), and writes it into the directory O(dest) on the controller. C(distsec report build DEST) rebuilds
    the same report from the same files.
  - "It writes one entry per host, C(DEST/hosts/HOST.json) (mode 0640, atomically; entries of hosts that
    are not in this report are removed), and the reports: C(report.html) (one self-contained page),
    C(report.json) (schema C(distsec.report/1)), C(report.junit.xml) (for CI systems) and C(report.txt)
    (the table), as O(formats) asks."
  - The table is printed in the play's output, with the totals and one line per problem.
  - A host that failed or was unreachable earlier in the play and has neither fact is reported as
    unreachable. A host without a run record otherwise (it failed before its run, or the play did not run
    the C(enforce) role) is reported as failed. Facts that are not a Security Status or a run record make
    that host fail in the report, not the report.
  - This runs on the controller only (an action plugin) and needs no connection to any host. Use it once,
    after the hosts' runs, as the last task of the hosts' play with C(run_once=true) (and
    C(delegate_to=localhost)), or in a play of its own on C(localhost) with O(hosts) set. In the hosts'
    play, the hosts that failed or were unreachable are reported too; but when every host failed, the play
    runs no more tasks.
author:
  - distsec.framework team (@distsec-framework)
options:
  dest:
    description:
      - The report directory on the controller. It and C(DEST/hosts) are created (mode 0750) when missing.
    type: path
    required: true
  hosts:
    description:
      - The hosts to report on. Default is every host of the play, C(ansible_play_hosts_all), which includes
        the hosts that failed or were unreachable. A host that is not in the inventory is an error.
    type: list
    elements: str
  formats:
    description:
      - Which reports to write. V(table) also prints the table. V(all) is every one.
    type: list
    elements: str
    choices: [all, table, html, json, junit]
    default: [all]
  fail_on:
    description:
      - "Fail the task when one of these holds on a host, after every report is written: V(drift) (firewall
        drift found in audit mode, or found and not fixed), V(noncompliant) (a compliance check failed),
        V(failed) (the run failed, or the host was unreachable). The task's C(msg) names each host and
        reason, so C(ansible-playbook) exits non-zero and cron, AWX or a CI job can alert."
    type: list
    elements: str
    choices: [drift, noncompliant, failed]
    default: []
  title:
    description: The report's title.
    type: str
    default: distsec compliance report
attributes:
  check_mode:
    support: full
    description:
      - The report is the controller's output, not a change on a host, so it is written in check mode too
        (C(drift.yml) runs in check mode and still needs its report). The task never reports a change.
  diff_mode:
    support: none
    description: There is no diff.
notes:
  - The same report as C(distsec report build); see the collection's C(docs/report.md).
seealso:
  - module: distsec.framework.security_status
  - module: distsec.framework.firewall
"""

EXAMPLES = r"""
- name: Report on every host of the play, and fail when one drifted, is non-compliant or failed
  distsec.framework.report:
    dest: /srv/distsec/reports/latest
    fail_on: [drift, noncompliant, failed]
  run_once: true
  delegate_to: localhost

- name: Only the HTML and JUnit files, for a CI job's artifacts
  distsec.framework.report:
    dest: "{{ playbook_dir }}/reports"
    formats: [html, junit]
    title: Nightly audit of the web servers
    hosts: "{{ groups['webservers'] }}"
  run_once: true
  delegate_to: localhost
"""

RETURN = r"""
totals:
  description: The fleet's totals.
  returned: success
  type: dict
  sample:
    hosts: 3
    ok: 2
    failed: 0
    unreachable: 1
    compliant: 1
    noncompliant: 1
    compliance_unknown: 1
    drift: 1
    drift_fixed: 1
    drift_unfixed: 0
    rejected: 0
    with_problems: 3
paths:
  description: The files written, by format (null for a format not in O(formats)).
  returned: success
  type: dict
  sample:
    html: /srv/distsec/reports/latest/report.html
    json: /srv/distsec/reports/latest/report.json
    junit: /srv/distsec/reports/latest/report.junit.xml
    table: /srv/distsec/reports/latest/report.txt
problems:
  description: One line per problem, as the table prints them.
  returned: success
  type: list
  elements: str
  sample:
    - "ws1: drift fixed: input: ?: tcp dport 9999 accept"
    - "ws2: check libssl-patched failed (critical) -> isolated"
    - "ws3: unreachable"
reasons:
  description: Why the task failed, one line per host and O(fail_on) condition (empty when none holds).
  returned: success
  type: list
  elements: str
  sample: ["ws3: unreachable"]
dest:
  description: The report directory.
  returned: success
  type: str
"""

from ansible.module_utils.basic import AnsibleModule


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            dest=dict(type="path", required=True),
            hosts=dict(type="list", elements="str"),
            formats=dict(
                type="list", elements="str", default=["all"], choices=["all", "table", "html", "json", "junit"]
            ),
            fail_on=dict(type="list", elements="str", default=[], choices=["drift", "noncompliant", "failed"]),
            title=dict(type="str", default="distsec compliance report"),
        ),
        supports_check_mode=True,
    )
    module.fail_json(msg="distsec.framework.report runs on the controller through its action plugin")


if __name__ == "__main__":
    main()
