"""Command line of the study: `python -m harness <subcommand>`.

Each subcommand is registered by one `_register_*` function (see `SUBCOMMANDS`); its handler maps
the parsed arguments to keyword arguments of a library function and prints that library's
`format_*` lines. Every argument is validated by its `type=` parser. A HarnessError becomes one
line `error: <message>` on stderr and exit status 2; an interrupted run exits with 130; exit
status 1 flags data that needs attention (an invalid measured repetition, a regression shown).
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from harness import paths
from quiz_architectures.architectures import PRESETS, parse_assignment, parse_spec
from harness.errors import USER_ERRORS, HarnessError

if TYPE_CHECKING:
    from harness.dataset import RunData

EXIT_OK = 0
EXIT_FLAGGED = 1  # run: a measured repetition is invalid; check: a regression is shown
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


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
    except USER_ERRORS as problem:
        raise argparse.ArgumentTypeError(str(problem)) from None
    return text.strip()


def switch_assignment(text: str) -> str:
    """One `name=value` switch override; the value is checked once combined with a preset."""
    try:
        name, value = parse_assignment(text)
    except USER_ERRORS as problem:
        raise argparse.ArgumentTypeError(str(problem)) from None
    return f"{name}={value}"


def run_identifier(text: str) -> str:
    if not paths.RUN_ID_PATTERN.match(text):
        raise argparse.ArgumentTypeError(f"bad run id {text!r}: use letters, digits, '.', '_' and '-'")
    return text


def baseline_name(text: str) -> str:
    # Baselines are files named like run directories: the same characters are safe.
    if not paths.RUN_ID_PATTERN.match(text):
        raise argparse.ArgumentTypeError(f"bad baseline name {text!r}: use letters, digits, '.', '_' and '-'")
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
    parser.add_argument("--repetitions", type=positive_int, metavar="N", help="measured blocks; each runs every architecture once (default 10)")
    parser.add_argument("--warmup", type=non_negative_int, metavar="N", help="warm-up blocks run first and excluded from statistics (default 1)")
    parser.add_argument("-k", dest="keyword", metavar="EXPRESSION", help="pytest -k expression selecting tests")
    parser.add_argument("-m", dest="marker", metavar="MARKEXPR", help="pytest -m expression selecting tests")
    parser.add_argument("--output-dir", type=Path, default=paths.RUNS, metavar="DIR", help=f"where runs are stored (default {paths.RUNS})")
    parser.add_argument("--run-id", type=run_identifier, help="name of the run directory (default: timestamp)")
    parser.add_argument("--seed", type=non_negative_int, help="seed of the random schedule")
    parser.add_argument("--schedule", choices=("abab", "random"), help="order within blocks: abab (fixed, default) or random (per block)")
    parser.add_argument("--resume", metavar="RUN_ID", type=run_identifier, help="continue an interrupted run from its stored schedule")
    parser.add_argument("--suite", type=Path, metavar="PATH", help=f"the suite under study (default {paths.SUITE})")
    parser.add_argument(
        "--pytest-arg", dest="pytest_args", action="append", metavar="ARG",
        help="extra argument for every pytest process, repeatable (write --pytest-arg=-x)",
    )
    parser.add_argument("--timeout", type=positive_float, metavar="SECONDS", help="kill and invalidate a repetition after this long")
    parser.add_argument("--profile", help="tag stored with the run (reports can pick the latest run of a profile)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=_handle_run)


def _handle_run(args: argparse.Namespace) -> int:
    if args.resume and args.run_id and args.resume != args.run_id:
        raise HarnessError(f"--resume {args.resume} and --run-id {args.run_id} name different runs")
    variants = args.variants
    if args.switches:
        variants = with_switches(variants or list(PRESETS), args.switches)
        for spec in variants:
            parse_spec(spec)  # a refused combination fails here, before the heavy imports
    selection = {key: value for key, value in (("keyword", args.keyword), ("marker", args.marker)) if value}
    from harness.runner import RunInterrupted, format_run_result, run_benchmark

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
    return EXIT_FLAGGED if result.invalid_measured_repetitions else EXIT_OK


# ---------------------------------------------------------------- compare / baseline / check


def architecture_label(text: str) -> str:
    """A variant as stored in the data: the label of an architecture spec."""
    try:
        return parse_spec(text).label
    except USER_ERRORS as problem:
        raise argparse.ArgumentTypeError(str(problem)) from None


def probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative number, got {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a non-negative number, got {text!r}")
    return value


def comparison_pair(variants: Sequence[str], *, baseline: str | None = None, candidate: str | None = None) -> tuple[str, str]:
    """Which two variants of a run to compare: the presets when present, else the first two."""
    if baseline is None:
        baseline = "baseline" if "baseline" in variants else (variants[0] if variants else None)
    if candidate is None:
        others = [v for v in variants if v != baseline]
        candidate = "transactional" if "transactional" in others else (others[0] if others else None)
    if baseline is None or candidate is None or baseline == candidate:
        raise HarnessError(f"need two different variants to compare; the run has: {', '.join(variants) or 'none'}")
    for variant in (baseline, candidate):
        if variant not in variants:
            raise HarnessError(f"variant {variant!r} is not in the run; it has: {', '.join(variants)}")
    return baseline, candidate


def default_variant(variants: Sequence[str]) -> str:
    """The variant a baseline tracks when none is named: transactional if measured, else the first."""
    if not variants:
        raise HarnessError("the run has no variants")
    return "transactional" if "transactional" in variants else variants[0]


def _add_run_choice(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", dest="run_id", type=run_identifier, metavar="RUN_ID", help="run to use (default: the latest complete run)")
    parser.add_argument("--runs-dir", type=Path, default=paths.RUNS, help=f"where runs are stored (default {paths.RUNS})")
    parser.add_argument("--profile", help="without --run: the latest complete run recorded with this profile")


def _load_chosen_run(args: argparse.Namespace) -> RunData:
    from harness import dataset

    return dataset.load_run(dataset.find_run(args.run_id, runs_dir=args.runs_dir, profile=args.profile))


COMPARE_LEVELS = ("suite", "category", "test")


COMPARE_COLUMNS = (
    "unit", "n_base", "n_cand", "median_base_s", "median_cand_s", "improvement_pct",
    "speedup", "speedup_ci_low", "speedup_ci_high", "mw_p_value", "mw_p_holm", "cliffs_delta",
)


def _register_compare(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare", help="compare two variants of a run: whole suite, categories, single tests",
        description="Compare two variants of a recorded run (bootstrap intervals, Mann-Whitney tests).",
    )
    _add_run_choice(parser)
    parser.add_argument("--baseline", type=architecture_label, metavar="VARIANT", help="reference variant (default baseline)")
    parser.add_argument("--candidate", type=architecture_label, metavar="VARIANT", help="variant compared to it (default transactional)")
    parser.add_argument("--level", dest="levels", action="append", choices=COMPARE_LEVELS, help="repeatable (default: all three)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of the bootstrap (default 0)")
    parser.add_argument("--resamples", type=positive_int, help="bootstrap resamples (default: harness.stats')")
    parser.add_argument("--alpha", type=probability, default=0.05, help="significance level (default 0.05)")
    parser.add_argument("--limit", type=positive_int, help="show at most this many tests")
    parser.add_argument(
        "--format", dest="output_format", choices=("plain", "markdown", "lines"), default="plain",
        help="a plain-text table (default), a markdown table, or one sentence per row",
    )
    parser.set_defaults(handler=_handle_compare)


def _handle_compare(args: argparse.Namespace) -> int:
    from harness import stats

    run = _load_chosen_run(args)
    baseline, candidate = comparison_pair(run.variants, baseline=args.baseline, candidate=args.candidate)
    options = {"baseline": baseline, "candidate": candidate, "seed": args.seed, "alpha": args.alpha}
    if args.resamples is not None:
        options["n_resamples"] = args.resamples
    lines = [f"run {run.run_id} ({run.metadata.get('status', 'unknown')}): {candidate} compared with {baseline}"]
    for level in [level for level in COMPARE_LEVELS if level in (args.levels or COMPARE_LEVELS)]:
        if level == "suite":
            frame = stats.compare_suite(run.timings, run.repetitions, **options)
        elif level == "category":
            frame = stats.compare_categories(run.timings, **options)
        else:
            frame = stats.compare_tests(run.timings, **options)
        limit = args.limit if level == "test" else None
        if args.output_format == "lines":
            lines += ["", f"{level}:", *stats.format_comparison(frame, limit=limit)]
        else:
            table = frame.head(limit) if limit else frame
            lines += ["", f"{level}:", stats.format_table(table[list(COMPARE_COLUMNS)], style=args.output_format)]
            if limit and len(frame) > limit:
                lines.append(f"... and {len(frame) - limit} more")
    _print_lines(lines)
    return EXIT_OK


def _register_baseline(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("baseline", help="store and list regression baselines")
    actions = parser.add_subparsers(dest="baseline_action", metavar="ACTION", required=True)

    record = actions.add_parser("record", help="store one variant of a run as a named baseline")
    record.add_argument("name", type=baseline_name, help="baseline name (letters, digits, '.', '_', '-')")
    _add_run_choice(record)
    record.add_argument("--variant", type=architecture_label, help="variant to store (default transactional)")
    record.add_argument("--store-dir", type=Path, default=paths.BASELINES, help=f"default {paths.BASELINES}")
    record.add_argument("--overwrite", action="store_true", help="replace a baseline of that name")
    record.set_defaults(handler=_handle_baseline_record)

    listing = actions.add_parser("list", help="names of the stored baselines")
    listing.add_argument("--store-dir", type=Path, default=paths.BASELINES, help=f"default {paths.BASELINES}")
    listing.set_defaults(handler=_handle_baseline_list)


def _handle_baseline_record(args: argparse.Namespace) -> int:
    from harness import tracking

    run = _load_chosen_run(args)
    variant = args.variant or default_variant(run.variants)
    path = tracking.record_baseline(
        run.timings,
        run.repetitions,
        name=args.name,
        store_dir=args.store_dir,
        variant=variant,
        metadata={
            "run_id": run.run_id,
            "environment": run.metadata.get("environment"),
            "arguments": run.metadata.get("arguments"),
        },
        overwrite=args.overwrite,
    )
    _print_lines([f"stored baseline {args.name!r}: {variant} from run {run.run_id} at {path}"])
    return EXIT_OK


def _handle_baseline_list(args: argparse.Namespace) -> int:
    from harness import tracking

    names = tracking.list_baselines(args.store_dir)
    _print_lines(names or [f"no baselines in {args.store_dir}"])
    return EXIT_OK


def _register_check(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "check", help="check a run against a stored baseline (exit 1 when a regression is shown)",
        description="Flag tests slower than the baseline by more than --threshold with a significant "
        "Holm-corrected one-sided Mann-Whitney test, and any increase of a database counter. "
        "Exit status 0: no regression shown; 1: regressed; 2: error.",
    )
    parser.add_argument("name", type=baseline_name, help="stored baseline to check against")
    _add_run_choice(parser)
    parser.add_argument("--variant", type=architecture_label, help="variant of the run to check (default: the baseline's)")
    parser.add_argument("--store-dir", type=Path, default=paths.BASELINES, help=f"default {paths.BASELINES}")
    parser.add_argument("--threshold", type=non_negative_float, default=0.2, help="slowdown that matters, as a fraction (default 0.2)")
    parser.add_argument("--alpha", type=probability, default=0.05, help="family-wise error rate (default 0.05)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of the reported intervals (default 0)")
    parser.add_argument(
        "--allow-environment-change", action="store_true",
        help="check even when the run's Python or CPU differs from the baseline's",
    )
    parser.set_defaults(handler=_handle_check)


def _handle_check(args: argparse.Namespace) -> int:
    from harness import tracking
    from harness.metadata import COMPARABLE_KEYS, metadata_differences

    baseline = tracking.load_baseline(args.name, args.store_dir)
    run = _load_chosen_run(args)
    lines = []
    recorded_on = baseline.metadata.get("environment")
    if recorded_on:
        differences = metadata_differences(recorded_on, run.metadata.get("environment") or {}, keys=COMPARABLE_KEYS)
        described = ", ".join(f"{key} {old!r} -> {new!r}" for key, (old, new) in differences.items())
        if differences and not args.allow_environment_change:
            raise HarnessError(
                f"run {run.run_id} was measured on another machine or Python than baseline {args.name!r} "
                f"({described}); timings are not comparable (override with --allow-environment-change)"
            )
        if differences:
            lines.append(f"warning: environment differs from the baseline's: {described}")
    result = tracking.check_regressions(
        run.timings,
        baseline=baseline,
        variant=args.variant or baseline.variant,
        threshold=args.threshold,
        alpha=args.alpha,
        seed=args.seed,
    )
    _print_lines([*lines, f"run {run.run_id}", *tracking.format_check(result)])
    return EXIT_FLAGGED if result.regressed else EXIT_OK


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
    except USER_ERRORS as problem:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous)
