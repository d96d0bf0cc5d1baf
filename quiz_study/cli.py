"""Command line of the study: `python -m harness <subcommand>` (or `python -m quiz_study`).

The engine's command line (`suitebench.cli`) with the study's defaults: runs in data/runs,
baselines in data/baselines, variants named by architecture specs, and `compare` comparing
baseline with transactional when both were measured. Only `run` is the study's own: it turns
`--arch` specs (and `--switch` overrides) into the engine's variants.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from quiz_architectures.architectures import PRESETS, parse_assignment, parse_spec
from quiz_study import paths
from quiz_study.errors import USER_ERRORS
from suitebench import cli as engine_cli
from suitebench.cli import CommandDefaults


def architecture_spec(text: str) -> str:
    """`baseline`, `transactional` or `PRESET+name=value,...` (optionally `@n=WORKERS`), checked."""
    from quiz_study.variants import split_variant

    with engine_cli.argument_errors(*USER_ERRORS):
        parse_spec(split_variant(text).architecture)
    return text.strip()


def switch_assignment(text: str) -> str:
    """One `name=value` switch override; the value is checked once combined with a preset."""
    with engine_cli.argument_errors(*USER_ERRORS):
        name, value = parse_assignment(text)
    return f"{name}={value}"


def architecture_label(text: str) -> str:
    """A variant as stored in the data: the label of an architecture spec (with its `@n=`)."""
    from quiz_study.variants import split_variant, variant_label

    with engine_cli.argument_errors(*USER_ERRORS):
        architecture, workers = split_variant(text)
        return variant_label(parse_spec(architecture).label, workers)


def with_switches(specs: Sequence[str], switches: Sequence[str]) -> list[str]:
    """Apply `--switch` overrides to every architecture spec."""
    if not switches:
        return list(specs)
    overrides = ",".join(switches)
    return [f"{spec}{',' if '+' in spec else '+'}{overrides}" for spec in specs]


def architecture_pytest_args(text: str) -> tuple[str, ...]:
    """The pytest arguments of an architecture spec (what `check --against-rev --variant` measures)."""
    from quiz_study.variants import resolve_variants

    return resolve_variants([text])[0].pytest_args


STUDY_DEFAULTS = CommandDefaults(
    prog="python -m harness",
    runs_dir=paths.RUNS,
    store_dir=paths.BASELINES,
    variant_label=architecture_label,
    preferred_pair=("baseline", "transactional"),
    suite_path=paths.SUITE,
    variant_pytest_args=architecture_pytest_args,
    default_check_variant="transactional",
)


def register_run(subparsers: argparse._SubParsersAction, defaults: CommandDefaults) -> None:
    parser = subparsers.add_parser(
        "run",
        help="measure the suite under each architecture in interleaved fresh pytest processes",
        description="Measure the quiz suite under each architecture in interleaved fresh pytest processes "
        "and record the run under data/runs/<run-id>/.",
    )
    parser.add_argument(
        "--arch",
        "--variant",
        dest="variants",
        action="append",
        type=architecture_spec,
        metavar="SPEC",
        help="architecture to measure, repeatable: baseline, transactional or PRESET+name=value,... "
        "(optionally @n=WORKERS for pytest-xdist; default: baseline and transactional)",
    )
    parser.add_argument(
        "--switch",
        dest="switches",
        action="append",
        type=switch_assignment,
        default=[],
        metavar="NAME=VALUE",
        help="override one switch in every architecture, repeatable (e.g. storage=disk)",
    )
    parser.add_argument(
        "--suite",
        type=engine_cli.existing_directory,
        metavar="PATH",
        help=f"the suite under study (default {paths.SUITE})",
    )
    engine_cli.add_schedule_options(parser, defaults)
    parser.set_defaults(handler=_handle_run)


def _handle_run(args: argparse.Namespace) -> int:
    variants = args.variants
    if args.switches:
        variants = with_switches(variants or list(PRESETS), args.switches)
        for spec in variants:
            parse_spec(spec)  # a refused combination fails here, before any process starts
    options = engine_cli.schedule_arguments(args)
    from quiz_study.variants import run_benchmark

    return engine_cli.report_run(lambda: run_benchmark(variants=variants, suite_path=args.suite, **options))


SUBCOMMANDS = {**engine_cli.SUBCOMMANDS, "run": register_run}


def build_parser() -> argparse.ArgumentParser:
    return engine_cli.build_parser(
        STUDY_DEFAULTS,
        SUBCOMMANDS,
        description="Test-performance study of the quiz API's suite (on the suitebench engine).",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; returns the exit status."""
    return engine_cli.run_command_line(build_parser(), argv, user_errors=USER_ERRORS)
