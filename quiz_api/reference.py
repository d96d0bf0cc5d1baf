"""Reference data: roles, difficulty levels and the time periods scores are kept for."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from quiz_api.models import DifficultyLevel, Role, TimePeriod

ROLES = {"admin": "manages users", "editor": "writes content", "student": "answers questions"}
DIFFICULTIES = {"easy": 1, "medium": 2, "hard": 3}
TIME_PERIODS = [
    ("daily", "Daily", "day"),
    ("weekly", "Weekly", "week"),
    ("monthly", "Monthly", "month"),
    ("yearly", "Yearly", "year"),
    ("all_time", "All time", None),
]


def seed_reference_data(session: Session) -> None:
    """Insert the reference rows that are missing (idempotent; flushes, does not commit)."""
    existing_roles = set(session.scalars(select(Role.code)))
    session.add_all(Role(code=c, description=d) for c, d in ROLES.items() if c not in existing_roles)
    existing_levels = set(session.scalars(select(DifficultyLevel.code)))
    session.add_all(DifficultyLevel(code=c, points=p) for c, p in DIFFICULTIES.items() if c not in existing_levels)
    existing_periods = set(session.scalars(select(TimePeriod.code)))
    session.add_all(TimePeriod(code=c, name=n, unit=u) for c, n, u in TIME_PERIODS if c not in existing_periods)
    session.flush()


def reference_row_counts() -> dict[str, int]:
    """How many rows each reference table holds after seeding (used by the isolation guards)."""
    return {"roles": len(ROLES), "difficulty_levels": len(DIFFICULTIES), "time_periods": len(TIME_PERIODS)}
