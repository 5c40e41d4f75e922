# PRIVATE: Security Status collector "domain": the host's enrolment and its domain certificate.
#
# The certificate (/etc/distsec/host.crt) is read with the openssl command: the standard
# library cannot parse X.509. Only public facts are reported; no key file is ever opened.
#   valid    now (ctx.now) is within notBefore..notAfter, the chain verifies against
#            /etc/distsec/ca.crt when that file exists (with the issuing CA from
#            /etc/distsec/chain.crt as an untrusted intermediate when that file exists: the
#            domain_member module installs the root as ca.crt and the issuing CA as chain.crt),
#            and the certificate is not revoked.
#   revoked  from /etc/distsec/crl.pem (with ca.crt): true when openssl reports it revoked,
#            false when the CRL check passed, null without CRL or CA file or when the CRL
#            itself cannot be used (expired, not yet valid, bad signature, unreadable).
#   reason   why valid is false or revoked is null; null otherwise (an addition to the
#            documented shape, for people).
#   state    "member" / "left" from domain.json (null without it), with host and left_at; after
#            leaving (no host.crt) enrolled is false and state "left".
# Verification runs `openssl verify -attime ctx.now`, so the whole answer uses one clock.
# A host.crt that openssl cannot read raises CollectorError (a broken enrolment is not
# "valid false": there is no certificate to describe).
from __future__ import annotations

import datetime
import re
from typing import Any, Dict, List, Optional, Set, Tuple

from ansible_collections.distsec.framework.plugins.module_utils._status.base import (
    CollectorError,
    Context,
    collector,
)

__all__ = ["CA", "CERT", "CHAIN", "CRL", "DOMAIN_JSON", "collect_domain", "parse_openssl_date"]

DOMAIN_JSON = "/etc/distsec/domain.json"
CERT = "/etc/distsec/host.crt"
CA = "/etc/distsec/ca.crt"
CHAIN = "/etc/distsec/chain.crt"
CRL = "/etc/distsec/crl.pem"

_MONTHS = {
    m: i for i, m in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1)
}
_ERROR_RE = re.compile(r"^error (\d+) at (\d+) depth lookup: ?(.*)$", re.MULTILINE)
# openssl verify error codes raised after the CRL check passed (chain order in x509_vfy.c):
# 9 certificate is not yet valid, 10 certificate has expired.
_AFTER_CRL = {9, 10}
_REVOKED = 23


def parse_openssl_date(text: str) -> Optional[float]:
    """'Nov 23 07:42:00 2026 GMT' (openssl's fixed English format) as a timestamp."""
    parts = text.split()
    if len(parts) != 5 or parts[4] != "GMT" or parts[0].lower() not in _MONTHS:
        return None
    try:
        hour, minute, second = (int(p) for p in parts[2].split(":"))
        moment = datetime.datetime(
            int(parts[3]), _MONTHS[parts[0].lower()], int(parts[1]), hour, minute, second, tzinfo=datetime.timezone.utc
        )
    except ValueError:
        return None
    return moment.timestamp()


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return "no message"


def _text(data: Dict[str, Any], key: str) -> Optional[str]:
    value = data.get(key)
    return value if isinstance(value, str) and value else None


def _membership(ctx: Context) -> Dict[str, Optional[str]]:
    """domain, state ("member"/"left"/null), host and left_at from domain.json (null when absent)."""
    data = ctx.read_json(DOMAIN_JSON, limit=1024 * 1024) or {}
    state = _text(data, "state")
    return {
        "domain": _text(data, "domain"),
        "state": state if state in ("member", "left") else None,
        "host": _text(data, "host"),
        "left_at": _text(data, "left_at"),
    }


def _read_certificate(ctx: Context) -> Dict[str, str]:
    argv = ["openssl", "x509", "-in", ctx.path(CERT), "-noout", "-subject", "-issuer", "-serial"]
    argv += ["-startdate", "-enddate", "-fingerprint", "-sha256", "-nameopt", "RFC2253"]
    rc, out, err = ctx.run(argv)
    if rc == 127:
        raise CollectorError("openssl is needed to read the domain certificate")
    if rc != 0:
        raise CollectorError(f"cannot read the domain certificate {CERT}: {_first_line(err)}")
    fields: Dict[str, str] = {}
    for line in out.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip().lower()] = value.strip()
    return fields


def _verify(ctx: Context, crl: bool) -> Tuple[int, List[Tuple[int, int, str]], str]:
    argv = ["openssl", "verify", "-attime", str(int(ctx.now)), "-CAfile", ctx.path(CA)]
    if ctx.exists(CHAIN):
        argv += ["-untrusted", ctx.path(CHAIN)]
    if crl:
        argv += ["-crl_check", "-CRLfile", ctx.path(CRL)]
    rc, out, err = ctx.run([*argv, ctx.path(CERT)])
    errors = [(int(m.group(1)), int(m.group(2)), m.group(3).strip()) for m in _ERROR_RE.finditer(out + "\n" + err)]
    return rc, errors, _first_line(err if err.strip() else out)


def _revoked(ctx: Context) -> Tuple[Optional[bool], Optional[str]]:
    rc, errors, message = _verify(ctx, crl=True)
    codes: Set[int] = {code for code, _depth, _text in errors}
    if _REVOKED in codes:
        return True, None
    if rc == 0 or (errors and codes <= _AFTER_CRL):
        return False, None
    problems = [text for code, _depth, text in errors if code not in _AFTER_CRL]
    return None, f"the CRL check failed: {problems[0] if problems else message}"


@collector("domain")
def collect_domain(ctx: Context) -> Dict[str, Any]:
    if not ctx.exists(CERT):
        # not enrolled: only a host that left says so; an unreadable record is no error here
        try:
            membership = _membership(ctx)
        except CollectorError:
            membership = {"state": None}
        if membership["state"] != "left":
            membership = {"domain": None, "state": None, "host": None, "left_at": None}
        return {"enrolled": False, **membership, "certificate": None}
    membership = _membership(ctx)
    fields = _read_certificate(ctx)
    start = parse_openssl_date(fields.get("notbefore", ""))
    end = parse_openssl_date(fields.get("notafter", ""))
    fingerprint = next((v for k, v in fields.items() if k.endswith("fingerprint")), None)
    if start is None or end is None or fingerprint is None:
        raise CollectorError(f"openssl printed an unexpected description of {CERT}")

    problems: List[str] = []
    if ctx.now < start:
        problems.append(f"not valid before {ctx.iso(start)}")
    elif ctx.now > end:
        problems.append(f"expired at {ctx.iso(end)}")
    has_ca = ctx.exists(CA)
    if has_ca:
        rc, errors, message = _verify(ctx, crl=False)
        if rc != 0:
            # The host certificate's own dates are reported above; an expired CA is not.
            chain = [text for code, depth, text in errors if not (depth == 0 and code in _AFTER_CRL)]
            if chain or not errors:
                problems.append(f"the chain does not verify against {CA}: {chain[0] if chain else message}")
    revoked: Optional[bool] = None
    notes: List[str] = []
    if has_ca and ctx.exists(CRL):
        revoked, crl_problem = _revoked(ctx)
        if revoked:
            problems.append("revoked")
        elif crl_problem:
            notes.append(crl_problem)
    valid = not problems

    return {
        "enrolled": True,
        **membership,
        "certificate": {
            "subject": fields.get("subject", ""),
            "issuer": fields.get("issuer", ""),
            "serial": fields.get("serial", ""),
            "not_before": ctx.iso(start),
            "not_after": ctx.iso(end),
            "fingerprint_sha256": fingerprint,
            "valid": valid,
            "revoked": revoked,
            "days_left": round((end - ctx.now) / 86400, 2),
            "reason": "; ".join(problems + notes) or None,
        },
    }
