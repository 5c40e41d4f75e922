#!/usr/bin/python
# Copyright: distsec.framework contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
---
module: security_status
short_description: Gather the host's Security Status
version_added: 0.1.0
description:
  - Gathers the host's Security Status, the facts that PSL conditions and compliance checks read.
    It covers platform, packages, pending updates, services, listening sockets, firewall, IPsec,
    network, security-relevant sysctl keys, anti-virus, domain membership, the applied policy and
    the clock.
  - Returns them as C(ansible_facts.distsec_status) and also writes them to O(state_file) (mode
    0640), for reports and the pull mode. That file is the module's only side effect; check mode
    skips it.
  - A collector that cannot run (a missing tool, no permission, odd output) is reported under
    C(errors) and the others continue. The module never fails because one optional source is missing.
  - Runs with the target's Python 3.9 or newer and its standard library only. It reads the host's
    configuration and never changes it; commands are run as argument lists, never through a shell.
author:
  - distsec.framework team (@distsec-framework)
options:
  collect:
    description:
      - Collectors to run. The default V(all) runs every collector.
      - An unknown name fails the task with the list of valid names.
    type: list
    elements: str
    default: [all]
  state_file:
    description:
      - Where to write the gathered status on the host. Set it to an empty string to write nothing.
    type: str
    default: /var/lib/distsec/status.json
attributes:
  check_mode:
    support: full
    description: Gathers and returns the facts, and does not write O(state_file).
  diff_mode:
    support: none
    description: Nothing about the host's configuration changes.
  facts:
    support: full
    description: Returns C(ansible_facts.distsec_status).
"""

EXAMPLES = r"""
- name: Gather the Security Status
  distsec.framework.security_status:

- name: Only what the firewall decisions need, quickly
  distsec.framework.security_status:
    collect: [platform, packages, network]
"""

RETURN = r"""
ansible_facts:
  description: The Security Status under C(distsec_status).
  returned: always
  type: dict
  contains:
    distsec_status:
      description: C(schema_version), C(collected_at), one key per collector, and C(errors) (collector name to message).
      type: dict
      returned: always
"""

import json

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.distsec.framework.plugins.module_utils._apply.backend import atomic_write
from ansible_collections.distsec.framework.plugins.module_utils._status.all import (
    COLLECTORS,
    CollectorError,
    Context,
    gather,
)


def _write(path: str, status: dict) -> None:
    atomic_write(path, json.dumps(status, sort_keys=True, indent=1) + "\n", mode=0o640)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            collect=dict(type="list", elements="str", default=["all"]),
            state_file=dict(type="str", default="/var/lib/distsec/status.json"),
        ),
        supports_check_mode=True,
    )

    def run(argv):
        return module.run_command(list(argv), environ_update={"LC_ALL": "C", "LANG": "C"})

    names = module.params["collect"]
    chosen = None if "all" in names else names
    try:
        status = gather(Context(run), chosen)
    except CollectorError as exc:
        module.fail_json(msg=str(exc), valid_collectors=sorted(COLLECTORS))
    warnings = [f"collector {name}: {message}" for name, message in sorted(status["errors"].items())]
    state_file = module.params["state_file"]
    if state_file and not module.check_mode:
        try:
            _write(state_file, status)
        except OSError as exc:
            warnings.append(f"cannot write {state_file}: {exc}")
    for warning in warnings:
        module.warn(warning)
    module.exit_json(changed=False, ansible_facts={"distsec_status": status})


if __name__ == "__main__":
    main()
