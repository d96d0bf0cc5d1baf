"""User administration (admin only; enforced by the authorization middleware)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query, Response, status
from sqlalchemy import select

from quiz_api.deps import CurrentUser, SessionDep, SettingsDep, commit_or_conflict, get_or_404
from quiz_api.models import User
from quiz_api.params import Offset, PathId
from quiz_api.passwords import hash_password
from quiz_api.schemas import UserCreate, UserOut, UserUpdate

router = APIRouter(prefix="/users", tags=["users"])


@router.post("", response_model=UserOut, status_code=status.HTTP_201_CREATED)
def create_user(body: UserCreate, db: SessionDep, settings: SettingsDep) -> User:
    if db.scalar(select(User.id).where((User.username == body.username) | (User.email == body.email))):
        raise HTTPException(status.HTTP_409_CONFLICT, detail="username or email already registered")
    user = User(
        username=body.username,
        email=body.email,
        role=body.role,
        hashed_password=hash_password(body.password, cost=settings.password_hash),
    )
    db.add(user)
    commit_or_conflict(db, "username or email already registered")
    return user


@router.get("", response_model=list[UserOut])
def list_users(
    db: SessionDep, limit: int = Query(50, ge=1, le=200), offset: Offset = 0
) -> list[User]:
    return list(db.scalars(select(User).order_by(User.id).limit(limit).offset(offset)))


@router.get("/{user_id}", response_model=UserOut)
def read_user(user_id: PathId, db: SessionDep) -> User:
    return get_or_404(db, User, user_id)


@router.patch("/{user_id}", response_model=UserOut)
def update_user(user_id: PathId, body: UserUpdate, db: SessionDep, settings: SettingsDep) -> User:
    user = get_or_404(db, User, user_id)
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if "password" in changes:
        user.hashed_password = hash_password(changes.pop("password"), cost=settings.password_hash)
        user.token_version += 1
    if changes.get("role", user.role) != user.role or changes.get("is_active", user.is_active) != user.is_active:
        # Tokens carry the role: invalidate them when the role or the account status changes.
        user.token_version += 1
    for key, value in changes.items():
        setattr(user, key, value)
    commit_or_conflict(db, "email already registered")
    return user


@router.delete("/{user_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def delete_user(user_id: PathId, admin: CurrentUser, db: SessionDep) -> None:
    user = get_or_404(db, User, user_id)
    if user.id == admin.id:
        raise HTTPException(status.HTTP_409_CONFLICT, detail="an admin cannot delete their own account")
    db.delete(user)
    commit_or_conflict(db, "user is still referenced")

