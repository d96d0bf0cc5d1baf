"""quiz_study.design: the 12-cell factorial of the switches the presets differ in, the orders of the
path from baseline to transactional, and the effect contrasts."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from quiz_architectures.architectures import BASELINE, TRANSACTIONAL, parse_spec
from quiz_study import design


def test_twelve_cells_all_run_and_the_presets_are_two_of_them():
    cells = design.factorial_cells()
    assert len(cells) == design.N_CELLS == 12 and cells["variant"].is_unique
    for label in cells["variant"]:
        switches = parse_spec(label)  # runnable: no refusal
        assert (switches.password_hash, switches.client) == (BASELINE.password_hash, BASELINE.client)
    assert cells.groupby(["isolation", "session_wiring"]).size().to_dict() == {
        ("recreate", "injected"): 4,
        ("recreate", "own"): 4,
        ("rollback", "injected"): 4,
    }
    assert cells.loc[design.preset_cell("baseline"), "variant"] == BASELINE.label
    assert cells.loc[design.preset_cell("transactional"), "variant"] == TRANSACTIONAL.label


def test_cell_of_maps_labels_and_skips_what_is_not_a_cell():
    for cell, label in enumerate(design.factorial_variants()):
        assert design.cell_of(label) == cell
    assert design.cell_of("transactional+storage=disk") == design.cell_of(
        "baseline+isolation=rollback,session_wiring=injected,reference_data=per_session"
    )
    for other in (
        "transactional+isolation=none",
        "transactional+storage=postgres",
        "transactional+client=httpx",
        "baseline+password_hash=production",
        "transactional+copies=3",
        "not-an-architecture",
    ):
        assert design.cell_of(other) is None, other


def test_orders_keep_wiring_before_isolation_and_add_up_to_the_total():
    four = design.path_contrasts()
    merged = design.path_contrasts(merged=True)
    assert len(four.orders) == 12 and len(merged.orders) == 6
    assert all(o.index("session_wiring") < o.index("isolation") for o in four.orders)
    for path in (four, merged):
        np.testing.assert_allclose(path.weights.sum(axis=1), np.broadcast_to(path.total, path.weights.shape[::2]))
        # every step is a difference of two cells
        assert np.all((path.weights != 0).sum(axis=-1) == 2)
    assert path.total[design.preset_cell("transactional")] == 1 and path.total[design.preset_cell("baseline")] == -1


def _additive(effects: dict[str, float], interactions: dict[tuple[str, ...], float] | None = None) -> np.ndarray:
    """Cell means (log) of a truth with these step effects (and products of step indicators)."""
    means = np.zeros(design.N_CELLS)
    for row in design.factorial_cells().itertuples():
        on = {
            "storage": row.storage,
            "reference_data": row.reference_data,
            "session_wiring": int(row.isolation_wiring >= 1),
            "isolation": int(row.isolation_wiring == 2),
        }
        means[row.cell] = sum(effects[s] * on[s] for s in design.STEPS)
        means[row.cell] += sum(v * np.prod([on[s] for s in steps]) for steps, v in (interactions or {}).items())
    return means


def test_effect_contrasts_recover_main_effects_and_interactions():
    effects = {"storage": -0.4, "reference_data": -0.2, "session_wiring": 0.05, "isolation": -0.6}
    contrasts = {e.term: e for e in design.effect_contrasts()}
    assert len(contrasts) == 11
    means = _additive(effects)
    for step, value in effects.items():
        assert contrasts[step].weights @ means == pytest.approx(value)
    for term, effect in contrasts.items():
        if effect.kind != "main effect":
            assert effect.weights @ means == pytest.approx(0.0, abs=1e-12), term
    with_interaction = _additive(
        effects, {("storage", "isolation"): 0.5, ("storage", "reference_data", "isolation"): 0.2}
    )
    assert contrasts["storage x isolation"].weights @ with_interaction == pytest.approx(0.5 + 0.1)
    assert contrasts["storage x reference_data x isolation"].weights @ with_interaction == pytest.approx(0.2)
    assert contrasts["storage x session_wiring"].weights @ with_interaction == pytest.approx(0.0, abs=1e-12)


def test_an_additive_truth_gives_every_order_the_same_step():
    effects = {"storage": -0.4, "reference_data": -0.2, "session_wiring": 0.05, "isolation": -0.6}
    path = design.path_contrasts()
    steps = path.weights @ _additive(effects)
    for j, step in enumerate(path.steps):
        np.testing.assert_allclose(steps[:, j], effects[step])


def test_an_interaction_makes_a_step_depend_on_the_order():
    effects = {"storage": -0.4, "reference_data": -0.2, "session_wiring": 0.0, "isolation": -0.6}
    means = _additive(effects, {("storage", "isolation"): 0.5})
    path = design.path_contrasts()
    steps = path.weights @ means
    storage = steps[:, path.steps.index("storage")]
    # storage before isolation: -0.4; after it: -0.4 + 0.5
    for order, value in zip(path.orders, storage):
        expected = -0.4 + (0.5 if order.index("isolation") < order.index("storage") else 0.0)
        assert value == pytest.approx(expected)


def test_design_table_spells_out_levels_and_counts():
    table = design.design_table({0: 3, 11: 4})
    assert list(table.columns[:3]) == ["cell", "variant", "preset"]
    assert table.loc[0, "storage"] == "disk" and table.loc[11, "isolation"] == "rollback"
    assert table["n_processes"].tolist()[0] == 3 and table["n_processes"].tolist()[11] == 4
    assert set(itertools.chain(table["session_wiring"])) == {"own", "injected"}
