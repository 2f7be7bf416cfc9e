"""Browser-facing safety on the real app: allowed hosts, cross-site changes refused, CORS only when
configured, security headers on the dashboard and the API."""

from fastapi.testclient import TestClient

from app.main import create_app
from tests.conftest import ADMIN_HEADERS
from tests.support.factories import load, make_job


def test_an_unknown_host_is_refused_with_the_envelope(client):
    response = client.get("/api/jobs", headers={"Host": "rebound.example"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_host" and "ALLOWED_HOSTS" in response.json()["error"]["message"]
    assert client.get("/api/jobs").status_code == 200


def test_a_cross_site_change_is_refused_and_changes_nothing(client):
    job_id = make_job()
    response = client.post(f"/api/jobs/{job_id}/cancel", headers={"Origin": "https://evil.example"})
    assert response.status_code == 403 and response.json()["error"]["code"] == "cross_origin"
    assert load(job_id).status == "queued"
    assert client.get(f"/api/jobs/{job_id}", headers={"Origin": "https://evil.example"}).status_code == 200, \
        "reading is not a change (and without CORS the browser never hands the answer to the page)"
    same_site = client.post(f"/api/jobs/{job_id}/cancel", headers={"Origin": "http://testserver"})
    assert same_site.status_code == 200 and same_site.json()["status"] == "canceled"


def test_cors_answers_only_configured_origins(client, settings_env):
    preflight = {"Origin": "https://tools.example", "Access-Control-Request-Method": "POST"}
    assert "access-control-allow-origin" not in client.options("/api/jobs", headers=preflight).headers
    settings_env(CORS_ORIGINS="https://tools.example")
    with TestClient(create_app(), headers=ADMIN_HEADERS) as configured:
        answer = configured.options("/api/jobs", headers=preflight)
        assert answer.headers["access-control-allow-origin"] == "https://tools.example"
        job_id = make_job()
        allowed = configured.post(f"/api/jobs/{job_id}/cancel", headers={"Origin": "https://tools.example"})
        assert allowed.status_code == 200


def test_security_headers_on_the_dashboard_and_the_api(client):
    for path in ("/", "/js/app.js", "/api/jobs", "/api/jobs/not-a-job"):
        headers = client.get(path).headers
        csp = headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp, path
        assert headers["x-content-type-options"] == "nosniff" and headers["x-frame-options"] == "DENY", path
    assert "<script" not in client.get("/").text.replace('<script type="module" src="/js/app.js"></script>', ""), \
        "no inline script for the policy to allow"
