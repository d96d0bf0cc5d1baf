"""Run the whole study: measure both architectures, execute the notebooks, export the HTML report.

    python run_all.py [--profile smoke|quick|standard|full] [--check] [--run-id ID]
                      [--with why,postgres,parallel|all|none] [--output-root DIR]
                      [--no-progress] [--resume RUN_ID]

Exit status: 0 done; 1 ``--check`` and an acceptance criterion failed; 2 an error (one line
``error: <message>`` on stderr); 130 interrupted (Ctrl-C or SIGTERM; measured data is kept).
All the work is done by :func:`quiz_study.pipeline.run_study`; this file only maps arguments to it.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from quiz_study.errors import USER_ERRORS
from quiz_study.profiles import DEFAULT_PROFILE, PROFILE_NAMES, PROFILES
from suitebench.cli import OneLineParser, UsageError, run_identifier

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


def report_sections(text: str) -> tuple[str, ...]:
    from quiz_study.sections import parse_sections

    try:
        return parse_sections(text)
    except USER_ERRORS as problem:
        raise argparse.ArgumentTypeError(str(problem)) from None


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
    parser.add_argument("--check", action="store_true", help="exit 1 when any acceptance criterion fails")
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
        help="optional report sections to measure after the main run, comma-separated: why (attribution, floor, "
        "scaling), postgres (SQLite vs PostgreSQL), parallel (serial vs pytest -n 2); 'all' or 'none' "
        "(default: the profile's; full has all three). They take minutes at smoke/standard size and much "
        "longer at full size",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar or step messages")
    return parser


def _sigterm_as_interrupt(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except UsageError as problem:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_ERROR
    if args.resume and args.run_id and args.resume != args.run_id:
        print(f"error: --resume {args.resume} and --run-id {args.run_id} name different runs", file=sys.stderr)
        return EXIT_ERROR

    from quiz_study.pipeline import StudyInterrupted, format_summary, run_study
    from suitebench.runner import RunInterrupted

    def step(message: str) -> None:
        print(f"... {message}", file=sys.stderr, flush=True)

    previous = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    try:
        result = run_study(
            profile=args.profile,
            output_root=args.output_root,
            run_id=args.resume or args.run_id,
            resume=args.resume is not None,
            check=args.check,
            progress=not args.no_progress,
            on_step=None if args.no_progress else step,
            sections=args.sections,
        )
    except (RunInterrupted, StudyInterrupted) as interrupted:
        print(f"interrupted: {interrupted}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except USER_ERRORS as problem:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted: measured repetitions are kept in the run directory", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous)
    for line in format_summary(result):
        print(line)
    return EXIT_CHECK_FAILED if result.check_failed else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
