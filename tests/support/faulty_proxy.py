"""A proxy in front of the real teacher that misbehaves on purpose: it answers some requests with
garbage, fails some with 503, or stops answering altogether, to test how the stages cope."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.processes import free_port


@dataclass
class Faults:
    garbage_every: int = 0  # every Nth answer's content is replaced by nonsense
    fail_first: int = 0  # the first N requests get a 503
    die_after: int = 0  # after N requests the proxy shuts down (0: never)


class FaultyProxy:
    def __init__(self, upstream: str, faults: Faults) -> None:
        self.upstream, self.faults = upstream.rstrip("/"), faults
        self.requests = 0
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
        async with httpx.AsyncClient(timeout=600) as client:
            upstream = await client.post(f"{self.upstream}/chat/completions", content=await request.body(),
                                         headers={"content-type": "application/json"})
        body = upstream.json()
        if self.faults.garbage_every and n % self.faults.garbage_every == 0:
            body["choices"][0]["message"]["content"] = "Well, it could be several things, hard to say!"
            if body["choices"][0].get("logprobs"):
                body["choices"][0]["logprobs"] = None
        return JSONResponse(body, status_code=upstream.status_code)
