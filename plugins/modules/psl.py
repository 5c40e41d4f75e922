#!/usr/bin/python
# Copyright: distsec.framework contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
---
module: psl
short_description: Validate, compile and test a PSL policy on the controller
version_added: 0.1.0
description:
  - Reads a Security Policy written in PSL (and every file it includes) on the controller, checks it,
    and compiles it for one host. It can also preview the host's decisions for a given Security
    Status, and run the policy's own tests.
  - This runs on the controller only (an action plugin); nothing is sent to the managed host.
  - An invalid policy fails the task. RV(problems) lists every problem as C(PATH:LINE:COL) with its level and message.
author:
  - distsec.framework team (@distsec-framework)
options:
  src:
    description: A PSL file path on the controller, or a list of them.
    type: raw
    required: true
  command:
    description:
      - V(validate) checks the policy. V(compile) also returns the compiled policy. V(test) also runs
        the policy's C(tests) section and fails when a test fails.
    type: str
    choices: [validate, compile, test]
    default: compile
  host:
    description: Host name to compile for; defaults to the task's C(inventory_hostname).
    type: str
  groups:
    description: The host's inventory groups; defaults to the task's C(group_names).
    type: list
    elements: str
  status:
    description: A Security Status (the C(distsec_status) shape) to preview the decisions for.
    type: dict
  dest:
    description: Write the compiled policy (canonical JSON) to this path on the controller.
    type: path
  as_json:
    description:
      - Return the compiled policy as canonical JSON text in RV(compiled_json) instead of a mapping
        in RV(compiled). Passing one string to M(distsec.framework.firewall) is much cheaper for
        Ansible than a large mapping (about 0.4 s less per task at 1,000 rules).
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Validates and compiles; does not write O(dest).
  diff_mode:
    support: none
    description: Nothing on a managed host changes.
notes:
  - The same checks as C(distsec psl validate), C(compile) and C(test).
"""

EXAMPLES = r"""
- name: Validate and compile the domain policy for each host
  distsec.framework.psl:
    src: policies/site.yml
  register: policy

- name: Run the policy's own tests once
  distsec.framework.psl:
    src: policies/site.yml
    command: test
  run_once: true
"""

RETURN = r"""
compiled_json:
  description: The compiled policy as canonical JSON text.
  returned: when O(as_json=true) and O(command) is not V(validate)
  type: str
compiled:
  description: The compiled policy, with its C(hash).
  returned: when command is compile or test
  type: dict
hash:
  description: The compiled policy's content hash.
  returned: success
  type: str
  sample: "sha256:9f2c..."
warnings_found:
  description: Warnings about the policy (shadowed rules, unused objects), as C(PATH:LINE:COL) with its message.
  returned: success
  type: list
  elements: str
problems:
  description: Every error in the policy, as C(PATH:LINE:COL) with its level and message.
  returned: failure
  type: list
  elements: str
preview:
  description: The host's profile, compliance, failed checks and active rules under O(status).
  returned: when status is given
  type: dict
tests:
  description: The policy tests, each with name, passed and failures.
  returned: when command is test
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type="raw", required=True),
            command=dict(type="str", default="compile", choices=["validate", "compile", "test"]),
            host=dict(type="str"),
            groups=dict(type="list", elements="str"),
            status=dict(type="dict"),
            dest=dict(type="path"),
            as_json=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    module.fail_json(msg="distsec.framework.psl runs on the controller through its action plugin")


if __name__ == "__main__":
    main()
