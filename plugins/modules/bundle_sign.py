#!/usr/bin/python
# Copyright: distsec.framework contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
---
module: bundle_sign
short_description: Compile a PSL policy and sign it into a policy bundle on the controller
version_added: 0.1.0
description:
  - Compiles the PSL policy on the controller (the PDP), puts the compiled policy into a bundle and signs
    its manifest with the domain's policy keys from the key directory O(keys). The bundle is the file
    M(distsec.framework.policy_verify) verifies on the hosts; C(distsec bundle sign) writes the same.
  - This runs on the controller only (an action plugin); nothing is sent to the managed host. Use it with
    C(run_once) and C(delegate_to=localhost) to sign once for the play.
  - "Idempotent: when O(dest) already holds the bundle this task would sign, it is kept and the task reports
    C(changed=false). The same bundle means: the same compiled policy, targets, domain, root chain and
    policy keys, at the serial the task would use. Without O(serial), that is the last serial signed in
    O(keys), and only while more than O(renew_before) of its validity is left; otherwise the next serial is
    signed (a fresh issue and expiry time). With O(serial), a bundle at that serial over the same content
    is kept whatever its age, and one over other content is refused (hosts would call it C(serial-reuse))."
  - The serial signed is recorded in C(KEYDIR/serial), as the command line does.
author:
  - distsec.framework team (@distsec-framework)
requirements:
  - The Python C(cryptography) package on the controller.
options:
  keys:
    description:
      - The key directory made by C(distsec keys init) (KEYDIR), holding C(root.json), C(root-history/),
        the policy private keys in C(keys/) and C(serial).
    type: path
    required: true
  src:
    description: A PSL file path on the controller, or a list of them.
    type: raw
    required: true
  expires:
    description:
      - How long the bundle is valid from now, as a duration such as V(7d), V(12h), V(30m), V(1d12h) or V(2w).
    type: str
    required: true
  serial:
    description:
      - The bundle's serial. Default is one more than the last serial signed in O(keys) (or that last serial,
        when O(dest) holds the same bundle and it is not due for renewal).
    type: int
  targets:
    description:
      - Hosts and groups the bundle is for, each V(NAME) (a host), V(host:NAME) or V(group:NAME).
        Empty means every host of the domain (or only O(host) when it is set).
    type: list
    elements: str
    default: []
  dest:
    description:
      - Where to write the bundle on the controller (mode 0600; missing directories are created with mode 0700).
    type: path
    required: true
  host:
    description:
      - Compile the policy for this host name (rules, checks and exceptions that apply to it), and target
        the bundle at it unless O(targets) is set. Default is the domain-wide compilation, which is right
        when the policy has no per-host or per-group parts.
    type: str
  groups:
    description: The inventory groups to compile the policy for (with O(host)).
    type: list
    elements: str
    default: []
  renew_before:
    description:
      - Without O(serial), sign a new serial once the bundle in O(dest) has less validity left than this
        duration. Default is half of O(expires).
    type: str
  roots_since:
    description:
      - The oldest root version hosts may still trust. The bundle carries every root after it, so those
        hosts can walk the chain of rotations.
    type: int
    default: 1
  passphrase_file:
    description:
      - A file whose first line is the passphrase of the private keys. Without it, the environment variable
        C(DISTSEC_KEY_PASSPHRASE) of the controller is used, and without that the keys must be unencrypted.
    type: path
attributes:
  check_mode:
    support: full
    description: Compiles and signs in memory; writes neither O(dest) nor C(KEYDIR/serial).
  diff_mode:
    support: none
    description: The result names the serial; there is no diff.
notes:
  - The same as C(distsec bundle sign); see the collection's C(docs/trust.md) for the key ceremony.
seealso:
  - module: distsec.framework.policy_verify
  - module: distsec.framework.psl
"""

EXAMPLES = r"""
- name: Sign the domain policy once, on the controller
  distsec.framework.bundle_sign:
    keys: /srv/distsec/keys
    src: policy/domain.yml
    expires: 7d
    dest: /srv/distsec/out/policy.bundle.json
  run_once: true
  delegate_to: localhost
  register: bundle

- name: Sign a bundle for the web servers only, with an explicit serial
  distsec.framework.bundle_sign:
    keys: /srv/distsec/keys
    src: [policy/domain.yml, policy/web.yml]
    expires: 2d
    serial: 42
    targets: ["group:webservers"]
    dest: /srv/distsec/out/web.bundle.json
  run_once: true
  delegate_to: localhost
"""

RETURN = r"""
serial:
  description: The serial of the bundle in O(dest).
  returned: success
  type: int
  sample: 8
domain:
  description: The Security Domain (from the key directory's root).
  returned: success
  type: str
  sample: example.org
issued:
  description: When the bundle was signed (UTC).
  returned: success
  type: str
  sample: "2026-11-23T09:00:00Z"
expires:
  description: When the bundle expires (UTC).
  returned: success
  type: str
  sample: "2026-11-30T09:00:00Z"
root_version:
  description: The version of the root whose policy keys signed.
  returned: success
  type: int
targets:
  description: The bundle's targets.
  returned: success
  type: dict
  sample: {hosts: [], groups: [webservers]}
manifest_sha256:
  description: SHA-256 of the canonical manifest (what a host records once it accepts the bundle).
  returned: success
  type: str
policy_hash:
  description: The compiled policy's content hash, before the bundle's serial and times are added to its metadata.
  returned: success
  type: str
dest:
  description: The bundle's path on the controller.
  returned: success
  type: str
reason:
  description: Why the bundle was signed, or why the one in O(dest) was kept.
  returned: success
  type: str
  sample: "signed serial 8 (replacing serial 7 in /srv/distsec/out/policy.bundle.json)"
warnings_found:
  description: Warnings about the policy (shadowed rules, unused objects), as C(PATH:LINE:COL) with its message.
  returned: success
  type: list
  elements: str
problems:
  description: Every error in the policy, as C(PATH:LINE:COL) with its level and message.
  returned: when the policy is invalid
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            keys=dict(type="path", required=True, no_log=False),
            src=dict(type="raw", required=True),
            expires=dict(type="str", required=True),
            serial=dict(type="int"),
            targets=dict(type="list", elements="str", default=[]),
            dest=dict(type="path", required=True),
            host=dict(type="str"),
            groups=dict(type="list", elements="str", default=[]),
            renew_before=dict(type="str"),
            roots_since=dict(type="int", default=1),
            passphrase_file=dict(type="path", no_log=False),
        ),
        supports_check_mode=True,
    )
    module.fail_json(msg="distsec.framework.bundle_sign runs on the controller through its action plugin")


if __name__ == "__main__":
    main()
