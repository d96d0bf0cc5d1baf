"""suitebench.records (and the recorder that writes what it reads): JSON lines to tidy rows."""

import json
from pathlib import Path

import pandas as pd
import pytest

from suitebench.counters import Counters
from suitebench.errors import BenchError
from suitebench.recorder import TimingRecorder
from suitebench.records import COLUMNS, read_records, records_to_frame


class FakeClock:
    """Advances by `step_ns` on every reading, so each duration is a count of readings."""

    def __init__(self, step_ns: int = 1_000) -> None:
        self.now_ns = 0
        self.step_ns = step_ns

    def __call__(self) -> int:
        self.now_ns += self.step_ns
        return self.now_ns


class FakeCounters:
    """Totals that tests bump by hand between recorder calls."""

    def __init__(self) -> None:
        self.totals = Counters()

    def add(self, **counts: int) -> None:
        self.totals = self.totals + Counters(**counts)

    def __call__(self) -> Counters:
        return self.totals


def counters(**counts: int) -> dict[str, int]:
    return Counters(**counts).as_dict()


def test_recorder_excludes_nested_fixtures_from_the_phase_and_from_each_other(tmp_path: Path):
    clock, db = FakeClock(), FakeCounters()
    recorder = TimingRecorder(directory=tmp_path, worker="gw3", pid=42, clock=clock, counters=db)
    recorder.start_session()
    recorder.start_test("t.py::test_a", category="crud")
    recorder.start_phase("setup")  # t=1000
    db.add(connections_opened=1)
    recorder.start_fixture("engine", scope="session")  # 2000
    db.add(sql_statements=2, ddl_statements=1)
    recorder.start_fixture("seed", scope="module")  # 3000 (requested dynamically)
    db.add(sql_statements=5)
    recorder.stop_fixture()  # 4000: seed 1000
    recorder.stop_fixture()  # 5000: engine 3000 - 1000
    recorder.stop_phase()  # 6000: setup 5000 - 3000
    recorder.start_phase("call")  # 7000
    db.add(sql_statements=3)
    recorder.stop_phase()  # 8000
    recorder.finish_test(outcome="passed")
    recorder.finish_session(exitstatus=0, pytest_args=["-q"])

    assert recorder.path == tmp_path / "42-gw3.jsonl"
    records = read_records(tmp_path)
    assert [r["kind"] for r in records] == ["fixture", "fixture", "test", "session"]
    seed, engine, test, session = records
    assert (seed["name"], seed["scope"], seed["nodeid"]) == ("seed", "module", "t.py::test_a")
    assert seed["duration_ns"] == 1_000
    assert seed["counters"] == counters(sql_statements=5)
    assert engine["duration_ns"] == 2_000
    assert engine["counters"] == counters(sql_statements=2, ddl_statements=1)
    assert test["phases"] == {
        "setup": {"duration_ns": 2_000, "counters": counters(connections_opened=1)},
        "call": {"duration_ns": 1_000, "counters": counters(sql_statements=3)},
    }
    assert session["exitstatus"] == 0
    assert session["pytest_args"] == ["-q"]


def write_jsonl(path: Path, records: list[dict], tail: str = "") -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + tail, encoding="utf-8")


def phase(duration_ns: int, **counts: int) -> dict:
    return {"duration_ns": duration_ns, "counters": counters(**counts)}


TEST_RECORD = {
    "schema_version": 1,
    "kind": "test",
    "nodeid": "t.py::test_a",
    "category": "crud",
    "outcome": "passed",
    "phases": {
        "setup": phase(1_000_000, connections_opened=1),
        "call": phase(3_000_000, sql_statements=3),
        "teardown": phase(500_000, rollbacks=1),
    },
}
FIXTURE_RECORD = {
    "schema_version": 1,
    "kind": "fixture",
    "name": "engine",
    "scope": "session",
    "nodeid": "t.py::test_a",
    "outcome": "passed",
    "duration_ns": 200_000_000,
    "counters": counters(sql_statements=3, ddl_statements=1, commits=1, dbapi_connects=1),
}
SESSION_RECORD = {
    "schema_version": 1,
    "kind": "session",
    "started_ns": 1,
    "finished_ns": 2,
    "exitstatus": 0,
    "pytest_args": [],
}


def test_read_records_drops_a_truncated_last_line(tmp_path: Path):
    write_jsonl(tmp_path / "1-main.jsonl", [FIXTURE_RECORD, TEST_RECORD], tail='{"schema_vers')
    assert read_records(tmp_path) == [FIXTURE_RECORD, TEST_RECORD]


def test_read_records_drops_a_last_line_cut_inside_a_multibyte_character(tmp_path: Path):
    path = tmp_path / "1-main.jsonl"
    write_jsonl(path, [TEST_RECORD])
    cut = json.dumps({**TEST_RECORD, "nodeid": "t.py::test_é"}, ensure_ascii=False).encode()
    path.write_bytes(path.read_bytes() + cut[: cut.index("é".encode()) + 1])
    assert read_records(tmp_path) == [TEST_RECORD]


def test_read_records_reads_every_file_and_ignores_other_files(tmp_path: Path):
    write_jsonl(tmp_path / "1-gw0.jsonl", [TEST_RECORD, SESSION_RECORD])
    write_jsonl(tmp_path / "2-gw1.jsonl", [FIXTURE_RECORD])
    (tmp_path / "pytest.log").write_text("not records")
    assert read_records(tmp_path) == [TEST_RECORD, SESSION_RECORD, FIXTURE_RECORD]


def test_read_records_of_an_empty_directory_is_empty(tmp_path: Path):
    assert read_records(tmp_path) == []


def test_corrupt_line_before_the_end_is_an_error(tmp_path: Path):
    (tmp_path / "1-main.jsonl").write_text('{"broken\n' + json.dumps(TEST_RECORD) + "\n")
    with pytest.raises(BenchError, match=r"1-main.jsonl:1"):
        read_records(tmp_path)


def test_other_schema_version_is_an_error(tmp_path: Path):
    write_jsonl(tmp_path / "1-main.jsonl", [{**TEST_RECORD, "schema_version": 2}])
    with pytest.raises(BenchError, match="schema_version 2"):
        read_records(tmp_path)


def test_missing_directory_is_an_error(tmp_path: Path):
    with pytest.raises(BenchError, match="not found"):
        read_records(tmp_path / "absent")


def test_frame_has_one_row_per_phase_plus_total(tmp_path: Path):
    frame = records_to_frame([TEST_RECORD, SESSION_RECORD])
    assert list(frame.columns) == list(COLUMNS)
    assert frame["phase"].tolist() == ["setup", "call", "teardown", "total"]
    total = frame.set_index("phase").loc["total"]
    assert total["seconds"] == pytest.approx(0.0045)
    assert (total["sql_statements"], total["connections_opened"], total["rollbacks"]) == (3, 1, 1)
    assert set(frame["test"]) == {"t.py::test_a"}
    assert set(frame["category"]) == {"crud"}
    assert set(frame["outcome"]) == {"passed"}


def test_frame_total_of_a_test_whose_call_never_ran():
    skipped = {**TEST_RECORD, "outcome": "skipped", "phases": {"setup": phase(1_000), "teardown": phase(2_000)}}
    frame = records_to_frame([skipped])
    assert frame["phase"].tolist() == ["setup", "teardown", "total"]
    assert frame["seconds"].iloc[-1] == pytest.approx(3e-6)


def test_frame_fixture_rows():
    frame = records_to_frame([FIXTURE_RECORD])
    assert frame.to_dict("records") == [
        {
            "test": "<fixture:engine>",
            "category": "session",
            "outcome": "passed",
            "phase": "setup",
            "seconds": 0.2,
            "sql_statements": 3,
            "ddl_statements": 1,
            "connections_opened": 0,
            "commits": 1,
            "rollbacks": 0,
            "savepoints": 0,
        }
    ]


def test_frame_of_no_records_has_the_columns_and_types():
    frame = records_to_frame([])
    assert list(frame.columns) == list(COLUMNS)
    assert frame.empty
    assert frame["seconds"].dtype == "float64"
    assert pd.api.types.is_integer_dtype(frame["sql_statements"])
