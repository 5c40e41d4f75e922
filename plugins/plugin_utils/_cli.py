# PRIVATE: the `distsec` command for policy authors and the PDP (controller side).
#
# Exit codes: 0 success, 1 the command ran and found a problem (invalid policy, rejected
# bundle, ...), 2 usage error, 70 internal error (a bug: reported without a traceback
# unless DISTSEC_DEBUG=1), 130 interrupted.
from __future__ import annotations

import argparse
import os
import sys
import traceback
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence

from ansible_collections.distsec.framework.plugins.module_utils._version import COLLECTION, VERSION

__all__ = ["GROUPS", "Command", "CommandError", "build_parser", "main"]

EXIT_OK = 0
EXIT_PROBLEM = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130


class CommandError(Exception):
    """A problem the user can act on: printed as `distsec: error: MESSAGE`, exit 1."""

    def __init__(self, message: str, *, exit_code: int = EXIT_PROBLEM) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class Command:
    """One subcommand: `distsec GROUP NAME ...`."""

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


@dataclass
class Group:
    name: str
    help: str
    description: str
    commands: List[Command] = field(default_factory=list)


# The subcommand groups. Each later feature adds its commands to its group.
GROUPS = {
    "psl": Group(
        "psl",
        "write and check policies in the Policy Specification Language",
        "Validate, compile, test and explain Security Policies written in PSL.",
    ),
    "keys": Group(
        "keys",
        "manage the PDP's policy-signing keys and trust root",
        "Create and rotate the keys that sign policy bundles, and the trust root hosts verify them with.",
    ),
    "bundle": Group(
        "bundle",
        "sign and verify policy bundles",
        "Compile and sign a policy into a bundle for distribution, or verify a bundle as a host would.",
    ),
    "report": Group(
        "report",
        "fleet compliance reports",
        "Build compliance and drift reports from the Security Status files collected from hosts.",
    ),
}


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors on one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _register_commands() -> None:
    """Let each feature add its commands to its group (imported here to avoid a cycle)."""
    from ._psl.cli import register as register_psl  # noqa: PLC0415
    from ._report.cli import register as register_report  # noqa: PLC0415
    from ._status_cli import register as register_status  # noqa: PLC0415
    from ._trust_cli import register as register_trust  # noqa: PLC0415

    register_psl()
    register_report()
    register_status()
    register_trust()


def build_parser(groups: Optional[dict] = None) -> argparse.ArgumentParser:
    if groups is None:
        _register_commands()
        groups = GROUPS
    parser = _Parser(
        prog="distsec",
        description=(
            "distsec: the policy author's and PDP's command of the distsec.framework Ansible "
            "collection (host-based distributed network security)."
        ),
        epilog="Run 'distsec GROUP --help' for a group's commands. Documentation: docs/ in the collection.",
    )
    parser.add_argument("--version", action="version", version=f"distsec {VERSION} ({COLLECTION})")
    sub = parser.add_subparsers(dest="group", metavar="GROUP", parser_class=_Parser)
    sub.required = True
    for group in groups.values():
        gparser = sub.add_parser(group.name, help=group.help, description=group.description)
        if not group.commands:
            gparser.epilog = "No commands in this version yet."
            gparser.set_defaults(_handler=None, _group_parser=gparser)
            continue
        gsub = gparser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
        gsub.required = True
        for command in group.commands:
            cparser = gsub.add_parser(command.name, help=command.help, description=command.help)
            command.configure(cparser)
            cparser.set_defaults(_handler=command.run)
    return parser


def main(argv: Optional[Sequence[str]] = None, *, groups: Optional[dict] = None) -> int:
    parser = build_parser(groups)
    args = parser.parse_args(argv)
    handler = getattr(args, "_handler", None)
    if handler is None:
        args._group_parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(handler(args) or EXIT_OK)
    except CommandError as exc:
        print(f"distsec: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("distsec: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (e.g. `distsec ... | head`): not an error of ours.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - last line of defence: never a traceback
        if os.environ.get("DISTSEC_DEBUG"):
            traceback.print_exc()
        print(
            f"distsec: internal error: {type(exc).__name__}: {exc}\n"
            "distsec: this is a bug; rerun with DISTSEC_DEBUG=1 for details and report it",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
