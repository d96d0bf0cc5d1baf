"""Isolation (the seed's Task 3): reference data in every test, test data never survives one.

The canary pairs are symmetric: each asserts the other's data is absent, then writes its own, so a
leak is caught whichever of the two runs second (random order included).
"""

import pytest
from sqlalchemy import func, select

from quiz_api import models
from quiz_api.database import Base
from quiz_api.models import Question, Subject, TimePeriod, User
from quiz_api.reference import reference_row_counts

pytestmark = pytest.mark.isolation


def row_counts(db_session) -> dict[str, int]:
    return {
        table.name: db_session.scalar(select(func.count()).select_from(table)) for table in Base.metadata.sorted_tables
    }


def assert_clean_start(db_session) -> None:
    counts = row_counts(db_session)
    leaked = {name: n for name, n in counts.items() if name not in models.REFERENCE_TABLES and n}
    assert not leaked, f"test data leaked from an earlier test: {leaked}"
    for name, expected in reference_row_counts().items():
        assert counts[name] == expected, f"reference table {name} has {counts[name]} rows, expected {expected}"


def test_every_non_reference_table_starts_empty(db_session):
    assert_clean_start(db_session)


def test_canary_left_db(db_session, make_user):
    assert_clean_start(db_session)
    make_user("canary_left")
    assert db_session.scalar(select(User).where(User.username == "canary_left")) is not None


def test_canary_right_db(db_session, make_user):
    assert_clean_start(db_session)
    make_user("canary_right")
    assert db_session.scalar(select(User).where(User.username == "canary_right")) is not None


def test_canary_left_api(client, editor_headers, db_session):
    assert db_session.scalar(select(Subject).where(Subject.name == "Canary right")) is None
    assert client.post("/subjects", json={"name": "Canary left"}, headers=editor_headers).status_code == 201


def test_canary_right_api(client, editor_headers, db_session):
    assert db_session.scalar(select(Subject).where(Subject.name == "Canary left")) is None
    assert client.post("/subjects", json={"name": "Canary right"}, headers=editor_headers).status_code == 201


def test_reference_data_present_alongside_test_data(db_session, make_user):
    assert db_session.scalar(select(func.count()).select_from(TimePeriod)) == reference_row_counts()["time_periods"]
    make_user("reference_test_user")
    assert db_session.scalar(select(User).where(User.username == "reference_test_user")) is not None
    assert db_session.scalar(select(func.count()).select_from(TimePeriod)) > 0


def test_only_reference_data_persists(db_session, catalog):
    # catalog just committed content in this test; everything else must be the reference data only
    counts = row_counts(db_session)
    assert counts["questions"] == len(catalog.question_ids)
    assert counts["users"] == 0
    assert counts["scores"] == 0 and counts["responses"] == 0


def test_time_periods_served_in_every_test(client):
    codes = [p["code"] for p in client.get("/time-periods").json()]
    assert codes == ["daily", "weekly", "monthly", "yearly", "all_time"]


def test_committed_question_is_gone_in_next_test_left(db_session, catalog):
    assert db_session.scalar(select(func.count()).select_from(Question)) == len(catalog.question_ids)


def test_committed_question_is_gone_in_next_test_right(db_session):
    assert_clean_start(db_session)
