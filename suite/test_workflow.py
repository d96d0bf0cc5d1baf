"""End-to-end workflows: build a quiz, answer it, score it, rank it per time period."""

import pytest

pytestmark = pytest.mark.workflow


def answer(client, headers, question_id, option_id, question_set_id=None):
    body = {"question_id": question_id, "answer_option_id": option_id}
    if question_set_id is not None:
        body["question_set_id"] = question_set_id
    return client.post("/responses", json=body, headers=headers)


def test_build_answer_score_rank(client, editor_headers, make_user, login):
    subject = client.post("/subjects", json={"name": "Chemistry"}, headers=editor_headers).json()
    topic = client.post(
        "/topics", json={"subject_id": subject["id"], "name": "Elements"}, headers=editor_headers
    ).json()
    subtopic = client.post(
        "/subtopics", json={"topic_id": topic["id"], "name": "Metals"}, headers=editor_headers
    ).json()
    questions = []
    for text, difficulty in [("Symbol of iron?", "easy"), ("Symbol of gold?", "hard")]:
        body = {
            "text": text,
            "subtopic_id": subtopic["id"],
            "difficulty": difficulty,
            "options": [{"text": "right", "is_correct": True}, {"text": "wrong"}],
        }
        questions.append(client.post("/questions", json=body, headers=editor_headers).json())
    quiz = client.post(
        "/question-sets",
        json={"name": "Metals quiz", "question_ids": [q["id"] for q in questions]},
        headers=editor_headers,
    ).json()

    make_user("solver")
    headers = login("solver")
    first = answer(client, headers, questions[0]["id"], questions[0]["options"][0]["id"], quiz["id"]).json()
    second = answer(client, headers, questions[1]["id"], questions[1]["options"][1]["id"], quiz["id"]).json()
    assert (first["is_correct"], first["points"]) == (True, 1)
    assert (second["is_correct"], second["points"], second["correct_option_id"]) == (
        False,
        0,
        questions[1]["options"][0]["id"],
    )

    scores = {s["time_period"]: s for s in client.get("/scores/me", headers=headers).json()}
    assert set(scores) == {"daily", "weekly", "monthly", "yearly", "all_time"}
    assert all((s["points"], s["answered"], s["correct"]) == (1, 2, 1) for s in scores.values())
    board = client.get("/leaderboard", params={"time_period": "weekly"}).json()
    assert board["entries"] == [{"rank": 1, "username": "solver", "points": 1, "answered": 2, "correct": 1}]


@pytest.mark.parametrize("period", ["daily", "weekly", "monthly", "yearly", "all_time"])
def test_leaderboard_ranks_by_points_in_every_period(client, make_user, login, catalog, period):
    for name, picks in [("low", ["wrong", "right"]), ("high", ["right", "right"])]:
        make_user(name)
        headers = login(name)
        for question_id, pick in zip(catalog.question_ids[1:3], picks):
            option = catalog.correct_option[question_id] if pick == "right" else catalog.wrong_option[question_id]
            assert answer(client, headers, question_id, option).status_code == 201
    entries = client.get("/leaderboard", params={"time_period": period}).json()["entries"]
    assert [(e["rank"], e["username"], e["points"]) for e in entries] == [(1, "high", 5), (2, "low", 3)]


def test_scores_start_at_zero(client, student_headers):
    assert {s["points"] for s in client.get("/scores/me", headers=student_headers).json()} == {0}


def test_unknown_time_period_is_422(client):
    response = client.get("/leaderboard", params={"time_period": "fortnightly"})
    assert response.status_code == 422
    assert "daily" in response.json()["detail"]


def test_answer_option_of_other_question_is_422(client, student_headers, catalog):
    first, second = catalog.question_ids[:2]
    response = answer(client, student_headers, first, catalog.correct_option[second])
    assert response.status_code == 422
    assert response.json() == {"detail": "answer option does not belong to the question"}


def test_answer_outside_question_set_is_422(client, student_headers, editor_headers, catalog):
    quiz = client.post(
        "/question-sets", json={"name": "Only first", "question_ids": [catalog.question_ids[0]]}, headers=editor_headers
    ).json()
    question_id = catalog.question_ids[1]
    assert (
        answer(client, student_headers, question_id, catalog.correct_option[question_id], quiz["id"]).status_code == 422
    )


def test_answer_unknown_question_is_422(client, student_headers):
    assert answer(client, student_headers, 123456, 1).status_code == 422


def test_only_the_first_answer_scores(client, student_headers, catalog):
    question_id = catalog.question_ids[2]
    first = answer(client, student_headers, question_id, catalog.wrong_option[question_id]).json()
    assert (first["scored"], first["points"], first["correct_option_id"]) == (
        True,
        0,
        catalog.correct_option[question_id],
    )
    for _ in range(2):
        again = answer(client, student_headers, question_id, catalog.correct_option[question_id])
        assert again.status_code == 201
        assert (again.json()["is_correct"], again.json()["scored"], again.json()["points"]) == (True, False, 0)
    all_time = next(
        s for s in client.get("/scores/me", headers=student_headers).json() if s["time_period"] == "all_time"
    )
    assert (all_time["points"], all_time["answered"], all_time["correct"]) == (0, 1, 0)
