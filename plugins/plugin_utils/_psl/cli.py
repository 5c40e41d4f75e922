# PRIVATE: `distsec psl validate | compile | test | explain`.
from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional

from ansible_collections.distsec.framework.plugins.module_utils._apply.restrictive import boot_ruleset
from ansible_collections.distsec.framework.plugins.module_utils._evaluate.conditions import parse_time
from ansible_collections.distsec.framework.plugins.module_utils._evaluate.decide import active_rules, decide
from ansible_collections.distsec.framework.plugins.module_utils._evaluate.flows import FlowError
from ansible_collections.distsec.framework.plugins.module_utils._evaluate.guard import management_problems
from ansible_collections.distsec.framework.plugins.module_utils._render import firewalld as render_firewalld
from ansible_collections.distsec.framework.plugins.module_utils._render import iptables as render_iptables
from ansible_collections.distsec.framework.plugins.module_utils._render import nftables as render_nftables
from ansible_collections.distsec.framework.plugins.module_utils._render import windows as render_windows
from ansible_collections.distsec.framework.plugins.module_utils._render.nftables import RenderError

from .._cli import GROUPS, Command, CommandError
from .api import PolicyInvalid, preview
from .compiler import Policy, compile_policy, load_policy, policy_schema
from .problems import PslError
from .restrictive import restrictive_policy
from .testing import StatusError, explain, load_status, run_tests

__all__ = ["FORMATS", "register"]

# --format NAME -> the renderer's render_text(compiled, profile, rules): the text a host would load.
FORMATS = {
    "nftables": render_nftables.render_text,
    "iptables": render_iptables.render_text,
    "firewalld": render_firewalld.render_text,
    "windows": render_windows.render_text,
}


def _paths(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", metavar="PATH", nargs="+", help="PSL files (their includes are read too)")


def _target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="compile for this host name")
    parser.add_argument("--group", action="append", default=[], metavar="G", help="an inventory group of the host")


def _now(text: Optional[str]) -> Optional[float]:
    if text is None:
        return None
    moment = parse_time(text)
    if moment is None:
        raise CommandError(f"--now: {text!r} is not an ISO 8601 time (e.g. 2026-11-23T12:00:00Z)", exit_code=2)
    return moment


def _print_problems(policy_or_error) -> int:
    problems = policy_or_error.problems
    for problem in problems.sorted():
        print(problem, file=sys.stderr)
    return len(problems.errors)


def _load(paths: List[str]) -> Policy:
    try:
        policy = load_policy(paths)
    except PslError as exc:
        count = _print_problems(exc)
        raise CommandError(f"{count} error(s); the policy is not valid", exit_code=1) from None
    _print_problems(policy)
    return policy


def _status(path: Optional[str]) -> dict:
    if path is None:
        return {}
    try:
        return load_status(path)
    except StatusError as exc:
        raise CommandError(str(exc)) from None


def run_validate(args: argparse.Namespace) -> int:
    policy = _load(args.paths)
    rules = len(policy.rules) + sum(len(p["rules"]) for p in policy.profiles.values())
    warnings = len(policy.problems.warnings)
    print(
        f"{', '.join(args.paths)}: valid PSL for domain {policy.domain} "
        f"({len(policy.files)} file(s), {rules} rule(s), {len(policy.checks)} check(s), {warnings} warning(s))"
    )
    return 0


def run_compile(args: argparse.Namespace) -> int:
    now = _now(args.now)
    policy = _load(args.paths)
    compiled = compile_policy(policy, host=args.host, groups=args.group)
    if args.format != "json":
        decision = decide(compiled, _status(args.status), now=now)
        if args.management_from:
            try:
                problems = management_problems(
                    compiled, decision, sources=args.management_from, port=args.management_port
                )
            except ValueError as exc:
                raise CommandError(f"--management-from: {exc}", exit_code=2) from None
            if problems:
                for problem in problems:
                    print(f"distsec: lockout: {problem}", file=sys.stderr)
                raise CommandError("the policy would lock admins out; fix management / baseline in the policy")
        profile = args.profile or decision.profile
        if profile not in compiled["profiles"]:
            raise CommandError(
                f"--profile: no profile {profile!r}; profiles: {', '.join(sorted(compiled['profiles']))}", exit_code=2
            )
        decision.profile = profile
        try:
            text = FORMATS[args.format](compiled, profile, active_rules(compiled, decision))
        except RenderError as exc:
            raise CommandError(f"cannot render the {args.format} ruleset: {exc}") from None
        print(f"# distsec: domain {compiled['domain']}, profile {profile}, policy {compiled['hash']}")
        print(text, end="" if text.endswith("\n") else "\n")
        return 0
    if args.status:
        compiled = dict(compiled)
        compiled["preview"] = preview(compiled, _status(args.status), now=now)
    json.dump(compiled, sys.stdout, indent=2, sort_keys=True, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


def run_test(args: argparse.Namespace) -> int:
    policy = _load(args.paths)
    results = run_tests(policy)
    for result in results:
        if result.passed:
            print(f"ok    {result.name}")
        else:
            print(f"FAIL  {result.name}  ({result.origin})")
            for failure in result.failures:
                print(f"  {failure}")
    failed = sum(not r.passed for r in results)
    print(f"{len(results) - failed} passed, {failed} failed")
    if not results:
        print("note: the policy has no tests; add a tests: section (see docs/psl.md)", file=sys.stderr)
    return 1 if failed else 0


def run_explain(args: argparse.Namespace) -> int:
    now = _now(args.now)
    policy = _load(args.paths)
    try:
        lines = explain(
            policy, host=args.host, groups=args.group, status=_status(args.status), flow_text=args.flow,
            now=now,
        )  # fmt: skip
    except FlowError as exc:
        raise CommandError(f"--flow: {exc}", exit_code=2) from None
    print("\n".join(lines))
    return 0


def run_restrictive(args: argparse.Namespace) -> int:
    try:
        compiled = restrictive_policy(
            domain=args.domain,
            management_from=args.management_from,
            management_port=args.management_port,
            pdp=args.pdp,
            patch_mirrors=args.patch_mirrors,
            dns_servers=args.dns_servers,
            ntp_servers=args.ntp_servers,
            pki=args.pki,
            dhcp=args.dhcp,
        )
    except PolicyInvalid as exc:
        raise CommandError(str(exc), exit_code=2) from None
    if args.format == "nftables":
        try:
            text = boot_ruleset(compiled).text
        except RenderError as exc:
            raise CommandError(f"cannot render the nftables ruleset: {exc}") from None
        sys.stdout.write(text)
        return 0
    json.dump(compiled, sys.stdout, indent=2, sort_keys=True, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


def run_schema(args: argparse.Namespace) -> int:
    json.dump(policy_schema(), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
    return 0


def _configure_compile(parser: argparse.ArgumentParser) -> None:
    _paths(parser)
    _target(parser)
    parser.add_argument("--status", metavar="SS.json", help="add a preview of the decisions for this Security Status")
    parser.add_argument("--now", metavar="ISO8601", help="evaluation time for the preview (default: now)")
    parser.add_argument(
        "--format",
        choices=["json", *FORMATS],
        default="json",
        help="json: the compiled policy; otherwise the ruleset the host would load for its profile",
    )
    parser.add_argument("--profile", help="with a ruleset --format: render this profile instead of the decided one")
    parser.add_argument(
        "--management-from",
        action="append",
        default=[],
        metavar="ADDR",
        help="lockout guard: fail unless SSH from ADDR stays open in every profile (repeatable)",
    )
    parser.add_argument("--management-port", type=int, default=22, metavar="PORT", help="the management port (22)")


def _configure_restrictive(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Print distsec's built-in default-restrictive policy, compiled (JSON), or the nftables file a host "
        "loads at boot (nft -f FILE replaces table inet distsec). Profile isolated: only the baseline "
        "(loopback, established, ICMPv6 essentials, management from --management-from), the remediation "
        "paths to the addresses given and the DHCP client's traffic (unless --no-dhcp). Addresses: IPv4/IPv6 "
        "addresses, prefixes or ranges."
    )
    parser.add_argument("--domain", required=True, help="the Security Domain")
    parser.add_argument(
        "--management-from",
        action="extend",
        nargs="+",
        required=True,
        metavar="ADDR",
        help="admin addresses or networks that keep the management port (required: no lockout)",
    )
    parser.add_argument("--management-port", type=int, default=22, metavar="PORT", help="the management port (22)")
    for name, what in (
        ("pdp", "the PDP (everything)"),
        ("patch-mirrors", "patch and signature mirrors (tcp 80, 443)"),
        ("dns-servers", "DNS servers (udp, tcp 53)"),
        ("ntp-servers", "NTP servers (udp 123)"),
        ("pki", "the domain PKI (tcp 80, 443)"),
    ):
        parser.add_argument(
            f"--{name}", action="extend", nargs="+", default=[], metavar="ADDR", help=f"remediation path to {what}"
        )
    parser.add_argument(
        "--no-dhcp",
        dest="dhcp",
        action="store_false",
        help="leave out the DHCP client's rules (hosts with static addresses only)",
    )
    parser.add_argument(
        "--format",
        choices=["json", "nftables"],
        default="json",
        help="json: the compiled policy; nftables: the ruleset file the default_restrictive module writes",
    )


def _configure_explain(parser: argparse.ArgumentParser) -> None:
    _paths(parser)
    _target(parser)
    parser.add_argument("--status", metavar="SS.json", help="the host's Security Status (JSON)")
    parser.add_argument("--flow", required=True, help="e.g. 'tcp 2001:db8::5 -> [2001:db8::9]:587 out'")
    parser.add_argument("--now", metavar="ISO8601", help="evaluation time (default: now)")


def register() -> None:
    group = GROUPS["psl"]
    if group.commands:
        return
    group.commands.extend(
        [
            Command("validate", "check PSL files; every problem as PATH:LINE:COL: error|warning: MESSAGE", _paths, run_validate),
            Command("compile", "print the compiled policy (JSON) for a host, group or the domain default", _configure_compile, run_compile),
            Command("test", "run the policy's own tests (its tests: section)", _paths, run_test),
            Command("schema", "print the PSL JSON Schema (for editors; also docs/psl.schema.json)", lambda p: None, run_schema),
            Command("explain", "which profile applies, which rule decides a flow, and why", _configure_explain, run_explain),
            Command("restrictive", "print the built-in default-restrictive policy (JSON) or its nftables boot file", _configure_restrictive, run_restrictive),
        ]
    )  # fmt: skip
