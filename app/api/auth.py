"""Who is calling: the API key of a request, checked once per few seconds per process.

A request carries its key as `Authorization: Bearer <key>` (the CLI, the openai package, any
script) or in the `vibetune_key` cookie that `POST /api/session` sets for the dashboard (a
browser's `EventSource` cannot send headers). A key checked within AUTH_CACHE_SECONDS is trusted
without a database query or a thread, so signing every request costs nothing under load; a
revoke in this process forgets the key at once, other processes within that time.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import anyio.to_thread
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.auth import LOCAL_ADMIN, Caller, authenticate, key_hash
from app.config import get_settings
from app.db import session_scope
from app.errors import APIError, errors

#: The dashboard's cookie (HttpOnly, SameSite=Strict).
KEY_COOKIE = "vibetune_key"

bearer = HTTPBearer(
    auto_error=False, scheme_name="APIKey", bearerFormat="vt_...",
    description="An API key: `Authorization: Bearer vt_...` (an admin makes them with POST /api/keys).",
)


class KeyCache:
    """Keys checked lately, by hash: the caller each stands for and until when to trust it."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[Caller, float]] = {}

    def get(self, digest: str) -> Caller | None:
        entry = self._entries.get(digest)
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]

    def put(self, digest: str, caller: Caller, seconds: float) -> None:
        if seconds > 0:
            if len(self._entries) > 10_000:  # made-up keys are never stored, so this is many real ones
                self._entries.clear()
            self._entries[digest] = (caller, time.monotonic() + seconds)

    def forget(self, key_id: int) -> None:
        """Drop a key (after it was revoked here)."""
        for digest, (caller, _) in list(self._entries.items()):
            if caller.key_id == key_id:
                del self._entries[digest]


recent_keys = KeyCache()


def unauthorized(message: str) -> APIError:
    return APIError(401, "unauthorized", message, headers={"WWW-Authenticate": 'Bearer realm="vibetune"'})


def _check(key: str) -> Caller | None:
    with session_scope() as session:
        return authenticate(session, key)


async def caller_for_key(key: str) -> Caller | None:
    """The caller a key stands for (from the cache, else the database in a worker thread)."""
    digest = key_hash(key)
    caller = recent_keys.get(digest)
    if caller is None:
        caller = await anyio.to_thread.run_sync(_check, key)
        if caller is not None:
            recent_keys.put(digest, caller, get_settings().auth_cache_seconds)
    return caller


def request_key(request: Request, credentials: HTTPAuthorizationCredentials | None) -> str | None:
    """The key a request carries: its bearer token, else the dashboard's cookie."""
    if credentials is not None:
        return credentials.credentials
    if request.headers.get("authorization"):
        return None  # some other scheme (e.g. Basic): refused, never mixed with a cookie
    return request.cookies.get(KEY_COOKIE)


async def current_caller(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Caller:
    """The caller of this request, or 401 `unauthorized`."""
    if not get_settings().auth:
        return LOCAL_ADMIN
    key = request_key(request, credentials)
    if not key:
        raise unauthorized("an API key is required: send `Authorization: Bearer <key>` "
                           "(an admin makes keys with `vibetune keys create`)")
    caller = await caller_for_key(key)
    if caller is None:
        raise unauthorized("the API key is unknown or revoked")
    return caller


CallerDep = Annotated[Caller, Depends(current_caller)]


async def require_admin(caller: CallerDep) -> Caller:
    """The caller, who must hold an admin key (403 `forbidden` otherwise)."""
    if not caller.admin:
        raise APIError(403, "forbidden", "this needs an admin key")
    return caller


AdminDep = Annotated[Caller, Depends(require_admin)]

#: Keyword arguments for an `APIRouter` whose every route needs a key.
AUTHENTICATED: dict[str, Any] = {"dependencies": [Depends(current_caller)], "responses": errors(401)}


async def still_signed_in(request: Request) -> bool:
    """Whether the key a request came with still works (a long-lived stream asks now and then)."""
    if not get_settings().auth:
        return True
    key = request_key(request, await bearer(request))
    return key is not None and key != "" and await caller_for_key(key) is not None
