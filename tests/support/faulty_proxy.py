"""A proxy in front of the real teacher that misbehaves on purpose: it answers some requests with
garbage, fails some with 503, stops answering altogether, or forwards streamed answers slowly,
to test how the stages cope. Streamed requests (`"stream": true`) are streamed through."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.support.processes import free_port

GARBAGE = "Well, it could be several things, hard to say!"


@dataclass
class Faults:
    garbage_every: int = 0  # every Nth answer's content is replaced by nonsense
    fail_first: int = 0  # the first N requests get a 503
    die_after: int = 0  # after N requests the proxy shuts down (0: never)
    trickle: float = 0.0  # seconds between two forwarded events of a streamed answer (the first is not held)
    refuse: str = ""  # a request field answered with 400, as an endpoint that does not know it answers


class FaultyProxy:
    def __init__(self, upstream: str, faults: Faults) -> None:
        self.upstream, self.faults = upstream.rstrip("/"), faults
        self.requests = 0
        #: Every chat request's body as the client sent it.
        self.bodies: list[dict] = []
        self.in_flight = self.max_in_flight = 0
        #: Seconds from request to the end of each answer forwarded in full.
        self.durations: list[float] = []
        #: The longest gap between two forwarded pieces of one streamed answer (or before its first).
        self.longest_silence = 0.0
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        app = Starlette(routes=[Route("/v1/chat/completions", self._chat, methods=["POST"]),
                                Route("/v1/models", self._models)])
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self._thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> FaultyProxy:
        self._thread.start()
        while not self.server.started:
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=10)

    async def _models(self, request: Request) -> Response:
        async with httpx.AsyncClient() as client:
            upstream = await client.get(f"{self.upstream}/models")
        return Response(upstream.content, upstream.status_code, media_type="application/json")

    async def _chat(self, request: Request) -> Response:
        self.requests += 1
        n = self.requests
        if self.faults.die_after and n > self.faults.die_after:
            self.server.should_exit = True
            return JSONResponse({"error": {"message": "going away"}}, status_code=503)
        if n <= self.faults.fail_first:
            return JSONResponse({"error": {"message": "overloaded"}}, status_code=503)
        body = await request.body()
        self.bodies.append(json.loads(body))
        if self.faults.refuse and self.faults.refuse in self.bodies[-1]:
            return JSONResponse({"error": {"message": f"Unrecognized request argument supplied: {self.faults.refuse}",
                                           "type": "invalid_request_error"}}, status_code=400)
        garbage = bool(self.faults.garbage_every and n % self.faults.garbage_every == 0)
        if json.loads(body).get("stream"):
            return await self._stream(body, garbage)
        started = time.monotonic()
        async with httpx.AsyncClient(timeout=600) as client:
            upstream = await client.post(f"{self.upstream}/chat/completions", content=body,
                                         headers={"content-type": "application/json"})
        answer = upstream.json()
        if garbage:
            answer["choices"][0]["message"]["content"] = GARBAGE
            if answer["choices"][0].get("logprobs"):
                answer["choices"][0]["logprobs"] = None
        self.durations.append(time.monotonic() - started)
        return JSONResponse(answer, status_code=upstream.status_code)

    async def _stream(self, body: bytes, garbage: bool) -> Response:
        started = time.monotonic()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        client = httpx.AsyncClient(timeout=600)
        upstream = await client.send(client.build_request(
            "POST", f"{self.upstream}/chat/completions", content=body,
            headers={"content-type": "application/json"}), stream=True)
        if upstream.status_code != 200:
            content = await upstream.aread()
            await upstream.aclose()
            await client.aclose()
            self.in_flight -= 1
            return Response(content, upstream.status_code, media_type="application/json")

        async def events() -> AsyncIterator[bytes]:
            last, first, wrote_garbage = started, True, False
            try:
                buffer = b""
                async for piece in upstream.aiter_bytes():
                    buffer += piece
                    while b"\n\n" in buffer:
                        event, buffer = buffer.split(b"\n\n", 1)
                        if garbage:
                            event, wrote_garbage = _garble(event, wrote_garbage)
                        if self.faults.trickle and not first:
                            await asyncio.sleep(self.faults.trickle)
                        first = False
                        now = time.monotonic()
                        self.longest_silence = max(self.longest_silence, now - last)
                        last = now
                        yield event + b"\n\n"
                self.durations.append(time.monotonic() - started)
            finally:
                self.in_flight -= 1
                await upstream.aclose()
                await client.aclose()

        return StreamingResponse(events(), media_type="text/event-stream")


def _garble(event: bytes, wrote: bool) -> tuple[bytes, bool]:
    """One streamed event with its content replaced by nonsense (once per answer) and no logprobs."""
    if not event.startswith(b"data: {"):
        return event, wrote
    chunk = json.loads(event[len(b"data: "):])
    for choice in chunk.get("choices") or []:
        choice["logprobs"] = None
        delta = choice.get("delta") or {}
        if delta.get("content"):
            delta["content"] = "" if wrote else GARBAGE
            wrote = True
    return b"data: " + json.dumps(chunk).encode(), wrote
