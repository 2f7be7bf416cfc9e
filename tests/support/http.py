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


def wait_for_job(client: httpx.Client, job_id: str, timeout: float) -> dict[str, Any]:
    """The job once it has finished (succeeded, failed or canceled), polled through `client`."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = client.get(f"/api/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed", "canceled") or time.monotonic() > deadline:
            return job
        time.sleep(1)
