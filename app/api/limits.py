"""Size limits of requests: the body limit (MAX_REQUEST_BYTES), as plain ASGI middleware in front of
the whole app, and the largest page offset the list routes take.

A body announced larger than the limit (`Content-Length`) is answered 413 before a byte of it is
read. A body without a length (chunked) is counted while the app reads it; the moment it passes the
limit the client gets the 413, the app sees the client go away (its own answer is dropped), and the
rest of the body is never read. Either 413 closes the connection, since the unread rest of the body
would otherwise be taken for the next request.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.config import get_settings

TOO_LARGE_CODE = "request_too_large"

#: The largest `offset` of a paged list (`GET /api/jobs`, examples, predictions): beyond any real
#: list, and far below the 64-bit integers Postgres takes (a bigger one was a 500).
MAX_PAGE_OFFSET = 1_000_000


class RequestSizeLimit:
    """413 with the error envelope for any request body over `max_bytes` (default: MAX_REQUEST_BYTES,
    read for each request)."""

    def __init__(self, app: ASGIApp, max_bytes: int | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes if self.max_bytes is not None else get_settings().max_request_bytes
        announced = _content_length(scope)
        if announced is not None and announced > limit:
            await _reject(send, limit, f"the request body is {announced} bytes")
            return

        received = 0
        over = rejected = response_started = False

        async def counting_receive() -> Message:
            nonlocal received, over, rejected
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    over = True
                    if not response_started:
                        rejected = True
                        await _reject(send, limit, f"the request body is over {limit} bytes")
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if rejected:
                return  # the client has its 413; what the app answers to the "disconnect" goes nowhere
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        await self.app(scope, counting_receive, guarded_send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length itself
    return None


async def _reject(send: Send, limit: int, what: str) -> None:
    message = f"{what}; the limit is {limit} bytes (MAX_REQUEST_BYTES)"
    body = json.dumps({"error": {"code": TOO_LARGE_CODE, "message": message}}).encode()
    await send({"type": "http.response.start", "status": 413, "headers": [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]})
    await send({"type": "http.response.body", "body": body})
