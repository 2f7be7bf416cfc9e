"""OpenAI's error shape for the `/v1` routes: `{"error": {"message", "type", "param", "code"}}`.

Their callers are OpenAI clients, which read this shape (and raise `BadRequestError`,
`NotFoundError`, ... from it), so these routes answer in it instead of the service's envelope;
invalid requests are 400 as at OpenAI, not 422.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

import sqlalchemy.exc
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.api.openai.protocol import OpenAIErrorResponse
from app.errors import APIError

#: The service's error codes that OpenAI names differently.
_OPENAI_CODES = {"unauthorized": "invalid_api_key"}

log = logging.getLogger(__name__)


class OpenAIError(Exception):
    """An expected failure of a `/v1` route, answered in OpenAI's shape."""

    def __init__(self, status: int, message: str, type: str = "invalid_request_error",
                 code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = status, message, type, code, param

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status)


def internal_error() -> OpenAIError:
    return OpenAIError(500, "internal error; the server log has the details", "server_error", "internal_error")


def invalid_request(exc: RequestValidationError) -> OpenAIError:
    """A 400 naming the first offending field (and every problem in the message)."""
    problems, params = [], []
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            return OpenAIError(400, "the request body is not valid JSON", code="invalid_json")
        loc = [str(p) for p in err.get("loc", ()) if p != "body"]
        param = ".".join(loc) or None
        params.append(param)
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        problems.append(f"{param}: {message}" if param else message)
    return OpenAIError(400, "; ".join(problems) or "invalid request", param=params[0] if params else None)


class OpenAIRoute(APIRoute):
    """A route whose every error, request validation included, is in OpenAI's shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                return invalid_request(exc).response()
            except OpenAIError as exc:
                return exc.response()
            except APIError as exc:  # from a shared dependency, e.g. a missing API key (401)
                kind = "invalid_request_error" if exc.status < 500 else "server_error"
                response = OpenAIError(exc.status, exc.message, kind, _OPENAI_CODES.get(exc.code, exc.code)).response()
                response.headers.update(exc.headers)
                return response
            except StarletteHTTPException as exc:
                kind = "invalid_request_error" if exc.status_code < 500 else "server_error"
                return OpenAIError(exc.status_code, str(exc.detail), kind).response()
            except sqlalchemy.exc.TimeoutError:  # no free database connection in time: busy, not broken
                log.warning("no free database connection for %s", request.url.path)
                response = OpenAIError(503, "the service is busy; try again shortly", "server_error",
                                       "database_busy").response()
                response.headers["Retry-After"] = "1"
                return response
            except Exception:
                log.exception("unhandled error in %s", request.url.path)
                return internal_error().response()

        return handle


def openai_error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries declaring OpenAI's error shape for these statuses (and for
    any other status, so no default validation-error schema is added)."""
    descriptions = {400: "Invalid request (`invalid_request_error`), e.g. a malformed body or n > 1",
                    401: "No API key, or one that is unknown or revoked (`invalid_api_key`)",
                    404: "Unknown model (`model_not_found`)",
                    503: "The model could not be loaded (`model_unavailable`)"}
    entries: dict[int | str, dict[str, Any]] = {
        s: {"model": OpenAIErrorResponse, "description": descriptions.get(s, "Error")} for s in statuses
    }
    entries["default"] = {"model": OpenAIErrorResponse, "description": "Any other error, in the same shape"}
    return entries
