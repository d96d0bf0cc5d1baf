"""Parallel execution: pytest-xdist worker counts as part of a measured variant, and the table of
parallel speedups beside architecture speedups.

A variant spec may end in `@n=WORKERS` (`baseline@n=2`, `transactional+storage=postgres@n=auto`):
the same architecture run under `pytest -n WORKERS`. Without the suffix the suite runs serially
(no xdist at all, so serial figures carry no xdist overhead). The label keeps the suffix, so
serial and parallel runs of one architecture are separate variants of one interleaved run.

Speedups are ratios of medians of the process wall time (`wall_s`: the only measure parallelism
shrinks; per-test times do not, and may grow under contention), with a two-sample bootstrap
interval from `harness.stats.compare_two_samples`.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Sequence
from dataclasses import asdict

import numpy as np
import pandas as pd

from harness import stats
from harness.errors import HarnessError

WORKERS_MARK = "@n="
SERIAL = "serial"
_WORKERS = re.compile(r"^(auto|[1-9][0-9]{0,3})$")

SPEEDUP_COLUMNS: tuple[str, ...] = (
    "comparison",
    "architecture",
    "workers",
    "baseline_variant",
    "candidate_variant",
    "n_base",
    "n_cand",
    "median_base_s",
    "median_cand_s",
    "speedup",
    "speedup_ci_low",
    "speedup_ci_high",
    "ci_method",
    "note",
)


def split_variant(spec: str) -> tuple[str, str | None]:
    """`"baseline@n=2"` -> `("baseline", "2")`; no suffix -> `(spec, None)` (serial).

    Raises
    ------
    HarnessError
        A suffix whose worker count is not a positive integer or `auto`.
    """
    architecture, mark, workers = spec.strip().partition(WORKERS_MARK)
    if not mark:
        return architecture, None
    if not _WORKERS.match(workers):
        raise HarnessError(f"bad worker count {workers!r} in {spec!r}: use a positive integer or auto, e.g. baseline@n=2")
    return architecture, workers


def variant_label(architecture_label: str, workers: str | None) -> str:
    return architecture_label if workers is None else f"{architecture_label}{WORKERS_MARK}{workers}"


def xdist_args(workers: str | None) -> list[str]:
    """pytest arguments that run the suite on `workers` xdist workers (none for serial)."""
    if workers is None:
        return []
    if importlib.util.find_spec("xdist") is None:
        raise HarnessError(f"running with {WORKERS_MARK}{workers} needs pytest-xdist: pip install pytest-xdist")
    return ["-n", workers]


def _workers_of(label: str) -> str:
    return split_variant(label)[1] or SERIAL


def speedup_table(
    repetitions: pd.DataFrame,
    *,
    seed: int,
    reference: str | None = None,
    n_resamples: int = stats.DEFAULT_RESAMPLES,
    confidence_level: float = 0.95,
) -> pd.DataFrame:
    """Parallel speedup of each architecture next to the architecture speedup.

    Parameters
    ----------
    repetitions : DataFrame
        `repetitions.csv` of a run whose variants include serial and `@n=` variants.
    seed : int
        Seeds the bootstrap (`np.random.default_rng(seed)`).
    reference : str, optional
        Architecture the others are compared with (default `baseline` when measured, else the
        first architecture in the data).
    n_resamples, confidence_level
        Of the bootstrap interval.

    Returns
    -------
    DataFrame
        Columns SPEEDUP_COLUMNS. `comparison` = "parallel": `architecture` serial (baseline
        variant) against `architecture@n=workers` (candidate); `comparison` = "architecture":
        `reference` against `architecture`, both at the same `workers` ("serial" or a count).
        `speedup` = median wall of the baseline variant / median wall of the candidate (> 1:
        the candidate is faster), on valid measured repetitions only.
    """
    measured = stats.measured_repetitions(repetitions)
    labels = list(dict.fromkeys(map(str, measured["variant"])))
    architectures = list(dict.fromkeys(split_variant(label)[0] for label in labels))
    if not architectures:
        raise HarnessError("no valid measured repetitions to compare")
    if reference is None:
        reference = "baseline" if "baseline" in architectures else architectures[0]
    if reference not in architectures:
        raise HarnessError(f"reference architecture {reference!r} not in the data; available: {', '.join(architectures)}")
    walls = {label: measured.loc[measured["variant"] == label, "wall_s"].to_numpy(float) for label in labels}
    rng = np.random.default_rng(seed)
    rows = []

    def compare(comparison: str, architecture: str, workers: str, base: str, cand: str) -> None:
        result = stats.compare_two_samples(
            walls[base], walls[cand], rng=rng, n_resamples=n_resamples, confidence_level=confidence_level
        )
        values = asdict(result)
        rows.append(
            {
                "comparison": comparison,
                "architecture": architecture,
                "workers": workers,
                "baseline_variant": base,
                "candidate_variant": cand,
                **{column: values[column] for column in SPEEDUP_COLUMNS if column in values},
            }
        )

    for architecture in architectures:
        for label in labels:
            name, workers = split_variant(label)
            if name == architecture and workers is not None and architecture in walls:
                compare("parallel", architecture, workers, architecture, label)
    for workers in dict.fromkeys(map(_workers_of, labels)):
        base = variant_label(reference, None if workers == SERIAL else workers)
        for architecture in architectures:
            cand = variant_label(architecture, None if workers == SERIAL else workers)
            if architecture != reference and base in walls and cand in walls:
                compare("architecture", architecture, workers, base, cand)
    return pd.DataFrame(rows, columns=list(SPEEDUP_COLUMNS))


def format_speedup_table(frame: pd.DataFrame, *, style: str = "plain") -> list[str]:
    """Lines of the speedup table: one row per comparison, speedup with its interval."""
    if frame.empty:
        return ["no serial/parallel or architecture pairs to compare"]
    shown = pd.DataFrame(
        {
            "comparison": frame["comparison"],
            "architecture": frame["architecture"],
            "workers": frame["workers"],
            "baseline": frame["baseline_variant"],
            "candidate": frame["candidate_variant"],
            "median wall base (s)": frame["median_base_s"],
            "median wall cand (s)": frame["median_cand_s"],
            "speedup": frame["speedup"],
            "95% CI": [f"[{low:.2f}, {high:.2f}]" for low, high in zip(frame["speedup_ci_low"], frame["speedup_ci_high"])],
            "n": [f"{b}/{c}" for b, c in zip(frame["n_base"], frame["n_cand"])],
        }
    )
    return stats.format_table(shown, style=style, floatfmt={"speedup": ".2f", "median wall base (s)": ".2f", "median wall cand (s)": ".2f"}).splitlines()


def parallel_variants(specs: Sequence[str], *, workers: Sequence[str]) -> list[str]:
    """Every spec serially and under each worker count: `["baseline", "baseline@n=2", ...]`."""
    out: list[str] = []
    for spec in specs:
        out.append(spec)
        out += [f"{spec}{WORKERS_MARK}{count}" for count in workers]
    for spec in out:
        split_variant(spec)
    return out
