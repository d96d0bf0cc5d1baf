"""The study's variants: architecture specs as the engine's variants, and the PostgreSQL server.

A variant spec is an architecture spec (`baseline`, `transactional+storage=disk`), optionally
ending in `@n=WORKERS` (`baseline@n=2`, `transactional+storage=postgres@n=auto`): the same
architecture run under `pytest -n WORKERS`. Without the suffix the suite runs serially (no xdist
at all, so serial figures carry no xdist overhead). The label keeps the suffix, so serial and
parallel runs of one architecture are separate variants of one interleaved run.

`run_benchmark` is the engine's, with the study's defaults: the suite under study, the project's
run directory, the architectures' packages recorded in metadata and fingerprinted with the suite
(`MEASURED_PACKAGES`), and a PostgreSQL server started once around every run that has a variant
on storage=postgres.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from quiz_architectures import pg
from quiz_architectures.architectures import PRESETS, parse_spec
from quiz_study import paths
from quiz_study.errors import StudyError
from suitebench import runner, store
from suitebench.runner import RunResult, Service, Variant

WORKERS_MARK = "@n="
SERIAL = "serial"
_WORKERS = re.compile(r"^(auto|[1-9][0-9]{0,3})$")

DEFAULT_VARIANTS: tuple[str, ...] = tuple(PRESETS)
# Versions worth recording beside a measurement of the quiz suite (the engine records its own).
SUITE_PACKAGES: tuple[str, ...] = (
    "fastapi",
    "starlette",
    "pydantic",
    "sqlalchemy",
    "pwdlib",
    "argon2-cffi",
    "pyjwt",
    "httpx",
    "psycopg",
)
STUDY_COMMAND = "python -m harness run"
# What the suite's processes import besides the suite itself (the engine adds its own plugin):
# the code a run's fingerprint covers, so a resume after an edit of any of it is refused.
MEASURED_PACKAGES: tuple[Path, ...] = (paths.ROOT / "quiz_api", paths.ROOT / "quiz_architectures")


class SplitVariant(NamedTuple):
    """A variant spec's architecture and its worker count (None: serial)."""

    architecture: str
    workers: str | None


def split_variant(spec: str) -> SplitVariant:
    """`"baseline@n=2"` -> `("baseline", "2")`; no suffix -> `(spec, None)` (serial).

    Raises
    ------
    StudyError
        A suffix whose worker count is not a positive integer or `auto`.
    """
    architecture, mark, workers = spec.strip().partition(WORKERS_MARK)
    if not mark:
        return SplitVariant(architecture, None)
    if not _WORKERS.match(workers):
        raise StudyError(f"bad worker count {workers!r} in {spec!r}: use a positive integer or auto, e.g. baseline@n=2")
    return SplitVariant(architecture, workers)


def variant_label(architecture_label: str, workers: str | None) -> str:
    return architecture_label if workers is None else f"{architecture_label}{WORKERS_MARK}{workers}"


def xdist_args(workers: str | None) -> list[str]:
    """pytest arguments that run the suite on `workers` xdist workers (none for serial)."""
    if workers is None:
        return []
    if importlib.util.find_spec("xdist") is None:
        raise StudyError(f"running with {WORKERS_MARK}{workers} needs pytest-xdist: pip install pytest-xdist")
    return ["-n", workers]


def resolve_variants(specs: Iterable[str]) -> list[Variant]:
    """Engine variants from specs; StudyError (or the architectures' error) if unknown or repeated."""
    variants: list[Variant] = []
    for spec in specs:
        architecture, workers = split_variant(spec)
        switches = parse_spec(architecture)
        variants.append(
            Variant(
                label=variant_label(switches.label, workers),
                pytest_args=(*switches.pytest_args(), *xdist_args(workers)),
            )
        )
    return runner.check_variants(variants)


def needs_postgres(labels: Iterable[str]) -> bool:
    return any(parse_spec(split_variant(label).architecture).storage == "postgres" for label in labels)


POSTGRES_SERVICE = Service(
    name="postgres",
    start=lambda environ: pg.server_environment(needed=True, environ=environ),
)


def _stored_labels(output_dir: Path, run_id: str | None) -> list[str]:
    try:
        metadata = store.read_metadata(Path(output_dir) / str(run_id))
    except Exception:  # noqa: BLE001 - the engine reports a missing or unreadable run itself
        return []
    return [str(v["label"]) for v in metadata.get("variants", [])]


def run_benchmark(
    *,
    variants: Sequence[str] | None = None,
    output_dir: Path | str = paths.RUNS,
    suite_path: Path | str | None = None,
    run_id: str | None = None,
    resume: bool = False,
    **options: Any,
) -> RunResult:
    """The engine's `run_benchmark` over architecture specs (default: both presets).

    The children run from the project root; a run with a PostgreSQL variant gets the server as
    a service (QUIZ_POSTGRES_URL's server, else a throwaway cluster for the whole run). Other
    keyword arguments go to :func:`suitebench.runner.run_benchmark` unchanged.
    """
    resolved = resolve_variants(variants) if variants is not None else None
    if resume:
        labels = [v.label for v in resolved] if resolved is not None else _stored_labels(Path(output_dir), run_id)
    else:
        resolved = resolved if resolved is not None else resolve_variants(DEFAULT_VARIANTS)
        labels = [v.label for v in resolved]
    return runner.run_benchmark(
        suite_path=(suite_path if suite_path is not None else paths.SUITE) if not resume else suite_path,
        variants=resolved,
        output_dir=output_dir,
        run_id=run_id,
        resume=resume,
        cwd=paths.ROOT,
        services=[POSTGRES_SERVICE] if needs_postgres(labels) else [],
        metadata_packages=SUITE_PACKAGES,
        code_paths=MEASURED_PACKAGES,
        resume_hint=STUDY_COMMAND,
        **options,
    )


def parallel_variants(specs: Sequence[str], *, workers: Sequence[str]) -> list[str]:
    """Every spec serially and under each worker count: `["baseline", "baseline@n=2", ...]`."""
    out: list[str] = []
    for spec in specs:
        out.append(spec)
        out += [f"{spec}{WORKERS_MARK}{count}" for count in workers]
    for spec in out:
        split_variant(spec)
    return out
