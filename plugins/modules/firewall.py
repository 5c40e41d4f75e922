#!/usr/bin/python
# Copyright: distsec.framework contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
---
module: firewall
short_description: Enforce the compiled distsec policy on the host firewall, with commit-confirmed rollback
version_added: 0.1.0
description:
  - Evaluates the compiled PSL policy against the host's Security Status on the host itself (which
    profile, which conditional rules hold), renders the ruleset for the host's firewall backend and
    enforces it.
  - "The order of work is: render, validate with the backend's own checker (C(nft -c), C(iptables-restore --test),
    C(firewall-offline-cmd --check-config)), snapshot what distsec owns, apply in one atomic
    transaction, read back what is in effect and compare it rule by rule with what was intended (a
    difference is reverted at once), then commit-confirmed."
  - "Commit-confirmed: before applying, a watchdog process on the host is armed. It restores the
    snapshot by itself at the deadline (O(confirm_timeout) seconds) unless the controller confirms
    over a new connection. The action plugin does that confirmation; when the new ruleset blocks
    new management connections, the confirmation cannot arrive, the host rolls back and the task
    fails with C(applied=false)."
  - "Lockout guard: before anything changes, the module checks with the host's own evaluator that a new
    TCP connection from the controller's current address (taken from C(SSH_CONNECTION)) and from
    every O(management_networks) to the SSH port in use stays accepted in every profile of the policy.
    A policy that fails is refused unless O(override_lockout_guard=true)."
  - Only distsec's own objects are touched (the C(inet distsec) table, the C(DISTSEC-*) iptables
    chains and their jumps, the C(distsec-*) firewalld policies and ipsets). Other tables, chains and
    zones are listed in RV(other_tables) and left alone.
  - Idempotent. A second run with the same policy and status reports C(changed=false). A rule added to
    or removed from distsec's objects by hand is drift; it is reported (RV(drift), also in check mode)
    and undone by the next run.
author:
  - distsec.framework team (@distsec-framework)
requirements:
  - One of nft (nftables), iptables-restore (nft or legacy variant) or firewalld on the target.
options:
  compiled:
    description:
      - The compiled policy, as returned by M(distsec.framework.psl) or the
        P(distsec.framework.psl_compile#filter) filter. A mapping, or the same as JSON text.
    type: raw
  status:
    description:
      - The host's Security Status (the C(distsec_status) fact of M(distsec.framework.security_status)).
      - When omitted, the action plugin passes the C(distsec_status) fact if it is set; otherwise the
        module gathers the status on the host. A mapping, or the same as JSON text.
    type: raw
  backend:
    description:
      - The firewall backend. V(auto) picks firewalld when it runs, else nftables when nft is
        installed, else iptables.
    type: str
    choices: [auto, nftables, iptables, iptables-legacy, firewalld]
    default: auto
  profile:
    description:
      - Enforce this profile instead of the one the policy decides for the host.
    type: str
  now:
    description:
      - Evaluation time as ISO 8601 (default is the host's clock). For tests.
    type: str
  management_networks:
    description:
      - Admin networks or addresses that must keep SSH access, in addition to the controller's
        current address.
    type: list
    elements: str
    default: []
  management_port:
    description:
      - The SSH port to keep open. Default is the port of the current connection, or 22.
    type: int
  override_lockout_guard:
    description:
      - Apply even when the lockout guard finds that the management path would be blocked.
        Commit-confirmed still rolls the host back when the controller cannot reconnect.
    type: bool
    default: false
  confirm_timeout:
    description:
      - Seconds the host waits for the confirmation before it restores the previous ruleset by itself.
        Must exceed the connection timeout. V(0) applies without commit-confirmed (local runs).
    type: int
    default: 30
  state_dir:
    description:
      - Where the module keeps its records, snapshots and watchdog files on the host.
    type: path
    default: /var/lib/distsec/firewall
  policy_file:
    description:
      - The host's policy record read by the Security Status (C(policy) collector). The module updates
        C(domain), C(hash), C(profile), C(expires) and C(applied_at) there once a ruleset is confirmed.
        Empty string writes nothing.
    type: str
    default: /var/lib/distsec/policy.json
  run:
    description:
      - "What the caller knows about this run, for the run record written into O(policy_file): C(host) (the
        inventory name), and the policy's C(source) (V(pushed), V(stored) or V(default-restrictive)), C(serial),
        C(domain), C(expires), C(expired), C(in_grace), C(grace_until) and C(rejected) (a refused pushed
        bundle's C(reason) and C(detail)). The M(distsec.framework.policy_verify) result gives them; the C(enforce) role passes them."
      - Without it the record names the host by its hostname and the policy by its hash only.
    type: dict
  _confirm:
    description:
      - Internal, set by the action plugin over a new connection to confirm a pending change (the
        token of RV(pending)). Tasks may not set it.
    type: str
  _outcome:
    description:
      - Internal, set by the action plugin to read what the watchdog did with a token. Tasks may not set it.
    type: str
  _ssh_connection:
    description:
      - Internal, the C(SSH_CONNECTION) of the session read by the action plugin before privilege escalation
        (sudo resets the environment). Tasks may not set it.
    type: str
  _connection:
    description:
      - Internal, the connection plugin in use, set by the action plugin. Tasks may not set it.
    type: str
attributes:
  check_mode:
    support: full
    description: Reports what would change (rule ids added, removed, moved) and any drift, validates with
      the backend's checker, and touches nothing.
  diff_mode:
    support: full
    description: Shows the rule ids in effect per chain before and after.
notes:
  - The IPv4 and IPv6 halves of the iptables backend are two transactions (one per restore command);
    nftables applies both families in one.
  - Use the action plugin (the default when the module is called by name); calling the module
    without it leaves every change unconfirmed, so the host rolls back after O(confirm_timeout).
seealso:
  - module: distsec.framework.psl
  - module: distsec.framework.security_status
"""

EXAMPLES = r"""
- name: Compile the domain policy for this host on the controller
  distsec.framework.psl:
    src: policy/domain.yml
  register: policy

- name: Gather the Security Status
  distsec.framework.security_status:

- name: Enforce it; roll back by itself unless the controller can reconnect within 30 s
  distsec.framework.firewall:
    compiled: "{{ policy.compiled }}"
    management_networks: [2001:db8:ff::/64]
"""

RETURN = r"""
applied:
  description: Whether the new ruleset is in effect at the end of the task.
  returned: always
  type: bool
backend:
  description: The backend used, and why it was chosen.
  returned: always
  type: dict
  sample: {name: nftables, why: "nft is installed (the default on Linux)"}
profile:
  description: The profile enforced, and why the policy chose it.
  returned: always
  type: dict
  sample: {name: home, reason: "no selection matched: the default profile"}
reason:
  description: Why the ruleset changed, or why it did not.
  returned: always
  type: str
  sample: "drift: changed outside distsec since it was applied"
drift:
  description: Whether distsec's objects had been changed by hand since the last run.
  returned: always
  type: bool
rules:
  description: Rule-level changes as C(CHAIN RULE-ID); C(removed) includes rules added by hand.
  returned: always
  type: dict
  sample: {added: ["input: web-in"], removed: ["input: ?: tcp dport 9999 accept"], moved: []}
other_tables:
  description: Other owners' tables, chains or zones, left untouched.
  returned: always
  type: list
  elements: str
pending:
  description: The commit-confirmed token and deadline, until the action plugin confirms.
  returned: when a ruleset was applied with confirm_timeout > 0
  type: dict
confirmed:
  description: Whether the controller confirmed the new ruleset over a new connection.
  returned: when a ruleset was applied
  type: bool
compliance:
  description: The policy's compliance checks on this host, each with C(id), C(description), C(severity),
    C(passed), C(on_fail) and C(unknown) (facts that could not be decided), and the counts.
  returned: always
  type: dict
  sample: {compliant: false, passed: 8, failed: 1, checks: [{id: libssl-patched, passed: false, on_fail: isolated}]}
run:
  description: The run record (schema C(distsec.run/1)) written into O(policy_file); see docs/dev/enforce-design.md.
  returned: always
  type: dict
durations:
  description: Seconds spent on the host per step (status, evaluate_render, plan, validate, apply_readback, record).
  returned: always
  type: dict
rollback:
  description: What the host's watchdog did (outcome, why, when).
  returned: when the host rolled back
  type: dict
"""

import ipaddress
import json
import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.distsec.framework.plugins.module_utils._apply.backend import BackendError, atomic_write
from ansible_collections.distsec.framework.plugins.module_utils._apply.firewall import (
    BACKENDS,
    Watchdog,
    choose_backend,
    make_backend,
    subprocess_runner,
)
from ansible_collections.distsec.framework.plugins.module_utils._enforce.record import (
    compliance_of,
    drift_of,
    run_record,
    write_policy_record,
)
from ansible_collections.distsec.framework.plugins.module_utils._evaluate.conditions import parse_time
from ansible_collections.distsec.framework.plugins.module_utils._evaluate.decide import active_rules, decide
from ansible_collections.distsec.framework.plugins.module_utils._evaluate.guard import management_problems
from ansible_collections.distsec.framework.plugins.module_utils._render.nftables import RenderError
from ansible_collections.distsec.framework.plugins.module_utils._status.all import Context, gather


class _Clock:
    """Seconds spent per step, returned as `durations` (the benchmark reads them)."""

    def __init__(self):
        self.durations = {}
        self._last = time.perf_counter()

    def lap(self, step):
        now = time.perf_counter()
        self.durations[step] = round(now - self._last, 4)
        self._last = now


def _ids_text(chains):
    lines = []
    for chain in sorted(chains):
        lines.append(f"{chain}:")
        lines.extend(f"  {rid}" for rid in chains[chain])
    return "\n".join(lines) + ("\n" if lines else "")


def _management_sources(networks, ssh_connection):
    """The controller's address of this connection, plus the first and last address of each network."""
    sources = []
    ssh = (ssh_connection or os.environ.get("SSH_CONNECTION", "")).split()
    port = int(ssh[3]) if len(ssh) == 4 and ssh[3].isdigit() else None
    if ssh:
        address = ssh[0].split("%", 1)[0]
        if address.startswith("::ffff:"):
            address = address[len("::ffff:") :]
        sources.append(address)
    for text in networks:
        net = ipaddress.ip_network(text, strict=False)
        sources.extend(dict.fromkeys([str(net.network_address), str(net.broadcast_address)]))
    return list(dict.fromkeys(sources)), port


def _mapping(module, name, value):
    """A dict parameter that may arrive as JSON text (the action plugin sends it so: much faster)."""
    if value is None or isinstance(value, dict):
        return value
    if isinstance(value, str):
        try:
            loaded = json.loads(value)
        except ValueError as exc:
            module.fail_json(msg=f"{name}: not a mapping and not JSON text ({exc})")
        if isinstance(loaded, dict):
            return loaded
    module.fail_json(msg=f"{name}: must be a mapping, got {type(value).__name__}")


def _write_policy_record(path, record):
    write_policy_record(path, record)


def _run_fields(params, compiled, result, mode, error=None):
    """The policy record's run fields: compliant, checks, last_run (docs/dev/enforce-design.md)."""
    run = dict(params["run"] or {})
    host = str(run.pop("host", "") or os.uname()[1].split(".")[0])
    policy = {"hash": compiled.get("hash"), "domain": compiled.get("domain")}
    expires = (compiled.get("metadata") or {}).get("expires")
    if expires:
        policy["expires"] = expires
    policy.update({k: v for k, v in run.items() if k in RUN_POLICY_KEYS})
    compliance = result["compliance"]
    record = run_record(
        host=host,
        mode=mode,
        result="failed" if error else "ok",
        error=error,
        changed=bool(result.get("changed")),
        policy=policy,
        profile=result["profile"],
        compliance=compliance,
        drift=drift_of(drift=result["drift"], rules=result.get("rules"), applied=result["applied"], mode=mode),
        firewall={
            "backend": (result.get("backend") or {}).get("name"),
            "applied": result["applied"],
            "confirmed": result.get("confirmed"),
            "reason": result.get("reason"),
            "rules": result.get("rules") or {"added": [], "removed": [], "moved": []},
        },
    )
    result["run"] = record
    last_run = {**record, "compliance": {k: v for k, v in compliance.items() if k != "checks"}}
    return {"compliant": compliance["compliant"], "checks": compliance["checks"], "last_run": last_run}


RUN_POLICY_KEYS = ("source", "serial", "domain", "expires", "expired", "in_grace", "grace_until", "rejected")


def _confirm(module, watchdog):
    token = module.params["_confirm"]
    outcome = watchdog.confirm(token)
    if outcome.get("outcome") != "confirmed":
        module.fail_json(
            msg=f"too late to confirm: the host already reports {outcome.get('outcome')}",
            applied=False,
            rollback=outcome,
        )
    record = {}
    try:
        with open(os.path.join(watchdog.dir, f"{token}.policy"), encoding="utf-8") as handle:
            record = json.load(handle)
        os.unlink(os.path.join(watchdog.dir, f"{token}.policy"))
    except (OSError, ValueError):
        record = {}
    if record:
        _write_policy_record(record.pop("_path", ""), record)
    module.exit_json(changed=False, confirmed=True, applied=True)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            compiled=dict(type="raw"),
            status=dict(type="raw"),
            backend=dict(type="str", default="auto", choices=["auto", *BACKENDS]),
            profile=dict(type="str"),
            now=dict(type="str"),
            management_networks=dict(type="list", elements="str", default=[]),
            management_port=dict(type="int"),
            override_lockout_guard=dict(type="bool", default=False),
            confirm_timeout=dict(type="int", default=30),
            state_dir=dict(type="path", default="/var/lib/distsec/firewall"),
            policy_file=dict(type="str", default="/var/lib/distsec/policy.json"),
            run=dict(type="dict"),
            _confirm=dict(type="str"),
            _outcome=dict(type="str"),
            _ssh_connection=dict(type="str"),
            _connection=dict(type="str"),
        ),
        required_one_of=[("compiled", "_confirm", "_outcome")],
        supports_check_mode=True,
    )
    params = module.params
    watchdog = Watchdog(params["state_dir"])
    try:
        if params["_confirm"]:
            _confirm(module, watchdog)
        if params["_outcome"]:
            module.exit_json(changed=False, **watchdog.outcome(params["_outcome"]))
    except BackendError as exc:
        module.fail_json(msg=str(exc))

    clock = _Clock()
    compiled = _mapping(module, "compiled", params["compiled"])
    if not isinstance(compiled.get("profiles"), dict) or "hash" not in compiled:
        module.fail_json(
            msg="compiled: not a compiled distsec policy (no profiles/hash); pass the psl module's 'compiled'"
        )
    now = None
    if params["now"]:
        now = parse_time(params["now"])
        if now is None:
            module.fail_json(msg=f"now: {params['now']!r} is not an ISO 8601 time")
    status = _mapping(module, "status", params["status"])
    if status is None:
        status = gather(Context(subprocess_runner))
        clock.lap("status")

    decision = decide(compiled, status, now=now)
    if params["profile"]:
        if params["profile"] not in compiled["profiles"]:
            module.fail_json(
                msg=f"profile: no profile {params['profile']!r} in the policy; it has {', '.join(sorted(compiled['profiles']))}"
            )
        decision.profile, decision.reason = params["profile"], "chosen by the task"
    profile = {"name": decision.profile, "reason": decision.reason}
    result = dict(
        changed=False,
        applied=False,
        profile=profile,
        drift=False,
        policy=compiled.get("hash"),
        compliance=compliance_of(decision.checks),
        durations=clock.durations,
    )

    # lockout guard, before anything else can change
    try:
        sources, ssh_port = _management_sources(params["management_networks"], params["_ssh_connection"])
    except ValueError as exc:
        module.fail_json(msg=f"management_networks: {exc}", **result)
    port = params["management_port"] or ssh_port or 22
    result["management"] = {"sources": sources, "port": port}
    over_ssh = params["_connection"] in (
        None,
        "ssh",
        "paramiko",
        "paramiko_ssh",
        "ansible.builtin.ssh",
        "ansible.builtin.paramiko_ssh",
    )
    if not sources and not params["override_lockout_guard"]:
        if over_ssh:
            module.fail_json(
                msg="lockout guard: the controller's address of this SSH connection is unknown (SSH_CONNECTION is "
                "not set on the host); nothing was changed. Set management_networks to the admin networks, or "
                "override_lockout_guard",
                **result,
            )
        module.warn(
            f"lockout guard: the {params['_connection']} connection has no network path to protect and "
            "management_networks is empty, so no management path was checked"
        )
    if sources:
        own = (status.get("network") or {}).get("addresses") or []
        problems = management_problems(compiled, decision, sources=sources, port=port, host_addresses=own)
        if problems and not params["override_lockout_guard"]:
            module.fail_json(
                msg="lockout guard: the policy would block the management path; nothing was changed. Keep "
                "baseline.management on and management.from covering the admins, or set override_lockout_guard "
                "(commit-confirmed still rolls back). " + "; ".join(problems),
                lockout=problems,
                **result,
            )
        if problems:
            module.warn("lockout guard overridden: " + "; ".join(problems))
            result["lockout"] = problems

    try:
        name, why = choose_backend(params["backend"], status, module.get_bin_path)
        result["backend"] = {"name": name, "why": why}
        backend = make_backend(name, params["state_dir"])
        try:
            artefacts = backend.render(compiled, decision.profile, active_rules(compiled, decision))
        except RenderError as exc:
            module.fail_json(msg=f"cannot render the {name} ruleset; nothing was changed: {exc}", **result)
        clock.lap("evaluate_render")
        plan = backend.plan(artefacts)
        clock.lap("plan")
        result.update(
            reason=plan.reason,
            drift=plan.drift,
            rules=plan.rules,
            other_tables=backend.others(),
        )
        if module._diff:
            result["diff"] = dict(
                before_header=f"{name}: rule ids in effect",
                after_header=f"{name}: rule ids for profile {decision.profile}",
                before=_ids_text(backend.in_effect() if plan.before else {}),
                after=_ids_text(backend.intended(artefacts)),
            )
        mode = "audit" if module.check_mode else "enforce"
        if not plan.changed:
            result["applied"] = True
            fields = _run_fields(params, compiled, result, mode)
            if not module.check_mode:
                try:
                    _write_policy_record(params["policy_file"], {**fields, "profile": decision.profile})
                except OSError as exc:
                    module.warn(f"the run record could not be written to {params['policy_file']}: {exc}")
            module.exit_json(**result)
        backend.validate(artefacts)
        clock.lap("validate")
        if module.check_mode:
            result["changed"] = True
            _run_fields(params, compiled, result, mode)
            module.exit_json(**result)

        watchdog.lock()
        try:
            snapshot = backend.snapshot()
            token = None
            if params["confirm_timeout"] > 0:
                token = watchdog.arm(backend, snapshot, params["confirm_timeout"])[0]
            try:
                backend.apply(artefacts)
                in_effect, intended = backend.in_effect(), backend.intended(artefacts)
                if in_effect != intended:
                    raise BackendError(
                        "read-back differs from the ruleset applied",
                        detail=f"in effect {json.dumps(in_effect, sort_keys=True)}; "
                        f"intended {json.dumps(intended, sort_keys=True)}",
                    )
            except BackendError as exc:
                try:
                    backend.restore(snapshot)
                except BackendError as restore_exc:
                    # the watchdog stays armed and tries again at its deadline
                    module.fail_json(
                        msg=f"{exc}; restoring the previous ruleset failed too: {restore_exc}"
                        + ("; the host's watchdog retries at its deadline" if token else ""),
                        **result,
                    )
                if token:
                    watchdog.cancel(token)
                module.fail_json(msg=f"{exc}; the previous ruleset is back in effect", **result)
            clock.lap("apply_readback")
            result.update(changed=True, applied=True)
            try:
                backend.write_record(artefacts, backend.current(), selected=name)
            except (BackendError, OSError) as exc:
                module.warn(
                    f"the ruleset is applied but its record could not be written ({exc}); the next run applies it again"
                )
            expires = (compiled.get("metadata") or {}).get("expires")
            record = {
                "domain": compiled.get("domain"),
                "hash": compiled.get("hash"),
                "profile": decision.profile,
                "applied_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "backend": name,
            }
            if expires:
                record["expires"] = expires
            # written now (no commit-confirmed) or when the controller confirms: confirmed either way
            view = {**result, "confirmed": True}
            record.update(_run_fields(params, compiled, view, mode))
            result["run"] = view["run"]
            if token is None:
                _write_policy_record(params["policy_file"], record)
                result["confirmed"] = True
            else:
                atomic_write(
                    os.path.join(watchdog.dir, f"{token}.policy"),
                    json.dumps({**record, "_path": params["policy_file"]}),
                )
                # the confirmation window starts now, whatever the apply took
                watchdog.extend(token, params["confirm_timeout"])
                result["confirmed"] = False
                result["pending"] = {"token": token, "remaining": params["confirm_timeout"]}
        finally:
            watchdog.unlock()
        watchdog.prune()
        clock.lap("record")
    except BackendError as exc:
        module.fail_json(msg=f"{exc}; nothing was changed" if not result["applied"] else str(exc), **result)
    except OSError as exc:
        state = "the new ruleset is in effect" if result["applied"] else "nothing was changed"
        module.fail_json(msg=f"cannot write under {params['state_dir']}: {exc}; {state}", **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
