"""Checks of the parts the service depends on, each answering "ok" or what is wrong.

What is wrong is for the operator, not for whoever asks `/health` (which answers without a key):
it may name internal hosts, and a URL may hold credentials. `public` turns a check's answer into
what `/health` shows, and logs the details with any credentials in URLs masked.
"""

from __future__ import annotations

import logging
import re

import httpx
import redis
from sqlalchemy import text

from app.config import get_settings
from app.db import get_engine

log = logging.getLogger(__name__)
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s]+@", re.IGNORECASE)


def redact(text: str) -> str:
    """`text` with the user and password of every URL in it replaced by `***`."""
    return _URL_CREDENTIALS.sub(lambda m: f"{m.group('scheme')}***@", text)


def public(part: str, state: str) -> str:
    """What `/health` says of a part: `ok` or `error`; the details of an error go to the log."""
    if state == "ok":
        return "ok"
    log.warning("health: %s is not ok: %s", part, redact(state))
    return "error"


def check_database() -> str:
    """'ok' if Postgres answers a query and the schema is migrated."""
    try:
        with get_engine().connect() as conn:
            conn.execute(text("SELECT 1 FROM jobs LIMIT 1"))
    except Exception as exc:
        return f"error: {_first_line(exc)}"
    return "ok"


def check_broker() -> str:
    """'ok' if the Redis broker answers PING."""
    try:
        client = redis.Redis.from_url(get_settings().redis_url, socket_timeout=2, socket_connect_timeout=2)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:
        return f"error: {_first_line(exc)}"
    return "ok"


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def check_teacher() -> str:
    """'ok' if the teacher endpoint answers and serves the default teacher model."""
    settings = get_settings()
    try:
        response = httpx.get(f"{settings.teacher_url.rstrip('/')}/models", timeout=3,
                             headers={"Authorization": f"Bearer {settings.teacher_api_key}"})
        response.raise_for_status()
        served = [m.get("id") for m in response.json().get("data", [])]
    except Exception as exc:
        return f"error: {settings.teacher_url} unreachable ({_first_line(exc)})"
    if settings.teacher_model not in served:
        return f"error: {settings.teacher_url} does not serve {settings.teacher_model!r} (it serves {served})"
    return "ok"
