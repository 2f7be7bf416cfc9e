"""Database engine and sessions (SQLAlchemy 2, Postgres through psycopg 3)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from app.config import get_settings


@lru_cache
def get_engine() -> Engine:
    """The process-wide engine for `DATABASE_URL`, its pool sized by `DB_POOL_SIZE` and `DB_MAX_OVERFLOW`."""
    settings = get_settings()
    return create_engine(settings.database_url, pool_pre_ping=True, pool_size=settings.db_pool_size,
                         max_overflow=settings.db_max_overflow, pool_timeout=settings.db_pool_timeout)


def pool_capacity() -> int:
    """The most connections the engine of this process opens at once."""
    settings = get_settings()
    return settings.db_pool_size + settings.db_max_overflow


@lru_cache
def _session_factory() -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(), expire_on_commit=False)


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session that commits when the block ends normally and rolls back on error."""
    session = _session_factory()()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def reset_engine() -> None:
    """Forget the engine (after a fork, or when tests point `DATABASE_URL` elsewhere)."""
    if get_engine.cache_info().currsize:
        get_engine().dispose(close=False)
    get_engine.cache_clear()
    _session_factory.cache_clear()
