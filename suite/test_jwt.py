"""JWT helpers and the JWT attack list: every bad token is a 401 with a JSON error, never a 500.

`ATTACKS` is the attack list of issue 7 (bad signature, `alg: none`, algorithm confusion, expired,
not yet valid, missing, wrong-typed or out-of-range claims, revoked, logged out everywhere,
oversized or non-ASCII headers), one parametrized test per entry; missing and wrong-typed claims
and garbage tokens have their own parametrized tests below. The suite runs under every
architecture, so the list runs under every storage option.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.warnings import InsecureKeyLengthWarning

from quiz_api.models import User
from quiz_api.settings import Settings
from quiz_api.tokens import MAX_TOKEN_LENGTH, REQUIRED_CLAIMS, TokenError, create_access_token, decode_access_token

pytestmark = pytest.mark.jwt


@pytest.fixture
def jwt_user(make_user):
    return make_user("jwt_target")


def valid_claims(user) -> dict:
    now = datetime.now(UTC)
    return {
        "sub": user.username,
        "uid": user.id,
        "role": user.role,
        "ver": user.token_version,
        "jti": "a" * 32,
        "iat": now,
        "nbf": now,
        "exp": now + timedelta(minutes=5),
        "type": "access",
    }


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(data: dict) -> str:
    return b64(json.dumps(data, default=str).encode())


def unsigned(claims: dict, header: dict) -> str:
    return f"{segment(header)}.{segment(claims)}."


def hmac_signed(claims: dict, header: dict, key: bytes) -> str:
    """Sign with HMAC-SHA256 whatever the header says (PyJWT refuses to build these)."""
    signing_input = f"{segment(header)}.{segment(claims)}"
    return f"{signing_input}.{b64(hmac.new(key, signing_input.encode(), hashlib.sha256).digest())}"


def assert_rejected(client, token: str | bytes, detail: str | None = None) -> None:
    header = b"Bearer " + token if isinstance(token, bytes) else f"Bearer {token}"
    response = client.get("/users/me", headers={"Authorization": header})
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["www-authenticate"] == "Bearer"
    if detail:
        assert response.json()["detail"] == detail


# --- the attack list ----------------------------------------------------------------------------


@cache
def rsa_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@cache
def ec_private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass
class Attacker:
    """What an attack may use: the API, a real user, and (for forgeries that must get past the
    signature check) the server's secret."""

    client: Any
    settings: Settings
    user: User
    db_session: Any
    login: Callable[[str], dict[str, str]]

    def claims(self, **changes: Any) -> dict:
        return {**valid_claims(self.user), **changes}

    def sign(self, claims: dict, *, key: Any = None, algorithm: str = "HS256") -> str:
        with warnings.catch_warnings():
            # The server's 47-byte secret is short for HS512: expected, that token is an attack.
            warnings.simplefilter("ignore", InsecureKeyLengthWarning)
            return jwt.encode(claims, self.settings.secret_key if key is None else key, algorithm=algorithm)

    def logged_in_token(self) -> str:
        return self.login(self.user.username)["Authorization"].removeprefix("Bearer ")

    def api(self, method: str, path: str, token: str) -> None:
        response = self.client.request(method, path, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text


def tampered_signature(a: Attacker) -> str:
    head, payload, signature = a.sign(a.claims()).split(".")
    return f"{head}.{payload}.{('A' if signature[0] != 'A' else 'B') + signature[1:]}"


def tampered_payload(a: Attacker) -> str:
    head, _, signature = a.sign(a.claims()).split(".")
    return f"{head}.{segment(a.claims(role='admin'))}.{signature}"


def stripped_signature(a: Attacker) -> str:
    head, payload, _ = a.sign(a.claims()).split(".")
    return f"{head}.{payload}."


def alg_none_keeping_signature(a: Attacker) -> str:
    _, payload, signature = a.sign(a.claims()).split(".")
    return f"{segment({'alg': 'none', 'typ': 'JWT'})}.{payload}.{signature}"


def revoked(a: Attacker) -> str:
    token = a.logged_in_token()
    a.api("POST", "/logout", token)
    return token


def logged_out_all(a: Attacker) -> str:
    token, other = a.logged_in_token(), a.logged_in_token()
    a.api("POST", "/logout-all", other)
    return token


def user_deactivated(a: Attacker) -> str:
    token = a.logged_in_token()
    a.user.is_active = False
    a.db_session.commit()
    return token


def user_deleted(a: Attacker) -> str:
    token = a.logged_in_token()
    a.db_session.delete(a.user)
    a.db_session.commit()
    return token


def oversized_signed_token(a: Attacker) -> str:
    token = a.sign(a.claims(padding="x" * MAX_TOKEN_LENGTH))
    assert len(token) > MAX_TOKEN_LENGTH
    return token


def non_ascii_header_segment(a: Attacker) -> bytes:
    _, payload, signature = a.sign(a.claims()).split(".")
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "ключ"}, ensure_ascii=False).encode())
    return f"{head}é.{payload}.{signature}".encode()


ALGORITHM_NOT_ALLOWED = "token algorithm not allowed"
# (build the token, the expected `detail`); a bytes token is sent as raw header bytes.
ATTACKS: dict[str, tuple[Callable[[Attacker], str | bytes], str]] = {
    # signature
    "bad-signature": (tampered_signature, "invalid token signature"),
    "tampered-payload": (tampered_payload, "invalid token signature"),
    "stripped-signature": (stripped_signature, "invalid token signature"),
    "wrong-secret": (
        lambda a: a.sign(a.claims(), key="another-secret-key-that-is-long-enough-32"),
        "invalid token signature",
    ),
    # alg: none
    "alg-none": (lambda a: unsigned(a.claims(), {"alg": "none", "typ": "JWT"}), ALGORITHM_NOT_ALLOWED),
    "alg-None": (lambda a: unsigned(a.claims(), {"alg": "None", "typ": "JWT"}), ALGORITHM_NOT_ALLOWED),
    "alg-none-keeping-signature": (alg_none_keeping_signature, ALGORITHM_NOT_ALLOWED),
    "alg-missing": (
        lambda a: hmac_signed(a.claims(), {"typ": "JWT"}, a.settings.secret_key.encode()),
        ALGORITHM_NOT_ALLOWED,
    ),
    # algorithm confusion
    "other-hmac-hs512": (lambda a: a.sign(a.claims(), algorithm="HS512"), ALGORITHM_NOT_ALLOWED),
    "rs256-signed-with-rsa-key": (
        lambda a: a.sign(a.claims(), key=rsa_private_key(), algorithm="RS256"),
        ALGORITHM_NOT_ALLOWED,
    ),
    "es256-signed-with-ec-key": (
        lambda a: a.sign(a.claims(), key=ec_private_key(), algorithm="ES256"),
        ALGORITHM_NOT_ALLOWED,
    ),
    "rs256-header-hmac-with-secret": (
        lambda a: hmac_signed(a.claims(), {"alg": "RS256", "typ": "JWT"}, a.settings.secret_key.encode()),
        ALGORITHM_NOT_ALLOWED,
    ),
    "hs256-hmac-with-rsa-public-key": (
        lambda a: hmac_signed(a.claims(), {"alg": "HS256", "typ": "JWT"}, public_pem(rsa_private_key())),
        "invalid token signature",
    ),
    # time
    "expired": (lambda a: a.sign(a.claims(exp=datetime.now(UTC) - timedelta(minutes=1))), "token expired"),
    "not-yet-valid": (lambda a: a.sign(a.claims(nbf=datetime.now(UTC) + timedelta(minutes=10))), "token not yet valid"),
    "issued-in-future": (
        lambda a: a.sign(a.claims(iat=datetime.now(UTC) + timedelta(minutes=10))),
        "token not yet valid",
    ),
    # correctly signed, values the database or datetime cannot take
    "uid-beyond-integer": (lambda a: a.sign(a.claims(uid=2**70)), "token claim out of range"),
    "uid-negative": (lambda a: a.sign(a.claims(uid=-1)), "token claim out of range"),
    "ver-negative": (lambda a: a.sign(a.claims(ver=-1)), "token claim out of range"),
    "exp-beyond-year-9999": (lambda a: a.sign(a.claims(exp=10**20)), "token claim out of range"),
    "jti-oversized": (lambda a: a.sign(a.claims(jti="a" * 500)), "token claim 'jti' is malformed"),
    "jti-nul": (lambda a: a.sign(a.claims(jti="a" * 31 + "\x00")), "token claim 'jti' is malformed"),
    # state: revoked, logged out everywhere, the user gone
    "revoked": (revoked, "token has been revoked"),
    "logged-out-all": (logged_out_all, "token was revoked by logout from all sessions"),
    "user-deactivated": (user_deactivated, "unknown or inactive user"),
    "user-deleted": (user_deleted, "unknown or inactive user"),
    "unknown-user": (lambda a: a.sign(a.claims(sub="ghost", uid=a.user.id + 1000)), "unknown or inactive user"),
    "sub-uid-mismatch": (lambda a: a.sign(a.claims(sub="someone_else")), "unknown or inactive user"),
    # size and encoding of the header
    "oversized-signed-token": (oversized_signed_token, "malformed token"),
    "oversized-header-64KiB": (lambda a: "x" * 65536, "malformed token"),
    "non-ascii-latin1-header": (lambda a: "tökené".encode("latin-1"), "malformed token"),
    "non-ascii-utf8-header": (lambda a: "ключ.ключ.ключ".encode(), "malformed token"),
    "non-ascii-jwt-header-segment": (non_ascii_header_segment, "malformed token"),
}


@pytest.mark.parametrize("attack", ATTACKS)
def test_attack_rejected(client, db_session, jwt_user, settings, login, attack):
    build, detail = ATTACKS[attack]
    token = build(Attacker(client=client, settings=settings, user=jwt_user, db_session=db_session, login=login))
    assert_rejected(client, token, detail)


# --- the helpers and the remaining parametrized inputs --------------------------------------------


def test_token_roundtrip_carries_user_claims(db_session, jwt_user, settings):
    claims = decode_access_token(
        create_access_token({"sub": "jwt_target"}, db_session, settings=settings), db_session, settings=settings
    )
    assert (claims["sub"], claims["uid"], claims["role"], claims["ver"]) == ("jwt_target", jwt_user.id, "student", 0)


def test_each_token_has_unique_jti(db_session, jwt_user, settings):
    tokens = {create_access_token({"sub": "jwt_target"}, db_session, settings=settings) for _ in range(3)}
    jtis = {decode_access_token(t, db_session, settings=settings)["jti"] for t in tokens}
    assert len(jtis) == 3


def test_create_token_for_unknown_user_raises(db_session, settings):
    with pytest.raises(TokenError):
        create_access_token({"sub": "ghost"}, db_session, settings=settings)


@pytest.mark.parametrize("claim", REQUIRED_CLAIMS)
def test_missing_claim_rejected(client, jwt_user, settings, claim):
    claims = valid_claims(jwt_user)
    del claims[claim]
    assert_rejected(
        client, jwt.encode(claims, settings.secret_key, algorithm="HS256"), f"token is missing the {claim!r} claim"
    )


@pytest.mark.parametrize(
    ("claim", "value"), [("uid", "1"), ("ver", "0"), ("sub", 7), ("uid", True), ("type", "refresh")]
)
def test_wrong_typed_claim_rejected(client, jwt_user, settings, claim, value):
    claims = {**valid_claims(jwt_user), claim: value}
    assert_rejected(client, jwt.encode(claims, settings.secret_key, algorithm="HS256"))


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
