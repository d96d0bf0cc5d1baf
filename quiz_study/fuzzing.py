"""Property-based fuzzing of the served quiz API with schemathesis, on loopback only.

`fuzz_api` runs one schemathesis process per `FuzzPass` (who calls, which operations) against a
server that is already running, and reads the requests back from schemathesis' NDJSON event
report: each recorded interaction is one request with its response, so `requests_sent` and
`server_errors` are counted from structured data, never from printed text. `served_quiz_api`
starts `python -m quiz_api` on a free loopback port with a fresh SQLite database;
`quiz_fuzz_passes` prepares that server (an admin session, target users, a small catalog) and
returns the anonymous and the admin pass; `fuzz_quiz_api` does both.

Requests counted are the test cases schemathesis sent and recorded (one request each). Its two
start-up probes are not counted, nor are the replays Hypothesis makes while shrinking a failing
case, so when a run has failures the count is a lower bound.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from quiz_study.errors import StudyError

SCHEMA_VERSION = 1
ALL_PHASES: tuple[str, ...] = ("examples", "coverage", "fuzzing", "stateful")
DEFAULT_TIMEOUT_S = 300.0
# Operations that end the caller's own session: fuzzed with the admin token they would cut every
# later request of the pass off at the authorization middleware. POST /login needs no token (the
# anonymous pass fuzzes it) and leaving it out lets any 401 in the admin pass mean "token lost".
SESSION_ENDING_OPERATIONS: tuple[str, ...] = ("POST /login", "POST /logout", "POST /logout-all")


@dataclass(frozen=True)
class FuzzPass:
    """One schemathesis run: the headers every request carries, the operations left out
    ("METHOD /path" as in the OpenAPI document) and path parameters pinned per operation
    (e.g. {"PATCH /users/{user_id}": {"user_id": 2}}, so an admin never edits itself)."""

    name: str
    headers: Mapping[str, str] = field(default_factory=dict)
    exclude_operations: tuple[str, ...] = ()
    path_parameters: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class PassResult:
    """What one pass sent and got back. `failures`: one line per failed check (the request that
    failed it); `errors`: problems of the run itself (unreachable server, schema errors)."""

    name: str
    requests_sent: int
    server_errors: int
    status_counts: dict[str, int]
    failures: list[str]
    errors: list[str]
    exit_code: int
    stop_reason: str | None
    duration_s: float
    report_path: str
    log_path: str


@dataclass(frozen=True)
class FuzzResult:
    """All passes of one fuzzing run; the totals are sums over `passes`."""

    seed: int
    max_examples: int
    base_url: str
    schemathesis_version: str
    requests_sent: int
    server_errors: int
    failures: list[str]
    errors: list[str]
    duration_s: float
    passes: list[PassResult]
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    def pass_named(self, name: str) -> PassResult:
        for result in self.passes:
            if result.name == name:
                return result
        raise KeyError(name)


def format_fuzz_result(result: FuzzResult) -> list[str]:
    """Human-readable summary lines (the caller decides where they go)."""
    lines = [
        f"schemathesis {result.schemathesis_version}, seed {result.seed}, max examples {result.max_examples}: "
        f"{result.requests_sent} requests, {result.server_errors} server errors, "
        f"{len(result.failures)} failed checks in {result.duration_s:.1f} s"
    ]
    for fuzz_pass in result.passes:
        statuses = ", ".join(f"{code}: {count}" for code, count in sorted(fuzz_pass.status_counts.items()))
        lines.append(f"  {fuzz_pass.name}: {fuzz_pass.requests_sent} requests ({statuses})")
    lines.extend(f"  failure: {line}" for line in result.failures)
    lines.extend(f"  error: {line}" for line in result.errors)
    return lines


# --- running schemathesis -----------------------------------------------------------------------


def require_loopback(base_url: str) -> None:
    """Refuse any target but a literal loopback address: the fuzzer must never leave the machine."""
    host = urlsplit(base_url).hostname or ""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise StudyError(f"refusing to fuzz {base_url!r}: only a loopback address (e.g. 127.0.0.1) may be fuzzed")


def schemathesis_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("schemathesis")
    except PackageNotFoundError as exc:
        raise StudyError("schemathesis is not installed (pip install schemathesis)") from exc


def format_config(fuzz_pass: FuzzPass) -> str:
    """The pass as a schemathesis.toml (headers stay out of the command line and its reports)."""
    quote = json.dumps  # a JSON string is a valid TOML basic string
    lines = []
    if fuzz_pass.headers:
        lines.append("[headers]")
        lines.extend(f"{quote(name)} = {quote(value)}" for name, value in fuzz_pass.headers.items())
    for operation, parameters in fuzz_pass.path_parameters.items():
        pinned = ", ".join(f"{quote('path.' + name)} = {quote(value)}" for name, value in parameters.items())
        lines += ["", "[[operations]]", f"include-name = {quote(operation)}", f"parameters = {{ {pinned} }}"]
    return "\n".join(lines) + "\n"


def schemathesis_command(
    *,
    base_url: str,
    config_path: Path,
    report_path: Path,
    seed: int,
    max_examples: int,
    phases: tuple[str, ...],
    exclude_operations: tuple[str, ...],
) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(config_path),
        "--no-color",
        "run",
        f"{base_url}/openapi.json",
        "--checks",
        "not_a_server_error",
        "--seed",
        str(seed),
        "--max-examples",
        str(max_examples),
        "--phases",
        ",".join(phases),
        # One worker and no example database: the same seed sends the same requests.
        "--workers",
        "1",
        "--generation-database",
        "none",
        "--request-timeout",
        "30",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(report_path),
    ]
    for operation in exclude_operations:
        command += ["--exclude-name", operation]
    return command


def read_ndjson_report(path: Path) -> dict[str, Any]:
    """Count the requests, responses by status, failed checks and errors of an NDJSON report."""
    statuses: Counter[str] = Counter()
    failures: list[str] = []
    errors: list[str] = []
    requests_sent = server_errors = 0
    stop_reason = None
    with path.open(encoding="utf-8") as events:
        for line in events:
            if not line.strip():
                continue
            event_type, event = next(iter(json.loads(line).items()))
            if event_type == "ScenarioFinished":
                recorder = event.get("recorder") or {}
                interactions = recorder.get("interactions") or {}
                for interaction in interactions.values():
                    requests_sent += 1
                    response = interaction.get("response")
                    status = response.get("status_code") if response else None
                    statuses[str(status) if status is not None else "no response"] += 1
                    if status is not None and status >= 500:
                        server_errors += 1
                for case_id, checks in (recorder.get("checks") or {}).items():
                    for check in checks:
                        if check.get("status") == "failure":
                            failures.append(_failure_line(check, interactions.get(case_id)))
            elif event_type == "EngineFinished":
                stop_reason = event.get("stop_reason")
            elif event_type in ("NonFatalError", "FatalError", "Interrupted"):
                errors.append(_error_line(event_type, event))
    return {
        "requests_sent": requests_sent,
        "server_errors": server_errors,
        "status_counts": dict(statuses),
        "failures": failures,
        "errors": errors,
        "stop_reason": stop_reason,
    }


def _failure_line(check: Mapping[str, Any], interaction: Mapping[str, Any] | None) -> str:
    failure = (check.get("failure_info") or {}).get("failure") or {}
    line = f"{failure.get('code', '?')} {failure.get('title', check.get('name', 'check failed'))}: {failure.get('operation', '?')}"
    if interaction:
        request, response = interaction.get("request") or {}, interaction.get("response") or {}
        line += f" <- {request.get('method')} {request.get('uri')} -> {response.get('status_code', 'no response')}"
    return line


def _error_line(event_type: str, event: Mapping[str, Any]) -> str:
    exception = event.get("value") or event.get("exception") or {}
    if isinstance(exception, Mapping):
        message = f"{exception.get('type', 'error')}: {exception.get('message', '')}"
    else:
        message = str(exception)
    return f"{event_type} {event.get('label', '')}: {message}"


def run_pass(
    fuzz_pass: FuzzPass,
    *,
    base_url: str,
    seed: int,
    max_examples: int,
    workdir: Path,
    phases: tuple[str, ...] = ALL_PHASES,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> PassResult:
    """Run schemathesis once for `fuzz_pass`; it stops by itself, or is killed after `timeout_s`."""
    require_loopback(base_url)
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / f"{fuzz_pass.name}.toml"
    report_path = workdir / f"{fuzz_pass.name}.ndjson"
    log_path = workdir / f"{fuzz_pass.name}.log"
    config_path.write_text(format_config(fuzz_pass), encoding="utf-8")
    report_path.unlink(missing_ok=True)
    command = schemathesis_command(
        base_url=base_url,
        config_path=config_path,
        report_path=report_path,
        seed=seed,
        max_examples=max_examples,
        phases=phases,
        exclude_operations=fuzz_pass.exclude_operations,
    )
    # An explicit environment: no hooks module or settings of the caller's shell leak in.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEMATHESIS_")}
    env.update({"NO_COLOR": "1", "PYTHONUNBUFFERED": "1"})
    started = time.perf_counter()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            exit_code = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise StudyError(
                f"fuzz pass {fuzz_pass.name!r} did not finish within {timeout_s:.0f} s; see {log_path}"
            ) from None
    duration_s = time.perf_counter() - started
    if not report_path.exists():
        raise StudyError(f"fuzz pass {fuzz_pass.name!r} wrote no report (exit code {exit_code}); see {log_path}")
    counts = read_ndjson_report(report_path)
    # Exit code 1 means "checks failed"; anything else is schemathesis itself failing.
    if exit_code not in (0, 1) or counts["stop_reason"] is None:
        raise StudyError(f"schemathesis failed in pass {fuzz_pass.name!r} (exit code {exit_code}); see {log_path}")
    return PassResult(
        name=fuzz_pass.name,
        exit_code=exit_code,
        duration_s=duration_s,
        report_path=str(report_path),
        log_path=str(log_path),
        **counts,
    )


def fuzz_api(
    *,
    base_url: str,
    seed: int,
    max_examples: int,
    workdir: Path,
    passes: tuple[FuzzPass, ...] = (FuzzPass("anonymous"),),
    phases: tuple[str, ...] = ALL_PHASES,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> FuzzResult:
    """Fuzz the API served at `base_url` (loopback only) with every pass in turn.

    Parameters
    ----------
    base_url : ``http://127.0.0.1:PORT``; the OpenAPI document is read from ``/openapi.json``.
    seed : Hypothesis seed; with one worker the same seed sends the same requests to the same state.
    max_examples : test cases per operation and phase (the coverage phase adds its own boundary cases).
    workdir : where the per-pass config, NDJSON report and log are written.
    timeout_s : time budget of the whole run; a pass still running then is killed (StudyError).
    """
    require_loopback(base_url)
    if max_examples < 1:
        raise StudyError("max_examples must be at least 1")
    version = schemathesis_version()
    deadline = time.monotonic() + timeout_s
    results = []
    for fuzz_pass in passes:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise StudyError(f"fuzzing ran out of its {timeout_s:.0f} s before pass {fuzz_pass.name!r}")
        results.append(
            run_pass(
                fuzz_pass,
                base_url=base_url,
                seed=seed,
                max_examples=max_examples,
                workdir=workdir,
                phases=phases,
                timeout_s=remaining,
            )
        )
    return FuzzResult(
        seed=seed,
        max_examples=max_examples,
        base_url=base_url,
        schemathesis_version=version,
        requests_sent=sum(r.requests_sent for r in results),
        server_errors=sum(r.server_errors for r in results),
        failures=[f"[{r.name}] {line}" for r in results for line in r.failures],
        errors=[f"[{r.name}] {line}" for r in results for line in r.errors],
        duration_s=sum(r.duration_s for r in results),
        passes=results,
    )


# --- the quiz API as the target -------------------------------------------------------------------


@dataclass(frozen=True)
class ServedApi:
    """A quiz API server process on loopback, and the log its output goes to."""

    base_url: str
    log_path: Path
    admin_username: str
    admin_password: str

    def traceback_count(self) -> int:
        """Unhandled exceptions the server logged (uvicorn prints a traceback for each)."""
        return self.log_path.read_text(encoding="utf-8", errors="replace").count("Traceback (most recent call last)")


def free_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def served_quiz_api(
    *,
    workdir: Path,
    database_url: str | None = None,
    admin_username: str = "fuzz_admin",
    admin_password: str = "fuzz-admin-password",
    startup_timeout_s: float = 30.0,
    environment: Mapping[str, str] | None = None,
) -> Iterator[ServedApi]:
    """Run `python -m quiz_api` on 127.0.0.1 with a first admin and cheap password hashing;
    stop it on exit. The database is `database_url` (an empty one), else a fresh SQLite file in
    `workdir`.

    The server runs in development mode (the cheap `test` hash is refused in production) with a
    fresh random key; `environment` adds or overrides variables (QUIZ_ENV, the login throttle's
    QUIZ_LOGIN_FAILURES_PER_* ...)."""
    workdir.mkdir(parents=True, exist_ok=True)
    if database_url is None:
        database = workdir / "fuzz.db"
        database.unlink(missing_ok=True)
        database_url = f"sqlite:///{database}"
    port = free_loopback_port()
    # Only QUIZ_* variables given here reach the server, never the caller's shell settings.
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUIZ_")}
    env.update(
        {
            "DATABASE_URL": database_url,
            "QUIZ_ADMIN_USERNAME": admin_username,
            "QUIZ_ADMIN_PASSWORD": admin_password,
            "QUIZ_PASSWORD_HASH": "test",
            "QUIZ_ENV": "development",
            "QUIZ_SECRET_KEY": secrets.token_urlsafe(32),
            **(environment or {}),
        }
    )
    served = ServedApi(f"http://127.0.0.1:{port}", workdir / "server.log", admin_username, admin_password)
    with served.log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "quiz_api", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_healthy(served, process, startup_timeout_s)
        yield served
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_healthy(served: ServedApi, process: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StudyError(f"the quiz server exited with code {process.returncode}; see {served.log_path}")
        try:
            if httpx.get(f"{served.base_url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise StudyError(f"the quiz server did not answer within {timeout_s:.0f} s; see {served.log_path}")


def quiz_fuzz_passes(*, base_url: str, admin_username: str, admin_password: str) -> tuple[FuzzPass, ...]:
    """Prepare the served quiz API and return its two passes: anonymous, and admin.

    The admin pass carries an admin bearer token so protected bodies get past the authorization
    middleware. Small ids name real rows (a subject > topic > subtopic > question and a question
    set are created first), so generated ids also reach the handlers' deeper paths. PATCH and
    DELETE /users/{user_id} are pinned to two student accounts made for them, and the operations
    that end the session are left out: the token stays valid for the whole pass.
    """
    require_loopback(base_url)
    with httpx.Client(base_url=base_url, timeout=30) as api:
        login = api.post("/login", json={"username": admin_username, "password": admin_password})
        if login.status_code != 200:
            raise StudyError(
                f"cannot log in as {admin_username!r} to prepare fuzzing: {login.status_code} {login.text}"
            )
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}

        def create(path: str, body: dict[str, Any]) -> int:
            response = api.post(path, json=body, headers=headers)
            if response.status_code != 201:
                raise StudyError(f"cannot prepare fuzzing: POST {path} -> {response.status_code} {response.text}")
            return response.json()["id"]

        patch_target, delete_target = (
            create("/users", {"username": name, "email": f"{name}@example.com", "password": "fuzz-target-password"})
            for name in ("fuzz_patch_target", "fuzz_delete_target")
        )
        subject = create("/subjects", {"name": "Fuzzing", "description": "rows for generated ids to find"})
        topic = create("/topics", {"subject_id": subject, "name": "Targets"})
        subtopic = create("/subtopics", {"topic_id": topic, "name": "Questions"})
        question = create(
            "/questions",
            {"text": "2 + 2?", "subtopic_id": subtopic, "options": [{"text": "4", "is_correct": True}, {"text": "5"}]},
        )
        create("/question-sets", {"name": "Fuzz set", "question_ids": [question]})
    return (
        FuzzPass("anonymous"),
        FuzzPass(
            "admin",
            headers=headers,
            exclude_operations=SESSION_ENDING_OPERATIONS,
            path_parameters={
                "PATCH /users/{user_id}": {"user_id": patch_target},
                "DELETE /users/{user_id}": {"user_id": delete_target},
            },
        ),
    )


def fuzz_quiz_api(
    *,
    served: ServedApi,
    seed: int,
    max_examples: int,
    workdir: Path,
    phases: tuple[str, ...] = ALL_PHASES,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> FuzzResult:
    """Prepare the served quiz API and fuzz it anonymously and as an admin."""
    passes = quiz_fuzz_passes(
        base_url=served.base_url, admin_username=served.admin_username, admin_password=served.admin_password
    )
    return fuzz_api(
        base_url=served.base_url,
        seed=seed,
        max_examples=max_examples,
        workdir=workdir,
        passes=passes,
        phases=phases,
        timeout_s=timeout_s,
    )
