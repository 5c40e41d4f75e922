#!/usr/bin/python
# Copyright: distsec.framework contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
---
module: policy_verify
short_description: Verify a signed policy bundle on the host and keep the last good one
version_added: 0.1.0
description:
  - Verifies a signed policy bundle (made by C(distsec bundle sign) or M(distsec.framework.bundle_sign))
    on the host against the domain's trust root, and records it as the host's trusted policy when it
    passes. Returns the compiled policy for M(distsec.framework.firewall).
  - "The checks, in this order, each with a fixed reason code: size caps (C(too-large)), JSON and shapes
    (C(malformed)), the chain of newer roots (C(untrusted-root)), a threshold of distinct valid signatures
    by the root's policy keys (C(bad-signature), C(threshold-not-met)), the domain (C(wrong-domain)),
    the expiry (C(expired)), the targets (C(wrong-target)), the serial against the trusted state
    (C(rollback), C(serial-reuse)), every file's length and SHA-256 (C(hash-mismatch))."
  - "On acceptance the bundle, the newest root and the trusted state (serial, manifest hash, root version)
    are written atomically under O(state_dir), and O(policy_file) gets C(domain), C(serial) and
    C(expires). Accepting a pushed O(bundle) also removes C(last_rejection) from it; verifying the stored
    bundle again keeps it, so a refused push stays visible in the Security Status until the next
    accepted push."
  - "On rejection the task fails with C(rejected: REASON: detail), O(policy_file) gets
    C(last_rejection) (reason, detail, at), and the trusted state is left untouched: the host keeps its
    last good policy."
  - Without O(bundle), the stored accepted bundle is verified again with every check (the same serial is
    allowed), so a stored copy changed on disk is refused, and a stored policy past its expiry fails with
    reason C(expired). Nothing is deleted.
  - Idempotent. Verifying the same bundle again reports C(changed=false).
author:
  - distsec.framework team (@distsec-framework)
requirements:
  - The Python C(cryptography) package on the host (Debian and Ubuntu, C(python3-cryptography)).
options:
  bundle:
    description:
      - Path on the host of a pushed bundle (C(*.bundle.json)) to verify and, when it passes, accept.
      - When omitted, the bundle stored in O(state_dir) (the last accepted one) is verified again.
    type: path
  trust_root:
    description:
      - The domain's initial trust root (C(root.json) from C(distsec keys init)), installed out of band.
        It is copied into O(state_dir) the first time; later roots arrive in bundles.
    type: path
    default: /etc/distsec/root.json
  state_dir:
    description:
      - The host's trusted state, C(root.json), C(state.json) and C(bundle.json).
    type: path
    default: /var/lib/distsec/trust
  host:
    description:
      - This host's name, matched against the bundle's target hosts. Default is the host's short
        hostname; pass C(inventory_hostname) when the two differ.
    type: str
  groups:
    description:
      - This host's inventory groups, matched against the bundle's target groups (usually C(group_names)).
    type: list
    elements: str
    default: []
  now:
    description:
      - The time to check the expiry against, as ISO 8601 (default is the host's clock). For tests.
    type: str
  grace:
    description:
      - "Only when re-verifying the stored bundle (no O(bundle)): a stored policy that expired less than this
        long ago is still returned, with RV(expired) and RV(in_grace) true, when every other check passes. The
        policy's own C(expired_profile) then decides what the firewall enforces. Past the grace period the
        task fails with reason C(expired) as without it. A duration such as V(1d), V(12h), or V(0) (none)."
      - A pushed bundle that has expired is always refused.
    type: str
    default: "0"
  policy_file:
    description:
      - The host's policy record read by the Security Status (C(policy) collector). Empty string writes
        nothing.
    type: str
    default: /var/lib/distsec/policy.json
attributes:
  check_mode:
    support: full
    description: Verifies and reports whether the trusted state would change; writes nothing (not even
      the first copy of the trust root, nor C(last_rejection)).
  diff_mode:
    support: none
    description: The result names the serials; there is no diff.
notes:
  - A rejection is a task failure. Use C(ignore_errors) or C(failed_when) when a play must go on with
    the last good policy; RV(reason) holds the code.
  - The host's clock decides expiry. Keep it synchronised.
  - See the collection's C(docs/trust.md) for the key ceremony, every rejection reason and what to do.
seealso:
  - module: distsec.framework.bundle_sign
  - module: distsec.framework.firewall
"""

EXAMPLES = r"""
- name: Push the bundle signed on the controller
  ansible.builtin.copy:
    src: out/policy.bundle.json
    dest: /var/lib/distsec/incoming/policy.bundle.json
    mode: "0600"

- name: Verify it and make it the host's trusted policy
  distsec.framework.policy_verify:
    bundle: /var/lib/distsec/incoming/policy.bundle.json
    host: "{{ inventory_hostname }}"
    groups: "{{ group_names }}"
  register: policy

- name: Enforce the verified policy
  distsec.framework.firewall:
    compiled: "{{ policy.compiled }}"

- name: Before a later run, verify the stored bundle again (detects tampering at rest and expiry)
  distsec.framework.policy_verify:
    host: "{{ inventory_hostname }}"
    groups: "{{ group_names }}"
  register: stored
  ignore_errors: true

- name: Say why it was refused
  ansible.builtin.debug:
    msg: "kept the last good policy: {{ stored.reason }}"
  when: stored is failed and stored.reason is defined
"""

RETURN = r"""
serial:
  description: The serial of the accepted bundle.
  returned: success
  type: int
  sample: 7
domain:
  description: The Security Domain of the bundle.
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
  description: The version of the trust root the bundle was verified with (the host's newest).
  returned: success
  type: int
  sample: 1
manifest_sha256:
  description: SHA-256 of the canonical manifest (what the trusted state records).
  returned: success
  type: str
source:
  description: What was verified, the pushed bundle's path or V(stored).
  returned: always
  type: str
  sample: stored
compiled:
  description: The compiled policy carried by the bundle (its C(policy.json)), for M(distsec.framework.firewall).
  returned: success
  type: dict
expired:
  description: Whether the bundle has expired (also true when it is returned within O(grace)).
  returned: after the bundle could be read
  type: bool
in_grace:
  description: Whether the stored bundle has expired and is returned only because of O(grace).
  returned: after the bundle could be read
  type: bool
grace_until:
  description: When the grace period of an expired stored bundle ends (UTC).
  returned: when the stored bundle has expired and O(grace) is set
  type: str
reason:
  description: The rejection reason code.
  returned: when the bundle is rejected
  type: str
  sample: hash-mismatch
detail:
  description: What exactly was wrong.
  returned: when the bundle is rejected
  type: str
  sample: "file policy.json: sha256 differs from the manifest"
trusted:
  description: The host's trusted state, kept as it was (serial, manifest_sha256, root_version, accepted_at,
    domain); null before the first accepted bundle.
  returned: when the bundle is rejected
  type: dict
"""

import json
import os
import socket
import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.distsec.framework.plugins.module_utils._apply.backend import atomic_write
from ansible_collections.distsec.framework.plugins.module_utils._enforce.record import read_policy_record
from ansible_collections.distsec.framework.plugins.module_utils._evaluate.conditions import parse_time
from ansible_collections.distsec.framework.plugins.module_utils._pki.errors import BadRequest
from ansible_collections.distsec.framework.plugins.module_utils._pki.lifetime import parse_duration
from ansible_collections.distsec.framework.plugins.module_utils._trust.canonical import (
    canonical,
    format_time,
)
from ansible_collections.distsec.framework.plugins.module_utils._trust.crypto import (
    CRYPTOGRAPHY_IMPORT_ERROR,
    HAS_CRYPTOGRAPHY,
)
from ansible_collections.distsec.framework.plugins.module_utils._trust.root import (
    MAX_ROOT,
    Rejected,
    TrustError,
)
from ansible_collections.distsec.framework.plugins.module_utils._trust.state import (
    TrustStore,
    atomic_write_bytes,
    read_bundle,
    read_capped,
    read_trusted_root,
)
from ansible_collections.distsec.framework.plugins.module_utils._trust.verify import (
    compiled_policy,
    signed_expiry,
    verify_bundle,
)

STORED = "stored"


def updated_record(record, accepted=None, rejection=None, pushed=False):
    """The record after an acceptance (domain, serial, expires; a pushed bundle also removes
    last_rejection) or after a rejection (last_rejection)."""
    new = dict(record)
    if accepted is not None:
        new.update(domain=accepted.domain, serial=accepted.serial, expires=accepted.expires)
        if pushed:
            new.pop("last_rejection", None)
    if rejection is not None:
        new["last_rejection"] = rejection
    return new


def write_record(path, record):
    atomic_write(path, json.dumps(record, sort_keys=True, indent=1) + "\n", mode=0o640)


def read_input(params, store):
    """(bundle bytes, None) or (None, error message): the pushed bundle, or the stored one."""
    path = params["bundle"] or store.bundle_path
    try:
        return read_bundle(path), None
    except FileNotFoundError:
        if params["bundle"]:
            return None, f"bundle: {path} does not exist"
        return None, f"no accepted bundle is stored in {params['state_dir']}: verify a pushed one first (bundle=PATH)"
    except OSError as exc:
        return None, f"cannot read {path}: {exc.strerror or exc}"


def verify(data, store, host, groups, now):
    """(trusted state, Accepted, compiled policy, Rejected or None, TrustError message or None)."""
    state = None
    try:
        state = store.load_state()
        accepted = verify_bundle(
            data, trusted_root=read_trusted_root(store), state=state, host=host, groups=groups, now=now
        )
        return state, accepted, compiled_policy(accepted), None, None
    except Rejected as exc:
        return state, None, None, exc, None
    except TrustError as exc:
        return state, None, None, None, f"cannot verify: the host's trust data is not usable: {exc}"


def grace_seconds(text):
    """Seconds of the grace option; BadRequest when it is not a duration."""
    text = (text or "").strip()
    return 0 if text in ("", "0") else parse_duration(text, "grace")


def record_rejection(module, rejected, now):
    path = module.params["policy_file"]
    if not path or module.check_mode:
        return
    rejection = {"reason": rejected.reason, "detail": rejected.detail, "at": format_time(now)}
    try:
        write_record(path, updated_record(read_policy_record(path), rejection=rejection))
    except OSError as exc:
        module.warn(f"cannot record the rejection in {path}: {exc.strerror or exc}")


def accept(params, store, data, accepted, *, stored_root, record, now):
    """Write the trusted state and the policy record (None: nothing to record); an error message, or None."""
    try:
        if not accepted.unchanged:
            store.accept(data, accepted, now=now)  # bundle, root (when newer), then state
        elif stored_root is None:  # the same bundle, but the copy of the trusted root was missing
            os.makedirs(params["state_dir"], mode=0o700, exist_ok=True)
            atomic_write_bytes(store.root_path, canonical(accepted.root), 0o644)
    except (TrustError, OSError) as exc:
        return f"cannot write the trusted state in {params['state_dir']}: {exc}"
    if record is not None:
        try:
            write_record(params["policy_file"], record)
        except OSError as exc:
            return f"the bundle is accepted, but {params['policy_file']} cannot be written: {exc.strerror or exc}"
    return None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            bundle=dict(type="path"),
            trust_root=dict(type="path", default="/etc/distsec/root.json"),
            state_dir=dict(type="path", default="/var/lib/distsec/trust"),
            host=dict(type="str"),
            groups=dict(type="list", elements="str", default=[]),
            now=dict(type="str"),
            grace=dict(type="str", default="0"),
            policy_file=dict(type="str", default="/var/lib/distsec/policy.json"),
        ),
        supports_check_mode=True,
    )
    if not HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib("cryptography"), exception=CRYPTOGRAPHY_IMPORT_ERROR)
    params = module.params
    now = time.time()
    if params["now"]:
        now = parse_time(params["now"])
        if now is None:
            module.fail_json(msg=f"now: {params['now']!r} is not an ISO 8601 time (e.g. 2026-11-23T12:00:00Z)")
    try:
        grace = grace_seconds(params["grace"])
    except BadRequest as exc:
        module.fail_json(msg=str(exc))
    host = params["host"] or socket.gethostname().split(".", 1)[0]
    store = TrustStore(params["state_dir"], initial_root_path=params["trust_root"])
    result = dict(changed=False, source=params["bundle"] or STORED)

    data, problem = read_input(params, store)
    if problem:
        module.fail_json(msg=problem, **result)
    state, accepted, compiled, rejected, problem = verify(data, store, host, params["groups"], now)
    if problem:
        module.fail_json(msg=problem, **result)
    result.update(expired=False, in_grace=False)
    if rejected is not None and rejected.reason == "expired" and not params["bundle"] and grace:
        expires_at = signed_expiry(data)
        if expires_at is not None:
            result["grace_until"] = format_time(expires_at + grace)
            if now <= expires_at + grace:
                # every other check, as of the last second it was valid
                state, accepted, compiled, late, problem = verify(data, store, host, params["groups"], expires_at - 1)
                if problem:
                    module.fail_json(msg=problem, **result)
                if late is None:
                    rejected = None
                    result.update(expired=True, in_grace=True)
                    module.warn(
                        f"the stored policy (serial {accepted.serial}) expired at {accepted.expires}; it is kept "
                        f"until {result['grace_until']} (grace), then the host falls back to the default-restrictive "
                        "policy: publish a fresh bundle"
                    )
                else:
                    rejected = late
    if rejected is not None:
        result.update(reason=rejected.reason, detail=rejected.detail, trusted=state)
        if rejected.reason == "expired":
            result["expired"] = True
        record_rejection(module, rejected, now)
        module.fail_json(msg=f"rejected: {rejected.reason}: {rejected.detail}", **result)

    record = read_policy_record(params["policy_file"]) if params["policy_file"] else {}
    new_record = updated_record(record, accepted=accepted, pushed=bool(params["bundle"]))
    record_changed = bool(params["policy_file"]) and new_record != record
    try:
        stored_root = read_capped(store.root_path, MAX_ROOT)
    except TrustError as exc:
        stored_root, problem = None, str(exc)
    if problem:
        module.fail_json(msg=problem, **result)
    result.update(
        changed=not accepted.unchanged or stored_root is None or record_changed,
        serial=accepted.serial,
        domain=accepted.domain,
        issued=accepted.manifest["issued"],
        expires=accepted.expires,
        root_version=accepted.root_version,
        manifest_sha256=accepted.manifest_sha256,
        compiled=compiled,
    )
    if not module.check_mode:
        problem = accept(
            params,
            store,
            data,
            accepted,
            stored_root=stored_root,
            record=new_record if record_changed else None,
            now=now,
        )
        if problem:
            module.fail_json(msg=problem, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
