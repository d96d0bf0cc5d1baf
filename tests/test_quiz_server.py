"""The quiz API runs as a real server process (python -m quiz_api) on loopback."""

import os
import socket
import subprocess
import sys
import time

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'served.db'}",
        "QUIZ_ADMIN_USERNAME": "root_admin",
        "QUIZ_ADMIN_PASSWORD": "served-admin-password",
        "QUIZ_PASSWORD_HASH": "test",
        "QUIZ_ENV": "development",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "quiz_api", "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    else:
        process.kill()
        pytest.fail(f"server did not start: {process.stdout.read().decode()}")
    yield base
    process.terminate()
    process.wait(timeout=10)


def test_served_api_seeds_reference_data_and_serves_openapi(server):
    assert [p["code"] for p in httpx.get(f"{server}/time-periods").json()] == [
        "daily",
        "weekly",
        "monthly",
        "yearly",
        "all_time",
    ]
    spec = httpx.get(f"{server}/openapi.json").json()
    assert {"/login", "/logout", "/logout-all", "/leaderboard", "/responses"} <= set(spec["paths"])


def test_served_api_login_protect_logout(server):
    token = httpx.post(f"{server}/login", json={"username": "root_admin", "password": "served-admin-password"}).json()[
        "access_token"
    ]
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{server}/users", headers=headers).status_code == 200
    assert httpx.post(f"{server}/logout", headers=headers).status_code == 200
    assert httpx.get(f"{server}/users", headers=headers).status_code == 401
    assert httpx.get(f"{server}/users", headers={"Authorization": "Bearer junk"}).json() == {
        "detail": "malformed token"
    }


def test_bad_database_url_is_one_clear_error(tmp_path):
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/missing-dir/x.db", "QUIZ_ENV": "development"}
    result = subprocess.run(
        [sys.executable, "-m", "quiz_api"], check=False, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: cannot prepare the database")
    assert "Traceback" not in result.stderr


def test_served_api_refuses_an_oversized_body_and_keeps_serving(server):
    chunks = (b"x" * 65536 for _ in range(64))  # chunked: no Content-Length to trust
    for content in (b"x" * (1024 * 1024), chunks):
        response = httpx.post(f"{server}/login", content=content, headers={"Content-Type": "application/json"})
        assert response.status_code == 413
        assert response.json() == {"detail": "request body too large: at most 131072 bytes"}
    assert httpx.get(f"{server}/health").status_code == 200
