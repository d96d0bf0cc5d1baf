"""The attribution design: the full factorial of the switches on which the two presets differ.

The presets differ in four switches: storage (disk -> memory), reference data (per_test ->
per_session), session wiring (own -> injected) and isolation (recreate -> rollback). Password
hash and client are the same in both, so they cannot explain the difference and are not varied.
Isolation and wiring do not cross: rollback with the code's own sessions is refused (those
sessions live outside the test's outer transaction), so together they form one three-level
factor, `isolation_wiring`: recreate+own (the baseline's), recreate+injected, rollback+injected
(the transactional preset's). The design is storage x reference data x isolation_wiring,
2 x 2 x 3 = 12 cells, every one of which runs; baseline and transactional are two of them.

**The path from baseline to transactional.** Along any path the presets' difference is made
in steps. Counted as *four* steps, session wiring (recreate+own -> recreate+injected) must come
before isolation (recreate+injected -> rollback+injected), which leaves 4!/2 = 12 orders
(`STEPS`, `path_orders`); counted as *three* (`MERGED_STEPS`), isolation_wiring is one switch
(recreate+own -> rollback+injected) and there are 3! = 6 orders. Every order passes only
through cells of the design, so each step's contribution in each order is a difference of two
cell means, and the contributions of one order add up to the whole change exactly. With
interacting switches a step's contribution depends on the order: the study reports each
switch's range over the orders (and their mean, which is the Shapley value restricted to the
feasible orders), never a single number as if order did not matter.

**Effects.** With the four steps as binary switches (s, r, w, i; i = 1 only where w = 1) the 12
cell means are re-expressed, one to one, as a grand mean, four main effects, five two-factor
and two three-factor interactions (`effect_contrasts`): a main effect is the step's change
averaged over the other switches' levels where it can be taken; an interaction is a difference
of such changes (how much the step's change moves when another switch is flipped). The
isolation x session-wiring interaction does not exist in this design: they are two steps of
one factor.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from itertools import permutations, product

import numpy as np
import pandas as pd

from quiz_architectures.architectures import BASELINE, TRANSACTIONAL, Switches, parse_spec
from quiz_study.errors import StudyError

FACTORS: tuple[str, ...] = ("storage", "reference_data", "isolation_wiring")
LEVELS: dict[str, tuple[str, ...]] = {
    "storage": ("disk", "memory"),
    "reference_data": ("per_test", "per_session"),
    "isolation_wiring": ("recreate+own", "recreate+injected", "rollback+injected"),
}
# (isolation, session_wiring) of each isolation_wiring level.
ISOLATION_WIRING: tuple[tuple[str, str], ...] = (
    ("recreate", "own"),
    ("recreate", "injected"),
    ("rollback", "injected"),
)

# The four steps from baseline to transactional, in the report's display order, and what each
# changes: (factor, code before, code after).
STEPS: tuple[str, ...] = ("storage", "reference_data", "session_wiring", "isolation")
MERGED_STEPS: tuple[str, ...] = ("storage", "reference_data", "isolation_wiring")
STEP_MOVES: dict[str, tuple[str, int, int]] = {
    "storage": ("storage", 0, 1),
    "reference_data": ("reference_data", 0, 1),
    "session_wiring": ("isolation_wiring", 0, 1),
    "isolation": ("isolation_wiring", 1, 2),
    "isolation_wiring": ("isolation_wiring", 0, 2),
}
STEP_LEVELS: dict[str, tuple[str, str]] = {
    "storage": ("disk", "memory"),
    "reference_data": ("per_test", "per_session"),
    "session_wiring": ("own", "injected (at recreate)"),
    "isolation": ("recreate", "rollback (at injected wiring)"),
    "isolation_wiring": ("recreate+own", "rollback+injected"),
}
# Switches the presets share, held at their preset values in every cell.
HELD: tuple[str, ...] = ("password_hash", "client")


# ---------------------------------------------------------------- cells


def _switches(storage: int, reference_data: int, isolation_wiring: int) -> Switches:
    isolation, wiring = ISOLATION_WIRING[isolation_wiring]
    return Switches(
        storage=LEVELS["storage"][storage],
        reference_data=LEVELS["reference_data"][reference_data],
        isolation=isolation,
        session_wiring=wiring,
        password_hash=BASELINE.password_hash,
        client=BASELINE.client,
    )


@cache
def _cells() -> pd.DataFrame:
    rows = []
    for storage, reference_data, isolation_wiring in product(range(2), range(2), range(3)):
        switches = _switches(storage, reference_data, isolation_wiring)
        isolation, wiring = ISOLATION_WIRING[isolation_wiring]
        rows.append(
            {
                "cell": len(rows),
                "variant": switches.label,
                "storage": storage,
                "reference_data": reference_data,
                "isolation_wiring": isolation_wiring,
                "storage_level": switches.storage,
                "reference_data_level": switches.reference_data,
                "isolation": isolation,
                "session_wiring": wiring,
                "preset": {BASELINE: "baseline", TRANSACTIONAL: "transactional"}.get(switches, ""),
            }
        )
    return pd.DataFrame(rows)


def factorial_cells() -> pd.DataFrame:
    """The 12 cells: cell (index 0-11), variant (the label the runner stores), the codes of
    storage, reference_data (0/1) and isolation_wiring (0/1/2), their levels spelled out, and
    preset ("baseline", "transactional" or "")."""
    return _cells().copy()


N_CELLS = 12


def factorial_variants() -> list[str]:
    """The 12 cells' labels, in cell order (what `run_benchmark` gets)."""
    return list(_cells()["variant"])


def preset_cell(name: str) -> int:
    """The cell index of a preset (`baseline` or `transactional`)."""
    cells = _cells()
    match = cells.index[cells["preset"] == name]
    if len(match) != 1:
        raise StudyError(f"{name!r} is not a preset cell of the design; the presets are baseline and transactional")
    return int(match[0])


def cell_of(label: str) -> int | None:
    """The cell index of a measured variant label, or None when it is not a cell of the design
    (another storage or isolation, a changed password hash or client, a scale knob, workers)."""
    try:
        switches = parse_spec(label)
    except Exception:  # noqa: BLE001 - labels that are not architectures are simply not cells
        return None
    matches = _cells().index[_cells()["variant"] == switches.label]
    if not len(matches) or switches != _switches(*_codes(int(matches[0]))):
        return None
    return int(matches[0])


def _codes(cell: int) -> tuple[int, int, int]:
    row = _cells().iloc[cell]
    return int(row["storage"]), int(row["reference_data"]), int(row["isolation_wiring"])


def _index(storage: int, reference_data: int, isolation_wiring: int) -> int:
    return storage * 6 + reference_data * 3 + isolation_wiring


def cells_from_variants(labels: Iterable[str]) -> dict[str, int]:
    """Label -> cell index, for the labels that are cells of the design."""
    found = {}
    for label in labels:
        cell = cell_of(label)
        if cell is not None:
            found[label] = cell
    return found


# ---------------------------------------------------------------- paths


def path_orders(*, merged: bool = False) -> list[tuple[str, ...]]:
    """The orders in which the steps can be applied from baseline to transactional: the 12
    orders of `STEPS` with session_wiring before isolation, or (`merged`) the 6 of `MERGED_STEPS`."""
    steps = MERGED_STEPS if merged else STEPS
    return [
        order for order in permutations(steps) if merged or order.index("session_wiring") < order.index("isolation")
    ]


@dataclass(frozen=True)
class PathContrasts:
    """Each step's contribution in each order as weights over the 12 cell means.

    `weights[o, j]` is the contrast of step `steps[j]` in order `orders[o]` (its after-cell mean
    minus its before-cell mean); `total` the baseline -> transactional contrast; every order's
    rows add up to `total`.
    """

    steps: tuple[str, ...]
    orders: tuple[tuple[str, ...], ...]
    weights: np.ndarray
    total: np.ndarray


@cache
def path_contrasts(*, merged: bool = False) -> PathContrasts:
    """`PathContrasts` of the 12 (or, `merged`, 6) orders."""
    steps = MERGED_STEPS if merged else STEPS
    orders = path_orders(merged=merged)
    weights = np.zeros((len(orders), len(steps), N_CELLS))
    start = _codes(preset_cell("baseline"))
    for o, order in enumerate(orders):
        codes = dict(zip(FACTORS, start))
        for step in order:
            factor, before, after = STEP_MOVES[step]
            if codes[factor] != before:
                raise StudyError(f"order {order} applies {step} where it cannot run")  # pragma: no cover
            from_cell = _index(*codes.values())
            codes[factor] = after
            weights[o, steps.index(step), _index(*codes.values())] += 1.0
            weights[o, steps.index(step), from_cell] -= 1.0
    total = np.zeros(N_CELLS)
    total[preset_cell("transactional")] += 1.0
    total[preset_cell("baseline")] -= 1.0
    if not np.allclose(weights.sum(axis=1), total):
        raise StudyError("the path contrasts do not add up to the total")  # pragma: no cover
    weights.setflags(write=False)
    total.setflags(write=False)
    return PathContrasts(steps=steps, orders=tuple(orders), weights=weights, total=total)


# ---------------------------------------------------------------- effects


def _step_difference(step: str, fixed: Mapping[str, int]) -> np.ndarray:
    """Weights of one step's change with the other factors at `fixed`."""
    factor, before, after = STEP_MOVES[step]
    low = {**fixed, factor: before}
    high = {**fixed, factor: after}
    weights = np.zeros(N_CELLS)
    weights[_index(high["storage"], high["reference_data"], high["isolation_wiring"])] += 1.0
    weights[_index(low["storage"], low["reference_data"], low["isolation_wiring"])] -= 1.0
    return weights


def _interaction(steps: tuple[str, ...]) -> np.ndarray:
    """Difference-of-differences weights: the first step's change, differenced over the levels
    of the other steps (storage or reference_data), averaged over every level of the factors
    left (isolation_wiring's three when the first step does not move it)."""
    first, flips = steps[0], steps[1:]
    moved = STEP_MOVES[first][0]
    averaged = [f for f in FACTORS if f != moved and f not in flips]
    weights = np.zeros(N_CELLS)
    grids = [range(len(LEVELS[f])) for f in averaged]
    cases = list(product(*grids))
    for levels in cases:
        for flipped in product(range(2), repeat=len(flips)):
            fixed = dict(zip(averaged, levels)) | dict(zip(flips, flipped))
            sign = (-1.0) ** (len(flips) - sum(flipped))
            weights += sign * _step_difference(first, fixed)
    return weights / len(cases)


@dataclass(frozen=True)
class Effect:
    """A named contrast of the cell means (log scale)."""

    term: str
    kind: str
    definition: str
    weights: np.ndarray


@cache
def effect_contrasts() -> tuple[Effect, ...]:
    """The four main effects, five two-factor and two three-factor interactions (see the module
    docstring); with the grand mean they are a one-to-one re-expression of the 12 cell means."""
    effects = []
    for step in STEPS:
        low, high = STEP_LEVELS[step]
        effects.append(
            Effect(
                term=step,
                kind="main effect",
                definition=f"{low} -> {high}, averaged over the other switches",
                weights=_interaction((step,)),
            )
        )
    pairs = [
        ("storage", "reference_data"),
        ("session_wiring", "storage"),
        ("isolation", "storage"),
        ("session_wiring", "reference_data"),
        ("isolation", "reference_data"),
    ]
    for step, other in pairs:
        effects.append(
            Effect(
                term=f"{other} x {step}" if step in ("session_wiring", "isolation") else f"{step} x {other}",
                kind="two-factor interaction",
                definition=f"change of the {step} step's effect when {other} is switched",
                weights=_interaction((step, other)),
            )
        )
    for step in ("session_wiring", "isolation"):
        effects.append(
            Effect(
                term=f"storage x reference_data x {step}",
                kind="three-factor interaction",
                definition=f"change of the storage x {step} interaction when reference_data is switched",
                weights=_interaction((step, "storage", "reference_data")),
            )
        )
    basis = np.vstack([np.full(N_CELLS, 1 / N_CELLS), *[e.weights for e in effects]])
    if np.linalg.matrix_rank(basis) != N_CELLS:
        raise StudyError("the effect contrasts are not a basis of the cell means")  # pragma: no cover
    return tuple(effects)


def design_table(counts: Mapping[int, int] | None = None) -> pd.DataFrame:
    """The cells with their levels spelled out (and `n_processes` when `counts` is given)."""
    cells = factorial_cells()
    table = cells[["cell", "variant", "preset", "storage_level", "reference_data_level", "isolation", "session_wiring"]]
    table = table.rename(columns={"storage_level": "storage", "reference_data_level": "reference_data"})
    if counts is not None:
        table = table.assign(n_processes=[int(counts.get(c, 0)) for c in table["cell"]])
    return table.reset_index(drop=True)
