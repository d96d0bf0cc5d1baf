"""Issue 15: the quiz API safe to serve, item by item, on the app the server builds.

Each test drives `build_server_app` (disk SQLite with the served engine settings, the write gate
and the login throttle) in-process through Starlette's TestClient, except where the server's
command line itself is the subject (refusing to start: exit code 2 and one line on stderr).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select

from quiz_api.errors import QuizError
from quiz_api.models import Response, User
from quiz_api.server import build_server_app
from quiz_api.settings import DEVELOPMENT_SECRET, Settings
from quiz_api.throttle import LoginThrottle

ADMIN = "root_admin"
ADMIN_PASSWORD = "served-admin-password"
ADMIN_ENV = {"QUIZ_ADMIN_USERNAME": ADMIN, "QUIZ_ADMIN_PASSWORD": ADMIN_PASSWORD}
STUDENT_PASSWORD = "student-password-1"
SECRET = "a-test-secret-key-that-is-long-enough-0123456789"


def settings_for(tmp_path: Path, **changes) -> Settings:
    values = {"database_url": f"sqlite:///{tmp_path / 'quiz.db'}", "password_hash": "test", "secret_key": SECRET}
    return Settings(**{**values, **changes})


def engine_of(app: FastAPI):
    return app.state.session_factory.kw["bind"]


# Tests that depend on the database's own behaviour (constraints, upserts, locks) run on both
# storages with `@BOTH_STORAGES`; the others on disk SQLite, the default.
BOTH_STORAGES = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if getattr(request, "param", "sqlite") == "sqlite":
        yield f"sqlite:///{tmp_path / 'quiz.db'}"
        return
    from quiz_architectures import pg

    admin_url = request.getfixturevalue("postgres_admin_url")
    name = f"quiz_security_{os.getpid()}"
    admin = pg.admin_engine(admin_url)
    pg.drop_database(admin, name)
    pg.create_database(admin, name)
    try:
        yield pg.database_url(admin_url, name)
    finally:
        pg.drop_database(admin, name)
        admin.dispose()


@pytest.fixture
def app(tmp_path: Path, database_url: str) -> Iterator[FastAPI]:
    quiz_app = build_server_app(settings_for(tmp_path, database_url=database_url), environ=ADMIN_ENV)
    yield quiz_app
    engine_of(quiz_app).dispose()


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def log_in(client: TestClient, username: str, password: str) -> dict[str, str]:
    response = client.post("/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture
def admin(client: TestClient) -> dict[str, str]:
    return log_in(client, ADMIN, ADMIN_PASSWORD)


def create_user(client: TestClient, admin: dict[str, str], username: str, *, role: str = "student") -> int:
    body = {"username": username, "email": f"{username}@example.com", "password": STUDENT_PASSWORD, "role": role}
    response = client.post("/users", json=body, headers=admin)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def create_question(client: TestClient, admin: dict[str, str], text: str = "1 + 1?") -> dict:
    """A question in a subject of its own (named after the text, which must be new)."""
    subject = client.post("/subjects", json={"name": f"Maths: {text}"}, headers=admin).json()["id"]
    topic = client.post("/topics", json={"subject_id": subject, "name": "Sums"}, headers=admin).json()["id"]
    subtopic = client.post("/subtopics", json={"topic_id": topic, "name": "Small"}, headers=admin).json()["id"]
    body = {
        "text": text,
        "subtopic_id": subtopic,
        "difficulty": "hard",
        "options": [{"text": "2", "is_correct": True}, {"text": "3"}],
    }
    response = client.post("/questions", json=body, headers=admin)
    assert response.status_code == 201, response.text
    return response.json()


# --- 1. keys, roles and password hashes -----------------------------------------------------------


def run_server(env_changes: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUIZ_")}
    env.update({"DATABASE_URL": f"sqlite:///{tmp_path / 'refused.db'}", **env_changes})
    try:
        return subprocess.run(
            [sys.executable, "-m", "quiz_api", "--port", "0", "--log-level", "warning"],
            check=False,
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the server started instead of refusing to")


def test_production_mode_refuses_to_start_without_a_key(tmp_path):
    result = run_server({}, tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: production mode needs QUIZ_SECRET_KEY")
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "refused.db").exists()


def main_with_environment(monkeypatch, tmp_path: Path, env_changes: dict[str, str]) -> int:
    """The server's command line in this process (the subprocess tests above show it is the
    same entry point): only the given QUIZ_* variables set."""
    import uvicorn

    from quiz_api.__main__ import main

    # Were the settings accepted, the server must not start serving inside the test.
    monkeypatch.setattr(uvicorn, "run", lambda *_args, **_kwargs: None)
    for name in [name for name in os.environ if name.startswith("QUIZ_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'refused.db'}")
    for name, value in env_changes.items():
        monkeypatch.setenv(name, value)
    return main(["--port", "0"])


def test_production_mode_refuses_the_published_development_key(tmp_path, monkeypatch, capsys):
    assert main_with_environment(monkeypatch, tmp_path, {"QUIZ_SECRET_KEY": DEVELOPMENT_SECRET}) == 2
    assert capsys.readouterr().err.startswith("error: production mode needs QUIZ_SECRET_KEY")


def test_production_mode_refuses_the_test_password_hash(tmp_path, monkeypatch, capsys):
    assert main_with_environment(monkeypatch, tmp_path, {"QUIZ_SECRET_KEY": SECRET, "QUIZ_PASSWORD_HASH": "test"}) == 2
    assert capsys.readouterr().err == (
        "error: QUIZ_PASSWORD_HASH=test is refused in production mode (it makes passwords cheap to guess)\n"
    )


def test_settings_from_environment_default_to_production():
    with pytest.raises(QuizError, match="production mode needs QUIZ_SECRET_KEY"):
        Settings.from_environment({})
    assert Settings.from_environment({"QUIZ_SECRET_KEY": SECRET}).environment == "production"
    development = Settings.from_environment({"QUIZ_ENV": "development", "QUIZ_PASSWORD_HASH": "test"})
    assert (development.secret_key, development.password_hash) == (DEVELOPMENT_SECRET, "test")
    with pytest.raises(QuizError, match="QUIZ_ENV must be"):
        Settings.from_environment({"QUIZ_ENV": "staging", "QUIZ_SECRET_KEY": SECRET})


@BOTH_STORAGES
def test_a_token_whose_role_claim_differs_from_the_users_role_is_refused(client, admin, app):
    create_user(client, admin, "mallory")
    student = log_in(client, "mallory", STUDENT_PASSWORD)
    claims = jwt.decode(student["Authorization"].removeprefix("Bearer "), options={"verify_signature": False})
    # Signed with the server's key (a leaked key, or a token minted before a role change was
    # written behind the API's back): the signature and token version are right, the role is not.
    forged = jwt.encode({**claims, "role": "admin"}, app.state.settings.secret_key, algorithm="HS256")
    response = client.get("/users", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401
    assert response.json() == {"detail": "token role does not match the user's role"}
    assert client.get("/users/me", headers=student).status_code == 200


# --- 2. atomic score and token-version writes -------------------------------------------------------


def statements_during(app: FastAPI, call) -> list[str]:
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        seen.append(" ".join(statement.split()))

    engine = engine_of(app)
    event.listen(engine, "before_cursor_execute", record)
    try:
        call()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return seen


def test_scores_and_token_versions_are_written_by_single_atomic_statements(client, admin, app):
    create_user(client, admin, "sam")
    student = log_in(client, "sam", STUDENT_PASSWORD)
    question = create_question(client, admin)
    body = {"question_id": question["id"], "answer_option_id": question["options"][0]["id"]}

    answering = statements_during(app, lambda: client.post("/responses", json=body, headers=student))
    periods = [s for s in answering if "FROM time_periods" in s]
    assert periods and all("ORDER BY time_periods.id" in s for s in periods), periods
    score_writes = [s for s in answering if "scores" in s.split(" FROM ")[0] and not s.startswith("SELECT")]
    assert len(score_writes) == 1, score_writes
    assert score_writes[0].startswith("INSERT INTO scores")
    assert (
        "ON CONFLICT (user_id, time_period_id, period_start) DO UPDATE SET points = (scores.points + excluded.points)"
        in score_writes[0]
    )

    ending = statements_during(app, lambda: client.post("/logout-all", headers=student))
    version_writes = [s for s in ending if s.startswith("UPDATE users")]
    assert version_writes == [
        "UPDATE users SET token_version=(users.token_version + ?) WHERE users.id = ? RETURNING id"
    ], version_writes


# --- 3. score farming ---------------------------------------------------------------------------------


@BOTH_STORAGES
def test_only_the_first_attempt_scores_and_the_answer_is_revealed_after_it(client, admin):
    create_user(client, admin, "farmer")
    student = log_in(client, "farmer", STUDENT_PASSWORD)
    question = create_question(client, admin)
    right, wrong = (option["id"] for option in question["options"])
    assert all("is_correct" not in option for option in client.get(f"/questions/{question['id']}").json()["options"])

    first = client.post("/responses", json={"question_id": question["id"], "answer_option_id": wrong}, headers=student)
    assert first.status_code == 201
    assert first.json() | {"id": 0} == {
        "id": 0,
        "is_correct": False,
        "points": 0,
        "scored": True,
        "correct_option_id": right,
    }
    for _ in range(5):
        again = client.post(
            "/responses", json={"question_id": question["id"], "answer_option_id": right}, headers=student
        )
        assert again.status_code == 201
        assert (again.json()["is_correct"], again.json()["points"], again.json()["scored"]) == (True, 0, False)

    scores = client.get("/scores/me", headers=student).json()
    assert {(s["points"], s["answered"], s["correct"]) for s in scores} == {(0, 1, 0)}
    assert client.get("/leaderboard").json()["entries"][0]["points"] == 0


# --- 4. logins, body sizes, list sizes -------------------------------------------------------------


def test_login_verifies_a_hash_for_unknown_and_inactive_users(client, admin, monkeypatch):
    from quiz_api.routes import auth

    user_id = create_user(client, admin, "sleeper")
    assert client.patch(f"/users/{user_id}", json={"is_active": False}, headers=admin).status_code == 200
    verified: list[str] = []
    real_verify = auth.verify_password

    def counting_verify(password: str, hashed: str, *, cost: str) -> bool:
        verified.append(hashed)
        return real_verify(password, hashed, cost=cost)

    monkeypatch.setattr(auth, "verify_password", counting_verify)
    for username, password in [
        ("nobody_here", "whatever-password"),
        ("sleeper", STUDENT_PASSWORD),
        (ADMIN, "wrong-password"),
    ]:
        response = client.post("/login", json={"username": username, "password": password})
        assert (response.status_code, response.json()) == (401, {"detail": "incorrect username or password"})
    assert len(verified) == 3 and all(hashed.startswith("$argon2") for hashed in verified)


def median_login_s(client: TestClient, username: str, *, repeat: int) -> float:
    durations = []
    for _ in range(repeat):
        started = time.perf_counter()
        assert client.post("/login", json={"username": username, "password": "not-the-password"}).status_code == 401
        durations.append(time.perf_counter() - started)
    return statistics.median(durations)


def test_login_takes_as_long_for_an_unknown_username_as_for_a_known_one(tmp_path):
    # The production argon2 cost (tens of milliseconds) dwarfs the rest of a login, so the
    # difference is visible through the noise of a shared machine.
    settings = settings_for(tmp_path, password_hash="production")
    with TestClient(build_server_app(settings, environ=ADMIN_ENV)) as client:
        client.post("/login", json={"username": "warm_up", "password": "not-the-password"})
        known_s = median_login_s(client, ADMIN, repeat=3)
        unknown_s = median_login_s(client, "no_such_user", repeat=3)
    assert unknown_s > 0.5 * known_s, f"unknown {unknown_s * 1000:.1f} ms vs known {known_s * 1000:.1f} ms"


@pytest.fixture
def throttled_client(tmp_path: Path) -> Iterator[TestClient]:
    settings = settings_for(tmp_path, login_failures_per_username=3, login_failures_per_address=5)
    with TestClient(build_server_app(settings, environ=ADMIN_ENV)) as client:
        yield client


def test_failed_logins_are_throttled_per_username_and_per_address(throttled_client):
    client = throttled_client
    admin = log_in(client, ADMIN, ADMIN_PASSWORD)
    create_user(client, admin, "target")
    for _ in range(3):
        assert client.post("/login", json={"username": "target", "password": "guess-guess"}).status_code == 401
    # Even the right password waits now: the throttle must not tell which guess was right.
    blocked = client.post("/login", json={"username": "target", "password": STUDENT_PASSWORD})
    assert blocked.status_code == 429
    assert blocked.json()["detail"].startswith("too many failed logins; try again in ")
    assert 0 < int(blocked.headers["retry-after"]) <= 300
    # Another username from the same address still may, until the address has failed 5 times.
    log_in(client, ADMIN, ADMIN_PASSWORD)
    for _ in range(2):
        assert client.post("/login", json={"username": "somebody", "password": "guess-guess"}).status_code == 401
    assert client.post("/login", json={"username": ADMIN, "password": ADMIN_PASSWORD}).status_code == 429


def test_a_successful_login_clears_its_usernames_failures(throttled_client):
    client = throttled_client
    for _ in range(2):
        assert client.post("/login", json={"username": ADMIN, "password": "guess-guess"}).status_code == 401
    log_in(client, ADMIN, ADMIN_PASSWORD)
    for _ in range(2):
        assert client.post("/login", json={"username": ADMIN, "password": "guess-guess"}).status_code == 401
    log_in(client, ADMIN, ADMIN_PASSWORD)


def test_throttle_forgets_failures_after_the_window_and_bounds_its_memory():
    now = [1000.0]
    throttle = LoginThrottle(
        failures_per_username=2, failures_per_address=0, window_s=60, max_keys=50, clock=lambda: now[0]
    )
    for _ in range(2):
        throttle.record_failure(username="u", address="a")
    assert throttle.retry_after_s(username="u", address="a") == 60
    now[0] += 59.5
    assert throttle.retry_after_s(username="u", address="a") == 1
    now[0] += 1
    assert throttle.retry_after_s(username="u", address="a") is None
    for number in range(1000):
        throttle.record_failure(username=f"sprayed_{number}", address="a")
    assert len(throttle) == 50
    assert throttle.retry_after_s(username="sprayed_999", address="b") is None  # one failure, limit 2


@pytest.mark.parametrize("path", ["/login", "/subjects", "/questions"])
def test_oversized_request_bodies_get_413_before_anything_parses_them(client, path):
    body = b'{"username": "' + b"x" * (200 * 1024) + b'", "password": "p"}'
    response = client.post(path, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json() == {"detail": "request body too large: at most 131072 bytes"}


def test_an_oversized_chunked_body_gets_413_too(client):
    # No Content-Length: the limit counts the bytes as they arrive.
    chunks = (b"x" * 16384 for _ in range(20))
    response = client.post("/login", content=chunks, headers={"Content-Type": "application/json"})
    assert response.status_code == 413


def test_a_body_under_the_limit_is_handed_on_intact(client, admin):
    description = "é🙂 " * 666  # non-ASCII, so the JSON body is longer than the text
    response = client.post("/subjects", json={"name": "Big", "description": description}, headers=admin)
    assert response.status_code == 201 and response.json()["description"] == description


@pytest.mark.parametrize("path", ["/subjects", "/topics", "/question-sets"])
def test_lists_are_paginated_with_bounds(client, admin, path):
    subject = client.post("/subjects", json={"name": "Subject 0"}, headers=admin).json()["id"]
    question = create_question(client, admin)["id"]
    for number in range(1, 4):
        body = {
            "/subjects": {"name": f"Subject {number}"},
            "/topics": {"subject_id": subject, "name": f"Topic {number}"},
            "/question-sets": {"name": f"Set {number}", "question_ids": [question]},
        }[path]
        assert client.post(path, json=body, headers=admin).status_code == 201
    everything = client.get(path).json()
    assert len(everything) >= 3
    assert client.get(path, params={"limit": 2}).json() == everything[:2]
    assert client.get(path, params={"limit": 2, "offset": 2}).json() == everything[2:4]
    for bad in ({"limit": 0}, {"limit": 101}, {"offset": -1}, {"limit": "many"}):
        assert client.get(path, params=bad).status_code == 422, bad
    assert len(client.get(path, params={"limit": 100}).json()) == len(everything)


# --- 5. the event loop ------------------------------------------------------------------------------


@BOTH_STORAGES
def test_no_database_call_runs_on_the_event_loop(app, tmp_path):
    """Every request kind that reaches the database through a middleware or a handler, driven
    on one event loop: each SQL statement must run in a worker thread."""
    loop_threads: set[int] = set()
    on_loop: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:
        if threading.get_ident() in loop_threads:
            on_loop.append(" ".join(statement.split())[:80])

    async def scenario() -> None:
        loop_threads.add(threading.get_ident())
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://quiz") as api:
            token = (await api.post("/login", json={"username": ADMIN, "password": ADMIN_PASSWORD})).json()[
                "access_token"
            ]
            headers = {"Authorization": f"Bearer {token}"}
            assert (await api.get("/time-periods", headers=headers)).status_code == 200  # blacklist only
            assert (await api.get("/users", headers=headers)).status_code == 200  # blacklist + authorization
            assert (await api.post("/subjects", json={"name": "Async"}, headers=headers)).status_code == 201
            assert (await api.post("/logout", headers=headers)).status_code == 200
            assert (await api.get("/users/me", headers=headers)).status_code == 401

    engine = engine_of(app)
    event.listen(engine, "before_cursor_execute", record)
    try:
        asyncio.run(scenario())
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert on_loop == []


# --- 6. history is kept -----------------------------------------------------------------------------


def responses_of(app: FastAPI, question_id: int) -> int:
    with app.state.session_factory() as session:
        return session.scalar(select(func.count()).select_from(Response).where(Response.question_id == question_id))


@BOTH_STORAGES
def test_answered_options_cannot_be_replaced_or_deleted(client, admin, app):
    create_user(client, admin, "answerer")
    student = log_in(client, "answerer", STUDENT_PASSWORD)
    question = create_question(client, admin)
    answer = {"question_id": question["id"], "answer_option_id": question["options"][1]["id"]}
    assert client.post("/responses", json=answer, headers=student).status_code == 201

    new_options = {"options": [{"text": "two", "is_correct": True}, {"text": "three"}]}
    replaced = client.patch(f"/questions/{question['id']}", json=new_options, headers=admin)
    assert (replaced.status_code, replaced.json()) == (409, {"detail": "options already answered cannot be replaced"})
    deleted = client.delete(f"/questions/{question['id']}", headers=admin)
    assert deleted.status_code == 409
    assert responses_of(app, question["id"]) == 1
    assert client.patch(f"/questions/{question['id']}", json={"text": "1 + 1 = ?"}, headers=admin).status_code == 200
    # Unanswered questions can still be edited and deleted.
    fresh = create_question(client, admin, "2 + 2?")
    assert client.patch(f"/questions/{fresh['id']}", json=new_options, headers=admin).status_code == 200
    assert client.delete(f"/questions/{fresh['id']}", headers=admin).status_code == 204


@BOTH_STORAGES
def test_the_database_refuses_to_delete_answered_options(client, admin, app):
    """The foreign key itself, not only the handler's check: history survives any code path."""
    from sqlalchemy import delete
    from sqlalchemy.exc import IntegrityError

    from quiz_api.models import AnswerOption

    create_user(client, admin, "answerer")
    student = log_in(client, "answerer", STUDENT_PASSWORD)
    question = create_question(client, admin)
    answer = {"question_id": question["id"], "answer_option_id": question["options"][0]["id"]}
    assert client.post("/responses", json=answer, headers=student).status_code == 201
    with app.state.session_factory() as session, pytest.raises(IntegrityError):
        session.execute(delete(AnswerOption).where(AnswerOption.question_id == question["id"]))
        session.commit()
    assert responses_of(app, question["id"]) == 1


# --- 7. ids, admins and the bootstrap ----------------------------------------------------------------


def test_a_deleted_users_id_is_never_reused_so_his_old_tokens_stay_dead(client, admin):
    first_id = create_user(client, admin, "bob")
    bob = log_in(client, "bob", STUDENT_PASSWORD)
    assert client.post("/logout", headers=bob).status_code == 200
    assert client.delete(f"/users/{first_id}", headers=admin).status_code == 204

    second_id = create_user(client, admin, "bob")
    assert second_id > first_id
    assert client.get("/users/me", headers=bob).status_code == 401
    assert client.get("/users/me", headers=log_in(client, "bob", STUDENT_PASSWORD)).json()["id"] == second_id


@BOTH_STORAGES
def test_the_last_active_admin_cannot_be_demoted_or_deactivated(client, admin):
    me = client.get("/users/me", headers=admin).json()["id"]
    for change in ({"role": "editor"}, {"is_active": False}, {"role": "student", "is_active": False}):
        refused = client.patch(f"/users/{me}", json=change, headers=admin)
        assert (refused.status_code, refused.json()) == (
            409,
            {"detail": "cannot demote, deactivate or delete the last active admin"},
        ), change
    assert client.get("/users/me", headers=admin).json()["role"] == "admin"

    other = create_user(client, admin, "second_admin", role="admin")
    assert client.patch(f"/users/{me}", json={"role": "editor"}, headers=admin).status_code == 200
    second = log_in(client, "second_admin", STUDENT_PASSWORD)
    assert client.patch(f"/users/{other}", json={"is_active": False}, headers=second).status_code == 409
    assert client.patch(f"/users/{me}", json={"role": "admin"}, headers=second).status_code == 200
    assert client.patch(f"/users/{other}", json={"is_active": False}, headers=second).status_code == 200


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("short-pw1", "must be at least 12 characters"),
        ("aaaaaaaaaaaaaaaa", "must use at least 6 different characters"),
        ("my-root_admin-password", "must not contain the username"),
    ],
)
def test_the_admin_bootstrap_refuses_weak_passwords(tmp_path, password, problem):
    with pytest.raises(QuizError, match=f"^QUIZ_ADMIN_PASSWORD {problem}$"):
        build_server_app(
            settings_for(tmp_path), environ={"QUIZ_ADMIN_USERNAME": ADMIN, "QUIZ_ADMIN_PASSWORD": password}
        )


def test_the_admin_bootstrap_says_why_it_cannot_use_an_existing_name(tmp_path):
    settings = settings_for(tmp_path)
    with TestClient(build_server_app(settings, environ=ADMIN_ENV)) as client:
        create_user(client, log_in(client, ADMIN, ADMIN_PASSWORD), "plain_student")
    # The same admin and password again: a restart, nothing to say.
    build_server_app(settings, environ=ADMIN_ENV)
    with pytest.raises(QuizError, match="'plain_student' names an existing user who is not an admin"):
        build_server_app(
            settings, environ={"QUIZ_ADMIN_USERNAME": "plain_student", "QUIZ_ADMIN_PASSWORD": ADMIN_PASSWORD}
        )
    with pytest.raises(QuizError, match="admin 'root_admin' already exists with a different password"):
        build_server_app(settings, environ={**ADMIN_ENV, "QUIZ_ADMIN_PASSWORD": "another-long-password"})
    with pytest.raises(QuizError, match="set both QUIZ_ADMIN_USERNAME and QUIZ_ADMIN_PASSWORD, or neither"):
        build_server_app(settings, environ={"QUIZ_ADMIN_USERNAME": ADMIN})
    app = build_server_app(settings, environ={})
    with app.state.session_factory() as session:
        assert session.scalar(select(func.count()).select_from(User).where(User.role == "admin")) == 1


def test_a_refused_bootstrap_is_one_line_and_exit_code_2(tmp_path):
    result = run_server(
        {"QUIZ_ENV": "development", "QUIZ_ADMIN_USERNAME": ADMIN, "QUIZ_ADMIN_PASSWORD": "short"}, tmp_path
    )
    assert (result.returncode, result.stderr) == (2, "error: QUIZ_ADMIN_PASSWORD must be at least 12 characters\n")


@pytest.mark.parametrize("storage", ["memory", "disk"])
def test_truncate_isolation_still_restarts_sqlite_ids(tmp_path, storage):
    """AUTOINCREMENT keeps its counter in sqlite_sequence, which DELETE FROM leaves alone: the
    suite's truncate strategy must reset it, or ids would carry over from test to test."""
    from quiz_architectures.architectures import resolve
    from quiz_architectures.isolation import TestDatabase

    database = TestDatabase(resolve("transactional", ["isolation=truncate", f"storage={storage}"]), workdir=tmp_path)
    database.prepare()
    try:
        first_ids = []
        for _ in range(2):
            with database.isolated() as session:
                users = [User(username=name, email=f"{name}@example.com", hashed_password="-") for name in ("a", "b")]
                session.add_all(users)
                session.commit()
                first_ids.append(users[0].id)
                session.delete(users[1])
                session.commit()
        assert first_ids == [1, 1]
    finally:
        database.close()


def test_a_database_made_by_an_older_version_is_refused_at_start(tmp_path):
    import sqlite3

    settings = settings_for(tmp_path)
    build_server_app(settings, environ={})
    with sqlite3.connect(tmp_path / "quiz.db") as connection:
        connection.execute("DROP INDEX uq_responses_scored_attempt")
        connection.execute("ALTER TABLE responses DROP COLUMN scored")
    with pytest.raises(QuizError, match="table responses lacks scored, uq_responses_scored_attempt"):
        build_server_app(settings, environ={})
