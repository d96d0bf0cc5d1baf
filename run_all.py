"""Run the whole study: measure both architectures, execute the notebooks, export the HTML report.

    python run_all.py [--profile smoke|quick|standard|full] [--check] [--run-id ID]
                      [--with why,postgres,parallel|all|none] [--output-root DIR]
                      [--no-progress] [--resume RUN_ID]

Exit status: 0 done; 1 ``--check`` and an acceptance criterion not met or undetermined (its interval
straddles the target); 2 an error (one line
``error: <message>`` on stderr); 130 interrupted (Ctrl-C, SIGTERM or SIGHUP; measured data is kept).
All the work is done by :func:`quiz_study.pipeline.run_study`; this file only maps arguments to it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from quiz_study.errors import USER_ERRORS
from quiz_study.profiles import DEFAULT_PROFILE, PROFILE_NAMES, PROFILES
from suitebench.cli import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    OneLineParser,
    argument_errors,
    chosen_run_id,
    run_command_line,
    run_identifier,
)

EXIT_CHECK_FAILED = 1


def report_sections(text: str) -> tuple[str, ...]:
    from quiz_study.sections import parse_sections

    with argument_errors(*USER_ERRORS):
        return parse_sections(text)


def output_root(text: str) -> Path:
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"output root {text!r} exists and is not a directory")
    return path


def build_parser() -> argparse.ArgumentParser:
    profiles_help = "; ".join(f"{name}: {profile.description}" for name, profile in PROFILES.items())
    parser = OneLineParser(
        prog="python run_all.py",
        description="Measure the quiz suite under both architectures, analyse, and write the validation "
        "report to reports/<run-id>/report.html (and reports/latest/).",
    )
    parser.add_argument(
        "--profile",
        choices=PROFILE_NAMES,
        default=DEFAULT_PROFILE,
        help=f"how much to measure (default {DEFAULT_PROFILE}). {profiles_help}",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1 unless every acceptance criterion is met (its whole 95 %% interval on the target's good side); "
        "not met and undetermined both fail",
    )
    parser.add_argument("--run-id", type=run_identifier, help="name of the new run (default: a timestamp)")
    parser.add_argument(
        "--resume",
        metavar="RUN_ID",
        type=run_identifier,
        help="continue an interrupted run (or re-render the report of a complete one) instead of starting a new run",
    )
    parser.add_argument(
        "--output-root",
        type=output_root,
        metavar="DIR",
        help="write data/runs, data/baselines and reports under DIR instead of the project",
    )
    parser.add_argument(
        "--with",
        dest="sections",
        type=report_sections,
        metavar="SECTIONS",
        help="optional report sections to measure beside the main run, comma-separated: why (the factorial "
        "attribution and the floor, measured first; scaling at full size), postgres (SQLite vs PostgreSQL), parallel (serial vs pytest -n 2); 'all' or 'none' "
        "(default: the profile's; full has all three). They take minutes at smoke/standard size and much "
        "longer at full size",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar or step messages")
    parser.set_defaults(handler=study)
    return parser


def study(args: argparse.Namespace) -> int:
    """Run the study the arguments ask for and print its summary; returns the exit status."""
    run_id = chosen_run_id(resume=args.resume, run_id=args.run_id)
    from quiz_study.pipeline import StudyInterrupted, format_summary, run_study
    from suitebench.runner import RunInterrupted

    def step(message: str) -> None:
        print(f"... {message}", file=sys.stderr, flush=True)

    try:
        result = run_study(
            profile=args.profile,
            output_root=args.output_root,
            run_id=run_id,
            resume=args.resume is not None,
            check=args.check,
            progress=not args.no_progress,
            on_step=None if args.no_progress else step,
            sections=args.sections,
        )
    except (RunInterrupted, StudyInterrupted) as interrupted:
        print(f"interrupted: {interrupted}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        print("interrupted: measured repetitions are kept in the run directory", file=sys.stderr)
        return EXIT_INTERRUPTED
    for line in format_summary(result):
        print(line)
    return EXIT_CHECK_FAILED if result.check_failed else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    # The engine's command-line frame: a bad argument or a library error is one `error:` line
    # (exit 2), SIGTERM and SIGHUP stop the study like Ctrl-C (data kept, resumable).
    return run_command_line(build_parser(), argv, user_errors=USER_ERRORS)


if __name__ == "__main__":
    sys.exit(main())
