"""API keys through the real API on the real database: made by admins, stored hashed, shown
once, revoked at once; the dashboard's cookie; the per-owner limit on active jobs; AUTH=off."""

from __future__ import annotations

import hashlib
import threading

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.db import session_scope
from app.main import create_app
from app.models import ApiKey
from tests.support.factories import make_job, make_key


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_an_admin_makes_a_key_that_is_shown_once_and_stored_hashed(client):
    made = client.post("/api/keys", json={"owner": "dana", "name": "laptop"})
    assert made.status_code == 201, made.text
    key = made.json()["key"]
    assert key.startswith("vt_") and len(key) == 46
    assert made.json() | {"key": None} == made.json() | {"key": None, "owner": "dana", "admin": False, "name": "laptop"}
    with session_scope() as session:
        stored = session.execute(select(ApiKey).where(ApiKey.id == made.json()["id"])).scalar_one()
        assert stored.key_hash == hashlib.sha256(key.encode()).hexdigest()
        assert key not in {stored.prefix, stored.key_hash, stored.name} and key.startswith(stored.prefix)
    listed = client.get("/api/keys").json()["items"]
    assert made.json()["id"] in {k["id"] for k in listed}
    assert all("key" not in k for k in listed), "a list never shows a key"
    assert client.get("/api/me", headers=bearer(key)).json() == {"owner": "dana", "admin": False, "auth": True}


def test_only_admins_make_keys_and_owners_see_only_their_own(client):
    erin = make_key("erin")
    refused = client.post("/api/keys", json={"owner": "erin", "admin": True}, headers=erin)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert {k["owner"] for k in client.get("/api/keys", headers=erin).json()["items"]} == {"erin"}
    for bad in ({"owner": ""}, {"owner": "a b"}, {"owner": "x" * 129}, {"owner": "ok", "admin": "yes"},
                {"owner": "ok", "extra": 1}):
        assert client.post("/api/keys", json=bad).status_code == 422, bad


def test_a_revoked_key_stops_at_once_and_others_keys_are_404(client):
    frank = client.post("/api/keys", json={"owner": "frank"}).json()
    grace = make_key("grace")
    assert client.get("/api/jobs", headers=bearer(frank["key"])).status_code == 200  # now in the key cache
    assert client.delete(f"/api/keys/{frank['id']}", headers=grace).status_code == 404
    assert client.delete(f"/api/keys/{frank['id']}", headers=bearer(frank["key"])).status_code == 204
    gone = client.get("/api/jobs", headers=bearer(frank["key"]))
    assert gone.status_code == 401 and gone.json()["error"]["message"] == "the API key is unknown or revoked"
    assert client.delete(f"/api/keys/{frank['id']}").status_code == 204, "revoking twice is harmless"
    revoked = [k for k in client.get("/api/keys").json()["items"] if k["id"] == frank["id"]]
    assert revoked[0]["revoked_at"] is not None and revoked[0]["last_used_at"] is not None


def test_the_dashboard_signs_in_with_an_httponly_cookie(test_database):
    key = make_key("heidi")["Authorization"].removeprefix("Bearer ")
    with TestClient(create_app(), raise_server_exceptions=False) as browser:
        assert browser.get("/api/jobs").status_code == 401
        assert browser.post("/api/session", json={"key": "vt_wrong"}).status_code == 401
        signed = browser.post("/api/session", json={"key": key})
        assert signed.status_code == 200 and signed.json()["owner"] == "heidi"
        cookie = signed.headers["set-cookie"]
        assert f"vibetune_key={key}" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert browser.get("/api/me").json()["owner"] == "heidi"
        assert browser.get("/api/jobs", headers={"Authorization": "Basic eDp5"}).status_code == 401, \
            "another scheme is refused, not mixed with the cookie"
        assert browser.delete("/api/session").status_code == 204
        assert browser.get("/api/jobs").status_code == 401


def test_the_per_owner_limit_is_429_on_submit_and_resume_and_holds_under_a_race(client, settings_env):
    settings_env(MAX_ACTIVE_JOBS_PER_OWNER="3")
    ivan = make_key("ivan")
    body = {"task": "is this spam?", "labels": ["spam", "ham"], "until": "data"}
    with TestClient(create_app(), raise_server_exceptions=False) as api:
        statuses: list[int] = []

        def submit() -> None:
            statuses.append(api.post("/api/jobs", json=body, headers=ivan).status_code)

        threads = [threading.Thread(target=submit) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(statuses) == [201] * 3 + [429] * 5, statuses
        refused = api.post("/api/jobs", json=body, headers=ivan)
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "too_many_active_jobs"
        assert "ivan already has 3 active" in refused.json()["error"]["message"]
        assert api.post("/api/jobs", json=body, headers=make_key("judy")).status_code == 201, "per owner"
        ids = [j["id"] for j in api.get("/api/jobs", headers=ivan).json()["items"]]
        assert api.post(f"/api/jobs/{ids[0]}/cancel", headers=ivan).status_code == 200
        assert api.post("/api/jobs", json=body, headers=ivan).status_code == 201, "a canceled job frees its place"
        assert api.post(f"/api/jobs/{ids[0]}/resume", headers=ivan).status_code == 429


def test_auth_off_makes_everyone_the_local_admin(settings_env):
    settings_env(AUTH="off")
    job_id = make_job("someone")
    with TestClient(create_app(), raise_server_exceptions=False) as api:
        assert api.get("/api/me").json() == {"owner": "local", "admin": True, "auth": False}
        assert api.get(f"/api/jobs/{job_id}").status_code == 200


def test_an_open_event_stream_ends_once_its_key_is_revoked(client, monkeypatch):
    from app.api.routes import events

    monkeypatch.setattr(events, "RECHECK_SECONDS", 0.5)
    made = client.post("/api/keys", json={"owner": "kim"}).json()
    job_id = make_job("kim")
    with TestClient(create_app(), raise_server_exceptions=False) as api:
        with api.stream("GET", f"/api/jobs/{job_id}/events", headers=bearer(made["key"])) as stream:
            lines = stream.iter_lines()
            assert next(line for line in lines if line.startswith("event:")) == "event: job"
            assert client.delete(f"/api/keys/{made['id']}").status_code == 204
            rest = list(lines)  # the server ends the stream: this returns
    assert "event: end" in rest and any('"status":"unauthorized"' in line for line in rest), rest
