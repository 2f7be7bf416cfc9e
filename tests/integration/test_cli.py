"""The installed `vibetune` console script."""

import subprocess
import sys
from pathlib import Path

import psycopg

from tests.conftest import ADMIN_URL
from tests.support.database import drop_database

BIN = Path(sys.executable).parent / "vibetune"


def test_console_script_is_installed_and_documents_itself():
    out = subprocess.run([BIN, "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("up", "worker", "migrate"):
        assert command in out


def test_migrate_creates_and_migrates_a_new_database(tmp_path):
    name = "vibetune_cli_migrate"
    drop_database(ADMIN_URL, name)
    env = {"DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}", "PATH": "/usr/bin:/bin"}
    try:
        result = subprocess.run([BIN, "migrate"], capture_output=True, text=True, env=env, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{name}") as conn:
            assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == "0001"
    finally:
        drop_database(ADMIN_URL, name)
