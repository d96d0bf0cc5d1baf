"""Password hashing with argon2 (pwdlib) at a configurable cost."""

from __future__ import annotations

from functools import cache
from typing import Literal

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

# "production" is argon2's recommended cost (pwdlib defaults: 3 passes over 64 MiB); "test" is the
# minimum cost most suites configure so hashing does not dominate every login.
HASH_COSTS = {
    "production": {"time_cost": 3, "memory_cost": 65536, "parallelism": 4},
    "test": {"time_cost": 1, "memory_cost": 1024, "parallelism": 1},
}


@cache
def password_hasher(cost: Literal["test", "production"]) -> PasswordHash:
    return PasswordHash((Argon2Hasher(**HASH_COSTS[cost]),))


def hash_password(password: str, *, cost: Literal["test", "production"]) -> str:
    return password_hasher(cost).hash(password)


def verify_password(password: str, hashed: str, *, cost: Literal["test", "production"]) -> bool:
    try:
        return password_hasher(cost).verify(password, hashed)
    except Exception:  # noqa: BLE001 - a malformed stored hash must read as "wrong password", not a 500
        return False


@cache
def dummy_hash(cost: Literal["test", "production"]) -> str:
    """A hash no password matches, verified for unknown and inactive users so that a login takes
    the same argon2 work whether or not the username exists."""
    return hash_password("no account has this password", cost=cost)


MIN_ADMIN_PASSWORD_LENGTH = 12
MIN_DISTINCT_CHARACTERS = 6


def admin_password_problem(username: str, password: str) -> str | None:
    """Why `password` is too weak for the bootstrap admin, or None when it will do."""
    if len(password) < MIN_ADMIN_PASSWORD_LENGTH:
        return f"must be at least {MIN_ADMIN_PASSWORD_LENGTH} characters"
    if len(password) > 128:
        return "must be at most 128 characters"
    if len(set(password)) < MIN_DISTINCT_CHARACTERS:
        return f"must use at least {MIN_DISTINCT_CHARACTERS} different characters"
    if username.lower() in password.lower():
        return "must not contain the username"
    return None
