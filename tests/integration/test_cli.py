"""The installed `vibetune` console script."""

import hashlib
import re
import subprocess
import sys
from pathlib import Path

import psycopg

from tests.conftest import ADMIN_URL
from tests.support.database import drop_database

BIN = Path(sys.executable).parent / "vibetune"


def test_console_script_is_installed_and_documents_itself():
    out = subprocess.run([BIN, "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("up", "worker", "migrate", "admin-key", "keys", "whoami"):
        assert command in out


def test_migrate_creates_and_migrates_a_new_database_and_prints_a_first_admin_key_once(tmp_path):
    name = "vibetune_cli_migrate"
    drop_database(ADMIN_URL, name)
    env = {"DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}", "PATH": "/usr/bin:/bin"}
    try:
        result = subprocess.run([BIN, "migrate"], capture_output=True, text=True, env=env, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        keys = re.findall(r"^\s+(vt_[A-Za-z0-9_-]{43})$", result.stdout, flags=re.M)
        assert len(keys) == 1 and "First admin key" in result.stdout, result.stdout
        again = subprocess.run([BIN, "migrate"], capture_output=True, text=True, env=env, cwd=tmp_path)
        assert again.returncode == 0 and "vt_" not in again.stdout, "a first admin key is made once"
        recovery = subprocess.run([BIN, "admin-key"], capture_output=True, text=True, env=env, cwd=tmp_path)
        assert re.fullmatch(r"vt_[A-Za-z0-9_-]{43}\n", recovery.stdout), recovery.stderr
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{name}") as conn:
            assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == "0003"
            stored = conn.execute("SELECT key_hash FROM api_keys WHERE admin ORDER BY id").fetchall()
        assert [row[0] for row in stored] == [hashlib.sha256(k.encode()).hexdigest()
                                               for k in (keys[0], recovery.stdout.strip())]
    finally:
        drop_database(ADMIN_URL, name)
