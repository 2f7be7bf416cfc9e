"""docker-compose.yml and the Dockerfile agree with what `make up` runs (no Docker engine here)."""

import json
from pathlib import Path

import yaml

from app.cli.supervisor import api_command, services

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_every_service():
    assert set(COMPOSE["services"]) == {"postgres", "redis", "vllm", "migrate", "api", "worker", "gpu-worker"}


def test_app_commands_match_make_up():
    for service in services(host="0.0.0.0", port=8000):
        assert COMPOSE["services"][service.name]["command"] == ["python", *service.args[1:]], service.name
    cmd = next(line for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("CMD "))
    assert json.loads(cmd.removeprefix("CMD ")) == ["python", *api_command("0.0.0.0", 8000)[1:]]


def test_migrate_applies_migrations_and_prints_a_first_admin_key_and_the_app_waits_for_it():
    # `vibetune migrate`: alembic upgrade head, then a first admin key on a database without one.
    assert COMPOSE["services"]["migrate"]["command"] == ["python", "-m", "app.cli.main", "migrate"]
    for name in ("api", "worker", "gpu-worker"):
        assert COMPOSE["services"][name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_gpu_reservations():
    for name in ("vllm", "gpu-worker"):
        devices = COMPOSE["services"][name]["deploy"]["resources"]["reservations"]["devices"]
        assert devices[0]["capabilities"] == ["gpu"], name
    assert "deploy" not in COMPOSE["services"]["worker"]


def test_app_environment_names_real_settings():
    from app.config import Settings

    env = COMPOSE["services"]["api"]["environment"]
    assert set(env) <= {name.upper() for name in Settings.model_fields}
    assert env["TEACHER_URL"] == "http://vllm:8000/v1"


def test_dockerfile_copies_what_the_commands_need():
    dockerfile = (ROOT / "Dockerfile").read_text()
    for path in ("app", "workers", "migrations", "alembic.ini", "pyproject.toml", "frontend"):
        assert f"COPY {path}" in dockerfile or f" {path} " in dockerfile, path
    assert "pip install '.[train]'" in dockerfile, (
        "the image trains, packages and serves students: it needs the train extra"
    )


def test_the_gpu_teacher_schedules_by_priority_like_the_bundled_one():
    from workers.teacher_server import server_command

    for command in (COMPOSE["services"]["vllm"]["command"], server_command("/m", "teacher", 8011)):
        assert command[command.index("--scheduling-policy") + 1] == "priority"
