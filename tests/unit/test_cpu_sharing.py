"""Every process of the service shares the CPU politely: GNU OpenMP's spin is set short before
torch can load it (app/__init__.py; measured in bench/cpu_sharing.py), and the processes the
service starts inherit it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def spin_in_a_fresh_process(entry: str, **env: str) -> str:
    """GOMP_SPINCOUNT as a new interpreter sees it once `entry` is imported."""
    clean = {k: v for k, v in os.environ.items() if k != "GOMP_SPINCOUNT"}
    code = f"import {entry}, os; print(os.environ['GOMP_SPINCOUNT'])"
    return subprocess.run([sys.executable, "-c", code], env={**clean, **env}, cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout.strip()


def test_the_service_packages_set_a_short_openmp_spin_before_torch_loads():
    for entry in ("app", "workers", "workers.celery_app", "app.cli.supervisor"):
        assert spin_in_a_fresh_process(entry) == "1000", entry


def test_an_explicit_setting_wins():
    assert spin_in_a_fresh_process("workers", GOMP_SPINCOUNT="300000") == "300000"


def test_the_teacher_and_other_started_processes_inherit_it():
    from workers.teacher_server import server_env

    assert server_env()["GOMP_SPINCOUNT"] == os.environ["GOMP_SPINCOUNT"] == "1000"
