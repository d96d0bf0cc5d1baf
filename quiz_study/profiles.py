"""Run profiles of the whole study (`run_all.py --profile`): how much to measure and analyse.

A profile fixes everything that trades time for precision: which tests run, how many measured
and warm-up blocks (each block runs every architecture once, interleaved), the schedule and its
seed, the bootstrap resamples and the number of regression-calibration trials.

Budgets are for the study's 2-core machine: a process of the whole suite (194 tests) takes ~7 s
under transactional and ~15 s under baseline when the machine is otherwise idle, ~3-4 s of it
interpreter start-up, imports and collection; the study adds ~20-30 s for the four notebooks
(executed two at a time) and the HTML export. On a loaded machine everything stretches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from quiz_study.errors import StudyError

ScheduleKind = Literal["abab", "random"]


@dataclass(frozen=True)
class Profile:
    """One way to run the study.

    ``budget_s`` is the wall time the whole ``run_all.py`` is meant to stay under on the study
    machine (None: as long as it takes); it documents the tuning and is checked by nothing at
    run time. ``marker``/``keyword`` are pytest ``-m``/``-k`` expressions (None: the whole suite).
    ``sections`` are the optional report sections measured by default (``quiz_study.sections``:
    why, postgres, parallel; ``run_all.py --with`` overrides), at ``section_size`` (the size of
    ``quiz_study.why`` and ``quiz_study.environments``); the budget covers the default sections only.
    """

    name: str
    description: str
    repetitions: int
    warmup: int
    marker: str | None = None
    keyword: str | None = None
    schedule: ScheduleKind = "abab"
    seed: int = 20240601
    n_resamples: int = 2000
    calibration_trials: int = 200
    repetition_timeout_s: float = 600.0
    cell_timeout_s: float = 600.0
    budget_s: float | None = None
    sections: tuple[str, ...] = ()
    section_size: Literal["smoke", "standard", "full"] = "smoke"

    def __post_init__(self) -> None:
        if self.repetitions < 1:
            raise StudyError(f"profile {self.name!r}: repetitions must be at least 1")
        if self.warmup < 0:
            raise StudyError(f"profile {self.name!r}: warmup must not be negative")
        if self.schedule not in ("abab", "random"):
            raise StudyError(f"profile {self.name!r}: unknown schedule {self.schedule!r}")

    def selection(self) -> dict[str, str]:
        """The ``selection`` argument of :func:`suitebench.runner.run_benchmark`."""
        chosen = {"marker": self.marker, "keyword": self.keyword}
        return {key: value for key, value in chosen.items() if value}


# The smoke selection keeps the API test of the "< 0.5 s" criterion (integration) and the
# isolation proofs (is it still correct?), 17 tests: process start-up dominates each run.
SMOKE = Profile(
    name="smoke",
    description="CI check that the whole pipeline works: integration and isolation tests, 2 repetitions, no warm-up",
    repetitions=2,
    warmup=0,
    marker="integration or isolation",
    n_resamples=1000,
    calibration_trials=50,
    repetition_timeout_s=180.0,
    cell_timeout_s=300.0,
    budget_s=60.0,
)
# Two repetitions of the whole suite alone take ~45-55 s, so a minute cannot hold them and the
# notebooks: five of the seven categories (crud and jwt, 112 of the 194 tests, are left out),
# enough to see the headline figures move, not to trust their intervals.
QUICK = Profile(
    name="quick",
    description="5 of 7 categories (no crud, no jwt), 2 repetitions, no warm-up: a first look in about a minute",
    repetitions=2,
    warmup=0,
    marker="not crud and not jwt",
    n_resamples=1000,
    calibration_trials=50,
    repetition_timeout_s=300.0,
    cell_timeout_s=300.0,
    budget_s=60.0,
)
# A block (both architectures, whole suite) took 30 s on the idle study machine on a good hour
# and 60 s when the hypervisor stole ~20 % of the CPU (2026-11-28: 389 s for 1 + 5 blocks).
# 1 warm-up + 4 measured blocks plus ~25 s of notebooks fit the 3-minute budget only on a good
# hour. Random order within blocks (seeded, so the schedule is reproducible) keeps a fixed
# baseline-then-transactional order from biasing either side. Four per side give bootstrap
# intervals and suite-level Mann-Whitney p down to 0.029, not per-test significance: Holm
# across ~190 tests needs p < 2.6e-4.
STANDARD = Profile(
    name="standard",
    description="whole suite, 1 warm-up + 4 measured repetitions in seeded random order: the default, about 3 minutes",
    repetitions=4,
    warmup=1,
    schedule="random",
    n_resamples=2000,
    calibration_trials=200,
    repetition_timeout_s=600.0,
    cell_timeout_s=600.0,
    budget_s=180.0,
    section_size="standard",
)
# 30 per side: per-test intervals narrow to a few percent, per-test Mann-Whitney tests survive
# Holm, and halves of 15 let the regression gate fire (smallest one-sided p 1/C(30,15) = 6.5e-9).
FULL = Profile(
    name="full",
    description="whole suite, 2 warm-up + 30 measured repetitions in seeded random order: tight intervals, "
    "plus the why, PostgreSQL and parallel sections at full size (well over an hour)",
    repetitions=30,
    warmup=2,
    schedule="random",
    n_resamples=5000,
    calibration_trials=500,
    repetition_timeout_s=600.0,
    cell_timeout_s=1800.0,
    budget_s=None,
    sections=("why", "postgres", "parallel"),
    section_size="full",
)

PROFILES: dict[str, Profile] = {p.name: p for p in (SMOKE, QUICK, STANDARD, FULL)}
PROFILE_NAMES: tuple[str, ...] = tuple(PROFILES)
DEFAULT_PROFILE = "standard"


def get_profile(name: str) -> Profile:
    """The profile called ``name``.

    Raises
    ------
    StudyError
        Unknown name (the message lists the profiles).
    """
    try:
        return PROFILES[name]
    except KeyError:
        raise StudyError(f"unknown profile {name!r}; choose one of {', '.join(PROFILE_NAMES)}") from None
