"""Dashboard sign-in: a key checked once and kept in an HttpOnly cookie, so page scripts never
hold it and `EventSource` streams (which cannot send headers) carry it too. SameSite=Strict and
the cross-site check of `app.api.security` keep other sites from using the cookie."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from app.api.auth import KEY_COOKIE, caller_for_key, unauthorized
from app.config import get_settings
from app.errors import errors
from app.schemas import Me, SessionCreate

router = APIRouter(prefix="/api/session", tags=["keys"])

#: How long the browser keeps the cookie (the key itself does not expire; revoking it ends the session).
COOKIE_SECONDS = 30 * 24 * 3600


@router.post("", response_model=Me, responses=errors(400, 401, 422))
async def sign_in(body: SessionCreate, request: Request, response: Response) -> Me:
    """Check a key and keep it in the dashboard's cookie; 401 for an unknown or revoked key."""
    caller = await caller_for_key(body.key)
    if caller is None:
        raise unauthorized("the API key is unknown or revoked")
    response.set_cookie(KEY_COOKIE, body.key, max_age=COOKIE_SECONDS, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/")
    return Me(owner=caller.owner, admin=caller.admin, auth=get_settings().auth)


@router.delete("", status_code=204)
def sign_out() -> Response:
    """Forget the dashboard's cookie."""
    response = Response(status_code=204)
    response.delete_cookie(KEY_COOKIE, path="/", httponly=True, samesite="strict")
    return response
