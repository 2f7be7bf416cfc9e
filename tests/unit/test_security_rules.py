"""Pure rules of the browser-facing checks."""

from app.api.security import host_allowed, host_name, same_origin
from app.health import redact


def test_host_names_lose_their_port():
    assert host_name("LocalHost:8000") == "localhost" and host_name("[::1]:8000") == "::1"
    assert host_name("127.0.0.1") == "127.0.0.1" and host_name("::1") == "::1"


def test_allowed_hosts():
    allowed = ["127.0.0.1", "localhost", "::1"]
    assert host_allowed("127.0.0.1:8000", allowed) and host_allowed("[::1]:9000", allowed)
    assert not host_allowed("rebound.example:8000", allowed) and not host_allowed("", allowed)
    assert host_allowed("anything.example", ["*"])


def test_same_origin_compares_host_and_port():
    assert same_origin("http://127.0.0.1:8000", "127.0.0.1:8000")
    assert not same_origin("http://127.0.0.1:9000", "127.0.0.1:8000")
    assert not same_origin("null", "127.0.0.1:8000") and not same_origin("https://evil.example", "127.0.0.1:8000")


def test_credentials_in_urls_are_masked():
    masked = redact("error: http://user:pw@teacher:8011/v1 unreachable")
    assert masked == "error: http://***@teacher:8011/v1 unreachable"
    assert redact("postgresql+psycopg://postgres:x@db/vibetune and https://h/v1") == \
        "postgresql+psycopg://***@db/vibetune and https://h/v1"
