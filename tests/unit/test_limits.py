"""The request size limit as plain ASGI (app/api/limits.py), text Postgres can store, and the
size settings fitting together (pure logic)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from pydantic import ValidationError
from starlette.types import Message, Receive, Scope, Send

from app.api.limits import RequestSizeLimit
from app.config import Settings, get_settings
from app.schemas import JobCreate, storable_text


def run(limit: int, headers: list[tuple[bytes, bytes]], messages: list[Message]) -> tuple[list[Message], int, bool]:
    """Send `messages` as the request body through the middleware to an app that reads the whole
    body and answers 200. Returns what the client got, how many body messages were read, and
    whether the app was called at all."""
    sent: list[Message] = []
    pending = list(messages)
    state = {"reads": 0, "called": False}

    async def receive() -> Message:
        state["reads"] += 1
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        state["called"] = True
        while True:
            message = await receive()
            if message["type"] == "http.disconnect" or not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    scope: Scope = {"type": "http", "method": "POST", "path": "/api/jobs", "headers": headers}
    asyncio.run(RequestSizeLimit(app, max_bytes=limit)(scope, receive, send))
    return sent, int(state["reads"]), bool(state["called"])


def body_chunks(*sizes: int, end: bool = True) -> list[Message]:
    return [{"type": "http.request", "body": b"x" * size, "more_body": not end or i < len(sizes) - 1}
            for i, size in enumerate(sizes)]


def test_an_announced_length_over_the_limit_is_refused_unread():
    sent, reads, called = run(100, [(b"content-length", b"101")], body_chunks(101))
    assert reads == 0 and not called, "neither the body nor the app was touched"
    assert sent[0]["status"] == 413 and (b"connection", b"close") in sent[0]["headers"]
    error = json.loads(sent[1]["body"])["error"]
    assert error["code"] == "request_too_large" and "MAX_REQUEST_BYTES" in error["message"]


def test_a_streamed_body_is_cut_off_where_it_passes_the_limit():
    sent, reads, called = run(100, [(b"transfer-encoding", b"chunked")], body_chunks(60, 60, 60, 60, end=False))
    assert called and reads == 2, "nothing more is read once the limit is passed"
    assert [m.get("status") for m in sent if m["type"] == "http.response.start"] == [413]
    assert b"ok" not in [m.get("body") for m in sent], "the app's own answer goes nowhere"


@pytest.mark.parametrize("headers,sizes", [([(b"content-length", b"100")], (100,)),
                                           ([(b"transfer-encoding", b"chunked")], (50, 50))])
def test_bodies_up_to_the_limit_pass(headers, sizes):
    sent, _, called = run(100, headers, body_chunks(*sizes))
    assert called and sent[0]["status"] == 200 and sent[1]["body"] == b"ok"


@pytest.mark.parametrize("text", ["a\x00b", "\x00", "a\ud800", "\udfff z"])
def test_text_postgres_refuses_is_refused(text):
    with pytest.raises(ValueError):
        storable_text(text)
    with pytest.raises(ValidationError):
        JobCreate(task=text)


@pytest.mark.parametrize("text", ["plain", "naïve café", "emoji \U0001f600", "日本語"])
def test_ordinary_text_passes(text):
    assert storable_text(text) == text


def test_the_default_model_dir_is_where_the_bundled_models_are(monkeypatch, tmp_path):
    from workers import bundled_models

    assert Settings().allowed_model_dirs == [bundled_models.cache_dir() / "models"]
    monkeypatch.setenv("VIBETUNE_CACHE", str(tmp_path))
    assert Settings().allowed_model_dirs == [tmp_path / "models"]
    monkeypatch.setenv("ALLOWED_MODEL_DIRS", f"{tmp_path}, /srv/models")
    assert Settings().allowed_model_dirs == [tmp_path, Path("/srv/models")]
    monkeypatch.setenv("ALLOWED_MODEL_DIRS", "models")
    with pytest.raises(ValidationError, match="absolute"):
        Settings()


def test_a_job_at_the_spec_limit_fits_the_request_limit_even_escaped():
    settings = get_settings()
    row = {"input": "ж" * settings.max_row_chars, "output": "ж"}  # 2 bytes stored, 6 sent as \u0436
    rows = settings.max_spec_bytes // len(json.dumps(row, ensure_ascii=False).encode()) - 1
    body = {"task": "t", "examples": [row] * rows}
    JobCreate.model_validate(body)  # under MAX_SPEC_BYTES
    assert len(json.dumps(body).encode()) <= settings.max_request_bytes
    with pytest.raises(ValidationError, match="MAX_SPEC_BYTES"):
        JobCreate.model_validate({**body, "test_set": [row] * 10})
