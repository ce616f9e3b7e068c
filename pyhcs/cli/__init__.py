"""The ``pyhcs`` command: one entry point, a subcommand per tool."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Sequence

from pyhcs import __version__
from pyhcs.cli import demo, tour
from pyhcs.errors import HcsError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pyhcs", description="The Windows Host Compute Service from Python."
    )
    parser.add_argument("--version", action="version", version=f"pyhcs {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    tour_parser = commands.add_parser(
        "tour", help="show the HCS C surface: backend, functions, types, errors"
    )
    tour_parser.add_argument(
        "sections",
        nargs="*",
        metavar="SECTION",
        help=f"only these sections ({', '.join(tour.SECTIONS)}); default all",
    )
    tour_parser.set_defaults(handler=_tour)
    demo_parser = commands.add_parser(
        "demo", help="run one real container lifecycle through the C API (emulator off Windows)"
    )
    demo_parser.add_argument(
        "--command-line",
        default='sh -c "echo hello from a pyhcs container; exit 7"',
        help="the process to run in the container (a Windows-style command line)",
    )
    demo_parser.set_defaults(handler=_demo)
    if importlib.util.find_spec("pyhcs.emulator.cli") is not None:
        importlib.import_module("pyhcs.emulator.cli").register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    unknown = [s for s in getattr(args, "sections", ()) if s not in tour.SECTIONS]
    if unknown:
        parser.error(f"unknown tour section {unknown[0]!r}; choose from {', '.join(tour.SECTIONS)}")
    try:
        status: int = args.handler(args)
    except HcsError as exc:
        print(f"pyhcs: {describe(exc)}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
    return status


def describe(error: HcsError) -> str:
    """One line for a terminal: the class callers branch on, then the error's own rendering
    (message, HRESULT, events, hint) with its line breaks folded."""
    return f"{type(error).__name__}: " + "; ".join(str(error).splitlines())


def _demo(args: argparse.Namespace) -> int:
    for line in demo.run(args.command_line):
        print(line, flush=True)
    return 0


def _tour(args: argparse.Namespace) -> int:
    for line in tour.render(tuple(args.sections) or tour.SECTIONS):
        print(line)
    return 0
