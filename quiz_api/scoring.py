"""Grading and score keeping: which period a moment falls in, and updating every period's score."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from quiz_api.models import Score, TimePeriod

ALL_TIME_START = date(1970, 1, 1)


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


def add_to_scores(db: Session, *, user_id: int, points: int, correct: bool, moment: datetime) -> None:
    """Count one answer in the user's score for every time period (flushes, does not commit)."""
    for period in db.scalars(select(TimePeriod)):
        start = period_start(period.unit, moment)
        score = db.scalar(
            select(Score).where(Score.user_id == user_id, Score.time_period_id == period.id, Score.period_start == start)
        )
        if score is None:
            score = Score(user_id=user_id, time_period_id=period.id, period_start=start, points=0, answered=0, correct=0)
            db.add(score)
        score.points += points
        score.answered += 1
        score.correct += int(correct)
    db.flush()
