#!/usr/bin/python
# Copyright: distsec.framework contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
---
module: trust_keys
short_description: Create the policy trust root and keys on the controller (distsec keys init)
version_added: 0.1.0
description:
  - Creates the key directory O(dir) of the domain's signed policy bundles, as C(distsec keys init) does, with
    the same code, on the controller (an action plugin; nothing is sent to the managed host). It holds the
    trust root C(root.json) (hosts install it as C(/etc/distsec/root.json)), its history and the root and
    policy private keys.
  - "Idempotent: when O(dir) holds a C(root.json) already, nothing is written and the task reports
    C(changed=false); it fails when that root is for another domain. Later changes of the keys and
    thresholds are made with C(distsec keys rotate), not with this module."
author:
  - distsec.framework team (@distsec-framework)
requirements:
  - The Python C(cryptography) package on the controller.
options:
  dir:
    description: The key directory to create (KEYDIR; made with mode 0700).
    type: path
    required: true
  domain:
    description: The Security Domain, as the policy's C(domain).
    type: str
    required: true
  root_keys:
    description: How many root keys to make.
    type: int
    default: 1
    aliases: [keys]
  threshold:
    description: How many root signatures a new root version needs.
    type: int
    default: 1
  policy_keys:
    description: How many policy (bundle-signing) keys to make.
    type: int
    default: 1
  policy_threshold:
    description: How many policy signatures a bundle needs.
    type: int
    default: 1
  passphrase:
    description:
      - Encrypts the private keys. It is handed to the key generation in the controller's process, never on
        a command line. Without it the keys are stored unencrypted (mode 0600).
    type: str
attributes:
  check_mode:
    support: full
    description: Reports whether the key directory would be created; writes nothing.
  diff_mode:
    support: none
    description: There is no diff.
notes:
  - The same as C(distsec keys init --dir DIR --domain DOMAIN); see the collection's C(docs/trust.md).
seealso:
  - module: distsec.framework.bundle_sign
  - module: distsec.framework.policy_verify
"""

EXAMPLES = r"""
- name: Create the policy trust root of the domain, once
  distsec.framework.trust_keys:
    dir: /srv/distsec/keys
    domain: example.org
    passphrase: "{{ pdp_init_ca_passphrase }}"
  run_once: true
  delegate_to: localhost
"""

RETURN = r"""
dir:
  description: The key directory.
  returned: success
  type: str
domain:
  description: The Security Domain.
  returned: success
  type: str
  sample: example.org
root:
  description: The path of the trust root C(root.json).
  returned: success
  type: str
  sample: /srv/distsec/keys/root.json
root_version:
  description: The version of the current trust root (1 when it was just created).
  returned: success
  type: int
  sample: 1
msg:
  description: What was done.
  returned: success
  type: str
  sample: "created /srv/distsec/keys/root.json (root v1, domain example.org)"
stdout_lines:
  description: What C(distsec keys init) printed.
  returned: when the key directory was created
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            dir=dict(type="path", required=True),
            domain=dict(type="str", required=True),
            root_keys=dict(type="int", default=1, aliases=["keys"], no_log=False),
            threshold=dict(type="int", default=1),
            policy_keys=dict(type="int", default=1, no_log=False),
            policy_threshold=dict(type="int", default=1),
            passphrase=dict(type="str", no_log=True),
        ),
        supports_check_mode=True,
    )
    module.fail_json(msg="distsec.framework.trust_keys runs on the controller through its action plugin")


if __name__ == "__main__":
    main()
