# PRIVATE: the host-local audit: what the enforce role does in check mode, on the host, without the
# controller (docs/operations.md, "The host-local audit timer"; docs/dev/enforce-design.md).
#
# Runs on hosts: stdlib + our module_utils (+ cryptography through _trust), Python 3.9. Imports no
# Ansible: the same code runs in the zipapp `distsec-audit.pyz` that distsec.framework.audit_agent
# builds. It reads the host and writes only the run record (policy.json) and the Security Status
# (status.json); it never changes the firewall.
#
# One run:
#   1. gather the Security Status (every collector);
#   2. re-verify the stored bundle against the trust store, as policy_verify without `bundle` does
#      (tampering at rest, expiry); no grace period: an expired policy is reported as such;
#   3. decide profile and compliance (_evaluate.decide);
#   4. render for the backend the firewall module recorded last and plan: drift, and what a run
#      would change (rule ids as the firewall module reports them);
#   5. write the run record (mode "audit") into the policy record, then the status file, gathered
#      again for its `policy` section so that it holds the record.
from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ansible_collections.distsec.framework.plugins.module_utils._apply.backend import (
    Backend,
    BackendError,
    atomic_write,
    sha256,
)
from ansible_collections.distsec.framework.plugins.module_utils._apply.firewall import (
    Watchdog,
    make_backend,
    subprocess_runner,
)
from ansible_collections.distsec.framework.plugins.module_utils._enforce.record import (
    compliance_of,
    drift_of,
    read_policy_record,
    run_record,
    write_policy_record,
)
from ansible_collections.distsec.framework.plugins.module_utils._evaluate.decide import active_rules, decide
from ansible_collections.distsec.framework.plugins.module_utils._render.nftables import RenderError
from ansible_collections.distsec.framework.plugins.module_utils._status.all import Context, gather
from ansible_collections.distsec.framework.plugins.module_utils._status.firewall import FIREWALL_STATE
from ansible_collections.distsec.framework.plugins.module_utils._status.policy import POLICY_JSON
from ansible_collections.distsec.framework.plugins.module_utils._trust.canonical import parse_time
from ansible_collections.distsec.framework.plugins.module_utils._trust.crypto import (
    CRYPTOGRAPHY_IMPORT_ERROR,
    HAS_CRYPTOGRAPHY,
)
from ansible_collections.distsec.framework.plugins.module_utils._trust.root import Rejected, TrustError
from ansible_collections.distsec.framework.plugins.module_utils._trust.state import (
    TrustStore,
    read_bundle,
    read_trusted_root,
)
from ansible_collections.distsec.framework.plugins.module_utils._trust.verify import (
    compiled_policy,
    signed_expiry,
    verify_bundle,
)

__all__ = [
    "DEFAULT_STATE_DIR",
    "DEFAULT_TRUST_ROOT",
    "EXIT_CANNOT_RUN",
    "EXIT_FINDINGS",
    "EXIT_OK",
    "Audit",
    "AuditError",
    "Options",
    "Runner",
    "audit",
    "summary_line",
    "write_status",
]

DEFAULT_STATE_DIR = "/var/lib/distsec"
DEFAULT_TRUST_ROOT = "/etc/distsec/root.json"
EXIT_OK = 0  # compliant, the stored policy valid, the firewall exactly what the policy asks for now
EXIT_FINDINGS = 1  # drift, non-compliance, a firewall a run would change, a policy problem, never enforced
EXIT_CANNOT_RUN = 2  # the audit could not run (the message says why)
# The backends whose records the firewall module writes (STATE/firewall/NAME.json).
RECORDED_BACKENDS = ("nftables", "iptables", "firewalld")
NO_RULES: Dict[str, List[str]] = {"added": [], "removed": [], "moved": []}

Runner = Callable[..., Tuple[int, str, str]]

# What to do about a refused stored bundle, by reason (docs/trust.md, section 7).
_STORED_HINTS = {
    "expired": "publish a fresh bundle from the PDP (playbooks/publish.yml); if one was published, check the host's clock",
    "wrong-target": "the stored bundle is not for this host name and groups: check --host and --groups "
    "(the timer passes the inventory name and groups), or publish a bundle that targets this host",
    "wrong-domain": "the trust root and the stored bundle name different domains: reinstall the domain's root.json",
    "untrusted-root": "the stored bundle's root chain does not follow from the host's root: reinstall the root "
    "and publish again",
    "threshold-not-met": "the stored bundle lacks signatures of the current policy keys: publish again from the PDP",
    "rollback": "the trusted state and the stored bundle disagree: publish again from the PDP",
    "serial-reuse": "the trusted state and the stored bundle disagree: publish again from the PDP",
}
_TAMPERED_HINT = (
    "the stored bundle was changed on disk: publish again from the PDP and find out who could write to {dir}"
)


class AuditError(Exception):
    """The audit could not run; the message says why and what to do (exit status 2)."""


@dataclass
class Options:
    """What to audit, and where the host keeps its state (the defaults are the real paths)."""

    host: Optional[str] = None
    groups: List[str] = field(default_factory=list)
    state_dir: str = DEFAULT_STATE_DIR
    trust_root: str = DEFAULT_TRUST_ROOT
    status_file: Optional[str] = None  # None: STATE/status.json; "": write none
    policy_file: Optional[str] = None  # None: STATE/policy.json; "": write none
    now: Optional[float] = None

    @property
    def host_name(self) -> str:
        return self.host or socket.gethostname().split(".", 1)[0]

    @property
    def trust_dir(self) -> str:
        return os.path.join(self.state_dir, "trust")

    @property
    def firewall_dir(self) -> str:
        return os.path.join(self.state_dir, "firewall")

    @property
    def policy_path(self) -> str:
        return os.path.join(self.state_dir, "policy.json") if self.policy_file is None else self.policy_file

    @property
    def status_path(self) -> str:
        return os.path.join(self.state_dir, "status.json") if self.status_file is None else self.status_file


@dataclass
class Audit:
    """One audit: the run record, the exit status, the summary line and what it warned about."""

    record: Dict[str, Any]
    exit_code: int
    summary: str
    status: Optional[Dict[str, Any]] = None
    warnings: List[str] = field(default_factory=list)


@dataclass
class _Policy:
    """The stored policy as re-verified: the record's `policy` section, the compiled policy (None when
    refused or missing) and the problem (None, or a message for the record's `error`)."""

    info: Dict[str, Any]
    compiled: Optional[Dict[str, Any]] = None
    problem: Optional[str] = None
    summary: Optional[str] = None


class _HostContext(Context):
    """The collectors' view of the host, with the policy record and the firewall state where the
    options put them (so that a test, or --state-dir, reads the same files the audit writes)."""

    def __init__(self, run: Runner, *, now: float, redirect: Dict[str, str]) -> None:
        super().__init__(lambda argv: run(argv, None), now=now)
        self._redirect = {k: v for k, v in redirect.items() if k != v}

    def path(self, path: str) -> str:
        for default, actual in self._redirect.items():
            if path == default or path.startswith(default + "/"):
                return actual + path[len(default) :]
        return super().path(path)


# ---- the stored policy ---------------------------------------------------------------------------
def stored_policy(options: Options, now: float) -> _Policy:
    """Re-verify the stored bundle with every check of policy_verify; writes nothing.

    An expired bundle is verified again just before its expiry, so that tampering is still found and
    the expired policy can still be evaluated (the firewall's evaluation picks its expired_profile).
    """
    if not HAS_CRYPTOGRAPHY:
        raise AuditError(
            "the Python package 'cryptography' is needed to verify the stored policy "
            f"(Debian: apt-get install python3-cryptography): {CRYPTOGRAPHY_IMPORT_ERROR}"
        )
    store = TrustStore(options.trust_dir, initial_root_path=options.trust_root)
    info: Dict[str, Any] = {"source": "stored", "expired": False, "in_grace": False, "rejected": None}
    try:
        data = read_bundle(store.bundle_path)
    except FileNotFoundError:
        return _Policy(
            info,
            problem=f"no accepted policy bundle is stored in {store.statedir}: publish one from the PDP "
            "(playbooks/publish.yml)",
            summary="no policy",
        )
    except OSError as exc:
        raise AuditError(f"cannot read {store.bundle_path}: {exc.strerror or exc}; run as root") from None
    state = None
    try:
        state = store.load_state()
        if state is not None:
            info.update(serial=state["serial"], domain=state["domain"])
        root = read_trusted_root(store)
        host, groups = options.host_name, options.groups
        try:
            accepted = verify_bundle(data, trusted_root=root, state=state, host=host, groups=groups, now=now)
        except Rejected as exc:
            expires = signed_expiry(data) if exc.reason == "expired" else None
            if expires is None:
                raise
            info["expired"] = True
            # every other check, at a moment the bundle was valid
            accepted = verify_bundle(data, trusted_root=root, state=state, host=host, groups=groups, now=expires - 1)
        compiled = compiled_policy(accepted)
    except Rejected as exc:
        info["rejected"] = {"reason": exc.reason, "detail": exc.detail}
        hint = _STORED_HINTS.get(exc.reason, _TAMPERED_HINT.format(dir=store.statedir))
        return _Policy(
            info,
            problem=f"the stored policy is refused: rejected: {exc.reason}: {exc.detail}; {hint}",
            summary=f"policy refused: {exc.reason}: {exc.detail}",
        )
    except TrustError as exc:
        return _Policy(
            info,
            problem=f"cannot verify the stored policy: the host's trust data is not usable: {exc}; reinstall "
            "the domain's root.json and publish again",
            summary="policy not verifiable: trust data not usable",
        )
    info.update(
        serial=accepted.serial,
        domain=accepted.domain,
        expires=accepted.expires,
        hash=compiled.get("hash"),
    )
    if info["expired"]:
        return _Policy(
            info,
            compiled,
            summary=f"policy expired at {accepted.expires}",
        )
    return _Policy(info, compiled)


# ---- the firewall --------------------------------------------------------------------------------
def last_enforced(firewall_dir: str) -> Optional[Tuple[str, Dict[str, Any], float]]:
    """(backend name, record, when it was written) of the backend the firewall module recorded last;
    None when it never ran."""
    found = []
    for name in RECORDED_BACKENDS:
        path = os.path.join(firewall_dir, f"{name}.json")
        try:
            with open(path, encoding="utf-8") as handle:
                record = json.load(handle)
            mtime = os.stat(path).st_mtime
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as exc:
            raise AuditError(f"cannot read the firewall module's record {path}: {exc}") from None
        if isinstance(record, dict) and isinstance(record.get("current_sha256"), str):
            found.append((mtime, str(record.get("selected") or record.get("backend") or name), record))
    if not found:
        return None
    found.sort(key=lambda item: item[0])
    mtime, name, record = found[-1]
    return name, record, mtime


def _firewall(
    backend: Backend,
    record: Dict[str, Any],
    compiled: Optional[Dict[str, Any]],
    decision: Any,
    *,
    restarted: bool,
    other_policy: Optional[str],
) -> Tuple[Dict[str, Any], bool, bool]:
    """(the record's firewall section, drift found, a run would change the firewall).

    Drift is any difference from what the firewall module owned right after its last apply. With a
    policy to compare with, the plan also names the rules a run would change; without one (none
    valid, or the firewall holds another policy, such as the default-restrictive one), drift is
    told from the recorded hash alone.
    """
    if compiled is None or other_policy:
        current = backend.current()
        drifted = sha256(current) != record["current_sha256"]
        if drifted:
            reason = "drift: changed outside distsec since it was applied"
        elif other_policy:
            reason = f"as applied; {other_policy}"
        else:
            reason = "as applied; not compared with a policy (no valid stored policy)"
        if drifted and restarted:
            reason = _RESTARTED
        section = {"backend": backend.name, "applied": None, "confirmed": None, "reason": reason, "rules": NO_RULES}
        return section, drifted, False
    try:
        artefacts = backend.render(compiled, decision.profile, active_rules(compiled, decision))
    except RenderError as exc:
        raise AuditError(f"cannot render the {backend.name} ruleset of the stored policy: {exc}") from None
    plan = backend.plan(artefacts)
    # The plan says drift only when the policy's ruleset is still the one applied; the recorded hash
    # tells it also when the policy would change the ruleset as well.
    drifted = plan.drift or sha256(plan.before) != record["current_sha256"]
    reason = plan.reason
    if drifted and restarted:
        reason = _RESTARTED
    elif drifted and not plan.drift:
        if not plan.before:
            reason = "drift: nothing of distsec's is loaded any more (removed by hand, or lost at a restart)"
        else:
            reason = f"drift: changed outside distsec since it was applied; {reason}"
    section = {
        "backend": backend.name,
        "applied": not plan.changed,
        "confirmed": None,
        "reason": reason,
        "rules": plan.rules,
    }
    return section, drifted, plan.changed


_RESTARTED = (
    "drift: the host restarted after the policy was last enforced, and the ruleset loaded at boot "
    "(the default-restrictive one, or none) is in effect until the next enforcement run"
)


def _restarted(status: Dict[str, Any], applied_at: float) -> bool:
    """Whether the host booted after the firewall module's last record (from the status' boot time)."""
    try:
        return parse_time((status.get("platform") or {}).get("boot_time")) > applied_at
    except ValueError:
        return False


def _other_policy(policy: _Policy, policy_path: str) -> Optional[str]:
    """Why the firewall is not compared with the stored policy, or None: it expired, and the policy the
    firewall module applied last is another one (the default-restrictive policy after the grace period)."""
    if policy.compiled is None or not policy.info.get("expired") or not policy_path:
        return None
    applied = read_policy_record(policy_path).get("hash")
    if not applied or applied == policy.compiled.get("hash"):
        return None
    return (
        f"the firewall holds policy {applied}, not the expired stored one (the default-restrictive policy is "
        "enforced past the grace period); compared with what was applied only"
    )


def _privilege_hint(text: str) -> str:
    if "ermission denied" in text or "Operation not permitted" in text or "must be root" in text:
        return "; run it as root with CAP_NET_ADMIN (the distsec-audit service does)"
    return ""


# ---- output ----------------------------------------------------------------------------------------
def write_status(path: str, status: Dict[str, Any]) -> None:
    """The Security Status file, as the security_status module writes it (sorted, indent 1, mode 0640)."""
    atomic_write(path, json.dumps(status, sort_keys=True, indent=1) + "\n", mode=0o640)


def _rules_text(rules: Sequence[str], limit: int = 3) -> str:
    shown = "; ".join(rules[:limit])
    return shown + (f" (+{len(rules) - limit} more)" if len(rules) > limit else "")


def summary_line(record: Dict[str, Any], *, policy_summary: Optional[str] = None) -> str:
    """One line for the journal: `distsec-audit: ws1: profile home, 9/9 checks passed, no drift`."""
    parts: List[str] = []
    if policy_summary:
        parts.append(policy_summary)
    profile = (record.get("profile") or {}).get("name")
    if profile:
        parts.append(f"profile {profile}")
    compliance = record.get("compliance") or {}
    if compliance.get("compliant") is not None:
        total = compliance["passed"] + compliance["failed"]
        if total == 0:
            parts.append("no compliance checks")
        else:
            text = f"{compliance['passed']}/{total} checks passed"
            failed = [c["id"] for c in compliance.get("checks") or [] if not c["passed"]]
            if failed:
                text += f" (failed: {', '.join(failed[:5])}{', ...' if len(failed) > 5 else ''})"
            parts.append(text)
    firewall = record.get("firewall") or {}
    drift = record.get("drift") or {}
    if not firewall.get("backend"):
        parts.append("never enforced")
    elif drift.get("found"):
        label = "drift after a restart" if firewall.get("reason") == _RESTARTED else "drift"
        parts.append(f"{label}: {_rules_text(drift.get('rules') or [])}" if drift.get("rules") else label)
    elif record.get("changed"):
        rules = firewall.get("rules") or NO_RULES
        changes = sorted({*rules.get("added", []), *rules.get("removed", []), *rules.get("moved", [])})
        parts.append(
            f"no drift, but out of date: {firewall.get('reason')}" + (f": {_rules_text(changes)}" if changes else "")
        )
    else:
        parts.append("no drift")
    return f"distsec-audit: {record['host']}: {', '.join(parts)}"


# ---- the audit -------------------------------------------------------------------------------------
def audit(options: Options, *, run: Runner = subprocess_runner) -> Audit:
    """Audit the host. Raises AuditError when the audit cannot run, with why and what to do; the
    firewall and the trusted state are never changed, whatever happens."""
    now = time.time() if options.now is None else options.now
    host = options.host_name
    ctx = _HostContext(
        run,
        now=now,
        redirect={POLICY_JSON: options.policy_path or POLICY_JSON, FIREWALL_STATE: options.firewall_dir},
    )
    status = gather(ctx)
    warnings = [f"collector {name}: {message}" for name, message in sorted(status["errors"].items())]

    policy = stored_policy(options, now)
    decision = None
    compliance = None
    profile: Dict[str, Any] = {}
    if policy.compiled is not None:
        try:
            decision = decide(policy.compiled, status, now=now)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise AuditError(f"cannot evaluate the stored policy: {type(exc).__name__}: {exc}") from None
        compliance = compliance_of(decision.checks)
        profile = {"name": decision.profile, "reason": decision.reason}

    enforced = last_enforced(options.firewall_dir)
    watchdog = None
    try:
        if enforced is None:
            firewall: Dict[str, Any] = {
                "backend": None,
                "applied": False,
                "confirmed": None,
                "reason": f"never enforced: the firewall module has no record in {options.firewall_dir}",
                "rules": NO_RULES,
            }
            drifted = would_change = False
        else:
            name, fw_record, recorded_at = enforced
            watchdog = Watchdog(options.firewall_dir)
            try:
                # not while a firewall run applies (a half-recorded apply would look like drift)
                watchdog.lock(timeout=120)
            except (BackendError, OSError) as exc:
                watchdog = None
                raise AuditError(f"{exc}") from None
            try:
                backend = make_backend(name, options.firewall_dir, run)
                firewall, drifted, would_change = _firewall(
                    backend,
                    fw_record,
                    policy.compiled,
                    decision,
                    restarted=_restarted(status, recorded_at),
                    other_policy=_other_policy(policy, options.policy_path),
                )
            except BackendError as exc:
                raise AuditError(
                    f"cannot read what the {name} backend owns: {exc}{_privilege_hint(str(exc))}"
                ) from None
        record = run_record(
            host=host,
            mode="audit",
            result="failed" if policy.problem else "ok",
            error=policy.problem,
            changed=would_change,
            policy=policy.info,
            profile=profile,
            compliance=compliance,
            drift=drift_of(drift=drifted, rules=firewall["rules"], applied=False, mode="audit"),
            firewall=firewall,
        )
        if options.policy_path:
            compliance_now = record["compliance"]
            last_run = {**record, "compliance": {k: v for k, v in compliance_now.items() if k != "checks"}}
            try:
                write_policy_record(
                    options.policy_path,
                    {
                        "compliant": compliance_now["compliant"],
                        "checks": compliance_now["checks"],
                        "last_run": last_run,
                    },
                )
            except OSError as exc:
                raise AuditError(
                    f"cannot write the run record to {options.policy_path}: {exc.strerror or exc}; run as root"
                ) from None
    finally:
        if watchdog is not None:
            watchdog.unlock()

    if options.status_path:
        refreshed = gather(ctx, ["policy"])  # the policy record now holds this run
        if "policy" in refreshed:
            status["policy"] = refreshed["policy"]
            status["errors"].pop("policy", None)
        else:
            status["errors"]["policy"] = refreshed["errors"].get("policy", "not gathered")
        try:
            write_status(options.status_path, status)
        except OSError as exc:
            raise AuditError(
                f"cannot write the Security Status to {options.status_path}: {exc.strerror or exc}; run as root"
            ) from None

    findings = (
        policy.problem is not None
        or policy.info.get("expired")
        or (compliance is not None and not compliance["compliant"])
        or enforced is None
        or drifted
        or would_change
    )
    return Audit(
        record=record,
        exit_code=EXIT_FINDINGS if findings else EXIT_OK,
        summary=summary_line(record, policy_summary=policy.summary),
        status=status,
        warnings=warnings,
    )
