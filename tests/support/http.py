"""httpx calls to a live service, signed with this test run's admin key (tests/conftest.py)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import ADMIN_HEADERS


def _signed(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {**kwargs, "headers": {**ADMIN_HEADERS, **(kwargs.get("headers") or {})}}


def get(url: str, **kwargs: Any) -> httpx.Response:
    return httpx.get(url, **_signed(kwargs))


def post(url: str, **kwargs: Any) -> httpx.Response:
    return httpx.post(url, **_signed(kwargs))


def delete(url: str, **kwargs: Any) -> httpx.Response:
    return httpx.delete(url, **_signed(kwargs))


def stream(method: str, url: str, **kwargs: Any) -> Any:
    return httpx.stream(method, url, **_signed(kwargs))


def async_client(**kwargs: Any) -> httpx.AsyncClient:
    """An httpx.AsyncClient that sends the admin key."""
    return httpx.AsyncClient(**_signed(kwargs))
