"""Request and response bodies (pydantic v2); invalid bodies become 422s before any handler runs."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    field_validator,
)

from quiz_api.params import MAX_ROW_ID

# A row id in a body: outside the range every database's INTEGER holds it names no row (see params).
RowId = Annotated[int, Field(ge=1, le=MAX_ROW_ID)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Username = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=3, max_length=50, pattern=r"^[A-Za-z0-9_.-]+$")
]
Password = Annotated[str, StringConstraints(min_length=8, max_length=128)]
RoleCode = Literal["admin", "editor", "student"]
DifficultyCode = Literal["easy", "medium", "hard"]


class Strict(BaseModel):
    """A request body: unknown fields and NUL characters in text are invalid (422)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def no_nul_characters(cls, value: object) -> object:
        # PostgreSQL cannot store or compare text containing NUL; reject it for every storage alike.
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("text must not contain NUL characters")
        return value


class LoginRequest(Strict):
    username: Annotated[str, StringConstraints(min_length=1, max_length=50)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=128)]


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


class Message(BaseModel):
    detail: str


class UserCreate(Strict):
    username: Username
    email: EmailStr
    password: Password
    role: RoleCode = "student"


class UserUpdate(Strict):
    email: EmailStr | None = None
    password: Password | None = None
    role: RoleCode | None = None
    is_active: bool | None = None


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    username: str
    email: str
    role: str
    is_active: bool


class SubjectCreate(Strict):
    name: Name
    description: Annotated[str, StringConstraints(max_length=2000)] = ""


class SubjectUpdate(Strict):
    name: Name | None = None
    description: Annotated[str, StringConstraints(max_length=2000)] | None = None


class TopicCreate(Strict):
    subject_id: RowId
    name: Name


class SubtopicCreate(Strict):
    topic_id: RowId
    name: Name


class NodeRename(Strict):
    name: Name


class SubtopicOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    topic_id: int
    name: str


class TopicOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    subject_id: int
    name: str
    subtopics: list[SubtopicOut] = []


class SubjectOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    description: str
    topics: list[TopicOut] = []


class OptionIn(Strict):
    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
    is_correct: bool = False


class QuestionCreate(Strict):
    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5000)]
    subtopic_id: RowId
    difficulty: DifficultyCode = "medium"
    options: list[OptionIn] = Field(min_length=2, max_length=6)

    @field_validator("options")
    @classmethod
    def exactly_one_correct(cls, options: list[OptionIn]) -> list[OptionIn]:
        if sum(option.is_correct for option in options) != 1:
            raise ValueError("exactly one option must be correct")
        return options


class QuestionUpdate(Strict):
    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5000)] | None = None
    subtopic_id: RowId | None = None
    difficulty: DifficultyCode | None = None
    options: list[OptionIn] | None = Field(default=None, min_length=2, max_length=6)

    @field_validator("options")
    @classmethod
    def exactly_one_correct(cls, options: list[OptionIn] | None) -> list[OptionIn] | None:
        if options is not None and sum(option.is_correct for option in options) != 1:
            raise ValueError("exactly one option must be correct")
        return options


class OptionPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    text: str


class OptionFull(OptionPublic):
    is_correct: bool


class QuestionPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    text: str
    subtopic_id: int
    difficulty: str
    options: list[OptionPublic]


class QuestionFull(QuestionPublic):
    options: list[OptionFull]  # type: ignore[assignment]
    author_id: int | None


class QuestionPage(BaseModel):
    items: list[QuestionPublic]
    total: int
    limit: int
    offset: int


class QuestionSetCreate(Strict):
    name: Name
    description: Annotated[str, StringConstraints(max_length=2000)] = ""
    question_ids: list[RowId] = Field(default_factory=list, max_length=200)


class QuestionSetUpdate(Strict):
    name: Name | None = None
    description: Annotated[str, StringConstraints(max_length=2000)] | None = None
    question_ids: list[RowId] | None = Field(default=None, max_length=200)


class QuestionSetOut(BaseModel):
    id: int
    name: str
    description: str
    owner_id: int | None
    question_ids: list[int]


class ResponseCreate(Strict):
    question_id: RowId
    answer_option_id: RowId
    question_set_id: RowId | None = None


class ResponseResult(BaseModel):
    id: int
    is_correct: bool
    points: int
    # False for an attempt after the user's first at the question: recorded, worth no points.
    scored: bool
    correct_option_id: int


class TimePeriodOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    code: str
    name: str
    unit: str | None


class ScoreOut(BaseModel):
    time_period: str
    period_start: date
    points: int
    answered: int
    correct: int


class LeaderboardEntry(BaseModel):
    rank: int
    username: str
    points: int
    answered: int
    correct: int


class Leaderboard(BaseModel):
    time_period: str
    period_start: date
    entries: list[LeaderboardEntry]
