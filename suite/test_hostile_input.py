"""Hostile input found by fuzzing the served API (issue 7): each is a clear 4xx, never a 500.

Every case here was a 500 before its fix: ids beyond the database's INTEGER (SQLite raised
OverflowError, PostgreSQL raises NumericValueOutOfRange), NUL characters in text (PostgreSQL
refuses them), and a question-set rename whose unique-name violation surfaced at an autoflush
outside the conflict handling. The last test is a race no sequential client can produce, so
it calls the handler directly.
"""

import pytest
from fastapi import HTTPException

from quiz_api.params import MAX_ROW_ID
from quiz_api.routes.auth import logout
from quiz_api.tokens import create_access_token, decode_access_token, principal_from_claims

pytestmark = pytest.mark.crud

# Beyond 64 bits (SQLite's limit), beyond 32 bits (PostgreSQL's INTEGER), and not an id at all.
OUT_OF_RANGE_IDS = (2**70, 2**63, MAX_ROW_ID + 1, 0, -1)


@pytest.mark.parametrize(
    ("resource", "methods"),
    [
        ("/subjects", ("GET", "PATCH", "DELETE")),
        ("/topics", ("PATCH", "DELETE")),
        ("/subtopics", ("PATCH", "DELETE")),
        ("/questions", ("GET", "PATCH", "DELETE")),
        ("/question-sets", ("GET", "PATCH", "DELETE")),
        ("/users", ("GET", "PATCH", "DELETE")),
    ],
)
def test_out_of_range_path_id_is_422(client, admin_headers, resource, methods):
    for method in methods:
        for bad_id in OUT_OF_RANGE_IDS:
            response = client.request(method, f"{resource}/{bad_id}", headers=admin_headers, json={})
            assert response.status_code == 422, (method, bad_id, response.text)
            assert response.json()["detail"][0]["loc"][0] == "path"


def test_largest_id_is_still_a_404(client, admin_headers):
    assert client.get(f"/subjects/{MAX_ROW_ID}").status_code == 404
    assert client.get(f"/users/{MAX_ROW_ID}", headers=admin_headers).status_code == 404


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/topics", "subject_id"),
        ("/questions", "subject_id"),
        ("/questions", "topic_id"),
        ("/questions", "subtopic_id"),
        ("/questions", "offset"),
        ("/users", "offset"),
    ],
)
def test_out_of_range_query_number_is_422(client, admin_headers, path, parameter):
    for bad in (2**70, 2**63, MAX_ROW_ID + 1):
        response = client.get(path, params={parameter: bad}, headers=admin_headers)
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["detail"][0]["loc"] == ["query", parameter]


def _bodies(catalog) -> dict:
    question = catalog.question_ids[0]
    option = catalog.correct_option[question]
    huge = 2**63
    return {
        "topic-subject": ("POST", "/topics", {"subject_id": huge, "name": "T"}),
        "subtopic-topic": ("POST", "/subtopics", {"topic_id": huge, "name": "S"}),
        "question-subtopic": (
            "POST",
            "/questions",
            {"text": "Q?", "subtopic_id": huge, "options": [{"text": "a", "is_correct": True}, {"text": "b"}]},
        ),
        "question-update-subtopic": ("PATCH", f"/questions/{question}", {"subtopic_id": huge}),
        "question-set-questions": ("POST", "/question-sets", {"name": "S", "question_ids": [question, huge]}),
        "response-question": ("POST", "/responses", {"question_id": huge, "answer_option_id": option}),
        "response-option": ("POST", "/responses", {"question_id": question, "answer_option_id": huge}),
        "response-set": (
            "POST",
            "/responses",
            {"question_id": question, "answer_option_id": option, "question_set_id": huge},
        ),
    }


BODY_CASES = (
    "topic-subject",
    "subtopic-topic",
    "question-subtopic",
    "question-update-subtopic",
    "question-set-questions",
    "response-question",
    "response-option",
    "response-set",
)


@pytest.mark.parametrize("case", BODY_CASES)
def test_out_of_range_body_id_is_422(client, admin_headers, catalog, case):
    method, path, body = _bodies(catalog)[case]
    response = client.request(method, path, json=body, headers=admin_headers)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][0] == "body"


def test_question_set_rename_to_taken_name_with_new_questions_is_409(client, editor_headers, catalog):
    first, second = catalog.question_ids[:2]
    client.post("/question-sets", json={"name": "Taken", "question_ids": [first]}, headers=editor_headers)
    other = client.post(
        "/question-sets", json={"name": "Mine", "question_ids": [second]}, headers=editor_headers
    ).json()

    response = client.patch(
        f"/question-sets/{other['id']}", json={"name": "Taken", "question_ids": [first, second]}, headers=editor_headers
    )

    assert response.status_code == 409, response.text
    assert response.json() == {"detail": "a question set with that name already exists"}
    assert client.get(f"/question-sets/{other['id']}").json() == other
    renamed = client.patch(
        f"/question-sets/{other['id']}", json={"name": "Free", "question_ids": [first]}, headers=editor_headers
    )
    assert renamed.status_code == 200 and renamed.json()["question_ids"] == [first]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/subjects", {"name": "Nul\x00name"}),
        ("POST", "/subjects", {"name": "Ok", "description": "nul \x00 inside"}),
        ("POST", "/question-sets", {"name": "\x00"}),
    ],
    ids=["subject-name", "subject-description", "question-set-name"],
)
def test_nul_character_in_body_text_is_422(client, editor_headers, method, path, body):
    response = client.request(method, path, json=body, headers=editor_headers)
    assert response.status_code == 422, response.text
    assert "NUL" in response.json()["detail"][0]["msg"]


def test_nul_character_in_nested_option_text_is_422(client, editor_headers, catalog):
    body = {
        "text": "Q?",
        "subtopic_id": catalog.subtopic_id,
        "options": [{"text": "a\x00", "is_correct": True}, {"text": "b"}],
    }
    response = client.post("/questions", json=body, headers=editor_headers)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "options", 0, "text"]


@pytest.mark.parametrize(("path", "parameter"), [("/questions", "q"), ("/leaderboard", "time_period")])
def test_nul_character_in_query_text_is_422(client, path, parameter):
    response = client.get(path, params={parameter: "a\x00b"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", parameter]


@pytest.mark.auth
def test_nul_character_in_login_is_422(client, make_user):
    make_user("nul_user")
    response = client.post("/login", json={"username": "nul_user\x00", "password": "correct-horse-battery"})
    assert response.status_code == 422


@pytest.mark.auth
def test_logout_of_a_token_revoked_meanwhile_is_401(db_session, make_user, settings):
    make_user("racer")
    token = create_access_token({"sub": "racer"}, db_session, settings=settings)
    principal = principal_from_claims(decode_access_token(token, db_session, settings=settings))
    logout(principal, db_session)  # a concurrent logout of the same token, after the middleware's check
    with pytest.raises(HTTPException) as raised:
        logout(principal, db_session)
    assert (raised.value.status_code, raised.value.detail) == (401, "token has been revoked")
