"""Validated settings of the quiz API, built from arguments or the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

from quiz_api.errors import QuizError

DEFAULT_DATABASE_URL = "sqlite:///./quiz.db"
# Only for local runs and tests; a deployment sets QUIZ_SECRET_KEY.
DEVELOPMENT_SECRET = "development-secret-key-change-me-32-bytes-long!"


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    secret_key: str = DEVELOPMENT_SECRET
    algorithm: str = "HS256"
    access_token_minutes: int = 30
    password_hash: Literal["test", "production"] = "production"

    def __post_init__(self) -> None:
        if len(self.secret_key) < 32:
            raise QuizError("QUIZ_SECRET_KEY must be at least 32 characters (HS256 needs 256 bits)")
        if self.algorithm not in {"HS256", "HS384", "HS512"}:
            raise QuizError(f"unsupported JWT algorithm {self.algorithm!r}")
        if self.access_token_minutes <= 0:
            raise QuizError("access_token_minutes must be positive")
        if self.password_hash not in {"test", "production"}:
            raise QuizError("password_hash must be 'test' or 'production'")

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> Settings:
        environ = dict(os.environ if environ is None else environ)
        try:
            minutes = int(environ.get("QUIZ_ACCESS_TOKEN_MINUTES", "30"))
        except ValueError as exc:
            raise QuizError("QUIZ_ACCESS_TOKEN_MINUTES must be an integer") from exc
        return cls(
            database_url=environ.get("DATABASE_URL", DEFAULT_DATABASE_URL),
            secret_key=environ.get("QUIZ_SECRET_KEY", DEVELOPMENT_SECRET),
            access_token_minutes=minutes,
            password_hash=environ.get("QUIZ_PASSWORD_HASH", "production"),  # type: ignore[arg-type]
        )
