"""Issue 15: the served quiz API under concurrent clients, on SQLite and on PostgreSQL.

Sixteen clients, each on its own connection, answer sixteen new questions for one student at the
same moment (a barrier releases them together): every request must be answered within the
timeout, none with a 5xx, the points must add up exactly in every period's score, and the server
must still answer /health afterwards. Before the fix some answers got a 500 (two first answers in
a new period both inserted the score row) and the rest hung behind blocking database calls on the
event loop, /health included.

A bounded load test mixes logins, reads and answers (2,000 requests at concurrency 16) and prints
the p50 / p99 latency, which it also records as JUnit properties.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from quiz_study.fuzzing import ServedApi, served_quiz_api

CLIENTS = 16
REQUEST_TIMEOUT_S = 20.0
POINTS = {"easy": 1, "medium": 2, "hard": 3}
DIFFICULTIES = tuple(POINTS)
STUDENT_PASSWORD = "student-password-16"
PERIODS = ("daily", "weekly", "monthly", "yearly", "all_time")


@dataclass(frozen=True)
class Question:
    id: int
    difficulty: str
    correct_option_id: int
    wrong_option_id: int


@dataclass(frozen=True)
class Quiz:
    """What the prepared server holds: students who can log in, and the questions they answer."""

    students: tuple[str, ...]
    questions: tuple[Question, ...]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def log_in(api: httpx.Client, username: str, password: str) -> dict[str, str]:
    response = api.post("/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return bearer(response.json()["access_token"])


def created_id(response: httpx.Response) -> int:
    assert response.status_code == 201, response.text
    return response.json()["id"]


def prepare_quiz(served: ServedApi, *, students: int, questions: int) -> Quiz:
    """Students and a catalog of questions (difficulties in turn), made through the admin API."""
    with httpx.Client(base_url=served.base_url, timeout=REQUEST_TIMEOUT_S) as api:
        admin = log_in(api, served.admin_username, served.admin_password)
        names = tuple(f"student_{n:02d}" for n in range(students))
        for name in names:
            body = {"username": name, "email": f"{name}@example.com", "password": STUDENT_PASSWORD}
            created_id(api.post("/users", json=body, headers=admin))
        subject = created_id(api.post("/subjects", json={"name": "Load"}, headers=admin))
        topic = created_id(api.post("/topics", json={"subject_id": subject, "name": "Arithmetic"}, headers=admin))
        subtopic = created_id(api.post("/subtopics", json={"topic_id": topic, "name": "Sums"}, headers=admin))
        made = []
        for number in range(questions):
            difficulty = DIFFICULTIES[number % len(DIFFICULTIES)]
            body = {
                "text": f"{number} + 1?",
                "subtopic_id": subtopic,
                "difficulty": difficulty,
                "options": [{"text": str(number + 1), "is_correct": True}, {"text": str(number)}],
            }
            response = api.post("/questions", json=body, headers=admin)
            assert response.status_code == 201, response.text
            right, wrong = response.json()["options"]
            made.append(Question(response.json()["id"], difficulty, right["id"], wrong["id"]))
    return Quiz(names, tuple(made))


def all_at_once(calls: list[Callable[[httpx.Client], httpx.Response]], *, base_url: str) -> list[httpx.Response | str]:
    """Run each call on its own client (its own connection), released together by a barrier.
    A call that gets no answer within the timeout is returned as the error's name."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[httpx.Client], httpx.Response]) -> httpx.Response | str:
        with httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT_S) as api:
            api.get("/health")  # open the connection before the barrier
            barrier.wait()
            try:
                return call(api)
            except httpx.TransportError as exc:
                return type(exc).__name__

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def outcome(result: httpx.Response | str) -> str:
    return result if isinstance(result, str) else str(result.status_code)


def check_concurrent_answers(served: ServedApi, database_url: str) -> None:
    quiz = prepare_quiz(served, students=1, questions=CLIENTS)
    with httpx.Client(base_url=served.base_url, timeout=REQUEST_TIMEOUT_S) as api:
        student = log_in(api, quiz.students[0], STUDENT_PASSWORD)
    # Every third answer is wrong: the total then depends on which answers scored.
    picks = [(q, q.wrong_option_id if n % 3 == 2 else q.correct_option_id) for n, q in enumerate(quiz.questions)]
    expected_points = sum(POINTS[q.difficulty] for q, option in picks if option == q.correct_option_id)

    def answering(question: Question, option: int) -> Callable[[httpx.Client], httpx.Response]:
        body = {"question_id": question.id, "answer_option_id": option}
        return lambda api: api.post("/responses", json=body, headers=student)

    started = time.perf_counter()
    first = all_at_once([answering(q, o) for q, o in picks], base_url=served.base_url)
    # The same answers again, all at once: recorded, but no attempt after the first scores.
    again = all_at_once([answering(q, q.correct_option_id) for q, _ in picks], base_url=served.base_url)
    elapsed_s = time.perf_counter() - started

    assert Counter(map(outcome, first)) == {"201": CLIENTS}, [r if isinstance(r, str) else r.text for r in first]
    assert Counter(map(outcome, again)) == {"201": CLIENTS}, [r if isinstance(r, str) else r.text for r in again]
    assert sum(r.json()["points"] for r in first) == expected_points
    assert sum(r.json()["points"] for r in again) == 0
    with httpx.Client(base_url=served.base_url, timeout=REQUEST_TIMEOUT_S) as api:
        assert api.get("/health").status_code == 200
        scores = {s["time_period"]: s for s in api.get("/scores/me", headers=student).json()}
        assert {p: (s["points"], s["answered"]) for p, s in scores.items()} == {
            p: (expected_points, CLIENTS) for p in PERIODS
        }
        board = api.get("/leaderboard", params={"time_period": "all_time"}).json()["entries"]
        assert [(e["username"], e["points"]) for e in board] == [(quiz.students[0], expected_points)]

    # Logout-all from every client with the one token: each request that got past the token check
    # must have moved the token version on by exactly one (no lost update).
    ended = all_at_once([lambda api: api.post("/logout-all", headers=student)] * CLIENTS, base_url=served.base_url)
    statuses = Counter(map(outcome, ended))
    assert set(statuses) <= {"200", "401"} and statuses["200"] >= 1, statuses
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            version = connection.execute(
                text("SELECT token_version FROM users WHERE username = :name"), {"name": quiz.students[0]}
            ).scalar_one()
    finally:
        engine.dispose()
    assert version == statuses["200"]
    with httpx.Client(base_url=served.base_url, timeout=REQUEST_TIMEOUT_S) as api:
        assert api.get("/health").status_code == 200
    assert served.traceback_count() == 0
    print(f"{2 * CLIENTS} concurrent answers and {CLIENTS} logout-alls in {elapsed_s:.2f} s")


@pytest.fixture
def postgres_database_url(postgres_admin_url: str) -> Iterator[str]:
    from quiz_architectures import pg

    name = f"quiz_concurrency_{os.getpid()}"
    admin = pg.admin_engine(postgres_admin_url)
    pg.drop_database(admin, name)
    pg.create_database(admin, name)
    try:
        yield pg.database_url(postgres_admin_url, name)
    finally:
        pg.drop_database(admin, name)
        admin.dispose()


def test_concurrent_first_answers_add_up_on_sqlite(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'concurrency.db'}"
    with served_quiz_api(workdir=tmp_path, database_url=database_url) as served:
        check_concurrent_answers(served, database_url)


def test_concurrent_first_answers_add_up_on_postgres(tmp_path: Path, postgres_database_url: str) -> None:
    with served_quiz_api(workdir=tmp_path, database_url=postgres_database_url) as served:
        check_concurrent_answers(served, postgres_database_url)


# --- bounded load -----------------------------------------------------------------------------

# 1,000 mixed requests keep p50/p99 stable to a few ms here; --run-slow sends the 2,000.
LOAD_REQUESTS = 1000
LOAD_REQUESTS_SLOW = 2000
LOAD_CONCURRENCY = 16
LOAD_STUDENTS = 8
LOAD_QUESTIONS = 40
LOAD_BUDGET_S = 60.0


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def test_bounded_load_mixing_logins_reads_and_answers(tmp_path: Path, record_property, pytestconfig) -> None:
    total_requests = LOAD_REQUESTS_SLOW if pytestconfig.getoption("--run-slow") else LOAD_REQUESTS
    with served_quiz_api(workdir=tmp_path) as served:
        quiz = prepare_quiz(served, students=LOAD_STUDENTS, questions=LOAD_QUESTIONS)
        tokens: dict[str, dict[str, str]] = {}
        with httpx.Client(base_url=served.base_url, timeout=REQUEST_TIMEOUT_S) as api:
            for name in quiz.students:
                tokens[name] = log_in(api, name, STUDENT_PASSWORD)

        # Request n is decided by n alone: a login, a read or an answer, in a fixed mix.
        def request(api: httpx.Client, n: int) -> httpx.Response:
            student = quiz.students[n % LOAD_STUDENTS]
            question = quiz.questions[(n // LOAD_STUDENTS) % LOAD_QUESTIONS]
            kind = n % 10
            if kind == 0:
                return api.post("/login", json={"username": student, "password": STUDENT_PASSWORD})
            if kind in (1, 2, 3):
                body = {"question_id": question.id, "answer_option_id": question.correct_option_id}
                return api.post("/responses", json=body, headers=tokens[student])
            if kind == 4:
                return api.get("/scores/me", headers=tokens[student])
            if kind == 5:
                return api.get("/leaderboard", params={"time_period": "weekly"})
            if kind in (6, 7):
                return api.get("/questions", params={"limit": 20, "offset": (n % 2) * 20})
            if kind == 8:
                return api.get(f"/questions/{question.id}")
            return api.get("/subjects", params={"limit": 10})

        next_request = iter(range(total_requests))
        lock = threading.Lock()
        deadline = time.monotonic() + LOAD_BUDGET_S
        latencies_s: list[float] = []
        statuses: Counter[str] = Counter()

        def worker() -> None:
            with httpx.Client(base_url=served.base_url, timeout=REQUEST_TIMEOUT_S) as api:
                while time.monotonic() < deadline:
                    with lock:
                        n = next(next_request, None)
                    if n is None:
                        return
                    started = time.perf_counter()
                    try:
                        status = str(request(api, n).status_code)
                    except httpx.TransportError as exc:
                        status = type(exc).__name__
                    with lock:
                        latencies_s.append(time.perf_counter() - started)
                        statuses[status] += 1

        started = time.perf_counter()
        threads = [threading.Thread(target=worker) for _ in range(LOAD_CONCURRENCY)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall_s = time.perf_counter() - started
        with httpx.Client(base_url=served.base_url, timeout=REQUEST_TIMEOUT_S) as api:
            healthy = api.get("/health").status_code == 200
        tracebacks = served.traceback_count()

    p50_ms, p99_ms = 1000 * statistics.median(latencies_s), 1000 * percentile(latencies_s, 0.99)
    summary = (
        f"{len(latencies_s)} requests at concurrency {LOAD_CONCURRENCY} in {wall_s:.1f} s "
        f"({len(latencies_s) / wall_s:.0f}/s): p50 {p50_ms:.1f} ms, p99 {p99_ms:.1f} ms; statuses {dict(statuses)}"
    )
    print(summary)
    for name, value in [
        ("load_requests", len(latencies_s)),
        ("load_p50_ms", round(p50_ms, 2)),
        ("load_p99_ms", round(p99_ms, 2)),
        ("load_wall_s", round(wall_s, 2)),
    ]:
        record_property(name, value)
    assert len(latencies_s) == total_requests, f"stopped at the {LOAD_BUDGET_S:.0f} s budget: {summary}"
    assert set(statuses) <= {"200", "201"}, summary
    assert healthy and tracebacks == 0
