"""CRUD for users, the content hierarchy, questions and question sets (the seed's Task 4)."""

import pytest

pytestmark = pytest.mark.crud

NEW_USER = {"username": "newbie", "email": "newbie@example.com", "password": "long-enough-pw", "role": "student"}


def question_body(subtopic_id: int, text: str = "What is 6 x 7?", difficulty: str = "easy") -> dict:
    return {
        "text": text,
        "subtopic_id": subtopic_id,
        "difficulty": difficulty,
        "options": [{"text": "42", "is_correct": True}, {"text": "41"}, {"text": "24"}],
    }


# --- users ----------------------------------------------------------------------------------


def test_admin_creates_user_who_can_log_in(client, admin_headers):
    response = client.post("/users", json=NEW_USER, headers=admin_headers)
    assert response.status_code == 201
    assert response.json()["username"] == "newbie" and "password" not in response.json()
    assert client.post("/login", json={"username": "newbie", "password": "long-enough-pw"}).status_code == 200


def test_duplicate_user_is_409(client, admin_headers):
    client.post("/users", json=NEW_USER, headers=admin_headers)
    response = client.post("/users", json={**NEW_USER, "email": "other@example.com"}, headers=admin_headers)
    assert response.status_code == 409


@pytest.mark.parametrize(
    "patch",
    [{"email": "not-an-email"}, {"password": "short"}, {"role": "superuser"}, {"username": "x"}],
    ids=["email", "short-password", "role", "too-short-username"],
)
def test_invalid_user_body_is_422(client, admin_headers, patch):
    assert client.post("/users", json={**NEW_USER, **patch}, headers=admin_headers).status_code == 422


def test_read_update_list_delete_user(client, admin_headers):
    user_id = client.post("/users", json=NEW_USER, headers=admin_headers).json()["id"]
    assert client.get(f"/users/{user_id}", headers=admin_headers).json()["email"] == "newbie@example.com"
    updated = client.patch(f"/users/{user_id}", json={"role": "editor"}, headers=admin_headers).json()
    assert updated["role"] == "editor"
    assert {u["username"] for u in client.get("/users", headers=admin_headers).json()} == {"ada_admin", "newbie"}
    assert client.delete(f"/users/{user_id}", headers=admin_headers).status_code == 204
    assert client.get(f"/users/{user_id}", headers=admin_headers).status_code == 404


def test_admin_cannot_delete_self(client, admin_headers):
    me = client.get("/users/me", headers=admin_headers).json()
    assert client.delete(f"/users/{me['id']}", headers=admin_headers).status_code == 409


def test_missing_user_is_404(client, admin_headers):
    assert client.patch("/users/9999", json={"role": "editor"}, headers=admin_headers).status_code == 404


# --- hierarchy ------------------------------------------------------------------------------


def test_build_and_read_hierarchy(client, editor_headers):
    subject = client.post(
        "/subjects", json={"name": "Science", "description": "all of it"}, headers=editor_headers
    ).json()
    topic = client.post("/topics", json={"subject_id": subject["id"], "name": "Physics"}, headers=editor_headers).json()
    client.post("/subtopics", json={"topic_id": topic["id"], "name": "Optics"}, headers=editor_headers)
    tree = client.get(f"/subjects/{subject['id']}").json()
    assert tree["topics"][0]["name"] == "Physics"
    assert tree["topics"][0]["subtopics"][0]["name"] == "Optics"


def test_duplicate_subject_is_409(client, editor_headers):
    client.post("/subjects", json={"name": "Science"}, headers=editor_headers)
    assert client.post("/subjects", json={"name": "Science"}, headers=editor_headers).status_code == 409


def test_topic_under_missing_subject_is_422(client, editor_headers):
    response = client.post("/topics", json={"subject_id": 424242, "name": "Orphan"}, headers=editor_headers)
    assert response.status_code == 422
    assert response.json() == {"detail": "subject 424242 does not exist"}


def test_rename_and_delete_nodes(client, editor_headers, catalog):
    assert (
        client.patch(f"/topics/{catalog.topic_id}", json={"name": "Algebra I"}, headers=editor_headers).json()["name"]
        == "Algebra I"
    )
    assert (
        client.patch(
            f"/subjects/{catalog.subject_id}", json={"description": "updated"}, headers=editor_headers
        ).status_code
        == 200
    )
    empty = client.post(
        "/subtopics", json={"topic_id": catalog.topic_id, "name": "Empty"}, headers=editor_headers
    ).json()
    assert client.delete(f"/subtopics/{empty['id']}", headers=editor_headers).status_code == 204


def test_delete_subject_with_questions_is_409(client, editor_headers, catalog):
    assert client.delete(f"/subjects/{catalog.subject_id}", headers=editor_headers).status_code == 409
    assert client.get(f"/subjects/{catalog.subject_id}").status_code == 200


# --- questions ------------------------------------------------------------------------------


def test_create_and_read_question_hides_answer(client, editor_headers, catalog):
    created = client.post("/questions", json=question_body(catalog.subtopic_id), headers=editor_headers)
    assert created.status_code == 201
    assert [o["is_correct"] for o in created.json()["options"]] == [True, False, False]
    public = client.get(f"/questions/{created.json()['id']}").json()
    assert all("is_correct" not in option for option in public["options"])


@pytest.mark.parametrize(
    "options",
    [
        [{"text": "a"}, {"text": "b"}],
        [{"text": "a", "is_correct": True}, {"text": "b", "is_correct": True}],
        [{"text": "a", "is_correct": True}],
    ],
    ids=["none-correct", "two-correct", "one-option"],
)
def test_question_needs_exactly_one_correct_option(client, editor_headers, catalog, options):
    body = {**question_body(catalog.subtopic_id), "options": options}
    assert client.post("/questions", json=body, headers=editor_headers).status_code == 422


def test_list_questions_filters_and_paginates(client, catalog):
    assert client.get("/questions", params={"subtopic_id": catalog.other_subtopic_id}).json()["total"] == 1
    assert client.get("/questions", params={"difficulty": "medium"}).json()["total"] == 2
    assert client.get("/questions", params={"subject_id": catalog.subject_id}).json()["total"] == 4
    assert client.get("/questions", params={"q": "SOLVE"}).json()["total"] == 3
    page = client.get("/questions", params={"limit": 2, "offset": 2}).json()
    assert [q["id"] for q in page["items"]] == list(catalog.question_ids[2:4])
    assert client.get("/questions", params={"limit": 0}).status_code == 422
    assert client.get("/questions", params={"difficulty": "impossible"}).status_code == 422


def test_update_and_delete_question(client, editor_headers, catalog):
    question_id = catalog.question_ids[0]
    patched = client.patch(
        f"/questions/{question_id}", json={"text": "Solve x + 2 = 3", "difficulty": "hard"}, headers=editor_headers
    )
    assert patched.json()["text"] == "Solve x + 2 = 3" and patched.json()["difficulty"] == "hard"
    assert client.delete(f"/questions/{question_id}", headers=editor_headers).status_code == 204
    assert client.get(f"/questions/{question_id}").status_code == 404


# --- question sets --------------------------------------------------------------------------


def test_question_set_lifecycle(client, editor_headers, catalog):
    ids = list(catalog.question_ids[:2])
    created = client.post("/question-sets", json={"name": "Warm-up", "question_ids": ids}, headers=editor_headers)
    assert created.status_code == 201 and created.json()["question_ids"] == ids
    set_id = created.json()["id"]
    reordered = client.patch(
        f"/question-sets/{set_id}", json={"question_ids": ids[::-1] + [catalog.question_ids[3]]}, headers=editor_headers
    )
    assert reordered.json()["question_ids"] == [ids[1], ids[0], catalog.question_ids[3]]
    assert client.get("/question-sets").json()[0]["name"] == "Warm-up"
    assert client.delete(f"/question-sets/{set_id}", headers=editor_headers).status_code == 204
    assert client.get(f"/question-sets/{set_id}").status_code == 404


@pytest.mark.parametrize("question_ids", [[999999], "dup"], ids=["unknown-question", "duplicates"])
def test_question_set_with_bad_questions_is_422(client, editor_headers, catalog, question_ids):
    ids = [catalog.question_ids[0]] * 2 if question_ids == "dup" else question_ids
    assert (
        client.post("/question-sets", json={"name": "Bad", "question_ids": ids}, headers=editor_headers).status_code
        == 422
    )
