# Copyright: distsec.framework contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
name: psl_compile
short_description: Compile a PSL policy for a host on the controller
version_added: 0.1.0
description:
  - Reads PSL files (and their includes) on the controller, checks them, and returns the compiled
    policy for one host as a dictionary, the same JSON that C(distsec psl compile) prints.
  - An invalid policy fails the task with every problem as C(PATH:LINE:COL) with its level and message.
author:
  - distsec.framework team (@distsec-framework)
options:
  _input:
    description: A PSL file path, or a list of them.
    type: raw
    required: true
  host:
    description: Host name to compile for (usually C(inventory_hostname)); omit for the domain default.
    type: str
  groups:
    description: The host's inventory groups (usually C(group_names)).
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Compile the domain policy for this host
  ansible.builtin.set_fact:
    compiled_policy: >-
      {{ 'policies/site.yml' | distsec.framework.psl_compile(host=inventory_hostname, groups=group_names) }}
  delegate_to: localhost
"""

RETURN = r"""
_value:
  description: The compiled policy (format C(distsec.compiled-policy/1)) with its C(hash).
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.distsec.framework.plugins.plugin_utils._psl.api import PolicyInvalid, compile_paths


def psl_compile(src, host=None, groups=None):
    try:
        return compile_paths(src, host=host, groups=groups or [])["compiled"]
    except PolicyInvalid as exc:
        raise AnsibleFilterError(str(exc)) from None


class FilterModule:
    def filters(self):
        return {"psl_compile": psl_compile}
