"""Fleet report fixtures: entries built with the run record's own builders and realistic statuses.

ws1: compliant, enforce run that fixed drift, its pushed bundle refused (the stored one enforced)
ws2: non-compliant (libssl-patched failed, critical -> isolated), no drift
ws3: unreachable (no facts)
ws4: the run failed at the firewall task
ws5: audit run (check mode) that found drift, certificate revoked
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from ansible_collections.distsec.framework.plugins.module_utils._enforce.record import (
    compliance_of,
    drift_of,
    run_record,
)

TOP = Path(__file__).resolve().parents[3]
WORKSTATION = TOP / "docs" / "examples" / "enterprise" / "status" / "workstation.json"
DOMAIN = "corp.example.org"
AT = "2026-11-23T12:00:00Z"
GENERATED = "2026-11-23T12:05:00Z"

CHECKS = [
    {"id": "firewall-active", "description": "nftables is active", "severity": "high", "passed": True,
     "on_fail": "isolated", "unknown": []},
    {"id": "libssl-patched", "description": "libssl3 is at least 3.0.15", "severity": "critical", "passed": True,
     "on_fail": "isolated", "unknown": []},
    {"id": "av-signatures", "description": "ClamAV signatures newer than 2 days", "severity": "medium",
     "passed": True, "on_fail": "quarantine", "unknown": []},
]  # fmt: skip


def status(host, *, serial=7, profile="home", cert_serial="3A5F0C12D4E5F60718293A4B5C6D7E8F90A1B2C3", valid=True,
           revoked=False, reason=None):  # fmt: skip
    """A Security Status as the security_status module returns it (collectors the report reads)."""
    data = json.loads(WORKSTATION.read_text())
    data["schema_version"] = 1
    data["collected_at"] = AT
    data["domain"] = {
        "enrolled": True,
        "domain": DOMAIN,
        "state": "member",
        "host": host,
        "left_at": None,
        "certificate": {
            "subject": f"CN={host}.{DOMAIN}",
            "issuer": f"CN={DOMAIN} issuing CA 1",
            "serial": cert_serial,
            "not_before": "2026-09-01T00:00:00Z",
            "not_after": "2026-12-01T00:00:00Z",
            "fingerprint_sha256": "AB:CD",
            "valid": valid,
            "revoked": revoked,
            "days_left": 7.5,
            "reason": reason,
        },
    }
    data["policy"] = {
        "domain": DOMAIN,
        "serial": serial,
        "hash": "sha256:" + "ab" * 32,
        "applied_at": AT,
        "expires": "2026-11-30T12:00:00Z",
        "profile": profile,
        "last_rejection": None,
    }
    return data


def _policy(serial=7, source="stored", rejected=None):
    return {"source": source, "serial": serial, "domain": DOMAIN, "expires": "2026-11-30T12:00:00Z",
            "expired": False, "in_grace": False, "rejected": rejected}  # fmt: skip


def _firewall(applied, reason=None, removed=()):
    return {"backend": "nftables", "applied": applied, "confirmed": applied, "reason": reason,
            "rules": {"added": [], "removed": list(removed), "moved": []}}  # fmt: skip


def entries():
    """The five hosts above, as the report action builds them."""
    drifted = ["input: ?: tcp dport 9999 accept"]
    ws1 = run_record(
        host="ws1",
        mode="enforce",
        changed=True,
        at=AT,
        policy=_policy(rejected={"reason": "bad-signature", "detail": "signature 1 of 1 does not verify"}),
        profile={"name": "home", "reason": "no selection matched: the default profile"},
        compliance=compliance_of(CHECKS),
        drift=drift_of(drift=True, rules={"removed": drifted}, applied=True, mode="enforce"),
        firewall=_firewall(True, "drift: changed outside distsec since it was applied", drifted),
    )
    failing = copy.deepcopy(CHECKS)
    failing[1]["passed"] = False
    ws2 = run_record(
        host="ws2",
        mode="enforce",
        at=AT,
        policy=_policy(source="pushed", serial=8),
        profile={"name": "isolated", "reason": "check libssl-patched failed (on_fail: isolated)"},
        compliance=compliance_of(failing),
        drift=drift_of(drift=False, rules=None, applied=False, mode="enforce"),
        firewall=_firewall(True, "profile changed: home -> isolated"),
    )
    ws4 = run_record(
        host="ws4",
        mode="enforce",
        result="failed",
        error="Apply the policy: nft -f failed: Error: Could not process rule: No such file or directory",
        at=AT,
    )
    unknown = copy.deepcopy(CHECKS)
    unknown[2].update(passed=False, unknown=["antivirus.signatures_age"])
    audit_rules = ["input: ?: tcp dport 23 accept", "output: block-telnet"]
    ws5 = run_record(
        host="ws5",
        mode="audit",
        at=AT,
        policy=_policy(),
        profile={"name": "home", "reason": "no selection matched: the default profile"},
        compliance=compliance_of(unknown),
        drift=drift_of(
            drift=True, rules={"added": audit_rules[1:], "removed": audit_rules[:1]}, applied=False, mode="audit"
        ),
        firewall=_firewall(False, "drift: changed outside distsec since it was applied"),
    )
    return [
        {"host": "ws1", "status": status("ws1"), "run": ws1, "reachable": True},
        {"host": "ws2", "status": status("ws2", serial=8, profile="isolated", cert_serial="0F11"), "run": ws2,
         "reachable": True},
        {"host": "ws3", "status": None, "run": None, "reachable": False},
        {"host": "ws4", "status": status("ws4", cert_serial="7C2B99E0"), "run": ws4, "reachable": True},
        {"host": "ws5", "status": status("ws5", cert_serial="51AF", valid=False, revoked=True, reason="revoked"),
         "run": ws5,
         "reachable": True},
    ]  # fmt: skip


def write_entries(directory, items=None):
    """DIRECTORY/hosts/HOST.json for each entry (as the action writes them); the directory."""
    hosts = Path(directory) / "hosts"
    hosts.mkdir(parents=True, exist_ok=True)
    for entry in entries() if items is None else items:
        (hosts / f"{entry['host']}.json").write_text(json.dumps(entry, indent=1))
    return Path(directory)
