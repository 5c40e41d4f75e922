#!/usr/bin/python
# Copyright: distsec.framework contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
---
module: audit_agent
short_description: Install the host-local audit agent (distsec-audit.pyz) on the host
version_added: 0.1.0
description:
  - Builds C(distsec-audit.pyz) on the controller and copies it to the host. It is a Python zipapp of
    the collection's host-side code (C(plugins/module_utils)) that runs the host-local audit with the
    host's C(python3), without Ansible. The C(enforce) role's timer (C(enforce_audit_timer)) runs it.
  - "The audit does what the C(enforce) role does in check mode, on the host: it gathers the Security
    Status, re-verifies the stored policy bundle (tampering at rest, expiry), decides the profile and the
    compliance checks, compares the firewall with what the policy asks for (drift), and writes the run
    record into C(/var/lib/distsec/policy.json) and the status into C(/var/lib/distsec/status.json).
    It never changes the firewall."
  - "Exit status of the audit: V(0) compliant, the policy valid and no drift; V(1) drift, non-compliance,
    a firewall a run would change, a policy problem (expired, refused, none) or never enforced; V(2) it
    could not run. Run C(python3 distsec-audit.pyz --help) on the host for its options."
  - The archive is built deterministically (sorted entries, fixed timestamps and permissions, no
    compression), so the same collection version gives the same bytes and a second run reports
    C(changed=false).
  - The copy is done by M(ansible.builtin.copy), as M(ansible.builtin.template) does; missing parent
    directories of O(dest) are created (mode 0755).
author:
  - distsec.framework team (@distsec-framework)
requirements:
  - On the host, Python 3.9 or newer and the C(cryptography) package (Debian, C(python3-cryptography)), to
    run the audit. Nothing is needed to install it.
options:
  dest:
    description:
      - Where to install the agent on the host.
    type: path
    default: /usr/local/lib/distsec/distsec-audit.pyz
  mode:
    description:
      - The file's mode. The agent is run as C(python3 PATH), so it needs no execute bit.
    type: raw
    default: "0644"
  owner:
    description:
      - The file's owner (default, the user the task runs as on the host).
    type: str
  group:
    description:
      - The file's group (default, the group of the user the task runs as on the host).
    type: str
attributes:
  check_mode:
    support: full
    description: Builds the agent and reports whether the copy would change the host; writes nothing.
  diff_mode:
    support: none
    description: The agent is a binary file; M(ansible.builtin.copy) shows no diff of it.
  action:
    support: full
    description: Runs on the controller and hands the copy to M(ansible.builtin.copy).
notes:
  - "Run the audit by hand on the host: C(python3 /usr/local/lib/distsec/distsec-audit.pyz --host NAME
    --groups A,B); C(--json) prints the run record."
  - See the collection's C(docs/operations.md), section "The host-local audit timer".
seealso:
  - module: distsec.framework.policy_verify
  - module: distsec.framework.firewall
  - module: distsec.framework.security_status
"""

EXAMPLES = r"""
- name: Install the audit agent
  distsec.framework.audit_agent:
  become: true

- name: Install it elsewhere
  distsec.framework.audit_agent:
    dest: /opt/distsec/distsec-audit.pyz
    owner: root
    group: root
  become: true
"""

RETURN = r"""
agent:
  description: The agent that was built, C(version) (the collection's), C(sha256) and C(size) in bytes.
  returned: always
  type: dict
  sample: {version: 0.1.0, sha256: 9f2c..., size: 441285}
dest:
  description: The path on the host (as M(ansible.builtin.copy) returns it).
  returned: success
  type: str
  sample: /usr/local/lib/distsec/distsec-audit.pyz
checksum:
  description: SHA-1 of the file on the host (as M(ansible.builtin.copy) returns it).
  returned: success
  type: str
"""

from ansible.module_utils.basic import AnsibleModule


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            dest=dict(type="path", default="/usr/local/lib/distsec/distsec-audit.pyz"),
            mode=dict(type="raw", default="0644"),
            owner=dict(type="str"),
            group=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    module.fail_json(msg="distsec.framework.audit_agent runs through its action plugin (it hands the copy to copy)")


if __name__ == "__main__":
    main()
