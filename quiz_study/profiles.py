"""Run profiles of the whole study (`run_all.py --profile`): how much to measure and analyse.

A profile fixes everything that trades time for precision: which tests run, how many measured
and warm-up blocks (each block runs every architecture once, interleaved), the schedule and its
seed, the bootstrap resamples and the draws of the regression gate's simulated calibration.

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
    The why section is measured before the main run; ``warmup_after_why`` is then the main run's
    warm-up (None: ``warmup``): its processes have just warmed the file cache, the imports and
    the CPU, which is what a warm-up block is for.
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
    # Draws of the gate calibration simulated from the run's own noise (regression notebook).
    calibration_draws: int = 2000
    repetition_timeout_s: float = 600.0
    cell_timeout_s: float = 600.0
    budget_s: float | None = None
    sections: tuple[str, ...] = ()
    section_size: Literal["smoke", "standard", "full"] = "smoke"
    warmup_after_why: int | None = None
    # Execute notebook 05 (every why table) beside the report when why runs exist; the report
    # itself (notebook 04) shows the why section either way.
    why_notebook: bool = True

    def __post_init__(self) -> None:
        if self.repetitions < 1:
            raise StudyError(f"profile {self.name!r}: repetitions must be at least 1")
        if self.warmup < 0 or (self.warmup_after_why or 0) < 0:
            raise StudyError(f"profile {self.name!r}: warmup must not be negative")
        if self.schedule not in ("abab", "random"):
            raise StudyError(f"profile {self.name!r}: unknown schedule {self.schedule!r}")

    def main_warmup(self, *, why_measured_first: bool) -> int:
        """Warm-up blocks of the main run (see ``warmup_after_why``)."""
        if why_measured_first and self.warmup_after_why is not None:
            return self.warmup_after_why
        return self.warmup

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
    calibration_draws=500,
    repetition_timeout_s=180.0,
    cell_timeout_s=300.0,
    budget_s=60.0,
    # The why section at its smoke size (12 cells once on one test, the floor once: ~15 forked
    # processes, ~7 CPU-s) so that CI runs the whole report path on the real suite; notebook 05
    # is left out (~8 CPU-s more; the report shows the section, and CI runs 05 in JupyterLab).
    sections=("why",),
    why_notebook=False,
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
    calibration_draws=500,
    repetition_timeout_s=300.0,
    cell_timeout_s=300.0,
    budget_s=60.0,
)
# A block (both architectures, whole suite) took 30 s on the idle study machine on a good hour
# and 60 s when the hypervisor stole ~20 % of the CPU (2026-11-28: 389 s for 1 + 5 blocks).
# 1 warm-up + 4 measured blocks plus ~25 s of notebooks fit the 3-minute budget only on a good
# hour. Random order within blocks (seeded, so the schedule is reproducible) keeps a fixed
# baseline-then-transactional order from biasing either side. Four per side give Welch t
# intervals on log times that cover (tests/test_inference_simulations.py) and per-test Welch p
# with Benjamini-Hochberg that reach significance; the regression gate runs at 4 vs 4.
# The why section (quiz_study.why, standard size: the 12-cell factorial x 3 and the floor, ~80
# forked processes, ~25-40 s) runs first and replaces the warm-up block (~20-30 s), which is how
# the section fits the budget.
STANDARD = Profile(
    name="standard",
    description="whole suite, 4 measured repetitions in seeded random order after the why-study's factorial and "
    "floor (which serve as the warm-up): the default, about 3 minutes",
    repetitions=4,
    warmup=1,
    warmup_after_why=0,
    sections=("why",),
    # The report shows the why section; notebook 05 (every why table, ~10 s of a kernel) is left
    # to the full profile and to `jupyter lab notebooks/`, to keep the budget's margin.
    why_notebook=False,
    schedule="random",
    n_resamples=2000,
    calibration_draws=2000,
    repetition_timeout_s=600.0,
    cell_timeout_s=600.0,
    budget_s=180.0,
    section_size="standard",
)
# 30 per side: per-test intervals narrow to a few percent.
FULL = Profile(
    name="full",
    description="whole suite, 2 warm-up + 30 measured repetitions in seeded random order: tight intervals, "
    "plus the why, PostgreSQL and parallel sections at full size (well over an hour)",
    repetitions=30,
    warmup=2,
    schedule="random",
    n_resamples=5000,
    calibration_draws=4000,
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
