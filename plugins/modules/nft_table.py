#!/usr/bin/python
# Copyright: distsec.framework contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
---
module: nft_table
short_description: Own one nftables table and replace its content atomically
version_added: 0.1.0
description:
  - Makes one nftables table (for example C(inet distsec_example)) hold exactly the chains, sets
    and rules given in O(content), and nothing else.
  - The new content is first checked by the kernel with C(nft -c), then loaded as one transaction
    with C(nft -f), so packets see either the old table or the new one, never a mix or an empty table.
    When nft refuses the content, nothing on the host changes and the error quotes nft's message.
  - Only this table is touched. Other tables (Docker, fail2ban, other tools) are never flushed or
    changed, and the module never runs C(flush ruleset).
  - Idempotent. The module records the content it applied and the kernel's listing right after,
    under O(state_dir). A later run with the same content changes nothing unless someone edited the
    table by hand (drift), in which case it reports the drift and restores the content.
  - This is the low-level building block. It has no lockout guard and no automatic rollback, so keep
    the management path (SSH) open in O(content) yourself.
author:
  - distsec.framework team (@distsec-framework)
requirements:
  - nft (the nftables command) on the target, and the CAP_NET_ADMIN capability.
options:
  name:
    description:
      - Name of the table.
    type: str
    required: true
  family:
    description:
      - Address family of the table. V(inet) covers IPv4 and IPv6 in one table.
    type: str
    choices: [inet, ip, ip6, arp, bridge, netdev]
    default: inet
  content:
    description:
      - The body of the table in nft syntax, meaning its chains, sets, maps and rules, without the
        surrounding C(table FAMILY NAME { }).
      - Required when O(state=present).
    type: str
  state:
    description:
      - V(present) makes the table hold O(content). V(absent) deletes the table.
    type: str
    choices: [present, absent]
    default: present
  state_dir:
    description:
      - Directory on the target where the module records what it applied.
    type: path
    default: /var/lib/distsec/nft_table
attributes:
  check_mode:
    support: full
    description: Reports whether the table would change, and why, without touching it.
  diff_mode:
    support: full
    description: Shows the table as listed by the kernel before and after, with counters removed.
notes:
  - Counter values, quota usage and rule handles are ignored when comparing, so traffic alone never
    makes a run report a change.
"""

EXAMPLES = r"""
- name: Allow SSH and HTTP in, drop the rest of new inbound connections
  distsec.framework.nft_table:
    name: distsec_example
    content: |
      chain input {
        type filter hook input priority filter; policy drop;
        ct state established,related accept
        iif "lo" accept
        meta l4proto ipv6-icmp accept
        meta l4proto icmp accept
        tcp dport { 22, 80 } accept
      }

- name: Remove the table again
  distsec.framework.nft_table:
    name: distsec_example
    state: absent
"""

RETURN = r"""
table:
  description: The table managed, as C(FAMILY NAME).
  returned: always
  type: str
  sample: inet distsec_example
reason:
  description: Why the table changed, or why it did not.
  returned: always
  type: str
  sample: "drift: the table was changed outside distsec since it was applied"
listing:
  description: The kernel's listing of the table after the run (counters removed); empty when absent.
    In check mode, what it would be.
  returned: always
  type: str
other_tables:
  description: The other tables present on the host, left untouched, as C(FAMILY NAME).
  returned: always
  type: list
  elements: str
  sample: [ip nat, ip filter]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.distsec.framework.plugins.module_utils._apply.nftables import (
    Nft,
    NftError,
    TableManager,
    TableRef,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            family=dict(type="str", default="inet", choices=["inet", "ip", "ip6", "arp", "bridge", "netdev"]),
            content=dict(type="str"),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            state_dir=dict(type="path", default="/var/lib/distsec/nft_table"),
        ),
        required_if=[("state", "present", ["content"])],
        supports_check_mode=True,
    )
    nft_path = module.get_bin_path("nft", required=True)

    def run(argv, stdin):
        return module.run_command(list(argv), data=stdin, binary_data=True)

    try:
        ref = TableRef(module.params["family"], module.params["name"])
        manager = TableManager(Nft(run, argv=[nft_path]), ref, module.params["state_dir"])
        body = module.params["content"] if module.params["state"] == "present" else None
        if module.check_mode:
            plan = manager.plan(body)
            if plan.changed and body is not None:
                manager.validate(body)
        else:
            plan = manager.apply(body)
        others = [f"{f} {n}" for f, n in manager.nft.list_tables() if (f, n) != (ref.family, ref.name)]
    except NftError as exc:
        module.fail_json(msg=f"{module.params['family']} {module.params['name']}: {exc}")
    except OSError as exc:
        module.fail_json(
            msg=f"{module.params['family']} {module.params['name']}: cannot record the applied content "
            f"under {module.params['state_dir']}: {exc}; the next run applies the table again"
        )

    result = dict(
        changed=plan.changed,
        table=str(ref),
        reason=plan.reason,
        listing=plan.after,
        other_tables=others,
    )
    if module._diff:
        result["diff"] = dict(
            before_header=f"table {ref}",
            after_header=f"table {ref}",
            before=plan.before,
            after=plan.after,
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
