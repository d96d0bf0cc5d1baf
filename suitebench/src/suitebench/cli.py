"""Command line of the engine: `python -m suitebench <subcommand>`.

    python -m suitebench run --suite DIR --variant NAME="PYTEST ARGS" [--variant ...]
                             --repetitions N --warmup N --runs-dir DIR --run-id ID
    python -m suitebench compare [--run ID] [--baseline NAME --candidate NAME]
    python -m suitebench baseline record NAME --run ID --variant NAME
    python -m suitebench check NAME --run ID
    python -m suitebench check --against-rev REV --suite DIR [--pytest-args "ARGS"] [--repetitions 5]
    python -m suitebench baseline calibrate NAME --run ID [--run ID ...]   (at least 10 A/A sessions)

Each subcommand is registered by one `register_*` function; its handler maps the parsed
arguments to keyword arguments of a library function and prints that library's `format_*`
lines. Every argument is validated by its `type=` parser. A BenchError becomes one line
`error: <message>` on stderr and exit status 2 (a full disk too); an interrupted run (Ctrl-C,
SIGTERM, SIGHUP) exits with 130; exit status 1 flags data that needs attention (an invalid
measured repetition, a regression shown).

A tool built on the engine (the quiz study's `python -m harness`) reuses these registrations
with its own defaults (`CommandDefaults`) and adds commands of its own.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from suitebench.errors import BenchError
from suitebench.store import DEFAULT_RUNS_DIR, DEFAULT_STORE_DIR, check_name

if TYPE_CHECKING:
    from suitebench.store import RunData

EXIT_OK = 0
EXIT_FLAGGED = 1  # run: a measured repetition is invalid; check: a regression is shown
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """A bad command-line argument, reported as one line."""


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad argument as one line instead of usage + message + exit."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


# ---------------------------------------------------------------- `type=` validators


@contextlib.contextmanager
def argument_errors(*errors: type[Exception]) -> Iterator[None]:
    """Inside a `type=` parser: `errors` raised by the library become argparse's one-line
    argument errors."""
    try:
        yield
    except errors as problem:
        raise argparse.ArgumentTypeError(str(problem)) from None


def _number(text: str, kind: type, what: str, accept: Callable[[float], bool]) -> int | float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not accept(value):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    return _number(text, int, "a positive integer", lambda v: v >= 1)


def non_negative_int(text: str) -> int:
    return _number(text, int, "a non-negative integer", lambda v: v >= 0)


def positive_float(text: str) -> float:
    return _number(text, float, "a positive number", lambda v: 0 < v < float("inf"))


def non_negative_float(text: str) -> float:
    return _number(text, float, "a non-negative number", lambda v: 0 <= v < float("inf"))


def timeout_setting(text: str) -> float | str:
    """`--timeout`: seconds, or `auto` (the runner's default limit, scaled from earlier repetitions)."""
    from suitebench.runner import AUTO_TIMEOUT

    if text.strip().lower() == AUTO_TIMEOUT:
        return AUTO_TIMEOUT
    return _number(text, float, f"a positive number of seconds or {AUTO_TIMEOUT}", lambda v: 0 < v < float("inf"))


def probability(text: str) -> float:
    return _number(text, float, "a number between 0 and 1", lambda v: 0 < v < 1)


def run_identifier(text: str) -> str:
    with argument_errors(BenchError):
        return check_name(text)


def baseline_name(text: str) -> str:
    with argument_errors(BenchError):
        return check_name(text, what="baseline name")


def variant_definition(text: str):  # noqa: ANN201 - runner.Variant, imported lazily
    """`NAME="PYTEST ARGS"` -> a runner Variant."""
    from suitebench.runner import parse_variant

    with argument_errors(BenchError):
        return parse_variant(text)


def existing_directory(text: str) -> Path:
    path = Path(text).expanduser()
    if not path.exists():
        raise argparse.ArgumentTypeError(f"no such file or directory: {text!r}")
    return path


# ---------------------------------------------------------------- defaults a tool may change


@dataclass(frozen=True)
class CommandDefaults:
    """What a tool built on the engine changes in the shared subcommands."""

    prog: str = "python -m suitebench"
    runs_dir: Path = DEFAULT_RUNS_DIR
    store_dir: Path = DEFAULT_STORE_DIR
    # Parses a variant name given on the command line into the label stored in the data.
    variant_label: Callable[[str], str] = str
    # The pair `compare` uses when none is named, when both are in the run.
    preferred_pair: tuple[str, str] | None = None
    # `check --against-rev`: the suite measured when none is named, and the pytest arguments of a
    # variant named with --variant (None: the engine takes --pytest-args as given).
    suite_path: Path | None = None
    variant_pytest_args: Callable[[str], tuple[str, ...]] | None = None
    default_check_variant: str | None = None


def comparison_pair(
    variants: Sequence[str],
    *,
    baseline: str | None = None,
    candidate: str | None = None,
    preferred: tuple[str, str] | None = None,
) -> tuple[str, str]:
    """Which two variants of a run to compare: those named, else `preferred` when the run has
    them, else the first two."""
    if preferred and baseline is None and candidate is None and set(preferred) <= set(variants):
        return preferred
    if baseline is None:
        baseline = variants[0] if variants else None
    if candidate is None:
        others = [v for v in variants if v != baseline]
        candidate = others[0] if others else None
    if baseline is None or candidate is None or baseline == candidate:
        raise BenchError(f"need two different variants to compare; the run has: {', '.join(variants) or 'none'}")
    for variant in (baseline, candidate):
        if variant not in variants:
            raise BenchError(f"variant {variant!r} is not in the run; it has: {', '.join(variants)}")
    return baseline, candidate


def add_run_choice(parser: argparse.ArgumentParser, defaults: CommandDefaults) -> None:
    parser.add_argument(
        "--run",
        dest="run_id",
        type=run_identifier,
        metavar="RUN_ID",
        help="run to use (default: the latest complete run)",
    )
    add_runs_dir(parser, defaults)
    parser.add_argument("--profile", help="without --run: the latest complete run recorded with this profile tag")


def add_runs_dir(parser: argparse.ArgumentParser, defaults: CommandDefaults, *aliases: str) -> None:
    parser.add_argument(
        "--runs-dir",
        *aliases,
        dest="runs_dir",
        type=Path,
        default=defaults.runs_dir,
        metavar="DIR",
        help=f"where runs are stored (default {defaults.runs_dir})",
    )


def add_store_dir(parser: argparse.ArgumentParser, defaults: CommandDefaults) -> None:
    parser.add_argument(
        "--store-dir",
        type=Path,
        default=defaults.store_dir,
        metavar="DIR",
        help=f"where baselines are stored (default {defaults.store_dir})",
    )


def load_chosen_run(args: argparse.Namespace) -> RunData:
    from suitebench import store

    return store.load_run(store.find_run(args.run_id, runs_dir=args.runs_dir, profile=args.profile))


# ---------------------------------------------------------------- run


def add_schedule_options(parser: argparse.ArgumentParser, defaults: CommandDefaults) -> None:
    """The options every `run` command shares, whatever makes its variants."""
    parser.add_argument(
        "--repetitions",
        type=positive_int,
        metavar="N",
        help="measured blocks; each runs every variant once (default 10)",
    )
    parser.add_argument(
        "--warmup",
        type=non_negative_int,
        metavar="N",
        help="warm-up blocks run first and excluded from statistics (default 1)",
    )
    parser.add_argument("-k", dest="keyword", metavar="EXPRESSION", help="pytest -k expression selecting tests")
    parser.add_argument("-m", dest="marker", metavar="MARKEXPR", help="pytest -m expression selecting tests")
    add_runs_dir(parser, defaults, "--output-dir")
    parser.add_argument("--run-id", type=run_identifier, help="name of the run directory (default: timestamp)")
    parser.add_argument("--seed", type=non_negative_int, help="seed of the random schedule")
    parser.add_argument(
        "--schedule",
        choices=("abab", "random"),
        help="order within blocks: abab (fixed, default) or random (per block)",
    )
    parser.add_argument(
        "--resume", metavar="RUN_ID", type=run_identifier, help="continue an interrupted run from its stored schedule"
    )
    parser.add_argument(
        "--pytest-arg",
        dest="pytest_args",
        action="append",
        metavar="ARG",
        help="extra argument for every pytest process, repeatable (write --pytest-arg=-x)",
    )
    parser.add_argument(
        "--timeout",
        type=timeout_setting,
        metavar="SECONDS",
        help="kill a repetition after this long and record it as invalid; the run goes on (default auto: "
        "30 minutes for a variant's first repetition, then 10 times its slowest valid one, at least 60 s)",
    )
    parser.add_argument("--profile", help="tag stored with the run (commands can pick the latest run of a tag)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def chosen_run_id(*, resume: str | None, run_id: str | None) -> str | None:
    """The run named by `--resume` or `--run-id` (None: a new run named by the runner).

    Raises
    ------
    BenchError
        Both are given and name different runs.
    """
    if resume and run_id and resume != run_id:
        raise BenchError(f"--resume {resume} and --run-id {run_id} name different runs")
    return resume or run_id


def schedule_arguments(args: argparse.Namespace) -> dict:
    """Keyword arguments of `run_benchmark` from `add_schedule_options`' options."""
    run_id = chosen_run_id(resume=args.resume, run_id=args.run_id)
    selection = {key: value for key, value in (("keyword", args.keyword), ("marker", args.marker)) if value}
    return {
        "repetitions": args.repetitions,
        "warmup": args.warmup,
        "selection": selection or None,
        "output_dir": args.runs_dir,
        "run_id": run_id,
        "seed": args.seed,
        "schedule": args.schedule,
        "resume": args.resume is not None,
        "extra_pytest_args": args.pytest_args,
        "progress": not args.no_progress,
        "timeout_s": args.timeout,
        "profile": args.profile,
    }


def report_run(run: Callable[[], object]) -> int:
    """Run a measurement and print its summary; exit status 1 when a measured repetition is invalid."""
    from suitebench.runner import RunInterrupted, format_run_result

    try:
        result = run()
    except RunInterrupted as interrupted:
        print(f"interrupted: {interrupted}", file=sys.stderr)
        return EXIT_INTERRUPTED
    print_lines(format_run_result(result))
    return EXIT_FLAGGED if result.invalid_measured_repetitions else EXIT_OK


def register_run(subparsers: argparse._SubParsersAction, defaults: CommandDefaults) -> None:
    parser = subparsers.add_parser(
        "run",
        help="measure a pytest suite under each variant in interleaved fresh pytest processes",
        description="Measure a pytest suite under each variant in interleaved fresh pytest processes "
        "and record the run under RUNS_DIR/<run-id>/.",
    )
    parser.add_argument(
        "--suite", type=existing_directory, metavar="PATH", help="the suite to measure (a directory or file)"
    )
    parser.add_argument(
        "--variant",
        dest="variants",
        action="append",
        type=variant_definition,
        metavar='NAME="PYTEST ARGS"',
        help='a variant to measure, repeatable: a label and the pytest arguments that make it, e.g. fast="-x -p no:randomly"',
    )
    parser.add_argument(
        "--cwd",
        type=existing_directory,
        metavar="DIR",
        help="working directory of the pytest processes (default: this one)",
    )
    add_schedule_options(parser, defaults)
    parser.set_defaults(handler=lambda args: _handle_run(args, defaults))


def _handle_run(args: argparse.Namespace, defaults: CommandDefaults) -> int:
    from suitebench.runner import run_benchmark

    options = schedule_arguments(args)
    if not options["resume"] and (args.suite is None or not args.variants):
        raise BenchError("a new run needs --suite and at least one --variant (or --resume RUN_ID)")
    return report_run(
        lambda: run_benchmark(
            suite_path=args.suite, variants=args.variants, cwd=args.cwd, resume_hint=f"{defaults.prog} run", **options
        )
    )


# ---------------------------------------------------------------- compare / baseline / check


COMPARE_LEVELS = ("suite", "category", "test")


def register_compare(subparsers: argparse._SubParsersAction, defaults: CommandDefaults) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="compare two variants of a run: whole suite, categories, single tests",
        description="Compare two variants of a recorded run: ratios of geometric means over processes with "
        "Welch t intervals on log times, Welch p-values with Benjamini-Hochberg.",
    )
    add_run_choice(parser, defaults)
    parser.add_argument("--baseline", type=defaults.variant_label, metavar="VARIANT", help="reference variant")
    parser.add_argument("--candidate", type=defaults.variant_label, metavar="VARIANT", help="variant compared to it")
    parser.add_argument(
        "--level", dest="levels", action="append", choices=COMPARE_LEVELS, help="repeatable (default: all three)"
    )
    parser.add_argument("--alpha", type=probability, default=0.05, help="false discovery rate (default 0.05)")
    parser.add_argument(
        "--all-tests",
        action="store_true",
        help="compare every test measured (default: only tests that passed in every process of both variants)",
    )
    parser.add_argument("--limit", type=positive_int, help="show at most this many tests")
    parser.add_argument(
        "--format",
        dest="output_format",
        choices=("plain", "markdown", "lines"),
        default="plain",
        help="a plain-text table (default), a markdown table, or one sentence per row",
    )
    parser.set_defaults(handler=lambda args: _handle_compare(args, defaults))


def _handle_compare(args: argparse.Namespace, defaults: CommandDefaults) -> int:
    from suitebench import stats

    run = load_chosen_run(args)
    baseline, candidate = comparison_pair(
        run.variants, baseline=args.baseline, candidate=args.candidate, preferred=defaults.preferred_pair
    )
    test_set = None if args.all_tests else stats.comparable_tests(run.timings, variants=[baseline, candidate])
    options = {
        "baseline": baseline,
        "candidate": candidate,
        "alpha": args.alpha,
        "tests": None if test_set is None else test_set.tests,
    }
    lines = [f"run {run.run_id} ({run.metadata.get('status', 'unknown')}): {candidate} compared with {baseline}"]
    if test_set is not None:
        lines.append(test_set.describe())
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
            lines += [
                "",
                f"{level}:",
                stats.format_table(table[list(stats.COMPARISON_DISPLAY_COLUMNS)], style=args.output_format),
            ]
            if limit and len(frame) > limit:
                lines.append(f"... and {len(frame) - limit} more")
    print_lines(lines)
    return EXIT_OK


def register_baseline(subparsers: argparse._SubParsersAction, defaults: CommandDefaults) -> None:
    parser = subparsers.add_parser("baseline", help="store, list and calibrate regression baselines")
    actions = parser.add_subparsers(dest="baseline_action", metavar="ACTION", required=True)

    record = actions.add_parser("record", help="store one variant of a run as a named baseline")
    record.add_argument("name", type=baseline_name, help="baseline name (letters, digits, '.', '_', '-')")
    add_run_choice(record, defaults)
    record.add_argument(
        "--variant", type=defaults.variant_label, help="variant to store (default: the run's only or last variant)"
    )
    add_store_dir(record, defaults)
    record.add_argument("--overwrite", action="store_true", help="replace a baseline of that name")
    record.set_defaults(handler=_handle_baseline_record)

    listing = actions.add_parser("list", help="names of the stored baselines")
    add_store_dir(listing, defaults)
    listing.set_defaults(handler=_handle_baseline_list)

    calibrate = actions.add_parser(
        "calibrate",
        help="calibrate the minimum effect of checks against baseline NAME from at least 10 A/A sessions",
        description="Estimate, from runs of the same code on separate occasions (A/A sessions), how far "
        "sessions drift, and store the minimum effect that keeps the stored-baseline check's false alarms "
        "across sessions at or below --target.",
    )
    calibrate.add_argument("name", type=baseline_name, help="the baseline the calibration is for")
    calibrate.add_argument(
        "--run",
        dest="run_ids",
        action="append",
        type=run_identifier,
        required=True,
        metavar="RUN_ID",
        help="an A/A session (repeat: at least 10)",
    )
    add_runs_dir(calibrate, defaults)
    add_store_dir(calibrate, defaults)
    calibrate.add_argument(
        "--variant", type=defaults.variant_label, help="variant measured in the sessions (default: the baseline's)"
    )
    calibrate.add_argument(
        "--target", type=probability, default=0.01, help="false alarms across sessions (default 0.01)"
    )
    calibrate.set_defaults(handler=_handle_baseline_calibrate)


def default_variant(variants: Sequence[str]) -> str:
    """The variant a baseline tracks when none is named: the run's only one, else its last (the
    candidate of a baseline-then-candidate run)."""
    if not variants:
        raise BenchError("the run has no variants")
    return variants[-1]


def _handle_baseline_record(args: argparse.Namespace) -> int:
    from suitebench import regression

    run = load_chosen_run(args)
    variant = args.variant or default_variant(run.variants)
    path = regression.record_baseline(
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
    print_lines([f"stored baseline {args.name!r}: {variant} from run {run.run_id} at {path}"])
    return EXIT_OK


def _handle_baseline_list(args: argparse.Namespace) -> int:
    from suitebench import regression

    names = regression.list_baselines(args.store_dir)
    print_lines(names or [f"no baselines in {args.store_dir}"])
    return EXIT_OK


def _handle_baseline_calibrate(args: argparse.Namespace) -> int:
    from suitebench import regression, store

    baseline = regression.load_baseline(args.name, args.store_dir)
    variant = args.variant or baseline.variant
    sessions = [
        regression.process_sample(
            store.load_run(store.find_run(run_id, runs_dir=args.runs_dir)).timings, variant=variant
        )
        for run_id in args.run_ids
    ]
    calibration = regression.calibrate_minimum_effect(sessions, target_false_alarm=args.target)
    path = regression.save_calibration(calibration, name=args.name, store_dir=args.store_dir)
    m = calibration.min_effect(n_base=baseline.sample.n_processes, n_current=baseline.sample.n_processes)
    print_lines(
        [
            f"stored calibration for {args.name!r} at {path}: {calibration.n_sessions} sessions, minimum effect "
            f"{m * 100:.1f} % at {baseline.sample.n_processes} processes per side; session pairs flagged at it: "
            f"{calibration.pairs_flagged} of {calibration.pairs_compared}"
        ]
    )
    return EXIT_OK


def register_check(subparsers: argparse._SubParsersAction, defaults: CommandDefaults) -> None:
    parser = subparsers.add_parser(
        "check",
        help="check for a regression: against a stored baseline, or against a git revision in the same session "
        "(exit 1 when one is shown)",
        description="The timing gate: one-sided Welch tests on each process's mean log time over the tests that "
        "passed everywhere (all tests at most of alpha, each category at an equal part of the rest: "
        "suitebench.regression.gate_levels), fired when a lower confidence bound "
        "of the slowdown exceeds the minimum effect; tests are localised only after it fires. Any increase of a "
        "deterministic counter is flagged too. With --against-rev REV the revision (a temporary git worktree) "
        "and the working tree are measured interleaved in one session (minimum effect 0); otherwise a run is "
        "checked against stored baseline NAME (minimum effect from its calibration, else 10 %). "
        "Exit status 0: no regression shown; 1: regressed; 2: error, or a design the gate cannot use.",
    )
    parser.add_argument("name", nargs="?", type=baseline_name, help="stored baseline to check against")
    add_run_choice(parser, defaults)
    parser.add_argument(
        "--variant", type=str, help="variant to check (default: the baseline's; with --against-rev: the tool's default)"
    )
    add_store_dir(parser, defaults)
    parser.add_argument("--alpha", type=probability, default=0.01, help="family-wise false-alarm rate (default 0.01)")
    parser.add_argument(
        "--min-effect",
        type=non_negative_float,
        metavar="FRACTION",
        help="slowdowns up to this are never flagged (default: 0 same session; stored: calibrated, else 0.1)",
    )
    parser.add_argument(
        "--allow-environment-change",
        action="store_true",
        help="check even when the run's Python or CPU differs from the baseline's",
    )
    ab = parser.add_argument_group("same-session A/B (--against-rev)")
    ab.add_argument("--against-rev", metavar="REV", help="measure git revision REV and the working tree interleaved")
    ab.add_argument(
        "--suite",
        type=existing_directory,
        default=defaults.suite_path,
        metavar="PATH",
        help="the suite to measure" + (f" (default {defaults.suite_path})" if defaults.suite_path else ""),
    )
    ab.add_argument("--pytest-args", default="", metavar='"ARGS"', help="pytest arguments of the measured variant")
    ab.add_argument("--repetitions", type=positive_int, default=5, help="measured repetitions per side (default 5)")
    ab.add_argument("--warmup", type=non_negative_int, default=1, help="warm-up blocks (default 1)")
    ab.add_argument("-k", dest="keyword", metavar="EXPRESSION", help="pytest -k expression selecting tests")
    ab.add_argument("-m", dest="marker", metavar="MARKEXPR", help="pytest -m expression selecting tests")
    ab.add_argument("--seed", type=non_negative_int, help="seed of the random order within blocks")
    ab.add_argument("--run-id", type=run_identifier, help="name of the A/B run directory (default: timestamp)")
    ab.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=lambda args: _handle_check(args, defaults))


def _handle_check(args: argparse.Namespace, defaults: CommandDefaults) -> int:
    from suitebench import regression

    if args.against_rev is not None:
        return _check_against_revision(args, defaults)
    if args.name is None:
        raise BenchError("name a stored baseline to check against, or measure against a revision: --against-rev REV")
    from suitebench.metadata import COMPARABLE_KEYS, describe_differences, metadata_differences

    baseline = regression.load_baseline(args.name, args.store_dir)
    run = load_chosen_run(args)
    try:
        variant = defaults.variant_label(args.variant) if args.variant else baseline.variant
    except argparse.ArgumentTypeError as problem:
        raise BenchError(f"--variant: {problem}") from None
    lines = []
    recorded_on = baseline.metadata.get("environment")
    if recorded_on:
        differences = metadata_differences(recorded_on, run.metadata.get("environment") or {}, keys=COMPARABLE_KEYS)
        described = describe_differences(differences)
        if differences and not args.allow_environment_change:
            raise BenchError(
                f"run {run.run_id} was measured on another machine or Python than baseline {args.name!r} "
                f"({described}); timings are not comparable (override with --allow-environment-change)"
            )
        if differences:
            lines.append(f"warning: environment differs from the baseline's: {described}")
    if run.run_id in baseline.source_run_ids:
        raise BenchError(f"baseline {args.name!r} was recorded from run {run.run_id}: check another run against it")
    result = regression.check_regressions(
        run.timings,
        baseline=baseline,
        variant=variant,
        alpha=args.alpha,
        min_effect=args.min_effect,
        calibration=regression.load_calibration(args.name, args.store_dir),
    )
    print_lines([*lines, f"run {run.run_id}", *regression.format_check(result)])
    return EXIT_FLAGGED if result.regressed else EXIT_OK


def _check_against_revision(args: argparse.Namespace, defaults: CommandDefaults) -> int:
    import shlex

    from suitebench import regression
    from suitebench.ab import measure_against_revision

    if args.suite is None:
        raise BenchError("name the suite to measure: --suite PATH")
    # Refused before anything is measured: a design the gate cannot use is minutes wasted.
    regression.check_design(args.repetitions, args.repetitions)
    variant = args.variant or defaults.default_check_variant
    if variant is not None and defaults.variant_pytest_args is not None:
        pytest_args = (*defaults.variant_pytest_args(variant), *shlex.split(args.pytest_args))
    else:
        pytest_args = tuple(shlex.split(args.pytest_args))
    selection = {key: value for key, value in (("keyword", args.keyword), ("marker", args.marker)) if value}
    measured = measure_against_revision(
        revision=args.against_rev,
        suite_path=args.suite,
        pytest_args=pytest_args,
        runs_dir=args.runs_dir,
        run_id=args.run_id,
        repetitions=args.repetitions,
        warmup=args.warmup,
        seed=args.seed,
        selection=selection or None,
        progress=not args.no_progress,
    )
    from suitebench import store

    run = store.load_run(measured.run_dir)
    result = regression.check_same_session(
        run.timings,
        reference=measured.reference_label,
        variant=measured.current_label,
        alpha=args.alpha,
        min_effect=args.min_effect or 0.0,
    )
    print_lines(
        [f"run {run.run_id} (same session: {args.against_rev} vs the working tree)", *regression.format_check(result)]
    )
    return EXIT_FLAGGED if result.regressed else EXIT_OK


# Add a subcommand: write `register_<name>(subparsers, defaults)` setting `handler=`, list it here.
SUBCOMMANDS: dict[str, Callable[[argparse._SubParsersAction, CommandDefaults], None]] = {
    "run": register_run,
    "compare": register_compare,
    "baseline": register_baseline,
    "check": register_check,
}


# ---------------------------------------------------------------- entry point


def build_parser(
    defaults: CommandDefaults = CommandDefaults(),
    subcommands: dict[str, Callable[[argparse._SubParsersAction, CommandDefaults], None]] = SUBCOMMANDS,
    *,
    description: str = "Measure a pytest suite under several variants; compare, track and check regressions.",
) -> argparse.ArgumentParser:
    parser = OneLineParser(prog=defaults.prog, description=description)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in subcommands.values():
        register(subparsers, defaults)
    return parser


def print_lines(lines: Sequence[str]) -> None:
    for line in lines:
        print(line)


def _sigterm_as_interrupt(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt


@contextlib.contextmanager
def stop_signals_as_interrupt() -> Iterator[None]:
    """While the block runs, `kill <pid>` (SIGTERM) or the terminal going away (SIGHUP) stops it
    like Ctrl-C (KeyboardInterrupt), so a run is marked interrupted, its data kept, and the line
    printed says how to resume it; the previous handlers come back afterwards."""
    stopping = [signal.SIGTERM, *([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])]
    previous = {signum: signal.signal(signum, _sigterm_as_interrupt) for signum in stopping}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def run_command_line(
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None,
    *,
    user_errors: tuple[type[Exception], ...] = (BenchError,),
) -> int:
    """Parse `argv`, run the chosen handler, and turn problems into one line and an exit status."""
    try:
        args = parser.parse_args(argv)
    except UsageError as problem:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_ERROR
    try:
        with stop_signals_as_interrupt():
            return args.handler(args)
    except user_errors as problem:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; returns the exit status."""
    return run_command_line(build_parser(), argv)
