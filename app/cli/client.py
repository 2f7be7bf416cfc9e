"""A small synchronous client for the vibetune REST API, used by the `vibetune` client commands."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

import httpx

DEFAULT_URL = "http://127.0.0.1:8000"
#: Reconnect attempts when a live event stream drops (each waits twice as long as the last).
STREAM_RETRIES = 5
_CHUNK = 1024 * 1024


class ClientError(Exception):
    """An expected failure, with the one-line message to show (and, for invalid requests, one line
    per offending field)."""

    def __init__(self, message: str, fields: list[dict[str, str]] | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message, self.fields, self.status = message, fields or [], status

    def lines(self) -> list[str]:
        """What to print on stderr."""
        field_lines = [line for f in self.fields for line in _field_lines(f)]
        headline = self.message
        # Validation messages already join the field errors; listing them again below is enough.
        if field_lines and self.message == "; ".join(f"{f.get('field')}: {f.get('message')}" for f in self.fields):
            headline = "the server refused the request:"
        return [f"vibetune: {headline}", *field_lines]


def _field_lines(error: dict[str, str]) -> list[str]:
    """One invalid field's lines: `  field: message`. A message that already names its locations
    (`tools.1.function.name: ...; tools.2.type: ...`) is one line per location; a whole-body problem
    (field `body`) is its message alone (it says what it is about)."""
    field, message = str(error.get("field")), str(error.get("message"))
    if field == "body":
        return [f"  {message}"]
    parts = message.split("; ")
    if all(part.startswith((f"{field}.", f"{field}[")) for part in parts):
        return [f"  {part}" for part in parts]
    return [f"  {field}: {message}"]


def api_key(key: str | None) -> str | None:
    """The API key to send: `--api-key`, else VIBETUNE_API_KEY, else none."""
    return key or os.environ.get("VIBETUNE_API_KEY") or None


def server_url(url: str | None) -> str:
    """The API's base URL: `--url`, else VIBETUNE_URL, else the local default."""
    return (url or os.environ.get("VIBETUNE_URL") or DEFAULT_URL).rstrip("/")


def parse_sse(lines: Iterable[str]) -> Iterator[tuple[str, Any]]:
    """(event, decoded JSON data) for each Server-Sent Event in `lines`; comments and `retry:`
    fields are skipped, as are events without data."""
    event = "message"
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield event, json.loads("\n".join(data))
            event, data = "message", []
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                event = value
            elif field == "data":
                data.append(value)


def safe_path(folder: Path, name: str) -> Path:
    """Where artifact `name` goes under `folder`; names that could leave it are refused."""
    parts = PurePosixPath(name).parts
    if not name or "\\" in name or PurePosixPath(name).is_absolute() or ".." in parts or not parts:
        raise ClientError(f"refusing the unsafe artifact name {name!r}")
    return folder.joinpath(*parts)


def file_sha256(path: Path) -> str:
    """The sha256 hex digest of a file."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class VibetuneClient:
    """The REST API at `base_url`. Every failure the person can act on is a `ClientError`."""

    def __init__(self, base_url: str, timeout: float = 30.0, api_key: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, headers=headers)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> VibetuneClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _unreachable(self, exc: httpx.TransportError) -> ClientError:
        if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
            return ClientError(f"cannot reach the vibetune server at {self.base_url} "
                               "(start it with `make up`, or set --url / VIBETUNE_URL)")
        if isinstance(exc, httpx.UnsupportedProtocol):
            return ClientError(f"invalid server URL {self.base_url!r} (expected http://host:port)")
        reason = str(exc) or type(exc).__name__
        return ClientError(f"lost the connection to the vibetune server at {self.base_url}: {reason}")

    @staticmethod
    def _api_error(response: httpx.Response) -> ClientError:
        try:
            error = response.json()["error"]
            message = error["message"]
            if response.status_code == 401:
                message += " (pass --api-key or set VIBETUNE_API_KEY)"
            return ClientError(message, error.get("fields"), response.status_code)
        except (ValueError, KeyError, TypeError):
            return ClientError(f"the server answered HTTP {response.status_code} {response.reason_phrase}",
                               status=response.status_code)

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        if response.status_code >= 400:
            raise self._api_error(response)
        if response.status_code == 204:
            return None
        try:
            return response.json()
        except ValueError:
            raise ClientError(f"{self.base_url} did not answer like a vibetune server (HTTP {response.status_code}, "
                              "not JSON)") from None

    def create_job(self, body: dict[str, Any]) -> dict[str, Any]:
        """Submit a job; returns it (queued)."""
        return self._request("POST", "/api/jobs", json=body)

    def estimate(self, body: dict[str, Any]) -> dict[str, Any]:
        """What a job of this body would take, per stage and in all, without submitting it."""
        return self._request("POST", "/api/jobs/estimate", json=body)

    def list_jobs(self, limit: int = 20) -> dict[str, Any]:
        """`{"items": [job summary, ...], "total": n}`, newest first."""
        return self._request("GET", "/api/jobs", params={"limit": limit})

    def get_job(self, job_id: str) -> dict[str, Any]:
        """The job with its stages and warnings."""
        return self._request("GET", f"/api/jobs/{job_id}")

    def report(self, job_id: str) -> dict[str, Any]:
        """The job's scores so far and its verdict."""
        return self._request("GET", f"/api/jobs/{job_id}/report")

    def compare(self, job_ids: Iterable[str], rows: int = 10) -> dict[str, Any]:
        """Finished jobs side by side on their common test rows, with the first `rows` rows where
        their students differ."""
        return self._request("GET", "/api/compare", params={"jobs": ",".join(job_ids), "limit": rows})

    def examples(self, job_id: str, limit: int = 50, offset: int = 0, deleted: bool | None = None) -> dict[str, Any]:
        """A page of the job's data set (`items`, `total`, `revision`, `editable`)."""
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if deleted is not None:
            params["deleted"] = str(deleted).lower()
        return self._request("GET", f"/api/jobs/{job_id}/examples", params=params)

    def import_data(self, job_id: str, rows: list[dict[str, Any]], dry_run: bool = False) -> dict[str, Any]:
        """Make the job's data set equal an edited export; the changes and the new revision."""
        return self._request("POST", f"/api/jobs/{job_id}/data/import", json={"rows": rows, "dry_run": dry_run})

    def data_revisions(self, job_id: str) -> dict[str, Any]:
        """`{"current": n, "items": [revision, ...]}`, newest first."""
        return self._request("GET", f"/api/jobs/{job_id}/data/revisions")

    def artifacts(self, job_id: str) -> list[dict[str, Any]]:
        """The job's files: name, size, sha256, url."""
        return self._request("GET", f"/api/jobs/{job_id}/artifacts")["items"]

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel a queued or running job."""
        return self._request("POST", f"/api/jobs/{job_id}/cancel")

    def resume(self, job_id: str) -> dict[str, Any]:
        """Queue a failed, canceled or data-only job again."""
        return self._request("POST", f"/api/jobs/{job_id}/resume")

    def me(self) -> dict[str, Any]:
        """`{"owner", "admin", "auth"}` for this client's key."""
        return self._request("GET", "/api/me")

    def create_key(self, owner: str, admin: bool = False, name: str = "") -> dict[str, Any]:
        """Make an API key (admins only); the answer's `key` is shown this once."""
        return self._request("POST", "/api/keys", json={"owner": owner, "admin": admin, "name": name})

    def list_keys(self) -> list[dict[str, Any]]:
        """Keys this client may see, newest first."""
        return self._request("GET", "/api/keys")["items"]

    def revoke_key(self, key_id: int) -> None:
        """Revoke a key."""
        self._request("DELETE", f"/api/keys/{key_id}")

    def follow(self, job_id: str, retries: int = STREAM_RETRIES) -> Iterator[dict[str, Any]]:
        """Each new state of the job, live, until it has finished. A dropped stream is reopened
        (every event is a whole snapshot, so nothing is lost)."""
        failures = 0
        while True:
            error: httpx.TransportError | None = None
            try:
                with self._http.stream("GET", f"/api/jobs/{job_id}/events",
                                       timeout=httpx.Timeout(10, read=None)) as response:
                    if response.status_code >= 400:
                        response.read()
                        raise self._api_error(response)
                    for event, data in parse_sse(response.iter_lines()):
                        failures = 0
                        if event == "job":
                            yield data
                        elif event == "end":
                            if data.get("status") == "deleted":
                                raise ClientError(f"job {job_id} was deleted")
                            return
            except httpx.TransportError as exc:
                error = exc
            failures += 1
            if failures > retries:
                raise self._unreachable(error) if error else ClientError(
                    f"the event stream of job {job_id} keeps closing early")
            time.sleep(min(8.0, 0.5 * 2 ** (failures - 1)))

    @contextmanager
    def _artifact_bytes(self, url: str) -> Iterator[httpx.Response]:
        """The open response carrying an artifact's bytes: the API's own, or, where the API answers
        with a redirect (ARTIFACT_PRESIGNED_URLS), the object store's at the presigned URL it names.
        That one is fetched by a client of its own, without this client's API key or cookies: the
        URL carries its own signature, and the key must never reach the store (httpx would keep the
        header on a redirect to the same host)."""
        try:
            with self._http.stream("GET", url) as response:
                if response.status_code >= 400:
                    response.read()
                    raise self._api_error(response)
                location = response.headers.get("location") if response.is_redirect else None
                if location is None:
                    yield response
                    return
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc
        target = response.url.join(location)
        try:
            with httpx.Client(timeout=self._http.timeout) as store, store.stream("GET", target) as stored:
                if stored.status_code >= 400:
                    raise ClientError(f"the object store at {target.host} answered HTTP {stored.status_code} "
                                      f"{stored.reason_phrase} for {url}", status=stored.status_code)
                yield stored
        except httpx.TransportError as exc:
            raise ClientError(f"could not download from the object store at {target.host}: "
                              f"{str(exc) or type(exc).__name__}") from exc

    def download(self, item: dict[str, Any], folder: Path) -> bool:
        """Fetch one artifact into `folder` (subfolders from its name), checking its sha256 while
        streaming; the file appears only once it matches. False if it was already there."""
        target = safe_path(folder, item["name"])
        if target.is_file() and file_sha256(target) == item["sha256"]:
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        temp = Path(temp_name)
        try:
            digest = hashlib.sha256()
            with os.fdopen(fd, "wb") as out, self._artifact_bytes(item["url"]) as response:
                for chunk in response.iter_bytes(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
            if digest.hexdigest() != item["sha256"]:
                raise ClientError(f"checksum mismatch for {item['name']} "
                                  f"(expected {item['sha256']}, got {digest.hexdigest()})")
            temp.replace(target)
        finally:
            temp.unlink(missing_ok=True)
        return True
