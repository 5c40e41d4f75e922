# PRIVATE: the command line of the host-local audit (`python3 distsec-audit.pyz`), for the systemd
# timer the enforce role installs and for admins on the host. Stdlib only, Python 3.9; no Ansible.
#
# Exit status: 0 compliant, the policy valid and no drift; 1 findings (drift, non-compliance, a
# firewall a run would change, a policy problem, never enforced); 2 the audit could not run.
from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional, TextIO

from ansible_collections.distsec.framework.plugins.module_utils._agent.audit import (
    DEFAULT_STATE_DIR,
    DEFAULT_TRUST_ROOT,
    EXIT_CANNOT_RUN,
    AuditError,
    Options,
    Runner,
    audit,
)
from ansible_collections.distsec.framework.plugins.module_utils._apply.firewall import subprocess_runner
from ansible_collections.distsec.framework.plugins.module_utils._trust.canonical import parse_time
from ansible_collections.distsec.framework.plugins.module_utils._version import VERSION

__all__ = ["main", "parser"]

PROG = "distsec-audit"

DESCRIPTION = """\
Audit this host as the enforce role does in check mode, without the controller: gather the
Security Status, re-verify the stored policy bundle (tampering at rest, expiry), decide the
profile and the compliance checks, and compare the firewall with what the policy asks for (drift:
rules changed outside distsec). Writes the run record into the policy record and the Security
Status file. It never changes the firewall: remediation stays with the controller.
"""

EPILOG = """\
exit status:
  0  compliant, the stored policy valid, no drift, nothing a run would change
  1  drift, a failed compliance check, a firewall a run would change, a policy problem
     (expired, refused, none stored), or a firewall that was never enforced
  2  the audit could not run (the message says why)

One summary line goes to stdout (the journal, under systemd); --json prints the run record instead.
"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--host", metavar="NAME", help="this host's name in the inventory (default: the short hostname)")
    p.add_argument(
        "--groups",
        metavar="A,B",
        default="",
        help="this host's inventory groups, comma-separated (matched against the bundle's target groups)",
    )
    p.add_argument("--json", action="store_true", help="print the run record (JSON) instead of the summary line")
    p.add_argument(
        "--state-dir",
        metavar="DIR",
        default=DEFAULT_STATE_DIR,
        help=f"the host's distsec state: DIR/trust, DIR/firewall, DIR/policy.json, DIR/status.json (default {DEFAULT_STATE_DIR})",
    )
    p.add_argument(
        "--trust-root",
        metavar="FILE",
        default=DEFAULT_TRUST_ROOT,
        help=f"the domain's initial trust root (default {DEFAULT_TRUST_ROOT})",
    )
    p.add_argument(
        "--status-file",
        metavar="FILE",
        help="where to write the Security Status (default DIR/status.json; '' writes none)",
    )
    p.add_argument(
        "--policy-file",
        metavar="FILE",
        help="the policy record the run record goes into (default DIR/policy.json; '' writes none)",
    )
    p.add_argument("--now", metavar="TIME", help="audit as if it were TIME (ISO 8601, UTC); for tests")
    p.add_argument("--version", action="version", version=f"{PROG} (distsec.framework {VERSION})")
    return p


def _line(stream: TextIO, text: str) -> None:
    """One line to stdout or stderr (print() is kept out of module_utils)."""
    stream.write(text + "\n")
    stream.flush()


def _groups(text: str) -> List[str]:
    return [g.strip() for g in text.split(",") if g.strip()]


def main(
    argv: Optional[List[str]] = None,
    *,
    out: Optional[TextIO] = None,
    err: Optional[TextIO] = None,
    run: Runner = subprocess_runner,
) -> int:
    """The command; returns the exit status. `run` runs the host's commands (tests run them in a netns)."""
    out = out or sys.stdout
    err = err or sys.stderr
    args = parser().parse_args(argv)
    now = None
    if args.now:
        try:
            now = parse_time(args.now)
        except ValueError:
            _line(err, f"{PROG}: --now: {args.now!r} is not an ISO 8601 UTC time (e.g. 2026-11-23T12:00:00Z)")
            return EXIT_CANNOT_RUN
    options = Options(
        host=args.host,
        groups=_groups(args.groups),
        state_dir=args.state_dir,
        trust_root=args.trust_root,
        status_file=args.status_file,
        policy_file=args.policy_file,
        now=now,
    )
    host = options.host_name
    try:
        result = audit(options, run=run)
    except AuditError as exc:
        _line(err, f"{PROG}: {host}: cannot audit: {exc}")
        return EXIT_CANNOT_RUN
    except KeyboardInterrupt:
        _line(err, f"{PROG}: {host}: interrupted; nothing more was written")
        return EXIT_CANNOT_RUN
    except Exception as exc:  # noqa: BLE001 - a journal line, never a traceback
        _line(
            err,
            f"{PROG}: {host}: cannot audit: unexpected {type(exc).__name__}: {exc} "
            "(please report it with the output of the same command)",
        )
        return EXIT_CANNOT_RUN
    for warning in result.warnings:
        _line(err, f"{PROG}: {host}: warning: {warning}")
    if args.json:
        _line(out, json.dumps(result.record, sort_keys=True, indent=1))
    else:
        _line(out, result.summary)
    return result.exit_code
