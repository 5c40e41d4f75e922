#!/usr/bin/python
# Copyright: distsec.framework contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
---
module: default_restrictive
short_description: Install the default-restrictive nftables ruleset a host loads at boot, before any policy
version_added: 0.1.0
description:
  - Writes the host's default-restrictive firewall, the ruleset in effect from boot until the domain
    policy is enforced, and a systemd unit that loads it at boot.
  - "The ruleset is rendered on the host from O(compiled) (the output of the
    P(distsec.framework.restrictive_policy#filter) filter) for the profile the policy decides with nothing
    known about the host, with the same renderer and the same transaction as the nftables backend of
    M(distsec.framework.firewall): C(nft -f PATH) replaces the table C(inet distsec) in one transaction and
    leaves other tables alone, so the boot load and an enforcement run own the same table."
  - "The file is checked with C(nft -c) before it is written (a refusal fails the task with the checker's
    message and writes nothing), then written atomically with mode 0644, only when its content differs."
  - "The unit (in C(/etc/systemd/system)) runs C(nft -f PATH) after C(nftables.service), whose own
    configuration flushes the ruleset, and before C(network-pre.target). The module runs
    C(systemctl daemon-reload) when the unit changed and C(systemctl enable) when it is not enabled."
  - The module does not load the ruleset now. Load it through M(distsec.framework.firewall)
    (commit-confirmed, lockout guard), as the C(distsec.framework.default_restrictive) role does.
  - V(state=absent) disables and removes the unit and removes the file; the ruleset in the kernel is
    left as it is.
  - Idempotent. A second run with the same policy reports C(changed=false).
author:
  - distsec.framework team (@distsec-framework)
requirements:
  - nft (the nftables package) and systemd on the target.
options:
  compiled:
    description:
      - The compiled default-restrictive policy, as returned by the
        P(distsec.framework.restrictive_policy#filter) filter. A mapping, or the same as JSON text.
      - Required with V(state=present).
    type: raw
  path:
    description:
      - The ruleset file. An absolute path without spaces, quotes, backslashes, C(%), C($) or C(;), since it
        goes into the unit's C(ExecStart).
    type: path
    default: /etc/distsec/default-restrictive.nft
  unit:
    description:
      - The systemd service that loads the file at boot.
    type: str
    default: distsec-default-restrictive.service
  state:
    description:
      - V(present) writes the file and the unit and enables the unit; V(absent) disables and removes both.
    type: str
    choices: [present, absent]
    default: present
  firewall_state_dir:
    description:
      - The O(distsec.framework.firewall#module:state_dir) of the firewall module. Its records there tell
        whether a policy was ever enforced on the host (RV(enforced)).
    type: path
    default: /var/lib/distsec/firewall
  policy_file:
    description:
      - The host's policy record written by the firewall module. Its C(hash) tells whether the policy in
        effect is the default-restrictive one (RV(enforced)).
    type: path
    default: /var/lib/distsec/policy.json
  _systemctl:
    description:
      - Internal, for tests. The systemctl command to run instead of the one on the PATH.
    type: path
  _unit_dir:
    description:
      - Internal, for tests. Where the unit file is written.
    type: path
    default: /etc/systemd/system
attributes:
  check_mode:
    support: full
    description: Reports what would be written and run (RV(actions)), checks the ruleset with C(nft -c), and
      writes nothing.
  diff_mode:
    support: full
    description: Shows the ruleset file before and after.
notes:
  - The systemd part needs systemd as the init system. When systemd is not running (a chroot, a container
    without it), C(daemon-reload) is skipped with a warning and the unit takes effect at the next boot.
seealso:
  - module: distsec.framework.firewall
  - plugin: distsec.framework.restrictive_policy
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Compile the default-restrictive policy on the controller
  ansible.builtin.set_fact:
    restrictive: >-
      {{ {'domain': 'corp.example.org', 'management_from': ['2001:db8:ff::/64'],
          'pdp': ['2001:db8::10'], 'dns_servers': ['2001:db8::53']} | distsec.framework.restrictive_policy }}

- name: Install it for the next boot
  distsec.framework.default_restrictive:
    compiled: "{{ restrictive }}"
  register: boot

- name: Enforce it now when no policy was ever enforced on the host
  distsec.framework.firewall:
    compiled: "{{ restrictive }}"
    backend: nftables
    management_networks: [2001:db8:ff::/64]
  when: not boot.enforced

- name: Remove it
  distsec.framework.default_restrictive:
    state: absent
"""

RETURN = r"""
path:
  description: The ruleset file.
  returned: always
  type: str
  sample: /etc/distsec/default-restrictive.nft
unit:
  description: The systemd unit that loads it at boot.
  returned: always
  type: str
  sample: distsec-default-restrictive.service
profile:
  description: The profile rendered (what the policy decides with nothing known about the host).
  returned: when state=present
  type: str
  sample: isolated
hash:
  description: The compiled policy's hash, also in the file's first line.
  returned: when state=present
  type: str
  sample: sha256:3f0c...
rules:
  description: The rule ids per chain of the ruleset, after the chain's policy.
  returned: when state=present
  type: dict
  sample: {input: [policy drop, baseline-loopback-in, baseline-established-in, baseline-icmpv6-in,
    baseline-management-in], output: [policy drop, baseline-loopback-out, baseline-remediation-pdp]}
actions:
  description: What the run did (in check mode, would do), in order.
  returned: always
  type: list
  elements: str
  sample: [write /etc/distsec/default-restrictive.nft, write /etc/systemd/system/distsec-default-restrictive.service,
    systemctl daemon-reload, systemctl enable distsec-default-restrictive.service]
enforced:
  description:
    - Whether a policy other than the default-restrictive one has been enforced on the host by
      M(distsec.framework.firewall) (it left a record in O(firewall_state_dir), and the hash in
      O(policy_file) is not this or the previous default-restrictive policy's). The role loads the ruleset
      at once only when this is false.
  returned: when state=present
  type: bool
enforced_reason:
  description: Why RV(enforced) is what it is.
  returned: when state=present
  type: str
  sample: "no firewall record in /var/lib/distsec/firewall: no policy has been enforced on this host"
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.distsec.framework.plugins.module_utils._apply.backend import atomic_write
from ansible_collections.distsec.framework.plugins.module_utils._apply.firewalld import FirewalldBackend
from ansible_collections.distsec.framework.plugins.module_utils._apply.iptables import IptablesBackend
from ansible_collections.distsec.framework.plugins.module_utils._apply.nftables import Nft, NftablesBackend
from ansible_collections.distsec.framework.plugins.module_utils._apply.restrictive import (
    boot_ruleset,
    check_ruleset,
    header_hash,
    path_problem,
    unit_problem,
    unit_text,
)
from ansible_collections.distsec.framework.plugins.module_utils._render.nftables import RenderError

MODE = 0o644
ENABLED = ("enabled", "enabled-runtime", "linked", "linked-runtime")
# The firewall module's records: STATE_DIR/BACKEND.json (Backend.record_path).
RECORDS = tuple(f"{b.name}.json" for b in (NftablesBackend, IptablesBackend, FirewalldBackend))
FILTER_HINT = "pass the output of the distsec.framework.restrictive_policy filter"


class _Host:
    """Files and commands on the host; every failure ends the task with a message that names them."""

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.actions = []
        self._systemctl = None

    def fail(self, msg, **extra):
        self.module.fail_json(msg=msg, actions=self.actions, **extra)

    def read(self, path):
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.read()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            self.fail(f"cannot read {path}: {exc}; nothing was changed (check the path and run as root)")
        return None

    def mode_of(self, path):
        try:
            return os.stat(path).st_mode & 0o7777
        except OSError:
            return None

    def write(self, path, text, what):
        self.actions.append(f"write {path}")
        if self.module.check_mode:
            return
        try:
            atomic_write(path, text, mode=MODE)
        except OSError as exc:
            self.fail(f"cannot write the {what} {path}: {exc}; run as root (become) and check the directory")

    def remove(self, path, what):
        self.actions.append(f"remove {path}")
        if self.module.check_mode:
            return
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            self.fail(f"cannot remove the {what} {path}: {exc}; run as root (become)")

    @property
    def systemctl(self):
        if self._systemctl is None:
            found = self.params["_systemctl"] or self.module.get_bin_path("systemctl")
            if not found:
                self.fail(
                    "systemctl not found on the host: the default-restrictive ruleset is loaded at boot by a "
                    "systemd unit, so this module needs systemd; nothing was changed"
                )
            self._systemctl = found
        return self._systemctl

    def unit_state(self, unit):
        """`systemctl is-enabled UNIT`: enabled, disabled, masked, not-found, ... (read-only, also in check mode)."""
        _rc, out, err = self.module.run_command([self.systemctl, "is-enabled", unit])
        words = (out or err or "").strip().split()
        state = words[0] if words else "unknown"
        return "not-found" if "No such file" in (err or "") else state

    def systemctl_run(self, *args, done):
        self.actions.append("systemctl " + " ".join(args))
        if self.module.check_mode:
            return
        rc, out, err = self.module.run_command([self.systemctl, *args])
        if rc == 0:
            return
        detail = (err or out or f"exit status {rc}").strip()
        if args[0] == "daemon-reload" and not os.path.isdir("/run/systemd/system"):
            self.module.warn(
                f"systemd is not running on this host, so daemon-reload was skipped ({detail}); "
                "the unit takes effect at the next boot"
            )
            return
        self.fail(f"systemctl {' '.join(args)} failed: {detail}; {done}")


def _mapping(host, value):
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            host.fail(f"compiled: not a mapping and not JSON text ({exc}); {FILTER_HINT}")
    if not isinstance(value, dict) or not isinstance(value.get("profiles"), dict) or "hash" not in value:
        host.fail(f"compiled: not a compiled distsec policy (no profiles/hash); {FILTER_HINT}")
    return value


def _enforced(host, restrictive_hashes):
    """(enforced, why): has a policy other than the default-restrictive one been enforced here?"""
    state_dir = host.params["firewall_state_dir"]
    records = [name for name in RECORDS if os.path.isfile(os.path.join(state_dir, name))]
    if not records:
        return False, f"no firewall record in {state_dir}: no policy has been enforced on this host"
    text = host.read(host.params["policy_file"]) or ""
    try:
        loaded = json.loads(text) if text else {}
    except ValueError:
        loaded = {}
    policy_hash = loaded.get("hash") if isinstance(loaded, dict) else None
    if policy_hash and policy_hash in restrictive_hashes:
        return False, f"the policy in effect is the default-restrictive one ({policy_hash})"
    where = ", ".join(os.path.join(state_dir, name) for name in records)
    return True, f"a policy was enforced ({where}; policy {policy_hash or 'unknown'})"


def _present(host, unit_path, current):
    module, params = host.module, host.params
    compiled = _mapping(host, params["compiled"])
    nft = module.get_bin_path("nft")
    if not nft:
        host.fail("nft not found on the host: install the nftables package; nothing was changed")
    try:
        ruleset = boot_ruleset(compiled)
    except RenderError as exc:
        host.fail(f"cannot render the default-restrictive ruleset; nothing was written: {exc}")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        host.fail(f"compiled: not a usable compiled policy ({type(exc).__name__}: {exc}); {FILTER_HINT}")
    defaults = compiled["profiles"][ruleset.profile].get("default") or {}
    open_ways = [d for d in ("in", "out", "forward") if defaults.get(d) == "accept"]
    if open_ways:
        module.warn(
            f"profile {ruleset.profile} accepts {', '.join(open_ways)} by default: this ruleset is not restrictive; "
            f"{FILTER_HINT}"
        )
    path = params["path"]
    unit = unit_text(nft, path)
    current_unit = host.read(unit_path)
    result = dict(
        path=path,
        unit=params["unit"],
        profile=ruleset.profile,
        hash=ruleset.hash,
        rules=ruleset.rules,
    )
    result["enforced"], result["enforced_reason"] = _enforced(host, {ruleset.hash, header_hash(current)})

    def run(argv, data):
        return module.run_command(list(argv), data=data, binary_data=True)

    if current != ruleset.text:
        problem = check_ruleset(Nft(run, argv=[nft]), ruleset.text)
        if problem:
            host.fail(f"{path}: {problem}; nothing was written (fix the compiled policy)", **result)
    # Before anything is written: a masked unit is a link to /dev/null at unit_path, which writing
    # the unit would silently replace.
    state = host.unit_state(params["unit"])
    if state == "masked":
        host.fail(
            f"{params['unit']} is masked, so it cannot be enabled; nothing was written: run "
            f"'systemctl unmask {params['unit']}' (or use state=absent)",
            **result,
        )
    if current != ruleset.text or host.mode_of(path) != MODE:
        host.write(path, ruleset.text, "ruleset file")
    if current_unit != unit or host.mode_of(unit_path) != MODE:
        host.write(unit_path, unit, "unit file")
        host.systemctl_run("daemon-reload", done=f"{unit_path} is written; run 'systemctl daemon-reload' by hand")
    if state != "enabled":
        host.systemctl_run(
            "enable", params["unit"], done=f"{path} and {unit_path} are written but the unit would not run at boot"
        )
    return result, ruleset.text


def _absent(host, unit_path, current):
    params = host.params
    unit_file = host.read(unit_path)
    has_systemd = unit_file is not None or params["_systemctl"] or host.module.get_bin_path("systemctl")
    if has_systemd and host.unit_state(params["unit"]) in ENABLED:
        host.systemctl_run("disable", params["unit"], done="nothing was removed")
    if unit_file is not None:
        host.remove(unit_path, "unit file")
        host.systemctl_run("daemon-reload", done=f"{unit_path} is removed; run 'systemctl daemon-reload' by hand")
    if current is not None:
        host.remove(params["path"], "ruleset file")
    return dict(path=params["path"], unit=params["unit"]), ""


def main():
    module = AnsibleModule(
        argument_spec=dict(
            compiled=dict(type="raw"),
            path=dict(type="path", default="/etc/distsec/default-restrictive.nft"),
            unit=dict(type="str", default="distsec-default-restrictive.service"),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            firewall_state_dir=dict(type="path", default="/var/lib/distsec/firewall"),
            policy_file=dict(type="path", default="/var/lib/distsec/policy.json"),
            _systemctl=dict(type="path"),
            _unit_dir=dict(type="path", default="/etc/systemd/system"),
        ),
        required_if=[("state", "present", ["compiled"])],
        supports_check_mode=True,
    )
    host = _Host(module)
    params = module.params
    problem = path_problem(params["path"])
    if problem:
        host.fail(f"path: {problem}")
    problem = unit_problem(params["unit"])
    if problem:
        host.fail(f"unit: {problem}")
    unit_path = os.path.join(params["_unit_dir"], params["unit"])
    current = host.read(params["path"])
    if params["state"] == "present":
        result, after = _present(host, unit_path, current)
    else:
        result, after = _absent(host, unit_path, current)
    result.update(changed=bool(host.actions), actions=host.actions)
    if module._diff:
        result["diff"] = dict(
            before_header=params["path"], after_header=params["path"], before=current or "", after=after
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
