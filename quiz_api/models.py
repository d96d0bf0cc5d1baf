"""The quiz data model: 14 tables with enforced foreign keys.

Reference tables (roles, difficulty levels, time periods) are listed in REFERENCE_TABLES: the test
architectures seed them per test or once per session.

Ids that tokens or the answer history refer to are never handed out twice: on SQLite those tables
are AUTOINCREMENT (without it SQLite reuses the highest id after a delete, and a recreated user
would inherit the deleted one's tokens). Responses keep the questions and options they answered
(RESTRICT): history is not deleted by editing content.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from quiz_api.database import Base


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


NO_ID_REUSE = {"sqlite_autoincrement": True}


class Role(Base):
    __tablename__ = "roles"
    code: Mapped[str] = mapped_column(String(20), primary_key=True)
    description: Mapped[str] = mapped_column(String(200))


class DifficultyLevel(Base):
    __tablename__ = "difficulty_levels"
    code: Mapped[str] = mapped_column(String(20), primary_key=True)
    points: Mapped[int] = mapped_column(Integer)


class TimePeriod(Base):
    __tablename__ = "time_periods"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(50))
    # None = all-time; otherwise the period's granularity.
    unit: Mapped[str | None] = mapped_column(String(10))


class User(Base):
    __tablename__ = "users"
    __table_args__ = NO_ID_REUSE
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(50), unique=True, index=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    hashed_password: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(ForeignKey("roles.code"), default="student")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Incremented by logout-all: tokens carrying an older version are rejected.
    token_version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class RevokedToken(Base):
    __tablename__ = "revoked_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    jti: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    revoked_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Subject(Base):
    __tablename__ = "subjects"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    topics: Mapped[list[Topic]] = relationship(back_populates="subject", cascade="all, delete-orphan")


class Topic(Base):
    __tablename__ = "topics"
    __table_args__ = (UniqueConstraint("subject_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("subjects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    subject: Mapped[Subject] = relationship(back_populates="topics")
    subtopics: Mapped[list[Subtopic]] = relationship(back_populates="topic", cascade="all, delete-orphan")


class Subtopic(Base):
    __tablename__ = "subtopics"
    __table_args__ = (UniqueConstraint("topic_id", "name"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    topic_id: Mapped[int] = mapped_column(ForeignKey("topics.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    topic: Mapped[Topic] = relationship(back_populates="subtopics")


class Question(Base):
    __tablename__ = "questions"
    __table_args__ = NO_ID_REUSE
    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    subtopic_id: Mapped[int] = mapped_column(ForeignKey("subtopics.id", ondelete="RESTRICT"))
    difficulty: Mapped[str] = mapped_column(ForeignKey("difficulty_levels.code"))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    options: Mapped[list[AnswerOption]] = relationship(
        back_populates="question", cascade="all, delete-orphan", order_by="AnswerOption.position"
    )
    subtopic: Mapped[Subtopic] = relationship()


class AnswerOption(Base):
    __tablename__ = "answer_options"
    __table_args__ = NO_ID_REUSE
    id: Mapped[int] = mapped_column(primary_key=True)
    question_id: Mapped[int] = mapped_column(ForeignKey("questions.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(String(500))
    is_correct: Mapped[bool] = mapped_column(Boolean, default=False)
    question: Mapped[Question] = relationship(back_populates="options")


class QuestionSet(Base):
    __tablename__ = "question_sets"
    __table_args__ = NO_ID_REUSE
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    items: Mapped[list[QuestionSetItem]] = relationship(
        cascade="all, delete-orphan", order_by="QuestionSetItem.position"
    )


class QuestionSetItem(Base):
    __tablename__ = "question_set_items"
    question_set_id: Mapped[int] = mapped_column(ForeignKey("question_sets.id", ondelete="CASCADE"), primary_key=True)
    question_id: Mapped[int] = mapped_column(ForeignKey("questions.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)


class Response(Base):
    """One attempt at a question. Only a user's first attempt at a question scores (`scored`);
    the partial unique index makes "first" hold under concurrent answers too."""

    __tablename__ = "responses"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    question_id: Mapped[int] = mapped_column(ForeignKey("questions.id", ondelete="RESTRICT"))
    answer_option_id: Mapped[int] = mapped_column(ForeignKey("answer_options.id", ondelete="RESTRICT"))
    question_set_id: Mapped[int | None] = mapped_column(ForeignKey("question_sets.id", ondelete="SET NULL"))
    is_correct: Mapped[bool] = mapped_column(Boolean)
    points: Mapped[int] = mapped_column(Integer)
    scored: Mapped[bool] = mapped_column(Boolean, default=False)
    answered_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


# The same expression in the index and in the upsert's conflict target: SQLite matches them as written.
SCORED_ATTEMPT = Response.__table__.c.scored
Index(
    "uq_responses_scored_attempt",
    Response.user_id,
    Response.question_id,
    unique=True,
    sqlite_where=SCORED_ATTEMPT,
    postgresql_where=SCORED_ATTEMPT,
)


class Score(Base):
    """One leaderboard entry: a user's points within one period (e.g. the week starting period_start)."""

    __tablename__ = "scores"
    __table_args__ = (
        UniqueConstraint("user_id", "time_period_id", "period_start"),
        CheckConstraint("points >= 0"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    time_period_id: Mapped[int] = mapped_column(ForeignKey("time_periods.id"))
    period_start: Mapped[date] = mapped_column(Date)
    points: Mapped[int] = mapped_column(Integer, default=0)
    answered: Mapped[int] = mapped_column(Integer, default=0)
    correct: Mapped[int] = mapped_column(Integer, default=0)
    time_period: Mapped[TimePeriod] = relationship()
    user: Mapped[User] = relationship()


REFERENCE_TABLES = frozenset({"roles", "difficulty_levels", "time_periods"})
