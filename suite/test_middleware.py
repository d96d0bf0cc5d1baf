"""The blacklist and authorization middlewares: public vs protected paths and role checks."""

import pytest

pytestmark = pytest.mark.middleware


@pytest.mark.parametrize(
    "path", ["/health", "/time-periods", "/questions", "/question-sets", "/subjects", "/leaderboard", "/openapi.json"]
)
def test_public_read_needs_no_token(client, path):
    assert client.get(path).status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/users/me"),
        ("GET", "/users"),
        ("POST", "/logout"),
        ("POST", "/logout-all"),
        ("GET", "/scores/me"),
        ("POST", "/responses"),
        ("POST", "/questions"),
        ("DELETE", "/subjects/1"),
        ("GET", "/no-such-path"),
    ],
)
def test_protected_path_without_token_is_401(client, method, path):
    response = client.request(method, path)
    assert response.status_code == 401
    assert response.json() == {"detail": "not authenticated"}
    assert response.headers["www-authenticate"] == "Bearer"


def test_unknown_path_with_token_is_404(client, student_headers):
    assert client.get("/no-such-path", headers=student_headers).status_code == 404


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/users"), ("POST", "/users"), ("GET", "/users/1"), ("DELETE", "/users/1")]
)
def test_student_on_admin_path_is_403(client, student_headers, method, path):
    response = client.request(method, path, headers=student_headers)
    assert response.status_code == 403
    assert response.json() == {"detail": "requires role admin"}


def test_editor_on_admin_path_is_403(client, editor_headers):
    assert client.get("/users", headers=editor_headers).status_code == 403


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/subjects"), ("POST", "/questions"), ("PATCH", "/question-sets/1"), ("DELETE", "/topics/1")],
)
def test_student_cannot_write_content(client, student_headers, method, path):
    response = client.request(method, path, headers=student_headers, json={})
    assert response.status_code == 403
    assert response.json() == {"detail": "requires role admin or editor"}


def test_editor_can_write_content(client, editor_headers):
    assert client.post("/subjects", json={"name": "History"}, headers=editor_headers).status_code == 201


def test_admin_can_write_content_and_manage_users(client, admin_headers):
    assert client.post("/subjects", json={"name": "Art"}, headers=admin_headers).status_code == 201
    assert client.get("/users", headers=admin_headers).status_code == 200


def test_revoked_token_rejected_on_public_path(client, student_headers):
    client.post("/logout", headers=student_headers)
    response = client.get("/questions", headers=student_headers)
    assert response.status_code == 401
    assert response.json() == {"detail": "token has been revoked"}


def test_bad_token_rejected_even_on_public_path(client):
    assert client.get("/questions", headers={"Authorization": "Bearer not-a-jwt"}).status_code == 401


def test_role_change_invalidates_old_token(client, make_user, login, admin_headers):
    user = make_user("switcher", role="editor")
    editor = login("switcher")
    assert client.patch(f"/users/{user.id}", json={"role": "student"}, headers=admin_headers).status_code == 200
    assert client.post("/subjects", json={"name": "Geo"}, headers=editor).status_code == 401
    assert client.post("/subjects", json={"name": "Geo"}, headers=login("switcher")).status_code == 403


def test_deactivated_user_token_rejected(client, make_user, login, admin_headers):
    user = make_user("leaver")
    headers = login("leaver")
    client.patch(f"/users/{user.id}", json={"is_active": False}, headers=admin_headers)
    assert client.get("/users/me", headers=headers).status_code == 401
