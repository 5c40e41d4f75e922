# Copyright: distsec.framework contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
name: failed_run
short_description: The run record of a failed enforcement run, from the failed task's result
version_added: 0.1.0
description:
  - "Used by the C(distsec.framework.enforce) role's rescue to keep, in the C(distsec_run) fact, a record of a
    run that failed (schema C(distsec.run/1), the one M(distsec.framework.firewall) returns as C(run)), so the
    fleet report shows the host as failed with the step and the cause."
  - "When the failed task returned a run record of its own (the firewall module does, for example after a
    rollback), that record is returned unchanged. Otherwise one is built: C(result=failed), C(error) naming
    O(task) and the result's C(msg), and what the result says about C(changed), C(profile), C(compliance),
    C(drift) and C(applied)."
author:
  - distsec.framework team (@distsec-framework)
options:
  _input:
    description: The failed task's result (C(ansible_failed_result)).
    type: dict
    required: true
  host:
    description: The host's inventory name.
    type: str
    required: true
  task:
    description: The failed task's name (C(ansible_failed_task.name)).
    type: str
    default: "?"
  check_mode:
    description: Whether the run was an audit (check mode).
    type: bool
    default: false
  policy:
    description: What is known of the policy (C(source), C(serial), C(rejected)).
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Record the failed run for the report
  ansible.builtin.set_fact:
    distsec_run: >-
      {{ ansible_failed_result | distsec.framework.failed_run(host=inventory_hostname,
           task=ansible_failed_task.name | default('?'), check_mode=ansible_check_mode,
           policy={'source': 'stored', 'serial': 7, 'rejected': none}) }}
"""

RETURN = r"""
_value:
  description: The run record (schema C(distsec.run/1)), with C(result=failed).
  type: dict
"""

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.distsec.framework.plugins.module_utils._enforce.record import RUN_SCHEMA, run_record


def failed_run(result, host, task="?", check_mode=False, policy=None):
    if not isinstance(result, Mapping):
        raise AnsibleFilterError(
            f"failed_run: expected the failed task's result (a mapping), got {type(result).__name__}"
        )
    own = result.get("run")
    if isinstance(own, Mapping) and own.get("schema") == RUN_SCHEMA:
        return dict(own)
    compliance = result.get("compliance")
    return run_record(
        host=str(host),
        mode="audit" if check_mode else "enforce",
        result="failed",
        error=f"{task or '?'}: {result.get('msg') or 'failed'}",
        changed=bool(result.get("changed")),
        policy=dict(policy or {}),
        profile=dict(result.get("profile") or {}),
        compliance=dict(compliance) if isinstance(compliance, Mapping) else None,
        drift={"found": bool(result.get("drift")), "fixed": False, "rules": []},
        firewall={"applied": bool(result["applied"])} if "applied" in result else {},
    )


class FilterModule:
    def filters(self):
        return {"failed_run": failed_run}
