"""Validated settings of the quiz API, built from arguments or the environment.

`Settings()` is a development configuration (the published development key, throttles and limits
at their defaults); `Settings.from_environment()` is what the server uses, and it defaults to
production mode, which refuses the development key and the cheap test password hash.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from quiz_api.errors import QuizError

DEFAULT_DATABASE_URL = "sqlite:///./quiz.db"
# Only for local runs and tests; a deployment sets QUIZ_SECRET_KEY.
DEVELOPMENT_SECRET = "development-secret-key-change-me-32-bytes-long!"
MIN_SECRET_LENGTH = 32


@dataclass(frozen=True)
class Settings:
    """What the app needs to know.

    environment: "production" refuses the published development key and the `test` password hash.
    login_failures_per_username / login_failures_per_address: failed logins allowed within
        `login_failure_window_s` before further attempts get a 429 (0 = no limit).
    login_throttle_max_keys: usernames and addresses remembered at most (oldest forgotten first).
    max_request_body_bytes: larger request bodies get a 413 before anything parses them.
    """

    database_url: str = DEFAULT_DATABASE_URL
    secret_key: str = DEVELOPMENT_SECRET
    algorithm: str = "HS256"
    access_token_minutes: int = 30
    password_hash: Literal["test", "production"] = "production"
    environment: Literal["development", "production"] = "development"
    login_failures_per_username: int = 10
    login_failures_per_address: int = 100
    login_failure_window_s: int = 300
    login_throttle_max_keys: int = 10_000
    # The largest valid body (a question: 5,000 + 6 x 500 characters) is under 100 KiB even with
    # every character JSON-escaped as a surrogate pair.
    max_request_body_bytes: int = 128 * 1024

    def __post_init__(self) -> None:
        if self.environment not in {"development", "production"}:
            raise QuizError(f"QUIZ_ENV must be 'development' or 'production', got {self.environment!r}")
        if self.environment == "production":
            if self.secret_key == DEVELOPMENT_SECRET:
                raise QuizError(
                    "production mode needs QUIZ_SECRET_KEY (at least 32 random characters); the development key "
                    "is published in the source (set QUIZ_ENV=development for a local run)"
                )
            if self.password_hash == "test":
                raise QuizError(
                    "QUIZ_PASSWORD_HASH=test is refused in production mode (it makes passwords cheap to guess)"
                )
        if len(self.secret_key) < MIN_SECRET_LENGTH:
            raise QuizError(f"QUIZ_SECRET_KEY must be at least {MIN_SECRET_LENGTH} characters (HS256 needs 256 bits)")
        if self.algorithm not in {"HS256", "HS384", "HS512"}:
            raise QuizError(f"unsupported JWT algorithm {self.algorithm!r}")
        if self.access_token_minutes <= 0:
            raise QuizError("access_token_minutes must be positive")
        if self.password_hash not in {"test", "production"}:
            raise QuizError("password_hash must be 'test' or 'production'")
        for name in ("login_failures_per_username", "login_failures_per_address"):
            if getattr(self, name) < 0:
                raise QuizError(f"{name} must be 0 (no limit) or more")
        for name in ("login_failure_window_s", "login_throttle_max_keys"):
            if getattr(self, name) < 1:
                raise QuizError(f"{name} must be at least 1")
        if self.max_request_body_bytes < 1024:
            raise QuizError("max_request_body_bytes must be at least 1024")

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The server's settings: production mode unless QUIZ_ENV=development."""
        environ = dict(os.environ if environ is None else environ)

        def integer(name: str, default: int) -> int:
            try:
                return int(environ.get(name, str(default)))
            except ValueError as exc:
                raise QuizError(f"{name} must be an integer") from exc

        return cls(
            database_url=environ.get("DATABASE_URL", DEFAULT_DATABASE_URL),
            secret_key=environ.get("QUIZ_SECRET_KEY", DEVELOPMENT_SECRET),
            access_token_minutes=integer("QUIZ_ACCESS_TOKEN_MINUTES", 30),
            password_hash=environ.get("QUIZ_PASSWORD_HASH", "production"),  # type: ignore[arg-type]
            environment=environ.get("QUIZ_ENV", "production"),  # type: ignore[arg-type]
            login_failures_per_username=integer("QUIZ_LOGIN_FAILURES_PER_USERNAME", cls.login_failures_per_username),
            login_failures_per_address=integer("QUIZ_LOGIN_FAILURES_PER_ADDRESS", cls.login_failures_per_address),
            login_failure_window_s=integer("QUIZ_LOGIN_FAILURE_WINDOW_S", cls.login_failure_window_s),
            login_throttle_max_keys=integer("QUIZ_LOGIN_THROTTLE_MAX_KEYS", cls.login_throttle_max_keys),
            max_request_body_bytes=integer("QUIZ_MAX_REQUEST_BYTES", cls.max_request_body_bytes),
        )
