"""quiz_study.design: the factorial over the switches, its refused cells, fractions and their aliasing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quiz_architectures.architectures import BASELINE, TRANSACTIONAL, parse_spec
from quiz_study import design
from suitebench.errors import BenchError


def test_64_candidate_cells_of_which_the_rollback_own_16_are_refused():
    cells = design.candidate_cells()
    assert len(cells) == 64
    refused = cells[~cells["runnable"]]
    assert len(refused) == 16
    assert (refused["isolation"] == 1).all() and (refused["session_wiring"] == 0).all()
    assert refused["refusal_reason"].str.contains("outer transaction").all()
    assert (refused["variant"] == "").all()


def test_isolation_times_wiring_equals_isolation_on_the_runnable_grid():
    """The reason the interaction is not estimable in any design."""
    grid = design.runnable_cells()
    x = design.model_matrix(grid, ["isolation", "isolation:session_wiring"])
    np.testing.assert_array_equal(x[:, 1], x[:, 2])


def test_full_factorial_is_the_48_runnable_cells_balanced_and_unaliased():
    full = design.full_factorial()
    assert full.n_cells == 48
    assert len(set(full.variants)) == 48
    for label in full.variants:
        parse_spec(label)  # runnable: no BenchError
    balance = design.balance(full.cells).set_index(["factor", "level"])["n_cells"]
    for factor in ("storage", "reference_data", "password_hash", "client"):
        assert balance[factor].tolist() == [24, 24]
    # The composite isolation/wiring factor: 16 cells at each of its three levels.
    combos = full.cells.groupby(["isolation", "session_wiring"]).size().to_dict()
    assert combos == {(0, 0): 16, (0, 1): 16, (1, 1): 16}
    assert len(full.terms) == 6 + 14
    assert "isolation:session_wiring" not in full.terms
    assert "not estimable" in full.aliasing
    x = design.model_matrix(full.cells, full.terms)
    assert np.linalg.matrix_rank(x) == x.shape[1]


def test_main_effects_are_clear_of_interactions_in_the_full_factorial():
    full = design.full_factorial()
    alias = design.alias_matrix(full.cells, estimated=design.FACTORS, omitted=design.estimable_interactions())
    assert np.abs(alias.to_numpy()).max() == 0


@pytest.mark.parametrize("n_runs", [8, 12, 16])
def test_fraction_avoids_refused_cells_includes_presets_and_estimates_every_main_effect(n_runs):
    fraction = design.d_optimal_fraction(n_runs, seed=3)
    assert fraction.n_cells == n_runs == len(set(fraction.variants))
    cells = fraction.cells
    assert not ((cells["isolation"] == 1) & (cells["session_wiring"] == 0)).any()
    for label in fraction.variants:
        parse_spec(label)
    assert {"baseline", "transactional"} <= set(fraction.variants)
    x = design.model_matrix(cells, design.FACTORS)
    assert np.linalg.matrix_rank(x) == 7
    assert 0.9 < fraction.d_efficiency <= 1.0 + 1e-9


def test_twelve_run_fraction_is_orthogonal_and_balanced():
    fraction = design.d_optimal_fraction(12, seed=0)
    assert fraction.d_efficiency == pytest.approx(1.0)
    balance = design.balance(fraction.cells).set_index(["factor", "level"])["n_cells"]
    for factor in ("storage", "reference_data", "password_hash", "client"):
        assert balance[factor].tolist() == [6, 6]
    assert fraction.cells.groupby(["isolation", "session_wiring"]).size().tolist() == [4, 4, 4]


def test_fraction_states_its_aliasing_from_the_alias_matrix():
    fraction = design.d_optimal_fraction(8, seed=0)
    assert fraction.alias.shape == (6, 14)
    assert (fraction.alias.abs().to_numpy() > 0).any()
    assert "partially aliased" in fraction.aliasing
    biggest = fraction.alias.abs().stack().idxmax()
    assert biggest[1] in fraction.aliasing
    assert "Not a regular 2^(k-p) fraction" in fraction.aliasing


def test_fraction_is_reproducible_for_a_seed_and_as_good_for_another():
    a, b = design.d_optimal_fraction(10, seed=1), design.d_optimal_fraction(10, seed=1)
    assert a.variants == b.variants
    assert design.d_optimal_fraction(10, seed=2).d_efficiency == pytest.approx(a.d_efficiency, abs=1e-6)


def test_fraction_size_is_checked():
    with pytest.raises(BenchError, match="from 8 to 48"):
        design.d_optimal_fraction(6)
    with pytest.raises(BenchError, match="unknown preset"):
        design.d_optimal_fraction(8, include=("nightly",))


def test_path_design_switches_one_factor_at_a_time_from_baseline_to_transactional():
    path = design.path_design()
    cells = path.cells[list(design.FACTORS)]
    assert path.variants[0] == BASELINE.label and path.variants[-1] == TRANSACTIONAL.label
    changes = (cells.diff().abs().sum(axis=1)).iloc[1:]
    assert (changes == 1).all()
    changed = [cells.columns[(cells.iloc[i + 1] != cells.iloc[i]).to_numpy()][0] for i in range(4)]
    assert changed == list(design.PATH_FACTORS)
    assert path.terms == ("storage", "isolation", "reference_data", "session_wiring")
    assert "not estimated" in path.aliasing
    with_off_path = design.path_design(off_path=True)
    assert with_off_path.n_cells == 7 and len(with_off_path.terms) == 6


def test_cells_from_variants_skips_labels_that_are_not_factorial_cells():
    cells = design.cells_from_variants(
        [
            "baseline",
            "transactional+copies=3",
            "transactional+isolation=none",
            "transactional+storage=postgres",
            "transactional",
        ]
    )
    assert list(cells["variant"]) == ["baseline", "transactional"]
    assert design.code_switches(parse_spec("transactional+extra_tables=5")) is None


def test_design_for_variants_recognises_the_full_factorial():
    full = design.full_factorial()
    assert design.design_for_variants(reversed(full.variants)).name == "full"
    measured = design.design_for_variants(design.path_design().variants)
    assert measured.terms == ("storage", "isolation", "reference_data", "session_wiring")


def test_table_spells_out_levels():
    table = design.path_design().table()
    assert list(table.columns[:2]) == ["variant", "storage"]
    assert table.loc[0, "storage"] == "disk" and table.loc[4, "isolation"] == "rollback"
    assert isinstance(table, pd.DataFrame)
