"""API keys: making, checking, listing and revoking them (plain Python and SQL, no web framework).

A key is `vt_` and 43 URL-safe random characters (256 bits). The database keeps only its sha256
(a fast hash is right for a random secret of this length: there is nothing to guess) and its
first characters, so an admin can tell keys apart in a list. The key itself is shown once.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.models import ApiKey

KEY_PREFIX = "vt_"
#: Characters of a key kept in the database and shown in lists (`vt_` and 8 more).
SHOWN_CHARS = 11
#: Owner names: what a person would type, safe in a path, a log line and a URL.
OWNER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$"
#: Who a request acts as when AUTH is off (a one-person install on loopback).
LOCAL_OWNER = "local"
#: Shortest key an operator may choose with VIBETUNE_ADMIN_KEY.
MIN_CHOSEN_KEY_CHARS = 24


@dataclass(frozen=True)
class Caller:
    """Who a request acts for: an owner, and whether they may see and manage everyone's jobs."""

    owner: str
    admin: bool = False
    key_id: int | None = None


LOCAL_ADMIN = Caller(owner=LOCAL_OWNER, admin=True)


@dataclass(frozen=True)
class NewKey:
    """A key just made: the only time `key` itself is known."""

    key: str
    record: ApiKey


def key_hash(key: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def valid_owner(owner: str) -> bool:
    """Whether `owner` is an acceptable owner name."""
    return re.fullmatch(OWNER_PATTERN, owner) is not None


def create_key(session: Session, owner: str, *, admin: bool = False, name: str = "",
               key: str | None = None) -> NewKey:
    """Make a key for `owner` (or store the chosen `key`); flushed, not committed."""
    if not valid_owner(owner):
        raise ValueError(f"invalid owner name {owner!r}")
    key = key or KEY_PREFIX + secrets.token_urlsafe(32)
    record = ApiKey(owner=owner, admin=admin, name=name, prefix=key[:SHOWN_CHARS], key_hash=key_hash(key))
    session.add(record)
    session.flush()
    return NewKey(key=key, record=record)


def authenticate(session: Session, key: str) -> Caller | None:
    """The caller a key stands for, or None for an unknown or revoked key. Marks the key used."""
    if not key or len(key) > 256:
        return None
    # Looked up by its hash: the key itself is never compared, so its timing tells nothing.
    record = session.execute(
        select(ApiKey).where(ApiKey.key_hash == key_hash(key), ApiKey.revoked_at.is_(None))
    ).scalar_one_or_none()
    if record is None:
        return None
    session.execute(update(ApiKey).where(ApiKey.id == record.id).values(last_used_at=func.now()))
    return Caller(owner=record.owner, admin=record.admin, key_id=record.id)


def list_keys(session: Session, caller: Caller) -> list[ApiKey]:
    """Keys the caller may see: every key for an admin, their own otherwise; newest first."""
    query = select(ApiKey).order_by(ApiKey.created_at.desc(), ApiKey.id.desc())
    if not caller.admin:
        query = query.where(ApiKey.owner == caller.owner)
    return list(session.execute(query).scalars().all())


def revoke_key(session: Session, caller: Caller, key_id: int) -> ApiKey | None:
    """Revoke a key the caller may see (theirs, or any for an admin); None if there is no such key.
    Revoking a revoked key leaves it as it was."""
    record = session.get(ApiKey, key_id)
    if record is None or not (caller.admin or record.owner == caller.owner):
        return None
    if record.revoked_at is None:
        record.revoked_at = datetime.now().astimezone()
        session.flush()
    return record


def has_admin_key(session: Session) -> bool:
    """Whether any admin key that works exists."""
    return session.execute(
        select(ApiKey.id).where(ApiKey.admin.is_(True), ApiKey.revoked_at.is_(None)).limit(1)
    ).first() is not None


def ensure_admin_key(session: Session, chosen: str | None = None) -> str | None:
    """On a database without a working admin key, make one (the `chosen` one if given) and return
    it; a chosen key that is already stored is left alone. None when nothing was made."""
    if chosen is not None:
        if len(chosen) < MIN_CHOSEN_KEY_CHARS:
            raise ValueError(f"VIBETUNE_ADMIN_KEY must be at least {MIN_CHOSEN_KEY_CHARS} characters")
        exists = session.execute(select(ApiKey.id).where(ApiKey.key_hash == key_hash(chosen))).first()
        if exists is not None:
            return None
        return create_key(session, "admin", admin=True, name="VIBETUNE_ADMIN_KEY", key=chosen).key
    if has_admin_key(session):
        return None
    return create_key(session, "admin", admin=True, name="first admin key").key


def is_loopback(host: str) -> bool:
    """Whether binding to `host` keeps the service on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
