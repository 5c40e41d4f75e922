# Copyright: distsec.framework contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
name: restrictive_policy
short_description: Build and compile distsec's built-in default-restrictive policy on the controller
version_added: 0.1.0
description:
  - "Returns the compiled default-restrictive policy, the firewall a host has before any domain policy is
    enforced (the IETF draft: the node firewall must be configured by default with a very restrictive
    set of rules)."
  - "Its default and expired profile is C(isolated): everything in, out and forward is dropped except the
    baseline (loopback, established connections, the ICMPv6 essentials, management from O(_input.management_from)),
    the remediation paths out to the PDP, patch mirrors, DNS, NTP and PKI servers given (PSL reference
    3.8), and the DHCP client's own traffic (O(_input.dhcp)). A remediation object without addresses is
    left out, and so is its path."
  - "The policy is compiled by the normal PSL compiler: the result has the same format
    (C(distsec.compiled-policy/1)) and C(hash) as P(distsec.framework.psl_compile#filter)'s, and the
    lockout guard and renderers of M(distsec.framework.firewall) work on it. Its C(sources) is
    C([<default-restrictive>]) and its C(description) says it is distsec's built-in default-restrictive policy."
  - A wrong parameter fails the task with the parameter's name (for example C(pdp[1])) and what is wrong;
    every wrong parameter is reported at once.
author:
  - distsec.framework team (@distsec-framework)
options:
  _input:
    description: The parameters, as one mapping.
    type: dict
    required: true
    suboptions:
      domain:
        description: The Security Domain (letters, digits, C(_), C(.), C(-)).
        type: str
        required: true
      management_from:
        description:
          - Admin addresses, networks (C(2001:db8:ff::/64)) or ranges (C(198.51.100.10-198.51.100.20)) that
            keep access to the management port in every profile.
          - Required and not empty, since a default-restrictive policy without it would lock the admins out.
        type: list
        elements: str
        required: true
      management_port:
        description: The TCP port the admins use (SSH).
        type: int
        default: 22
      pdp:
        description: Addresses of the PDP; everything to them stays allowed.
        type: list
        elements: str
        default: []
      patch_mirrors:
        description: Addresses of the patch and anti-virus signature mirrors; TCP 80 and 443 to them stay allowed.
        type: list
        elements: str
        default: []
      dns_servers:
        description: Addresses of the DNS servers; UDP and TCP 53 to them stay allowed.
        type: list
        elements: str
        default: []
      ntp_servers:
        description: Addresses of the NTP servers; UDP 123 to them stays allowed.
        type: list
        elements: str
        default: []
      pki:
        description: Addresses of the domain PKI (CRL, enrollment); TCP 80 and 443 to them stay allowed.
        type: list
        elements: str
        default: []
      dhcp:
        description:
          - Keep the DHCP client's own traffic open (UDP 68 to 67 and back, 546 to 547 and back), so a host
            configured by DHCP keeps its address. Set V(false) for hosts with static addresses only.
        type: bool
        default: true
seealso:
  - module: distsec.framework.default_restrictive
  - module: distsec.framework.firewall
  - plugin: distsec.framework.psl_compile
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Compile the default-restrictive policy for the domain
  ansible.builtin.set_fact:
    restrictive: >-
      {{ {'domain': 'corp.example.org',
          'management_from': ['2001:db8:ff::/64', '198.51.100.0/28'],
          'pdp': ['2001:db8::10'],
          'dns_servers': ['2001:db8::53', '198.51.100.53'],
          'ntp_servers': ['2001:db8::123']} | distsec.framework.restrictive_policy }}

- name: Show which rules it keeps
  ansible.builtin.debug:
    msg: "{{ restrictive.profiles.isolated.rules | map(attribute='id') }}"
"""

RETURN = r"""
_value:
  description: The compiled policy (format C(distsec.compiled-policy/1)) with its C(hash).
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.distsec.framework.plugins.plugin_utils._psl.api import PolicyInvalid
from ansible_collections.distsec.framework.plugins.plugin_utils._psl.restrictive import restrictive_from_mapping


def restrictive_policy(params):
    try:
        return restrictive_from_mapping(params)
    except PolicyInvalid as exc:
        raise AnsibleFilterError(f"restrictive_policy: {exc}") from None


class FilterModule:
    def filters(self):
        return {"restrictive_policy": restrictive_policy}
