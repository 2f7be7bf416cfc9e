"""API key routes: an admin makes keys for owners; anyone lists and revokes their own."""

from __future__ import annotations

from fastapi import APIRouter, Response

from app import auth
from app.api.auth import AUTHENTICATED, AdminDep, CallerDep, recent_keys
from app.config import get_settings
from app.db import session_scope
from app.errors import errors, not_found
from app.models import ApiKey
from app.schemas import KeyCreate, KeyCreated, KeyPublic, KeysPublic, Me

router = APIRouter(prefix="/api", tags=["keys"], **AUTHENTICATED)


def key_public(record: ApiKey) -> KeyPublic:
    return KeyPublic(id=record.id, owner=record.owner, name=record.name, admin=record.admin, prefix=record.prefix,
                     created_at=record.created_at, last_used_at=record.last_used_at, revoked_at=record.revoked_at)


@router.post("/keys", status_code=201, response_model=KeyCreated, responses=errors(400, 403, 422))
def create_key(body: KeyCreate, _: AdminDep) -> KeyCreated:
    """Make a key for an owner (admins only). The answer is the only time the key is shown."""
    with session_scope() as session:
        made = auth.create_key(session, body.owner, admin=body.admin, name=body.name)
        session.refresh(made.record)
        return KeyCreated(**key_public(made.record).model_dump(), key=made.key)


@router.get("/keys", response_model=KeysPublic)
def list_keys(caller: CallerDep) -> KeysPublic:
    """Keys, newest first: every key for an admin, the caller's own otherwise."""
    with session_scope() as session:
        return KeysPublic(items=[key_public(k) for k in auth.list_keys(session, caller)])


@router.delete("/keys/{key_id}", status_code=204, responses=errors(404, 422))
def revoke_key(key_id: int, caller: CallerDep) -> Response:
    """Revoke a key (the caller's own, or any for an admin). It stops working at once here and
    within AUTH_CACHE_SECONDS in other API processes. Another owner's key is a 404."""
    with session_scope() as session:
        record = auth.revoke_key(session, caller, key_id)
        if record is None:
            raise not_found(f"key {key_id}")
    recent_keys.forget(key_id)
    return Response(status_code=204)


@router.get("/me", response_model=Me)
def me(caller: CallerDep) -> Me:
    """Who this request's key acts for."""
    return Me(owner=caller.owner, admin=caller.admin, auth=get_settings().auth)
