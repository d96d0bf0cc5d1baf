"""Issue 7, hostile input: schemathesis against the quiz API served as a real process on loopback.

One fixed seed, so CI sends the same requests every run; the request count is written to
`fuzz_result.json` in the test's tmp dir, printed, and reported as the JUnit test-suite property
`fuzz_requests_sent` (with `fuzz_server_errors` and `fuzz_seed`).
"""

from __future__ import annotations

import json

import pytest

from quiz_study.fuzzing import (
    FuzzPass,
    format_config,
    format_fuzz_result,
    fuzz_quiz_api,
    read_ndjson_report,
    require_loopback,
    served_quiz_api,
)
from suitebench.errors import BenchError

SEED = 20240607
# Per operation and phase. The coverage phase adds its own boundary cases (most of the requests), so this sends ~2,700
# requests (about 25 s of CPU), well over the 1,000 the issue asks for; 10 examples add only ~150 requests for ~10 CPU-s more.
MAX_EXAMPLES = 4
MIN_REQUESTS = 1000
TIMEOUT_S = 240.0


@pytest.fixture(scope="module")
def fuzz_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("fuzz")
    with served_quiz_api(workdir=workdir) as served:
        result = fuzz_quiz_api(
            served=served, seed=SEED, max_examples=MAX_EXAMPLES, workdir=workdir, timeout_s=TIMEOUT_S
        )
        tracebacks = served.traceback_count()
    (workdir / "fuzz_result.json").write_text(result.to_json(), encoding="utf-8")
    return result, tracebacks


def test_fuzzing_the_served_api_finds_no_server_error(fuzz_run, record_testsuite_property):
    result, tracebacks = fuzz_run
    record_testsuite_property("fuzz_seed", result.seed)
    record_testsuite_property("fuzz_requests_sent", result.requests_sent)
    record_testsuite_property("fuzz_server_errors", result.server_errors)
    print("\n".join(format_fuzz_result(result)))
    assert result.errors == []
    assert all("no response" not in p.status_counts for p in result.passes)
    assert result.requests_sent >= MIN_REQUESTS
    assert (result.server_errors, result.failures) == (0, [])
    assert tracebacks == 0


def test_admin_pass_keeps_its_session_and_gets_past_authorization(fuzz_run):
    result, _ = fuzz_run
    admin = result.pass_named("admin")
    # POST /login is not in the admin pass, so any 401 would mean the token was lost mid-run.
    assert "401" not in admin.status_counts
    assert admin.status_counts.get("200", 0) + admin.status_counts.get("201", 0) > 100
    assert all(p.stop_reason == "completed" for p in result.passes)


@pytest.mark.slow
def test_fuzzing_a_postgres_backed_server_finds_no_server_error(tmp_path):
    """PostgreSQL is stricter than SQLite (32-bit INTEGER, no NUL in text): fuzz it there too."""
    from quiz_architectures import pg

    try:
        pg.find_binaries()
    except BenchError as exc:
        pytest.skip(str(exc))
    with pg.postgres_server() as admin_url, served_quiz_api(workdir=tmp_path, database_url=admin_url) as served:
        result = fuzz_quiz_api(
            served=served, seed=SEED, max_examples=MAX_EXAMPLES, workdir=tmp_path, timeout_s=2 * TIMEOUT_S
        )
        tracebacks = served.traceback_count()
    assert result.requests_sent >= MIN_REQUESTS and result.errors == []
    assert (result.server_errors, result.failures, tracebacks) == (0, [], 0)


@pytest.mark.parametrize(
    "url", ["http://10.0.0.1:8000", "http://example.com", "http://localhost:8000", "http://0.0.0.0:80"]
)
def test_only_loopback_addresses_are_fuzzed(url):
    with pytest.raises(BenchError, match="loopback"):
        require_loopback(url)


def test_loopback_addresses_are_accepted():
    require_loopback("http://127.0.0.1:8000")
    require_loopback("http://[::1]:8000")


def test_pass_config_carries_headers_and_pinned_path_parameters():
    text = format_config(
        FuzzPass(
            "admin", headers={"Authorization": "Bearer t"}, path_parameters={"PATCH /users/{user_id}": {"user_id": 2}}
        )
    )
    assert text == (
        '[headers]\n"Authorization" = "Bearer t"\n\n[[operations]]\n'
        'include-name = "PATCH /users/{user_id}"\nparameters = { "path.user_id" = 2 }\n'
    )


def test_ndjson_report_counts_requests_statuses_and_failures(tmp_path):
    def finished(interactions, checks):
        return {"ScenarioFinished": {"recorder": {"label": "GET /x", "interactions": interactions, "checks": checks}}}

    ok = {"request": {"method": "GET", "uri": "http://127.0.0.1:1/x"}, "response": {"status_code": 200}}
    boom = {"request": {"method": "GET", "uri": "http://127.0.0.1:1/x/9"}, "response": {"status_code": 500}}
    failure = {
        "name": "not_a_server_error",
        "status": "failure",
        "failure_info": {"failure": {"code": "ST101", "title": "Server error", "operation": "GET /x/{id}"}},
    }
    events = [
        finished({"a": ok, "b": ok}, {"a": [{"name": "not_a_server_error", "status": "success"}]}),
        finished({"c": boom, "d": {"request": {"method": "GET", "uri": "u"}, "response": None}}, {"c": [failure]}),
        {"EngineFinished": {"stop_reason": "completed"}},
    ]
    report = tmp_path / "r.ndjson"
    report.write_text("\n".join(json.dumps(e) for e in events) + "\n", encoding="utf-8")

    counts = read_ndjson_report(report)

    assert counts["requests_sent"] == 4 and counts["server_errors"] == 1
    assert counts["status_counts"] == {"200": 2, "500": 1, "no response": 1}
    assert counts["failures"] == ["ST101 Server error: GET /x/{id} <- GET http://127.0.0.1:1/x/9 -> 500"]
    assert counts["stop_reason"] == "completed" and counts["errors"] == []
