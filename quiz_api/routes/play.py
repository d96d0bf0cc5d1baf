"""Answering questions, the caller's scores, leaderboards and the time-period reference data."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query, status
from sqlalchemy import select

from quiz_api.deps import CurrentUser, SessionDep, get_or_422
from quiz_api.models import (
    AnswerOption,
    DifficultyLevel,
    Question,
    QuestionSetItem,
    Score,
    TimePeriod,
    User,
    utcnow,
)
from quiz_api.params import NO_NUL_PATTERN
from quiz_api.schemas import (
    Leaderboard,
    LeaderboardEntry,
    ResponseCreate,
    ResponseResult,
    ScoreOut,
    TimePeriodOut,
)
from quiz_api.scoring import add_to_scores, period_start, record_attempt

router = APIRouter(tags=["play"])


@router.post("/responses", response_model=ResponseResult, status_code=201)
def answer(body: ResponseCreate, user: CurrentUser, db: SessionDep) -> ResponseResult:
    """Record an attempt. Only the user's first attempt at a question scores; later ones are
    recorded with 0 points. The correct option is revealed in the answer to every attempt: the
    first has scored by then, so knowing it earns nothing more."""
    question = get_or_422(db, Question, body.question_id)
    option = get_or_422(db, AnswerOption, body.answer_option_id)
    if option.question_id != question.id:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, detail="answer option does not belong to the question"
        )
    if body.question_set_id is not None:
        in_set = db.get(QuestionSetItem, (body.question_set_id, question.id))
        if in_set is None:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="question is not in that question set")
    level = db.get(DifficultyLevel, question.difficulty)
    points = level.points if option.is_correct and level is not None else 0
    correct_option = next(o.id for o in question.options if o.is_correct)
    moment = utcnow()
    response_id, scored = record_attempt(
        db,
        user_id=user.id,
        question_id=question.id,
        answer_option_id=option.id,
        question_set_id=body.question_set_id,
        is_correct=option.is_correct,
        points=points,
        moment=moment,
    )
    if scored:
        add_to_scores(db, user_id=user.id, points=points, correct=option.is_correct, moment=moment)
    db.commit()
    return ResponseResult(
        id=response_id,
        is_correct=option.is_correct,
        points=points if scored else 0,
        scored=scored,
        correct_option_id=correct_option,
    )


@router.get("/scores/me", response_model=list[ScoreOut])
def my_scores(user: CurrentUser, db: SessionDep) -> list[ScoreOut]:
    now = utcnow()
    scores = []
    for period in db.scalars(select(TimePeriod).order_by(TimePeriod.id)):
        start = period_start(period.unit, now)
        # Columns, not Score objects: the upserts bypass the session, so an object it already
        # holds (one session for the whole test under the transactional architecture) is stale.
        score = db.execute(
            select(Score.points, Score.answered, Score.correct).where(
                Score.user_id == user.id, Score.time_period_id == period.id, Score.period_start == start
            )
        ).first()
        scores.append(
            ScoreOut(
                time_period=period.code,
                period_start=start,
                points=score.points if score else 0,
                answered=score.answered if score else 0,
                correct=score.correct if score else 0,
            )
        )
    return scores


@router.get("/leaderboard", response_model=Leaderboard)
def leaderboard(
    db: SessionDep,
    time_period: str = Query("all_time", max_length=20, pattern=NO_NUL_PATTERN),
    limit: int = Query(10, ge=1, le=100),
) -> Leaderboard:
    period = db.scalar(select(TimePeriod).where(TimePeriod.code == time_period))
    if period is None:
        codes = ", ".join(db.scalars(select(TimePeriod.code).order_by(TimePeriod.id)))
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=f"unknown time_period; choose one of {codes}")
    start = period_start(period.unit, utcnow())
    rows = db.execute(
        select(User.username, Score.points, Score.answered, Score.correct)
        .join(User, User.id == Score.user_id)
        .where(Score.time_period_id == period.id, Score.period_start == start)
        .order_by(Score.points.desc(), User.username)
        .limit(limit)
    )
    entries = [
        LeaderboardEntry(rank=i, username=u, points=p, answered=a, correct=c) for i, (u, p, a, c) in enumerate(rows, 1)
    ]
    return Leaderboard(time_period=period.code, period_start=start, entries=entries)


@router.get("/time-periods", response_model=list[TimePeriodOut])
def time_periods(db: SessionDep) -> list[TimePeriod]:
    return list(db.scalars(select(TimePeriod).order_by(TimePeriod.id)))
