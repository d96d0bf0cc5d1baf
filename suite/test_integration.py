"""Architecture integration (the seed's Task 1): JWT + middlewares + the test's transaction."""

import pytest
from sqlalchemy import select

from quiz_api.models import RevokedToken
from quiz_api.tokens import create_access_token, decode_access_token
from suitebench.counters import counting

pytestmark = pytest.mark.integration


@pytest.mark.needs_shared_transaction
def test_flushed_user_logs_in_and_calls_protected_endpoint(client, make_user):
    make_user("flushed_only", commit=False)

    response = client.post("/login", json={"username": "flushed_only", "password": "correct-horse-battery"})
    assert response.status_code == 200, response.text
    headers = {"Authorization": f"Bearer {response.json()['access_token']}"}

    me = client.get("/users/me", headers=headers)
    assert me.status_code == 200, me.text
    assert me.json()["username"] == "flushed_only"


@pytest.mark.needs_shared_transaction
def test_token_revoked_in_this_test_is_rejected_by_blacklist_middleware(client, make_user, db_session):
    make_user("revoke_me", commit=False)
    token = client.post("/login", json={"username": "revoke_me", "password": "correct-horse-battery"}).json()[
        "access_token"
    ]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/users/me", headers=headers).status_code == 200

    assert client.post("/logout", headers=headers).status_code == 200
    assert db_session.scalar(select(RevokedToken.jti)) is not None

    # A public path: only the blacklist middleware can reject it.
    rejected = client.get("/time-periods", headers=headers)
    assert rejected.status_code == 401
    assert rejected.json() == {"detail": "token has been revoked"}


@pytest.mark.needs_shared_transaction
def test_no_second_connection_during_request_cycle(client, make_user, db_session):
    # Committed, so under own wiring the request cycle works and only the count can fail.
    make_user("one_connection")
    # Pin the test session's own connection first (recreate isolation releases it on commit):
    # only connections opened by someone else count.
    db_session.connection()
    with counting() as counted:
        token = client.post("/login", json={"username": "one_connection", "password": "correct-horse-battery"}).json()[
            "access_token"
        ]
        assert client.get("/users/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert client.post("/logout", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert counted.delta.connections_opened == 0


@pytest.mark.needs_shared_transaction
def test_role_granted_in_this_test_is_seen_by_authorization_middleware(client, make_user, login, db_session):
    user = make_user("promoted")
    user.role = "admin"
    user.token_version += 1
    db_session.flush()
    headers = login("promoted")
    assert client.get("/users", headers=headers).status_code == 200


def test_jwt_create_and_decode_with_provided_session(db_session, make_user, settings):
    make_user("jwt_user")
    token = create_access_token({"sub": "jwt_user"}, db_session, settings=settings)
    claims = decode_access_token(token, db_session, settings=settings)
    assert claims["sub"] == "jwt_user"
    assert claims["type"] == "access"


def test_login_then_protected_endpoint(client, make_user, login):
    make_user("api_user")
    headers = login("api_user")
    response = client.get("/users/me", headers=headers)
    assert response.status_code == 200
    assert response.json()["role"] == "student"


def test_questions_api_lists_committed_content(client, catalog):
    response = client.get("/questions")
    assert response.status_code == 200
    assert response.json()["total"] == len(catalog.question_ids)
