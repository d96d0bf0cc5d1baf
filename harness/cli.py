"""Command line of the study: `python -m harness <subcommand>`.

Each subcommand is registered by one `_register_*` function (see `SUBCOMMANDS`); its handler maps
the parsed arguments to keyword arguments of a library function and prints that library's
`format_*` lines. Every argument is validated by its `type=` parser. A HarnessError becomes one
line `error: <message>` on stderr and exit status 2; an interrupted run exits with 130.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from harness import paths
from harness.architectures import PRESETS, parse_assignment, parse_spec
from harness.errors import HarnessError

EXIT_OK = 0
EXIT_INVALID_DATA = 1
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130

Handler = Callable[[argparse.Namespace], int]


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument as one line instead of usage + message + exit."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


# ---------------------------------------------------------------- `type=` validators


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def architecture_spec(text: str) -> str:
    """`baseline`, `transactional` or `PRESET+name=value,...`, checked against the switches."""
    try:
        parse_spec(text)
    except HarnessError as problem:
        raise argparse.ArgumentTypeError(str(problem)) from None
    return text.strip()


def switch_assignment(text: str) -> str:
    """One `name=value` switch override; the value is checked once combined with a preset."""
    try:
        name, value = parse_assignment(text)
    except HarnessError as problem:
        raise argparse.ArgumentTypeError(str(problem)) from None
    return f"{name}={value}"


def run_identifier(text: str) -> str:
    if not paths.RUN_ID_PATTERN.match(text):
        raise argparse.ArgumentTypeError(f"bad run id {text!r}: use letters, digits, '.', '_' and '-'")
    return text


def with_switches(specs: Sequence[str], switches: Sequence[str]) -> list[str]:
    """Apply `--switch` overrides to every architecture spec."""
    if not switches:
        return list(specs)
    overrides = ",".join(switches)
    return [f"{spec}{',' if '+' in spec else '+'}{overrides}" for spec in specs]


# ---------------------------------------------------------------- run


def _register_run(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="measure the suite under each architecture in interleaved fresh pytest processes",
        description="Measure the suite under each architecture in interleaved fresh pytest processes "
        "and record the run under data/runs/<run-id>/.",
    )
    parser.add_argument(
        "--arch", "--variant", dest="variants", action="append", type=architecture_spec, metavar="SPEC",
        help="architecture to measure, repeatable: baseline, transactional or PRESET+name=value,... "
        "(default: baseline and transactional)",
    )
    parser.add_argument(
        "--switch", dest="switches", action="append", type=switch_assignment, default=[], metavar="NAME=VALUE",
        help="override one switch in every architecture, repeatable (e.g. storage=disk)",
    )
    parser.add_argument("--repetitions", type=positive_int, help="measured blocks; each runs every architecture once (default 10)")
    parser.add_argument("--warmup", type=non_negative_int, help="warm-up blocks run first and excluded from statistics (default 1)")
    parser.add_argument("-k", dest="keyword", metavar="EXPRESSION", help="pytest -k expression selecting tests")
    parser.add_argument("-m", dest="marker", metavar="MARKEXPR", help="pytest -m expression selecting tests")
    parser.add_argument("--output-dir", type=Path, default=paths.RUNS, help=f"where runs are stored (default {paths.RUNS})")
    parser.add_argument("--run-id", type=run_identifier, help="name of the run directory (default: timestamp)")
    parser.add_argument("--seed", type=non_negative_int, help="seed of the random schedule")
    parser.add_argument("--schedule", choices=("abab", "random"), help="order within blocks: abab (fixed, default) or random (per block)")
    parser.add_argument("--resume", metavar="RUN_ID", type=run_identifier, help="continue an interrupted run from its stored schedule")
    parser.add_argument("--suite", type=Path, help=f"the suite under study (default {paths.SUITE})")
    parser.add_argument(
        "--pytest-arg", dest="pytest_args", action="append", metavar="ARG",
        help="extra argument for every pytest process, repeatable (write --pytest-arg=-x)",
    )
    parser.add_argument("--timeout", type=positive_float, metavar="SECONDS", help="kill and invalidate a repetition after this long")
    parser.add_argument("--profile", help="tag stored with the run (reports can pick the latest run of a profile)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=_handle_run)


def _handle_run(args: argparse.Namespace) -> int:
    from harness.runner import RunInterrupted, format_run_result, run_benchmark

    if args.resume and args.run_id and args.resume != args.run_id:
        raise HarnessError(f"--resume {args.resume} and --run-id {args.run_id} name different runs")
    variants = args.variants
    if args.switches:
        variants = with_switches(variants or list(PRESETS), args.switches)
    selection = {key: value for key, value in (("keyword", args.keyword), ("marker", args.marker)) if value}
    try:
        result = run_benchmark(
            variants=variants,
            repetitions=args.repetitions,
            warmup=args.warmup,
            selection=selection or None,
            output_dir=args.output_dir,
            run_id=args.resume or args.run_id,
            seed=args.seed,
            schedule=args.schedule,
            resume=args.resume is not None,
            suite_path=args.suite,
            extra_pytest_args=args.pytest_args,
            progress=not args.no_progress,
            timeout_s=args.timeout,
            profile=args.profile,
        )
    except RunInterrupted as interrupted:
        print(f"interrupted: {interrupted}", file=sys.stderr)
        return EXIT_INTERRUPTED
    _print_lines(format_run_result(result))
    return EXIT_INVALID_DATA if result.invalid_measured_repetitions else EXIT_OK


# ---------------------------------------------------------------- compare / baseline / check
# These call harness.stats and harness.tracking (another engineer's modules); until those
# handlers are written they stay registered so `--help` lists them, and answer "not available yet".


def _not_available(name: str) -> Handler:
    def handler(args: argparse.Namespace) -> int:
        raise HarnessError(f"'{name}' is not available yet")

    return handler


def _register_compare(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("compare", help="compare the variants of a run (not available yet)")
    parser.set_defaults(handler=_not_available("compare"))


def _register_baseline(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("baseline", help="store regression baselines (not available yet)")
    parser.set_defaults(handler=_not_available("baseline"))


def _register_check(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("check", help="check a run against a stored baseline (not available yet)")
    parser.set_defaults(handler=_not_available("check"))


# Add a subcommand: write `_register_<name>(subparsers)` setting `handler=`, and list it here.
SUBCOMMANDS: dict[str, Callable[[argparse._SubParsersAction], None]] = {
    "run": _register_run,
    "compare": _register_compare,
    "baseline": _register_baseline,
    "check": _register_check,
}


# ---------------------------------------------------------------- entry point


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m harness", description="Test-performance study of the quiz API's suite.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in SUBCOMMANDS.values():
        register(subparsers)
    return parser


def _print_lines(lines: Sequence[str]) -> None:
    for line in lines:
        print(line)


def _sigterm_as_interrupt(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except _UsageError as problem:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_ERROR
    # `kill <pid>` stops a run as cleanly as Ctrl-C: the run is marked interrupted, data kept.
    previous = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    try:
        return args.handler(args)
    except HarnessError as problem:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous)
