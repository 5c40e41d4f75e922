# PRIVATE: `distsec report build SOURCE...` (docs/report.md).
#
# Exit status: 0 the report is built and no --fail-on condition holds; 1 one holds (each host
# and reason is printed); 2 usage or input errors (a bad entry file, an unknown format).
from __future__ import annotations

import argparse
import os
import sys

from .._cli import EXIT_OK, EXIT_PROBLEM, EXIT_USAGE, GROUPS, Command, CommandError
from .entries import ReportInputError, load_entries
from .output import FORMATS, make_report, parse_formats, write_reports
from .summary import FAIL_ON, fail_on_reasons, parse_fail_on
from .table import WIDTH, clean_text, render_table

__all__ = ["register", "run_build"]


def _usage(message: str) -> CommandError:
    return CommandError(message, exit_code=EXIT_USAGE)


def _configure_build(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "sources",
        metavar="SOURCE",
        nargs="+",
        help="a report directory (its hosts/*.json entries, as the report action writes them) or entry files",
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        help="write report.html, report.json, report.junit.xml and report.txt here "
        "(default: the SOURCE directory, when there is exactly one)",
    )
    parser.add_argument(
        "--format",
        metavar="FORMAT",
        help=f"{'|'.join(FORMATS)}|all, or several separated by commas (default: all with a destination, "
        "else table); the table is printed, the others written",
    )
    parser.add_argument(
        "--fail-on",
        metavar="CONDITIONS",
        default="",
        help=f"exit 1 when one of these holds on a host: {', '.join(FAIL_ON)} (separated by commas)",
    )
    parser.add_argument("--title", help="the report's title (default: distsec compliance report)")
    parser.add_argument("--width", type=int, default=WIDTH, help=f"the table's target width (default {WIDTH})")


def run_build(args: argparse.Namespace) -> int:
    try:
        conditions = parse_fail_on(args.fail_on)
    except ValueError as exc:
        raise _usage(f"--fail-on: {str(exc).split(': ', 1)[1]}") from None
    out = args.out
    if out is None and len(args.sources) == 1 and os.path.isdir(args.sources[0]):
        out = args.sources[0]
    if args.format is None:
        formats = list(FORMATS) if out else ["table"]
    else:
        try:
            formats = parse_formats(args.format)
        except ValueError as exc:
            raise _usage(f"--format: {str(exc).split(': ', 1)[1]}") from None
    files = [name for name in formats if name != "table"]
    if files and not out:
        raise _usage(f"--format {','.join(files)} writes files: give --out DIR")
    if args.width < 40:
        raise _usage("--width: at least 40 columns")
    try:
        entries = load_entries(args.sources)
    except ReportInputError as exc:
        raise _usage(str(exc)) from None
    report = make_report(entries, title=args.title)
    if "table" in formats:
        sys.stdout.write(render_table(report, width=args.width))
    if out:
        try:
            paths = write_reports(report, out, formats)
        except OSError as exc:
            where = exc.filename or out
            raise _usage(f"{where}: cannot write the report: {exc.strerror or exc}") from None
        if "table" in formats:
            print()
        for name in formats:
            if name in paths:
                print(f"wrote {paths[name]}")
    reasons = fail_on_reasons(report, conditions)
    if reasons:
        print(f"distsec: failing ({', '.join(conditions)}): {len(reasons)} problem(s):", file=sys.stderr)
        for reason in reasons:
            # host data (a failed run's error) never reaches the terminal with its control characters
            print(f"  {clean_text(reason)}", file=sys.stderr)
        return EXIT_PROBLEM
    return EXIT_OK


def register() -> None:
    group = GROUPS["report"]
    if not group.commands:
        group.commands.append(
            Command(
                "build",
                "build the fleet report (table, HTML, JSON, JUnit) from the hosts' report entries",
                _configure_build,
                run_build,
            )
        )
