"""Pure rules of API keys: owner names, loopback addresses, the key cache, AUTH=off's refusal."""

import pytest

from app.api.auth import KeyCache
from app.auth import Caller, is_loopback, key_hash, valid_owner
from app.cli.supervisor import refuse_open_auth_off
from app.config import get_settings


@pytest.mark.parametrize("host", ["127.0.0.1", "127.3.4.5", "::1", "[::1]", "localhost"])
def test_loopback_hosts(host):
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.4", "example.com", "10.0.0.1"])
def test_other_hosts_are_not_loopback(host):
    assert not is_loopback(host)


def test_owner_names():
    assert all(valid_owner(n) for n in ("alice", "a.b-c_d@team", "0", "x" * 128))
    assert not any(valid_owner(n) for n in ("", " alice", "a b", "-lead", "x" * 129, "a/b", "é"))


def test_key_hash_is_sha256_hex():
    import hashlib

    assert key_hash("vt_x") == hashlib.sha256(b"vt_x").hexdigest() != key_hash("vt_y")


def test_the_key_cache_expires_and_forgets_revoked_keys(monkeypatch):
    cache, now = KeyCache(), [100.0]
    monkeypatch.setattr("app.api.auth.time.monotonic", lambda: now[0])
    cache.put("a", Caller("alice", key_id=1), 5)
    cache.put("b", Caller("bob", key_id=2), 5)
    assert cache.get("a") == Caller("alice", key_id=1)
    now[0] += 6
    assert cache.get("a") is None, "trusted only for AUTH_CACHE_SECONDS"
    cache.put("a", Caller("alice", key_id=1), 5)
    cache.forget(1)
    assert cache.get("a") is None and cache.get("b") is None  # b expired too
    cache.put("c", Caller("carol", key_id=3), 0)
    assert cache.get("c") is None, "AUTH_CACHE_SECONDS=0 caches nothing"


def test_auth_off_is_refused_off_loopback(monkeypatch):
    monkeypatch.setenv("AUTH", "off")
    get_settings.cache_clear()
    try:
        assert refuse_open_auth_off("127.0.0.1") is None
        message = refuse_open_auth_off("0.0.0.0")
        assert message is not None and "AUTH=off on 0.0.0.0" in message
        monkeypatch.setenv("AUTH", "on")
        get_settings.cache_clear()
        assert refuse_open_auth_off("0.0.0.0") is None
    finally:
        get_settings.cache_clear()
