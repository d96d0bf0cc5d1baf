"""JWT helpers and the auth attack inputs: every bad token is a 401 with a JSON error, never a 500."""

import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from harness.quiz.tokens import REQUIRED_CLAIMS, TokenError, create_access_token, decode_access_token

pytestmark = pytest.mark.jwt


@pytest.fixture
def jwt_user(make_user):
    return make_user("jwt_target")


def valid_claims(user) -> dict:
    now = datetime.now(UTC)
    return {
        "sub": user.username, "uid": user.id, "role": user.role, "ver": user.token_version, "jti": "a" * 32,
        "iat": now, "nbf": now, "exp": now + timedelta(minutes=5), "type": "access",
    }


def unsigned(claims: dict, header: dict) -> str:
    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data, default=str).encode()).rstrip(b"=").decode()

    return f"{part(header)}.{part(claims)}."


def assert_rejected(client, token: str, detail: str | None = None) -> None:
    response = client.get("/users/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/json"
    if detail:
        assert response.json()["detail"] == detail


def test_token_roundtrip_carries_user_claims(db_session, jwt_user, settings):
    claims = decode_access_token(create_access_token({"sub": "jwt_target"}, db_session, settings=settings), db_session, settings=settings)
    assert (claims["sub"], claims["uid"], claims["role"], claims["ver"]) == ("jwt_target", jwt_user.id, "student", 0)


def test_each_token_has_unique_jti(db_session, jwt_user, settings):
    tokens = {create_access_token({"sub": "jwt_target"}, db_session, settings=settings) for _ in range(3)}
    jtis = {decode_access_token(t, db_session, settings=settings)["jti"] for t in tokens}
    assert len(jtis) == 3


def test_create_token_for_unknown_user_raises(db_session, settings):
    with pytest.raises(TokenError):
        create_access_token({"sub": "ghost"}, db_session, settings=settings)


def test_tampered_signature_rejected(client, db_session, jwt_user, settings):
    token = create_access_token({"sub": "jwt_target"}, db_session, settings=settings)
    head, payload, signature = token.split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    assert_rejected(client, f"{head}.{payload}.{flipped}", "invalid token signature")


def test_tampered_payload_rejected(client, db_session, jwt_user, settings):
    token = create_access_token({"sub": "jwt_target"}, db_session, settings=settings)
    head, _, signature = token.split(".")
    forged = base64.urlsafe_b64encode(json.dumps({**valid_claims(jwt_user), "role": "admin"}, default=str).encode()).rstrip(b"=").decode()
    assert_rejected(client, f"{head}.{forged}.{signature}")


def test_alg_none_rejected(client, jwt_user):
    claims = {**valid_claims(jwt_user), "iat": 0, "nbf": 0, "exp": 4102444800}
    assert_rejected(client, unsigned(claims, {"alg": "none", "typ": "JWT"}), "token algorithm not allowed")


def test_other_hmac_algorithm_rejected(client, jwt_user, settings):
    token = jwt.encode(valid_claims(jwt_user), settings.secret_key, algorithm="HS512")
    assert_rejected(client, token, "token algorithm not allowed")


def test_wrong_key_rejected(client, jwt_user):
    token = jwt.encode(valid_claims(jwt_user), "another-secret-key-that-is-long-enough-32", algorithm="HS256")
    assert_rejected(client, token, "invalid token signature")


def test_not_yet_valid_rejected(client, jwt_user, settings):
    claims = {**valid_claims(jwt_user), "nbf": datetime.now(UTC) + timedelta(minutes=10)}
    assert_rejected(client, jwt.encode(claims, settings.secret_key, algorithm="HS256"), "token not yet valid")


@pytest.mark.parametrize("claim", REQUIRED_CLAIMS)
def test_missing_claim_rejected(client, jwt_user, settings, claim):
    claims = valid_claims(jwt_user)
    del claims[claim]
    assert_rejected(client, jwt.encode(claims, settings.secret_key, algorithm="HS256"), f"token is missing the {claim!r} claim")


@pytest.mark.parametrize(("claim", "value"), [("uid", "1"), ("ver", "0"), ("sub", 7), ("uid", True), ("type", "refresh")])
def test_wrong_typed_claim_rejected(client, jwt_user, settings, claim, value):
    claims = {**valid_claims(jwt_user), claim: value}
    assert_rejected(client, jwt.encode(claims, settings.secret_key, algorithm="HS256"))


def test_unknown_user_rejected(client, jwt_user, settings):
    claims = {**valid_claims(jwt_user), "sub": "ghost", "uid": jwt_user.id + 1000}
    assert_rejected(client, jwt.encode(claims, settings.secret_key, algorithm="HS256"), "unknown or inactive user")


@pytest.mark.parametrize(
    "token",
    ["garbage", "a.b.c", "....", "eyJhbGciOiJIUzI1NiJ9.%%%.sig", "x" * 5000],
    ids=["garbage", "three-parts", "dots", "bad-base64", "oversized"],
)
def test_garbage_token_rejected(client, token):
    assert_rejected(client, token)


@pytest.mark.parametrize(
    "header",
    ["Token abc", "Bearer", "Bearer ", "Bearer a b", "Basic dXNlcjpwYXNz", "bearer\tx y"],
    ids=["wrong-scheme", "no-token", "blank-token", "two-tokens", "basic", "tab"],
)
def test_malformed_authorization_header_rejected(client, header):
    response = client.get("/users/me", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json()["detail"].startswith("malformed")


def test_non_ascii_authorization_header_rejected(client):
    response = client.get("/users/me", headers={"Authorization": "Bearer t\u00f6ken\u00e9".encode("latin-1")})
    assert response.status_code == 401
