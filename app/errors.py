"""One error envelope for every failure: {"error": {"code": ..., "message": ...}}."""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.schemas import ErrorResponse

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 1

_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
          409: "conflict", 413: "too_large", 416: "range_not_satisfiable", 422: "validation_error", 503: "unavailable"}


class APIError(Exception):
    """An expected failure with its HTTP status, error code and message for people."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def not_found(what: str) -> APIError:
    return APIError(404, "not_found", f"{what} not found")


def error_response(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message, **extra}
    return JSONResponse({"error": body}, status_code=status)


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


def _validation_message(err: dict[str, Any]) -> str:
    msg = str(err.get("msg", "invalid"))
    return msg.removeprefix("Value error, ")


async def _on_validation(_: Request, exc: RequestValidationError) -> JSONResponse:
    fields = [{"field": _field_name(tuple(e.get("loc", ()))), "message": _validation_message(e)} for e in exc.errors()]
    message = "; ".join(f"{f['field']}: {f['message']}" for f in fields) or "invalid request"
    return error_response(422, "validation_error", message, fields=fields)


async def _on_api_error(_: Request, exc: APIError) -> JSONResponse:
    response = error_response(exc.status, exc.code, exc.message)
    response.headers.update(exc.headers)
    return response


async def _on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = _CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    response = error_response(exc.status_code, code, message)
    response.headers.update(exc.headers or {})
    if exc.status_code == 405:
        # Starlette's `Allow` names the methods of the first route on the path only; RFC 9110 wants all.
        response.headers["Allow"] = ", ".join(allowed_methods(request.app, request.url.path))
    return response


def allowed_methods(app: Any, path: str) -> list[str]:
    """Every method some route of `app` answers on `path` (HEAD with GET, as Starlette does)."""
    methods: set[str] = set()
    for route in app.routes:
        regex, route_methods = getattr(route, "path_regex", None), getattr(route, "methods", None)
        if regex is not None and route_methods and regex.match(path):
            methods |= set(route_methods)
    return sorted(methods)


async def _on_pool_timeout(_: Request, exc: sqlalchemy.exc.TimeoutError) -> JSONResponse:
    # No free database connection within DB_POOL_TIMEOUT: the service is busy, not broken.
    log.warning("no free database connection: %s", exc)
    response = error_response(503, "database_busy", "the database is busy; try again shortly")
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


async def _on_unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return error_response(500, "internal_error", "internal error; the server log has the details")


def install_error_handlers(app: FastAPI) -> None:
    """Make every error, including validation and unknown routes, use the envelope."""
    app.add_exception_handler(RequestValidationError, _on_validation)  # type: ignore[arg-type]
    app.add_exception_handler(APIError, _on_api_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _on_http_error)  # type: ignore[arg-type]
    app.add_exception_handler(sqlalchemy.exc.TimeoutError, _on_pool_timeout)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _on_unexpected)


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries declaring the error envelope for these statuses."""
    descriptions = {400: "Bad request (e.g. a body that is not UTF-8 JSON)", 404: "Not found",
                    401: "No API key, or one that is unknown or revoked", 403: "The key is not an admin key",
                    409: "Conflict with the job's state", 429: "Too many active jobs for this owner",
                    413: "The body is over MAX_REQUEST_BYTES",
                    416: "Range not satisfiable", 422: "Invalid input; `fields` names each offending field",
                    503: "A dependency is unavailable"}
    return {s: {"model": ErrorResponse, "description": descriptions.get(s, "Error")} for s in statuses}
