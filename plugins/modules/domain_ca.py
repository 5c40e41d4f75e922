#!/usr/bin/python
# Copyright: distsec.framework contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
---
module: domain_ca
short_description: The Security Domain's CA on the PDP - hand out material, sign, revoke, refresh CRLs, rotate
version_added: 0.1.0
description:
  - "Runs where the PDP directory O(pdp_dir) is (use C(delegate_to) the PDP, usually C(localhost)). It keeps the
    domain CA's registry (C(ca/db.json)): who holds which certificate serial, which hosts left the domain, and
    the CRLs in C(ca/crl.pem). The CA itself is created by the C(pdp_init) role."
  - "O(state=material) returns what a member needs: the root CA certificate, the CRL, the policy trust root
    and the PDP's clock. It regenerates the CRL first when it is due (half of O(crl_validity) has passed or the
    revocations changed). With O(host), it fails for a host that left the domain, unless O(allow_removed)."
  - "O(state=issued) checks the host's CSR (its signature, key type and that it names exactly O(identity)) and
    signs a certificate of at most O(lifetime) with the issuing CA. A host that left the domain is refused
    until it is readmitted (O(state=readmitted)). A name or an address in an unexpired certificate of another
    host is refused too (run the leave playbook for that host first)."
  - "O(state=revoked) revokes every certificate of O(hosts), bars the names and regenerates the CRLs.
    O(state=readmitted) lifts the bar on O(host). O(state=crl) regenerates the CRLs when due (and creates
    C(ca/db.json) and C(ca/crl.pem) the first time). O(state=rotated) retires the issuing CA to
    C(ca/retired/N/) and makes a new one signed by the root (it needs C(ca/root.key))."
  - Parallel tasks (one per host) are serialised by a lock on C(ca/db.lock); the registry and the CRL file are
    replaced atomically.
author:
  - distsec.framework team (@distsec-framework)
requirements:
  - The Python C(cryptography) package where the task runs.
options:
  pdp_dir:
    description: The PDP directory (C(domain.json), C(ca/), C(keys/)), made by the C(pdp_init) role.
    type: path
    required: true
  state:
    description: What to do; see the description.
    type: str
    choices: [material, issued, revoked, readmitted, crl, rotated]
    default: material
  host:
    description:
      - The inventory name of the host. Required for O(state=issued) and O(state=readmitted); with
        O(state=material) it is checked against the hosts that left the domain.
    type: str
  hosts:
    description: The inventory names of the hosts that leave the domain (O(state=revoked)).
    type: list
    elements: str
  csr:
    description: The host's certificate signing request, PEM (O(state=issued)).
    type: str
  identity:
    description:
      - The identity the inventory gives the host (O(state=issued)); the CSR must name exactly this.
        The certificate's subjectAltName is made from it, not from the CSR.
    type: dict
    suboptions:
      name:
        description: The certificate's common name (default O(host)); a DNS name too when it is a hostname.
        type: str
      dns:
        description: More DNS names.
        type: list
        elements: str
        default: []
      ip:
        description: The host's IP addresses.
        type: list
        elements: str
        default: []
  lifetime:
    description:
      - The certificate lifetime (O(state=issued)), a duration such as V(30d), V(12h) or V(1d12h) (60 seconds
        to 825 days). It is shorter when the issuing CA expires earlier (then a warning says so).
    type: str
    default: 30d
  passphrase:
    description: The passphrase of the CA keys, when they are encrypted.
    type: str
  crl_validity:
    description:
      - How long a CRL is valid; it is regenerated after half of it.
      - When given, it is recorded in the registry; when omitted, the recorded value is used (C(14d) if
        none was ever given). The pdp_init role gives it, so joins and leaves re-sign the CRL on the
        schedule the admin chose.
    type: str
  issuing_lifetime:
    description: The lifetime of a new issuing CA (O(state=rotated)); capped at the root CA's expiry.
    type: str
    default: 1825d
  allow_removed:
    description: With O(state=material), do not fail for a host that left the domain (the leave playbook).
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Checks everything and reports what would change; writes nothing. O(state=issued) returns
      C(changed=true) and neither RV(certificate) nor RV(serial).
  diff_mode:
    support: none
    description: The result names the serials; there is no diff.
notes:
  - The root CA key is only needed for O(state=rotated); it may be kept offline otherwise.
  - See the collection's C(docs/domain.md) for joining, leaving and rotation.
seealso:
  - module: distsec.framework.domain_member
"""

EXAMPLES = r"""
- name: What this host needs from the PDP (fails if it left the domain)
  distsec.framework.domain_ca:
    pdp_dir: /srv/distsec
    host: "{{ inventory_hostname }}"
    passphrase: "{{ domain_join_ca_passphrase | default(omit) }}"
  delegate_to: localhost
  register: material

- name: Sign the host's request
  distsec.framework.domain_ca:
    pdp_dir: /srv/distsec
    state: issued
    host: "{{ inventory_hostname }}"
    csr: "{{ plan.csr }}"
    identity:
      name: "{{ inventory_hostname }}"
      ip: ["{{ ansible_host }}"]
    lifetime: 30d
  delegate_to: localhost
  register: issued

- name: Two hosts leave the domain
  distsec.framework.domain_ca:
    pdp_dir: /srv/distsec
    state: revoked
    hosts: [web-1, web-2]
  run_once: true
  delegate_to: localhost

- name: Let web-1 join again
  distsec.framework.domain_ca:
    pdp_dir: /srv/distsec
    state: readmitted
    host: web-1
  delegate_to: localhost
"""

RETURN = r"""
domain:
  description: The Security Domain (from C(domain.json); null only for O(state=crl) and O(state=rotated) before
    C(pdp_init) wrote it).
  returned: success
  type: str
  sample: example.org
ca:
  description: The root CA certificate, PEM (the hosts' trust anchor).
  returned: success
  type: str
ca_fingerprint:
  description: SHA-256 of the root CA certificate (hex).
  returned: success
  type: str
crl:
  description: The CRLs of the current and the retired issuing CAs, PEM (null before the first O(state=crl)).
  returned: success
  type: str
trust_root:
  description:
    - The policy trust root C(keys/root.json), or null when there is none.
    - ansible-core before 2.19 turns this text into a mapping when it is templated into another task's
      argument; pass RV(trust_root_b64) on instead.
  returned: success
  type: str
trust_root_b64:
  description: The exact bytes of C(keys/root.json), base64-encoded, or null when there is none.
  returned: success
  type: str
now:
  description: The PDP's clock (UNIX time), for the hosts' clock check.
  returned: success
  type: float
removed:
  description: When and with which serials O(host) left the domain; null for a member.
  returned: success
  type: dict
  sample: {removed_at: 1795433031, serials: [7A1B3A402396FEE0]}
certificate:
  description: The signed certificate, PEM.
  returned: O(state=issued), not in check mode
  type: str
chain:
  description: The issuing CA certificate, PEM.
  returned: O(state=issued)
  type: str
serial:
  description: The certificate's serial, upper-case hex as openssl prints it.
  returned: O(state=issued), not in check mode
  type: str
not_before:
  description: The certificate's notBefore (UNIX time).
  returned: O(state=issued)
  type: int
not_after:
  description: The certificate's notAfter (UNIX time).
  returned: O(state=issued)
  type: int
revoked:
  description: The certificates revoked, each C(host) and C(serial).
  returned: O(state=revoked)
  type: list
  elements: dict
unknown:
  description: The hosts of O(hosts) with no certificate in the registry (barred nonetheless).
  returned: O(state=revoked)
  type: list
  elements: str
readmitted:
  description: Whether O(host) had left the domain and was readmitted.
  returned: O(state=readmitted)
  type: bool
rotation:
  description: The rotation, C(retired) (N of C(ca/retired/N)), C(retired_fingerprint), C(fingerprint),
    C(not_after).
  returned: O(state=rotated)
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.distsec.framework.plugins.module_utils._pki.ca import DomainCA
from ansible_collections.distsec.framework.plugins.module_utils._pki.errors import BadRequest, PkiError
from ansible_collections.distsec.framework.plugins.module_utils._pki.identity import parse_identity
from ansible_collections.distsec.framework.plugins.module_utils._pki.lifetime import (
    check_lifetime,
    parse_duration,
)
from ansible_collections.distsec.framework.plugins.module_utils._pki.x509 import CRYPTOGRAPHY_ERROR, HAS_CRYPTOGRAPHY

MATERIAL_KEYS = ("domain", "ca", "ca_fingerprint", "crl", "trust_root", "trust_root_b64", "now", "removed")


def _need(params, state, *names):
    for name in names:
        if not params.get(name):
            raise BadRequest(f"state={state} needs {name}")


def run(module):
    """The module's result (a dict); raises PkiError / OSError."""
    params = module.params
    state, host, check = params["state"], params["host"], module.check_mode
    crl_validity = None if params["crl_validity"] is None else parse_duration(params["crl_validity"], "crl_validity")
    ca = DomainCA(params["pdp_dir"], passphrase=params["passphrase"], crl_validity=crl_validity)
    result = {"changed": False}
    strict = state not in ("crl", "rotated")

    if state == "material":
        if host and not params["allow_removed"]:
            ca.check_host(host)
    elif state == "issued":
        _need(params, state, "host", "csr", "identity")
        identity = parse_identity(params["identity"], default_name=host)
        lifetime = check_lifetime(parse_duration(params["lifetime"]))
        try:
            issued = ca.issue(host, params["csr"], identity, lifetime, check=check)
        except (PkiError, OSError):
            raise
        except Exception as exc:  # noqa: BLE001 - a crafted CSR can make cryptography raise anything
            raise BadRequest(f"the CSR cannot be used: {str(exc) or type(exc).__name__}") from None
        for warning in issued.pop("warnings"):
            module.warn(warning)
        issued.pop("fingerprint")
        # check mode: no certificate and no serial (the keys are left out, not null)
        result.update({k: v for k, v in issued.items() if v is not None}, changed=True)
    elif state == "revoked":
        if params["hosts"] is None:
            raise BadRequest("state=revoked needs hosts (a list, may be empty)")
        done = ca.revoke_hosts(params["hosts"], check=check)
        result.update(changed=done["changed"], revoked=done["revoked"], unknown=done["unknown"])
    elif state == "readmitted":
        _need(params, state, "host")
        readmitted = ca.readmit(host, check=check)
        result.update(changed=readmitted, readmitted=readmitted)
    elif state == "crl":
        result["changed"] = ca.refresh_crl(check=check)
    elif state == "rotated":
        lifetime = parse_duration(params["issuing_lifetime"], "issuing_lifetime")
        rotation = ca.rotate_issuing(lifetime=lifetime, check=check)
        result.update(changed=rotation.pop("changed"), rotation=rotation)

    material = ca.material(
        host if state in ("material", "issued", "readmitted") else None, write=not check, strict=strict
    )
    if state == "material":
        result["changed"] = material["crl_due"] if check else material["crl_refreshed"]
    else:
        result["changed"] = result["changed"] or (material["crl_due"] if check else material["crl_refreshed"])
    result.update({key: material[key] for key in MATERIAL_KEYS})
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            pdp_dir=dict(type="path", required=True),
            state=dict(
                type="str",
                default="material",
                choices=["material", "issued", "revoked", "readmitted", "crl", "rotated"],
            ),
            host=dict(type="str"),
            hosts=dict(type="list", elements="str"),
            csr=dict(type="str"),
            identity=dict(
                type="dict",
                options=dict(
                    name=dict(type="str"),
                    dns=dict(type="list", elements="str", default=[]),
                    ip=dict(type="list", elements="str", default=[]),
                ),
            ),
            lifetime=dict(type="str", default="30d"),
            passphrase=dict(type="str", no_log=True),
            crl_validity=dict(type="str"),
            issuing_lifetime=dict(type="str", default="1825d"),
            allow_removed=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    if not HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib("cryptography"), exception=CRYPTOGRAPHY_ERROR)
    host = module.params["host"]
    try:
        result = run(module)
    except (PkiError, OSError) as exc:
        text = str(exc) if not isinstance(exc, OSError) else f"{exc.filename or ''}: {exc.strerror or exc}"
        module.fail_json(msg=f"{host}: {text}" if host else text)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
