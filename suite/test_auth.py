"""Authentication endpoints (the seed's Task 4): login, logout, logout-all, expiry, blacklisting."""

from datetime import timedelta

import pytest

from quiz_api.tokens import create_access_token

pytestmark = pytest.mark.auth


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_login_returns_bearer_token(client, make_user):
    make_user("alice")
    response = client.post("/login", json={"username": "alice", "password": "correct-horse-battery"})
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 30 * 60
    assert body["access_token"].count(".") == 2


def test_login_wrong_password_is_401(client, make_user):
    make_user("alice")
    response = client.post("/login", json={"username": "alice", "password": "not-the-password"})
    assert response.status_code == 401
    assert response.json() == {"detail": "incorrect username or password"}


def test_login_unknown_user_is_401_with_same_message(client):
    response = client.post("/login", json={"username": "nobody", "password": "whatever-123"})
    assert response.status_code == 401
    assert response.json() == {"detail": "incorrect username or password"}


def test_login_inactive_user_is_401(client, make_user):
    make_user("dormant", active=False)
    assert client.post("/login", json={"username": "dormant", "password": "correct-horse-battery"}).status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"username": "alice"},
        {"password": "x"},
        {"username": 5, "password": []},
        {"username": "a", "password": "b", "extra": 1},
    ],
    ids=["empty", "no-password", "no-username", "wrong-types", "unknown-field"],
)
def test_login_invalid_body_is_422(client, body):
    response = client.post("/login", json=body)
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], list)


def test_login_non_json_body_is_422(client):
    response = client.post("/login", content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "json_invalid"


def test_login_undecodable_body_is_400_json(client):
    response = client.post("/login", content=b"\xff\xfe not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert "detail" in response.json()


def test_logout_revokes_presented_token(client, make_user, login):
    make_user("bob")
    headers = login("bob")
    assert client.post("/logout", headers=headers).json() == {"detail": "logged out"}
    response = client.get("/users/me", headers=headers)
    assert response.status_code == 401
    assert response.json()["detail"] == "token has been revoked"


def test_logout_twice_is_401(client, make_user, login):
    make_user("bob")
    headers = login("bob")
    assert client.post("/logout", headers=headers).status_code == 200
    assert client.post("/logout", headers=headers).status_code == 401


def test_logout_keeps_other_sessions(client, make_user, login):
    make_user("bob")
    first, second = login("bob"), login("bob")
    client.post("/logout", headers=first)
    assert client.get("/users/me", headers=second).status_code == 200


def test_logout_all_revokes_every_token_of_the_user(client, make_user, login):
    make_user("carol")
    make_user("dave")
    first, second, other_user = login("carol"), login("carol"), login("dave")
    assert client.post("/logout-all", headers=first).status_code == 200
    for headers in (first, second):
        response = client.get("/users/me", headers=headers)
        assert response.status_code == 401
        assert response.json()["detail"] == "token was revoked by logout from all sessions"
    assert client.get("/users/me", headers=other_user).status_code == 200


def test_login_after_logout_all_works(client, make_user, login):
    make_user("carol")
    client.post("/logout-all", headers=login("carol"))
    assert client.get("/users/me", headers=login("carol")).status_code == 200


def test_users_me_returns_profile(client, make_user, login):
    make_user("erin", role="editor")
    body = client.get("/users/me", headers=login("erin")).json()
    assert body == {
        "id": body["id"],
        "username": "erin",
        "email": "erin@example.test",
        "role": "editor",
        "is_active": True,
    }


def test_expired_token_is_401(client, make_user, db_session, settings):
    make_user("frank")
    token = create_access_token({"sub": "frank"}, db_session, settings=settings, expires_delta=timedelta(seconds=-1))
    response = client.get("/users/me", headers=bearer(token))
    assert response.status_code == 401
    assert response.json() == {"detail": "token expired"}


def test_password_change_invalidates_tokens(client, make_user, login, admin_headers):
    user = make_user("gina")
    headers = login("gina")
    assert (
        client.patch(f"/users/{user.id}", json={"password": "a-brand-new-password"}, headers=admin_headers).status_code
        == 200
    )
    assert client.get("/users/me", headers=headers).status_code == 401
    assert client.post("/login", json={"username": "gina", "password": "a-brand-new-password"}).status_code == 200
