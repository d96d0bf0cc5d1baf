"""Proof that the suite under study is correct and isolated under every architecture, and that
its guards fire when isolation or session wiring is broken (issue: the two architectures).

Which combinations run: a covering array (`COVERING_ROWS`) in which every pair of switch values
of the full product occurs at least once, each row a whole-suite run in a seeded random order.
`--run-slow` adds every other combination of the product (`test_rest_of_the_product`). The rows
are shared runs (`suite_runs`): the preset proofs, the DDL and connection checks, the isolation
guards' controls and tests/test_postgres.py read the same runs instead of making their own.
"""

from __future__ import annotations

import pytest
from suite_process import assignment_of, covering_array, switch_args, value_pairs

from quiz_architectures import architectures
from quiz_architectures.architectures import PRESETS

LIMITATION_TESTS = {
    "test_integration.py::test_flushed_user_logs_in_and_calls_protected_endpoint",
    "test_integration.py::test_token_revoked_in_this_test_is_rejected_by_blacklist_middleware",
    "test_integration.py::test_no_second_connection_during_request_cycle",
    "test_integration.py::test_role_granted_in_this_test_is_seen_by_authorization_middleware",
}
CATEGORIES = {"auth", "jwt", "crud", "middleware", "workflow", "isolation", "integration"}

# The array starts from rows chosen by hand: the two presets (read by the tests below), and the
# fewest rows that pair production-cost argon2 with every other value (4, one per runnable
# isolation strategy, on the cheapest storage each pair allows): a production-cost run takes
# ~35 s of hashing, so allpairspy is not left to scatter it over more rows.
SEED_SPECS = (
    "baseline",
    "transactional",
    "transactional+password_hash=production,client=httpx",
    "baseline+storage=postgres,isolation=truncate,password_hash=production",
    "transactional+storage=disk,isolation=template,reference_data=per_test,password_hash=production,client=httpx",
    "transactional+isolation=recreate,session_wiring=own,password_hash=production",
)
COVERING_ROWS = covering_array([assignment_of(spec) for spec in SEED_SPECS])


def row_id(assignment: dict[str, str]) -> str:
    return "-".join(assignment.values())


def row_args(assignment: dict[str, str]) -> list[str]:
    """A row's whole-suite run: its switches, in a random order seeded by the row itself."""
    seed = sum(ord(c) for c in row_id(assignment))
    return [*switch_args(assignment), "-p", "randomly", f"--randomly-seed={seed}"]


def preset_run(suite_runs, preset: str):  # noqa: ANN001, ANN201
    return suite_runs.get(*row_args(assignment_of(preset)))


def check_runs_the_suite_or_is_refused(run, assignment: dict[str, str], reason: str | None) -> None:  # noqa: ANN001
    if reason:
        # isolation=none is refused at collection, after the session record is written.
        assert run.exit_code == 4 and not run.outcomes and "refused" in run.output, (assignment, run.output[-2000:])
        assert "Traceback" not in run.output
        return
    assert run.exit_code == 0, (assignment, sorted(run.failed())[:5], run.output[-3000:])
    assert len(run.outcomes) >= 190, (assignment, len(run.outcomes))
    xfailed = {n for n, o in run.outcomes.items() if o == "xfailed"}
    assert xfailed == (LIMITATION_TESTS if assignment["session_wiring"] == "own" else set())
    assert set(run.outcomes.values()) <= {"passed", "xfailed"}


def test_the_rows_cover_every_pair_of_switch_values():
    everything = [assignment for assignment, _ in architectures.all_combinations()]
    assert value_pairs([row for row, _ in COVERING_ROWS]) == value_pairs(everything)
    assert len(COVERING_ROWS) < len(everything) / 10


@pytest.mark.parametrize(("assignment", "reason"), COVERING_ROWS, ids=[row_id(a) for a, _ in COVERING_ROWS])
def test_covering_row_passes_the_suite_or_is_refused(suite_runs, assignment, reason):
    check_runs_the_suite_or_is_refused(suite_runs.get(*row_args(assignment)), assignment, reason)


REST_OF_THE_PRODUCT = [
    pytest.param(assignment, reason, id=row_id(assignment), marks=pytest.mark.slow)
    for assignment, reason in architectures.all_combinations()
    if assignment not in [row for row, _ in COVERING_ROWS]
]


@pytest.mark.parametrize(("assignment", "reason"), REST_OF_THE_PRODUCT)
def test_rest_of_the_product(suite_runs, assignment, reason):
    check_runs_the_suite_or_is_refused(suite_runs.get(*row_args(assignment)), assignment, reason)


@pytest.mark.parametrize("preset", ["baseline", "transactional"])
def test_suite_passes_under_preset_in_random_order(suite_runs, preset):
    run = preset_run(suite_runs, preset)
    assert run.exit_code == 0, run.output[-3000:]
    outcomes = run.outcomes
    assert set(run.frame()["category"]) - {"session"} == CATEGORIES
    expected_xfail = LIMITATION_TESTS if preset == "baseline" else set()
    assert {n for n, o in outcomes.items() if o == "xfailed"} == expected_xfail
    assert {n for n, o in outcomes.items() if o != "xfailed"} == {n for n, o in outcomes.items() if o == "passed"}
    order = [r["nodeid"] for r in run.records if r.get("kind") == "test"]
    assert order != sorted(order, key=lambda n: n.split("::")[0]), "pytest-randomly did not shuffle"


def test_baseline_runs_ddl_in_every_test_and_transactional_in_none(suite_runs):
    for preset in ("baseline", "transactional"):
        frame = preset_run(suite_runs, preset).frame()
        tests = frame[~frame["test"].str.startswith("<fixture:")]
        setup_ddl = tests[tests["phase"] == "setup"].set_index("test")["ddl_statements"]
        total_ddl = tests[tests["phase"] == "total"]["ddl_statements"]
        fixtures = frame[frame["test"].str.startswith("<fixture:")]
        if preset == "baseline":
            assert (setup_ddl > 0).all(), "a baseline test skipped drop/create"
        else:
            assert (total_ddl == 0).all(), "a transactional test ran DDL"
            assert fixtures["ddl_statements"].sum() > 0, "the schema is created once, in a session fixture"


def test_transactional_tests_open_no_connection_after_setup(suite_runs):
    frame = preset_run(suite_runs, "transactional").frame()
    calls = frame[(frame["phase"] == "call") & ~frame["test"].str.startswith("<fixture:")]
    assert (calls["connections_opened"] == 0).all()
    baseline = preset_run(suite_runs, "baseline").frame()
    baseline_calls = baseline[(baseline["phase"] == "call")]
    assert baseline_calls["connections_opened"].sum() > len(baseline_calls), "own sessions open connections in baseline"


# One covering row per isolation strategy on SQLite (the cheapest that has it), with the fault that
# breaks that strategy; the unbroken control is that row's whole-suite run. tests/test_postgres.py
# does the same on PostgreSQL.
FAULT_FOR = {
    "recreate": "skip-recreate",
    "rollback": "teardown-commit",
    "truncate": "truncate-skip-table",
    "template": "skip-template",
}
GUARD_ROWS = list(
    {
        row["isolation"]: row
        # Later rows win: production-cost rows first, the presets' rows last.
        for row, reason in sorted(
            COVERING_ROWS, key=lambda r: (r[0]["password_hash"] == "test", r[0] in [assignment_of(p) for p in PRESETS])
        )
        if reason is None and row["storage"] != "postgres"
    }.values()
)


@pytest.mark.parametrize("assignment", GUARD_ROWS, ids=row_id)
def test_isolation_guards_fire_when_isolation_breaks(suite_runs, assignment):
    control = suite_runs.get(*row_args(assignment))
    assert control.exit_code == 0, control.output[-2000:]
    fault = FAULT_FOR[assignment["isolation"]]
    broken = suite_runs.get(*switch_args(assignment), "-m", "isolation", "--inject-fault", fault)
    assert broken.exit_code == 1, broken.output[-2000:]
    assert len(broken.failed()) >= 3, broken.outcomes


def test_guards_cover_every_sqlite_strategy():
    assert {row["isolation"] for row in GUARD_ROWS} == set(FAULT_FOR)
    assert {row["storage"] for row in GUARD_ROWS} == {"disk", "memory"}


@pytest.mark.parametrize("spec", ["transactional", "transactional+storage=disk"])
def test_limitation_tests_fail_when_middlewares_open_their_own_sessions(suite_runs, spec):
    args = architectures.parse_spec(spec).pytest_args()
    run = suite_runs.get(*args, "-m", "needs_shared_transaction", "--inject-fault", "own-wiring")
    assert run.exit_code == 1
    assert run.failed() == LIMITATION_TESTS


def test_refused_combination_stops_before_any_test(suite_runs):
    run = suite_runs.get("--arch", "transactional", "--switch", "session_wiring=own")
    assert run.exit_code == 4
    assert run.records == []
    errors = [line for line in run.output.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1 and "refused combination" in errors[0] and "seed's known limitation" in errors[0]
    assert "Traceback" not in run.output


@pytest.mark.parametrize("bad", [["--arch", "nonsense"], ["--switch", "storage=floppy"], ["--switch", "nope=1"]])
def test_bad_architecture_arguments_are_one_line_errors(suite_runs, bad):
    run = suite_runs.get(*bad)
    assert run.exit_code == 4
    assert "Traceback" not in run.output
    assert sum(line.startswith("ERROR:") for line in run.output.splitlines()) == 1


def test_scale_knobs_change_the_work_deterministically(suite_runs):
    one_test = "test_isolation.py::test_every_non_reference_table_starts_empty"

    def setup_ddl(*switches: str) -> int:
        args = [a for s in switches for a in ("--switch", s)]
        run = suite_runs.get("--arch", "baseline", *args, "-k", "every_non_reference_table")
        assert run.exit_code == 0, run.output[-2000:]
        frame = run.frame()
        return int(frame[(frame["test"] == one_test) & (frame["phase"] == "setup")]["ddl_statements"].iloc[0])

    # Each synthetic table costs DROP TABLE + CREATE TABLE + CREATE INDEX in every baseline test.
    assert setup_ddl("extra_tables=10") - setup_ddl() == 30

    copies = suite_runs.get("--arch", "transactional", "--switch", "copies=3", "-m", "isolation")
    plain = suite_runs.get("--arch", "transactional", "-m", "isolation")
    assert copies.exit_code == 0 and len(copies.outcomes) == 3 * len(plain.outcomes)


def test_floor_runs_one_test_with_no_isolation_work(suite_runs):
    run = suite_runs.get(
        "--arch", "transactional", "--switch", "isolation=none", target="test_workflow.py::test_build_answer_score_rank"
    )
    assert run.exit_code == 0, run.output[-2000:]
    (record,) = [r for r in run.records if r.get("kind") == "test"]
    assert record["phases"]["setup"]["counters"]["ddl_statements"] == 0
    assert record["phases"]["teardown"]["counters"]["rollbacks"] <= 1


def test_recorder_costs_under_two_percent_of_the_session(suite_runs):
    from suitebench.records import recorder_overhead

    for preset in ("baseline", "transactional"):
        overhead = recorder_overhead(preset_run(suite_runs, preset).records)
        assert len(overhead) == 1
        assert overhead["fraction"].iloc[0] < 0.02, (preset, overhead.to_dict("records"))
