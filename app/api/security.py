"""Browser-facing safety, as one pure ASGI middleware in front of every route:

- the `Host` header must be one of `ALLOWED_HOSTS` (a page on another site that rebinds its DNS
  name to this machine gets 400, not the API);
- a browser request that would change something (`POST`, `PUT`, `PATCH`, `DELETE`) from another
  origin is refused with 403 unless that origin is in `CORS_ORIGINS` (clients that are not
  browsers, like the CLI or the openai package, send no `Origin` and are not affected);
- every response carries security headers: a Content-Security-Policy that allows only the
  service's own scripts, styles and connections (the dashboard has no inline script), no
  sniffing of content types, and no framing.

CORS itself (answering preflights for `CORS_ORIGINS`) is Starlette's `CORSMiddleware`, added by
`install_security` only when origins are configured.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.config import get_settings

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                 b"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
                                 b"frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)


def host_name(host_header: str) -> str:
    """The host of a `Host` header, without its port (IPv6 brackets removed)."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def host_allowed(host_header: str, allowed: Iterable[str]) -> bool:
    """Whether the `Host` header names one of the allowed hosts (`*` allows any)."""
    allowed = [name.lower() for name in allowed]
    return "*" in allowed or host_name(host_header) in allowed


def same_origin(origin: str, host_header: str) -> bool:
    """Whether a browser's `Origin` is the service itself (the same host and port as `Host`)."""
    parts = urlsplit(origin)
    return bool(parts.netloc) and parts.netloc.lower() == host_header.strip().lower()


class SecurityMiddleware:
    """See the module docstring."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        settings = get_settings()
        headers = {key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]}
        host = headers.get("host", "")
        if not host_allowed(host, settings.allowed_hosts):
            await _refuse(send, 400, "invalid_host", f"this service does not answer to the host {host!r}; "
                          "add it to ALLOWED_HOSTS")
            return
        origin = headers.get("origin")
        if (scope["method"] in UNSAFE_METHODS and origin and not same_origin(origin, host)
                and origin.rstrip("/").lower() not in {o.rstrip("/").lower() for o in settings.cors_origins}):
            await _refuse(send, 403, "cross_origin", f"requests from {origin} may not change anything here; "
                          "add the origin to CORS_ORIGINS to allow it")
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {key.lower() for key, _ in message.get("headers", [])}
                message["headers"] = [*message.get("headers", []),
                                      *(header for header in SECURITY_HEADERS if header[0] not in present)]
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def _refuse(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *SECURITY_HEADERS]})
    await send({"type": "http.response.body", "body": body})


def install_security(app: FastAPI) -> None:
    """Add the host/origin checks and security headers (and CORS, when `CORS_ORIGINS` is set)."""
    settings = get_settings()
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["*"],
                           allow_headers=["*"])
    app.add_middleware(SecurityMiddleware)
