"""Content: the subject -> topic -> subtopic hierarchy, questions with options, question sets.

Reads are public; writes need an editor or admin (enforced by the authorization middleware).
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query, status
from fastapi import Response as HTTPResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from quiz_api.deps import (
    PrincipalDep,
    SessionDep,
    commit_or_conflict,
    conflicts_as_409,
    get_or_404,
    get_or_422,
)
from quiz_api.models import (
    AnswerOption,
    Question,
    QuestionSet,
    QuestionSetItem,
    Response,
    Subject,
    Subtopic,
    Topic,
)
from quiz_api.params import (
    DEFAULT_PAGE,
    NO_NUL_PATTERN,
    Offset,
    PageLimit,
    PathId,
    QueryId,
)
from quiz_api.schemas import (
    DifficultyCode,
    Message,
    NodeRename,
    QuestionCreate,
    QuestionFull,
    QuestionPage,
    QuestionPublic,
    QuestionSetCreate,
    QuestionSetOut,
    QuestionSetUpdate,
    QuestionUpdate,
    SubjectCreate,
    SubjectOut,
    SubjectUpdate,
    SubtopicCreate,
    SubtopicOut,
    TopicCreate,
    TopicOut,
)

router = APIRouter()


# --- hierarchy ------------------------------------------------------------------------------


@router.post("/subjects", response_model=SubjectOut, status_code=201, tags=["hierarchy"])
def create_subject(body: SubjectCreate, db: SessionDep) -> Subject:
    subject = Subject(name=body.name, description=body.description)
    db.add(subject)
    commit_or_conflict(db, f"subject {body.name!r} already exists")
    return subject


@router.get("/subjects", response_model=list[SubjectOut], tags=["hierarchy"])
def list_subjects(db: SessionDep, limit: PageLimit = DEFAULT_PAGE, offset: Offset = 0) -> list[Subject]:
    query = select(Subject).options(selectinload(Subject.topics).selectinload(Topic.subtopics)).order_by(Subject.name)
    return list(db.scalars(query.limit(limit).offset(offset)))


@router.get("/subjects/{subject_id}", response_model=SubjectOut, tags=["hierarchy"])
def read_subject(subject_id: PathId, db: SessionDep) -> Subject:
    return get_or_404(db, Subject, subject_id)


@router.patch("/subjects/{subject_id}", response_model=SubjectOut, tags=["hierarchy"])
def update_subject(subject_id: PathId, body: SubjectUpdate, db: SessionDep) -> Subject:
    subject = get_or_404(db, Subject, subject_id)
    for key, value in body.model_dump(exclude_unset=True, exclude_none=True).items():
        setattr(subject, key, value)
    commit_or_conflict(db, "a subject with that name already exists")
    return subject


@router.delete("/subjects/{subject_id}", status_code=204, response_class=HTTPResponse, tags=["hierarchy"])
def delete_subject(subject_id: PathId, db: SessionDep) -> None:
    db.delete(get_or_404(db, Subject, subject_id))
    commit_or_conflict(db, "subject still has questions; delete or move them first")


@router.post("/topics", response_model=TopicOut, status_code=201, tags=["hierarchy"])
def create_topic(body: TopicCreate, db: SessionDep) -> Topic:
    get_or_422(db, Subject, body.subject_id)
    topic = Topic(subject_id=body.subject_id, name=body.name)
    db.add(topic)
    commit_or_conflict(db, f"topic {body.name!r} already exists in this subject")
    return topic


@router.get("/topics", response_model=list[TopicOut], tags=["hierarchy"])
def list_topics(
    db: SessionDep, subject_id: QueryId = None, limit: PageLimit = DEFAULT_PAGE, offset: Offset = 0
) -> list[Topic]:
    query = select(Topic).options(selectinload(Topic.subtopics)).order_by(Topic.id)
    if subject_id is not None:
        query = query.where(Topic.subject_id == subject_id)
    return list(db.scalars(query.limit(limit).offset(offset)))


@router.patch("/topics/{topic_id}", response_model=TopicOut, tags=["hierarchy"])
def rename_topic(topic_id: PathId, body: NodeRename, db: SessionDep) -> Topic:
    topic = get_or_404(db, Topic, topic_id)
    topic.name = body.name
    commit_or_conflict(db, f"topic {body.name!r} already exists in this subject")
    return topic


@router.delete("/topics/{topic_id}", status_code=204, response_class=HTTPResponse, tags=["hierarchy"])
def delete_topic(topic_id: PathId, db: SessionDep) -> None:
    db.delete(get_or_404(db, Topic, topic_id))
    commit_or_conflict(db, "topic still has questions; delete or move them first")


@router.post("/subtopics", response_model=SubtopicOut, status_code=201, tags=["hierarchy"])
def create_subtopic(body: SubtopicCreate, db: SessionDep) -> Subtopic:
    get_or_422(db, Topic, body.topic_id)
    subtopic = Subtopic(topic_id=body.topic_id, name=body.name)
    db.add(subtopic)
    commit_or_conflict(db, f"subtopic {body.name!r} already exists in this topic")
    return subtopic


@router.patch("/subtopics/{subtopic_id}", response_model=SubtopicOut, tags=["hierarchy"])
def rename_subtopic(subtopic_id: PathId, body: NodeRename, db: SessionDep) -> Subtopic:
    subtopic = get_or_404(db, Subtopic, subtopic_id)
    subtopic.name = body.name
    commit_or_conflict(db, f"subtopic {body.name!r} already exists in this topic")
    return subtopic


@router.delete("/subtopics/{subtopic_id}", status_code=204, response_class=HTTPResponse, tags=["hierarchy"])
def delete_subtopic(subtopic_id: PathId, db: SessionDep) -> None:
    db.delete(get_or_404(db, Subtopic, subtopic_id))
    commit_or_conflict(db, "subtopic still has questions; delete or move them first")


# --- questions ------------------------------------------------------------------------------


@router.post("/questions", response_model=QuestionFull, status_code=201, tags=["questions"])
def create_question(body: QuestionCreate, principal: PrincipalDep, db: SessionDep) -> Question:
    get_or_422(db, Subtopic, body.subtopic_id)
    question = Question(
        text=body.text,
        subtopic_id=body.subtopic_id,
        difficulty=body.difficulty,
        author_id=principal.user_id,
        options=[AnswerOption(position=i, text=o.text, is_correct=o.is_correct) for i, o in enumerate(body.options)],
    )
    db.add(question)
    commit_or_conflict(db, "question conflicts with existing data")
    return question


@router.get("/questions", response_model=QuestionPage, tags=["questions"])
def list_questions(
    db: SessionDep,
    subject_id: QueryId = None,
    topic_id: QueryId = None,
    subtopic_id: QueryId = None,
    difficulty: DifficultyCode | None = None,
    q: str | None = Query(
        None, min_length=1, max_length=100, pattern=NO_NUL_PATTERN, description="case-insensitive text search"
    ),
    limit: PageLimit = 20,
    offset: Offset = 0,
) -> QuestionPage:
    query = select(Question).join(Subtopic).join(Topic)
    if subject_id is not None:
        query = query.where(Topic.subject_id == subject_id)
    if topic_id is not None:
        query = query.where(Subtopic.topic_id == topic_id)
    if subtopic_id is not None:
        query = query.where(Question.subtopic_id == subtopic_id)
    if difficulty is not None:
        query = query.where(Question.difficulty == difficulty)
    if q is not None:
        query = query.where(Question.text.icontains(q, autoescape=True))
    total = db.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = db.scalars(query.options(selectinload(Question.options)).order_by(Question.id).limit(limit).offset(offset))
    return QuestionPage(items=[QuestionPublic.model_validate(r) for r in rows], total=total, limit=limit, offset=offset)


@router.get("/questions/{question_id}", response_model=QuestionPublic, tags=["questions"])
def read_question(question_id: PathId, db: SessionDep) -> Question:
    return get_or_404(db, Question, question_id)


def answered(db: Session, question_id: int) -> bool:
    return db.scalar(select(Response.id).where(Response.question_id == question_id).limit(1)) is not None


@router.patch(
    "/questions/{question_id}", response_model=QuestionFull, tags=["questions"], responses={409: {"model": Message}}
)
def update_question(question_id: PathId, body: QuestionUpdate, db: SessionDep) -> Question:
    question = get_or_404(db, Question, question_id)
    # Replacing the options would orphan the responses that chose them (the foreign key refuses
    # it too; this says why first).
    if body.options is not None and answered(db, question.id):
        raise HTTPException(status.HTTP_409_CONFLICT, detail="options already answered cannot be replaced")
    changes = body.model_dump(exclude_unset=True, exclude_none=True, exclude={"options"})
    if "subtopic_id" in changes:
        get_or_422(db, Subtopic, changes["subtopic_id"])
    for key, value in changes.items():
        setattr(question, key, value)
    if body.options is not None:
        question.options = [
            AnswerOption(position=i, text=o.text, is_correct=o.is_correct) for i, o in enumerate(body.options)
        ]
    commit_or_conflict(db, "options already answered cannot be replaced")
    return question


@router.delete(
    "/questions/{question_id}",
    status_code=204,
    response_class=HTTPResponse,
    tags=["questions"],
    responses={409: {"model": Message}},
)
def delete_question(question_id: PathId, db: SessionDep) -> None:
    question = get_or_404(db, Question, question_id)
    if answered(db, question.id):
        raise HTTPException(status.HTTP_409_CONFLICT, detail="question has been answered; its responses keep it")
    db.delete(question)
    commit_or_conflict(db, "question is still referenced")


# --- question sets --------------------------------------------------------------------------


def _set_out(question_set: QuestionSet) -> QuestionSetOut:
    return QuestionSetOut(
        id=question_set.id,
        name=question_set.name,
        description=question_set.description,
        owner_id=question_set.owner_id,
        question_ids=[item.question_id for item in question_set.items],
    )


def _items(db: SessionDep, question_ids: list[int]) -> list[QuestionSetItem]:
    if len(set(question_ids)) != len(question_ids):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="question_ids contains duplicates")
    for question_id in question_ids:
        get_or_422(db, Question, question_id)
    return [QuestionSetItem(question_id=qid, position=i) for i, qid in enumerate(question_ids)]


@router.post("/question-sets", response_model=QuestionSetOut, status_code=201, tags=["question sets"])
def create_question_set(body: QuestionSetCreate, principal: PrincipalDep, db: SessionDep) -> QuestionSetOut:
    question_set = QuestionSet(
        name=body.name, description=body.description, owner_id=principal.user_id, items=_items(db, body.question_ids)
    )
    db.add(question_set)
    commit_or_conflict(db, f"question set {body.name!r} already exists")
    return _set_out(question_set)


@router.get("/question-sets", response_model=list[QuestionSetOut], tags=["question sets"])
def list_question_sets(db: SessionDep, limit: PageLimit = DEFAULT_PAGE, offset: Offset = 0) -> list[QuestionSetOut]:
    query = select(QuestionSet).options(selectinload(QuestionSet.items)).order_by(QuestionSet.id)
    return [_set_out(s) for s in db.scalars(query.limit(limit).offset(offset))]


@router.get("/question-sets/{set_id}", response_model=QuestionSetOut, tags=["question sets"])
def read_question_set(set_id: PathId, db: SessionDep) -> QuestionSetOut:
    return _set_out(get_or_404(db, QuestionSet, set_id))


@router.patch("/question-sets/{set_id}", response_model=QuestionSetOut, tags=["question sets"])
def update_question_set(set_id: PathId, body: QuestionSetUpdate, db: SessionDep) -> QuestionSetOut:
    question_set = get_or_404(db, QuestionSet, set_id)
    # Validate the new items before changing anything: their look-ups would autoflush the changes,
    # outside the conflict handling below.
    new_items = _items(db, body.question_ids) if body.question_ids is not None else None
    with conflicts_as_409(db, "a question set with that name already exists"):
        for key, value in body.model_dump(exclude_unset=True, exclude_none=True, exclude={"question_ids"}).items():
            setattr(question_set, key, value)
        if new_items is not None:
            question_set.items = []
            db.flush()  # the old items must be gone before rows with the same keys are inserted
            question_set.items = new_items
        db.commit()
    return _set_out(question_set)


@router.delete("/question-sets/{set_id}", status_code=204, response_class=HTTPResponse, tags=["question sets"])
def delete_question_set(set_id: PathId, db: SessionDep) -> None:
    db.delete(get_or_404(db, QuestionSet, set_id))
    commit_or_conflict(db, "question set is still referenced")
