"""Grading and score keeping: which period a moment falls in, recording an attempt, and adding a
scoring attempt to every period's score.

Both writes are single atomic statements (INSERT ... ON CONFLICT), so concurrent answers neither
fail on the unique keys nor lose updates at READ COMMITTED. Score rows are written in time-period
id order, so two transactions lock them in the same order and cannot deadlock.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from quiz_api.models import SCORED_ATTEMPT, Response, Score, TimePeriod

ALL_TIME_START = date(1970, 1, 1)
UPSERT_INSERTS = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


def period_start(unit: str | None, moment: datetime) -> date:
    """First day of the period of granularity `unit` (day, week, month, year; None = all time)."""
    day = moment.date()
    if unit == "day":
        return day
    if unit == "week":
        return day - timedelta(days=day.weekday())
    if unit == "month":
        return day.replace(day=1)
    if unit == "year":
        return day.replace(month=1, day=1)
    return ALL_TIME_START


def upsert_insert(db: Session):
    """The INSERT construct with ON CONFLICT of the session's database."""
    dialect = db.get_bind().dialect.name
    try:
        return UPSERT_INSERTS[dialect]
    except KeyError:
        raise NotImplementedError(f"no upsert for the {dialect} dialect") from None


def record_attempt(
    db: Session,
    *,
    user_id: int,
    question_id: int,
    answer_option_id: int,
    question_set_id: int | None,
    is_correct: bool,
    points: int,
    moment: datetime,
) -> tuple[int, bool]:
    """Record one attempt; return its id and whether it scored (the user's first at the question).

    The first attempt is inserted with `scored` set, and the partial unique index turns a second
    one (concurrent or later) into no row; that attempt is then recorded without points.
    """
    values = {
        "user_id": user_id,
        "question_id": question_id,
        "answer_option_id": answer_option_id,
        "question_set_id": question_set_id,
        "is_correct": is_correct,
        "answered_at": moment,
    }
    insert = upsert_insert(db)
    first = (
        insert(Response)
        .values(**values, points=points, scored=True)
        .on_conflict_do_nothing(index_elements=[Response.user_id, Response.question_id], index_where=SCORED_ATTEMPT)
        .returning(Response.id)
    )
    response_id = db.scalar(first)
    if response_id is not None:
        return response_id, True
    later = insert(Response).values(**values, points=0, scored=False).returning(Response.id)
    return db.scalar(later), False


def add_to_scores(db: Session, *, user_id: int, points: int, correct: bool, moment: datetime) -> None:
    """Count one scoring attempt in the user's score for every time period (does not commit)."""
    periods = db.execute(select(TimePeriod.id, TimePeriod.unit).order_by(TimePeriod.id)).all()
    rows = [
        {
            "user_id": user_id,
            "time_period_id": period_id,
            "period_start": period_start(unit, moment),
            "points": points,
            "answered": 1,
            "correct": int(correct),
        }
        for period_id, unit in periods
    ]
    insert = upsert_insert(db)(Score).values(rows)
    db.execute(
        insert.on_conflict_do_update(
            index_elements=[Score.user_id, Score.time_period_id, Score.period_start],
            set_={
                "points": Score.points + insert.excluded.points,
                "answered": Score.answered + insert.excluded.answered,
                "correct": Score.correct + insert.excluded.correct,
            },
        )
    )
