"""Alembic on a database of its own: up, down, up again, and the models match the migrations."""

import secrets

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from app.models import Base
from tests.conftest import ADMIN_URL
from tests.support.database import create_database, drop_database, migrate_to_base, migrate_to_head


@pytest.fixture
def scratch_url():
    name = f"vibetune_migrations_{secrets.token_hex(4)}"
    create_database(ADMIN_URL, name)
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    drop_database(ADMIN_URL, name)


def tables(url):
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(scratch_url):
    migrate_to_head(scratch_url)
    assert tables(scratch_url) == {"jobs", "job_stages", "artifacts", "api_keys", "dataset_revisions"}
    migrate_to_base(scratch_url)
    assert tables(scratch_url) == set()
    migrate_to_head(scratch_url)
    assert tables(scratch_url) == {"jobs", "job_stages", "artifacts", "api_keys", "dataset_revisions"}


def test_models_match_the_migrations(scratch_url):
    migrate_to_head(scratch_url)
    engine = create_engine(scratch_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


def test_list_queries_have_indexes(scratch_url):
    migrate_to_head(scratch_url)
    engine = create_engine(scratch_url)
    indexed = {tuple(ix["column_names"]) for ix in inspect(engine).get_indexes("jobs")}
    engine.dispose()
    assert {("created_at",), ("owner", "created_at"), ("status",)} <= indexed
