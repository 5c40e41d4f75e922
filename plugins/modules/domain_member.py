#!/usr/bin/python
# Copyright: distsec.framework contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
---
module: domain_member
short_description: The host side of the Security Domain PKI (enrol, renew, refresh, leave)
version_added: 0.1.0
description:
  - Manages this host's membership of the Security Domain under O(root) (C(/etc/distsec)) - its key,
    its certificate issued by the domain's issuing CA, the chain, the root CA, the CRL and the policy
    trust root. The roles C(domain_join) and C(domain_leave) call it with M(distsec.framework.domain_ca)
    running on the PDP.
  - "O(state=planned) decides whether the host needs a (new) certificate. It checks the host's clock
    against the PDP's (O(pdp_time)), then that every address of O(identity) is configured on the host,
    then compares what is installed with what the inventory asks for. When a certificate is needed it
    stages a new private key in C(pki/staging/TOKEN/) (mode 0600, never returned) and returns its CSR
    and the request's token."
  - "O(state=present) installs the certificate issued for the staged request (O(token), O(certificate),
    O(chain), O(ca)). Everything is checked first (the key, the identity, the chain up to the root, the
    dates); then the whole set is written to C(pki/SERIAL/) and switched to at once by renaming a
    symlink, so a crash leaves the previous set or the new one. The CRL (O(crl)) and trust root
    (O(trust_root)) are replaced when they differ. Without O(certificate), only the CRL, the trust root
    and a re-issued root CA certificate are refreshed."
  - "O(state=absent) leaves the domain: removes the key, the certificates, the CRL and the trust root
    and records C(state: left) in C(domain.json)."
  - O(state=aborted) removes a staged request (the rescue of a failed join).
  - Every failure names the host and leaves its last good membership in place.
author:
  - distsec.framework team (@distsec-framework)
requirements:
  - The Python C(cryptography) package on the host (Debian and Ubuntu, C(python3-cryptography)).
  - The C(ip) command (iproute2) when O(identity) has addresses.
options:
  state:
    description:
      - What to do, see the description.
    type: str
    choices: [planned, present, absent, aborted]
    required: true
  root:
    description:
      - The directory of the host's domain files. Change it for tests only.
    type: path
    default: /etc/distsec
  domain:
    description:
      - The Security Domain's name (from M(distsec.framework.domain_ca)'s C(domain)).
      - Required with O(state=planned) and with O(certificate).
    type: str
  host:
    description:
      - The inventory name of the host, used in messages and recorded in C(domain.json).
      - Default is the name of O(identity), else the host's short hostname.
    type: str
  identity:
    description:
      - "The host's identity as the inventory says: C(name) (the certificate's CN, the inventory name),
        C(dns) (list of DNS names) and C(ip) (list of addresses, each must be configured on the host)."
      - Required with O(state=planned) and with O(certificate).
    type: dict
  key_type:
    description:
      - The type of a new key.
    type: str
    choices: [ecdsa-p256, ed25519]
    default: ecdsa-p256
  lifetime:
    description:
      - "The domain's certificate lifetime limit (V(30d), V(12h), V(2w), seconds): a certificate
        whose lifetime is longer is re-issued."
    type: str
    default: 30d
  renew_fraction:
    description:
      - The part of a certificate's lifetime after which it is renewed.
    type: float
    default: 0.6667
  ca_fingerprint:
    description:
      - SHA-256 fingerprint (hex) of the domain's root CA certificate; a host holding another root
        is re-issued. Not compared when omitted.
    type: str
  pdp_time:
    description:
      - The PDP's clock as a UNIX time (C(now) of M(distsec.framework.domain_ca)). The clock check is
        skipped when omitted.
    type: float
  max_clock_skew:
    description:
      - The largest difference in seconds allowed between the host's clock and O(pdp_time).
    type: int
    default: 300
  reissue:
    description:
      - Ask for a new certificate even when the installed one is fine.
    type: bool
    default: false
  token:
    description:
      - The token returned by O(state=planned) for the staged request. Required with O(certificate).
    type: str
  certificate:
    description:
      - The host certificate (PEM) issued for the staged request.
    type: str
  chain:
    description:
      - The issuing CA certificate (PEM) that signed O(certificate). Required with O(certificate).
    type: str
  ca:
    description:
      - The domain's root CA certificate (PEM), the trust anchor. Required with O(certificate).
    type: str
  crl:
    description:
      - The domain's CRLs (PEM, one per issuing CA). One of them must be signed by the host's issuing CA.
      - With O(state=planned), a certificate these CRLs revoke is replaced (a host readmitted after a
        leave it did not see still holds its revoked set).
    type: str
  trust_root:
    description:
      - The policy trust root (text of C(root.json), see C(docs/trust.md)), written to C(ROOT/root.json).
      - Prefer O(trust_root_b64) from a playbook. ansible-core before 2.19 turns a templated string that
        holds a JSON object into a mapping, which would reach the module as a Python repr.
    type: str
  trust_root_b64:
    description:
      - The policy trust root as base64 of the exact file bytes (RV(distsec.framework.domain_ca#module:trust_root_b64)).
        Wins over O(trust_root).
    type: str
  refresh_only:
    description:
      - With O(state=present) and no O(certificate), leave a host that is not a member alone
        (RV(member=false)) instead of failing.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Every check runs; nothing is written (O(state=planned) then returns no CSR).
  diff_mode:
    support: partial
    description: "O(state=present) and O(state=absent) give a summary before and after: serial, not_after,
      identity and the number of revoked serials in the CRL. Never key material."
notes:
  - Run as root. The private key never leaves the host and never appears in a result or a message.
  - See the collection's C(docs/domain.md) for joining, renewing and leaving.
seealso:
  - module: distsec.framework.domain_ca
"""

EXAMPLES = r"""
- name: Fetch the domain's material from the PDP
  distsec.framework.domain_ca:
    pdp_dir: /srv/distsec
    host: "{{ inventory_hostname }}"
  delegate_to: pdp.example.org
  register: material

- name: Does this host need a certificate?
  distsec.framework.domain_member:
    state: planned
    domain: "{{ material.domain }}"
    host: "{{ inventory_hostname }}"
    identity:
      name: "{{ inventory_hostname }}"
      dns: []
      ip: ["{{ ansible_host }}"]
    ca_fingerprint: "{{ material.ca_fingerprint }}"
    pdp_time: "{{ material.now }}"
  register: plan

- name: Sign the request on the PDP
  distsec.framework.domain_ca:
    pdp_dir: /srv/distsec
    state: issued
    host: "{{ inventory_hostname }}"
    csr: "{{ plan.csr }}"
    identity:
      name: "{{ inventory_hostname }}"
      ip: ["{{ ansible_host }}"]
  delegate_to: pdp.example.org
  register: issued
  when: plan.csr is defined

- name: Install the certificate, the CRL and the trust root
  distsec.framework.domain_member:
    state: present
    domain: "{{ material.domain }}"
    host: "{{ inventory_hostname }}"
    identity:
      name: "{{ inventory_hostname }}"
      ip: ["{{ ansible_host }}"]
    token: "{{ plan.token | default(omit) }}"
    certificate: "{{ issued.certificate | default(omit) }}"
    chain: "{{ issued.chain | default(omit) }}"
    ca: "{{ material.ca }}"
    crl: "{{ material.crl }}"
    trust_root: "{{ material.trust_root | default(omit, true) }}"

- name: Leave the domain
  distsec.framework.domain_member:
    state: absent
    domain: example.org
    host: "{{ inventory_hostname }}"
"""

RETURN = r"""
needed:
  description: Whether the host needs a (new) certificate.
  returned: state=planned
  type: bool
  sample: true
reason:
  description: Why a certificate is needed (null when not).
  returned: state=planned
  type: str
  sample: 67% of its lifetime has passed (renewal was due 2h ago)
csr:
  description: The CSR (PEM) of the staged key, for M(distsec.framework.domain_ca) O(state=issued).
  returned: state=planned, when needed and not in check mode
  type: str
token:
  description: The staged request's token, for O(state=present).
  returned: state=planned, when needed and not in check mode
  type: str
  sample: 3f2a9c0d1e4b5a69
current:
  description: The installed certificate (serial, not_after, renew_at; UTC times), null when there is none.
  returned: state=planned
  type: dict
  sample: {"serial": "6A1F03", "not_after": "2026-12-23T10:00:00Z", "renew_at": "2026-12-13T10:00:00Z"}
skew:
  description: The host's clock minus the PDP's in seconds (null without O(pdp_time)).
  returned: state=planned
  type: float
  sample: 0.8
changed_files:
  description: "The files that changed (or would change): host.key, host.crt, chain.crt, ca.crt, domain.json,
    crl.pem, root.json."
  returned: state=present
  type: list
  elements: str
  sample: [host.key, host.crt, domain.json]
member:
  description: Whether the host is a member of the domain after the task.
  returned: state=present
  type: bool
serial:
  description: The serial of the installed certificate (upper-case hex).
  returned: state=present, when the host is a member
  type: str
not_after:
  description: When the installed certificate expires (UTC).
  returned: state=present, when the host is a member
  type: str
  sample: "2026-12-23T10:00:00Z"
renew_at:
  description: When the installed certificate is due for renewal (UTC).
  returned: state=present, when the host is a member
  type: str
  sample: "2026-12-13T10:00:00Z"
removed:
  description: What O(state=absent) removed (or would remove).
  returned: state=absent
  type: list
  elements: str
  sample: [host.key, host.crt, chain.crt, ca.crt, pki, crl.pem, root.json, domain.json]
broken:
  description: Why the installed membership does not load (O(refresh_only) leaves such a host alone).
  returned: state=present with refresh_only, when the membership is broken
  type: str
"""

import base64
import contextlib
import socket
import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.distsec.framework.plugins.module_utils._pki.errors import BadRequest, ClockSkew, PkiError
from ansible_collections.distsec.framework.plugins.module_utils._pki.identity import parse_identity
from ansible_collections.distsec.framework.plugins.module_utils._pki.lifetime import (
    backdate_for,
    check_clock,
    check_lifetime,
    format_duration,
    parse_duration,
    renew_at,
)
from ansible_collections.distsec.framework.plugins.module_utils._pki.member import (
    MemberStore,
    check_crl,
    crl_serial_count,
    format_time,
)
from ansible_collections.distsec.framework.plugins.module_utils._pki.x509 import (
    CRYPTOGRAPHY_ERROR,
    HAS_CRYPTOGRAPHY,
    load_certificate,
    not_after,
    not_before,
    serial_hex,
)


class Failure(Exception):
    """A message for fail_json (the host's name is added)."""


def _read_text(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return None


def _summary(store):
    """What diff mode shows: never key material."""
    current = store.current()
    crl = _read_text(store.crl_path)
    if current is None:
        return {"member": False, "crl_serials": crl_serial_count(crl)}
    if "broken" in current:
        return {"member": False, "broken": current["broken"], "crl_serials": crl_serial_count(crl)}
    ident = current["identity"]
    return {
        "member": True,
        "serial": current["serial"],
        "not_after": format_time(current["not_after"]),
        "identity": {"name": ident["name"], "dns": ident["dns"], "ip": ident["ip"]},
        "crl_serials": crl_serial_count(crl),
    }


def _need(params, *names, what):
    missing = [name for name in names if not params.get(name)]
    if missing:
        raise Failure(f"{what} needs {', '.join(missing)}")


def planned(module, store, host, identity):
    params = module.params
    _need(params, "domain", "identity", what="state=planned")
    skew = None
    limit = check_lifetime(parse_duration(params["lifetime"]))
    if params["pdp_time"] is not None:
        skew = check_clock(time.time(), params["pdp_time"], params["max_clock_skew"], host)
        backdate = backdate_for(limit)
        if skew < -backdate:
            raise ClockSkew(
                f"{host}: the clock is {format_duration(-skew)} behind the PDP's: a new certificate is valid from "
                f"{format_duration(backdate)} before the PDP's time, so it would not be valid yet here; "
                "fix the host's time (NTP) and run the join again"
            )
    store.check_addresses(identity)
    reason = store.plan(
        identity,
        domain=params["domain"],
        key_type=params["key_type"],
        max_lifetime=limit,
        fraction=params["renew_fraction"],
        ca_fingerprint=params["ca_fingerprint"],
        reissue=params["reissue"],
        crl=params["crl"],
    )
    current = store.current()
    summary = None
    if current is not None and "broken" not in current:
        summary = {
            "serial": current["serial"],
            "not_after": format_time(current["not_after"]),
            "renew_at": format_time(renew_at(current["not_before"], current["not_after"], params["renew_fraction"])),
        }
    result = {"changed": bool(reason), "needed": bool(reason), "reason": reason, "current": summary, "skew": skew}
    if reason and not module.check_mode:
        token, csr = store.stage(identity, params["key_type"])
        result.update(token=token, csr=csr)
    return result


def _differs(path, text):
    """Whether the PEM file at `path` would be replaced by `text` (written with one final newline)."""
    return bool(text) and _read_text(path) != text.strip() + "\n"


def present(module, store, host, identity):
    params = module.params
    check = module.check_mode
    fraction = params["renew_fraction"]
    changed_files = []
    if params["certificate"]:
        _need(params, "token", "chain", "ca", "domain", "identity", what="installing a certificate")
        try:
            chain = load_certificate(params["chain"], "chain (issuing CA certificate)")
        except BadRequest as exc:
            raise Failure(f"{exc}; nothing was installed") from None
        if params["crl"]:  # refused before anything is installed
            check_crl(params["crl"], chain)
        changed_files += store.install(
            params["token"],
            certificate=params["certificate"],
            chain=params["chain"],
            ca=params["ca"],
            domain=params["domain"],
            identity=identity,
            host=host,
            check=check,
        )
        if check:
            cert = load_certificate(params["certificate"])
            if _differs(store.crl_path, params["crl"]):
                changed_files.append("crl.pem")
            if params["trust_root"] and _read_text(store.trust_root_path) != params["trust_root"]:
                changed_files.append("root.json")
            start, end = not_before(cert), not_after(cert)
            return {
                "changed": True,
                "changed_files": changed_files,
                "member": True,
                "serial": serial_hex(cert),
                "not_after": format_time(end),
                "renew_at": format_time(renew_at(start, end, fraction)),
            }
    else:
        current = store.current()
        if current is None or "broken" in current:
            if params["refresh_only"]:
                result = {"changed": False, "changed_files": [], "member": False}
                if current is not None:
                    result["broken"] = current["broken"]
                    module.warn(f"{host}: the membership is broken ({current['broken']}): left alone; run the join")
                return result
            if current is None:
                raise Failure(
                    "this host is not a member of the domain and no certificate was given: "
                    "run the join (state=planned, domain_ca state=issued, then state=present with the certificate)"
                )
    changed_files += [
        name
        for name in store.refresh(ca=params["ca"], crl=params["crl"], trust_root=params["trust_root"], check=check)
        if name not in changed_files
    ]
    current = store.current()
    return {
        "changed": bool(changed_files),
        "changed_files": changed_files,
        "member": True,
        "serial": current["serial"],
        "not_after": format_time(current["not_after"]),
        "renew_at": format_time(renew_at(current["not_before"], current["not_after"], fraction)),
    }


def _after_summary(module, store, before, result):
    """The diff's 'after' side; in check mode computed from the inputs."""
    if not module.check_mode:
        return _summary(store)
    after = dict(before)
    params = module.params
    if params["certificate"]:
        after.pop("broken", None)
        after.update(
            member=True,
            serial=result["serial"],
            not_after=result["not_after"],
            identity=parse_identity(params["identity"]).as_dict(),
        )
    if params["crl"] and "crl.pem" in result.get("changed_files", []):
        after["crl_serials"] = crl_serial_count(params["crl"])
    return after


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", required=True, choices=["planned", "present", "absent", "aborted"]),
            root=dict(type="path", default="/etc/distsec"),
            domain=dict(type="str"),
            host=dict(type="str"),
            identity=dict(type="dict"),
            key_type=dict(type="str", default="ecdsa-p256", choices=["ecdsa-p256", "ed25519"], no_log=False),
            lifetime=dict(type="str", default="30d"),
            renew_fraction=dict(type="float", default=0.6667),
            ca_fingerprint=dict(type="str"),
            pdp_time=dict(type="float"),
            max_clock_skew=dict(type="int", default=300),
            reissue=dict(type="bool", default=False),
            token=dict(type="str", no_log=False),
            trust_root_b64=dict(type="str"),
            certificate=dict(type="str"),
            chain=dict(type="str"),
            ca=dict(type="str"),
            crl=dict(type="str"),
            trust_root=dict(type="str"),
            refresh_only=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    if not HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib("cryptography"), exception=CRYPTOGRAPHY_ERROR)
    params = module.params
    state = params["state"]
    host = params["host"] or (params["identity"] or {}).get("name") or socket.gethostname().split(".", 1)[0]
    store = MemberStore(params["root"])
    result = {"changed": False}
    try:
        if params["trust_root_b64"]:
            try:
                params["trust_root"] = base64.b64decode(params["trust_root_b64"], validate=True).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                raise Failure("trust_root_b64 is not base64 of a UTF-8 text") from None
        # Two runs on one host (two admins, a timer and a playbook) never interleave their steps.
        with contextlib.nullcontext() if module.check_mode else store.locked():
            result = run(module, store, host, state)
    except (PkiError, Failure, OSError) as exc:
        message = str(exc)
        if not message.startswith(f"{host}: "):
            message = f"{host}: {message}"
        module.fail_json(msg=message, **result)
    module.exit_json(**result)


def run(module, store, host, state):
    params = module.params
    result = {"changed": False}
    identity = parse_identity(params["identity"], default_name=host) if params["identity"] else None
    if state == "planned":
        result = planned(module, store, host, identity)
    elif state == "present":
        before = _summary(store) if module._diff else None
        result = present(module, store, host, identity)
        if module._diff:
            result["diff"] = {"before": before, "after": _after_summary(module, store, before, result)}
    elif state == "absent":
        before = _summary(store) if module._diff else None
        removed = store.leave(params["domain"], host, check=module.check_mode)
        result = {"changed": bool(removed), "removed": removed}
        if module._diff:
            after = {"member": False, "crl_serials": None} if removed else before
            result["diff"] = {"before": before, "after": after}
    else:
        changed = store.abort(params["token"], check=module.check_mode)
        result = {"changed": changed}
    return result


if __name__ == "__main__":
    main()
