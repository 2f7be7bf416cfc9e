"""docker-compose.yml and the Dockerfile agree with what `make up` runs (no Docker engine here)."""

import json
import re
from pathlib import Path

import yaml

from app.cli.supervisor import api_command, services

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
APP_SERVICES = ("migrate", "api", "worker", "gpu-worker")
#: What compose adds to `make up`'s commands: each default worker replica's own share of DEFAULT_WORKER_SLOTS.
REPLICA_ARGS = {"worker": ["--concurrency", "${WORKER_CONCURRENCY:-2}"]}


def test_compose_has_every_service():
    assert set(COMPOSE["services"]) == {
        "postgres", "redis", "minio", "minio-bucket", "vllm", "migrate", "api", "worker", "gpu-worker"}


def test_app_commands_match_make_up():
    for service in services(host="0.0.0.0", port=8000):
        expected = ["python", *service.args[1:], *REPLICA_ARGS.get(service.name, [])]
        assert COMPOSE["services"][service.name]["command"] == expected, service.name
    cmd = next(line for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("CMD "))
    assert json.loads(cmd.removeprefix("CMD ")) == ["python", *api_command("0.0.0.0", 8000)[1:]]


def test_migrate_applies_migrations_and_prints_a_first_admin_key_and_the_app_waits_for_it():
    # `vibetune migrate`: alembic upgrade head, then a first admin key on a database without one.
    assert COMPOSE["services"]["migrate"]["command"] == ["python", "-m", "app.cli.main", "migrate"]
    for name in ("api", "worker", "gpu-worker"):
        assert COMPOSE["services"][name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_gpu_reservations():
    for name, variable in (("vllm", "TEACHER_GPU"), ("gpu-worker", "GPU_WORKER_GPU")):
        [device] = COMPOSE["services"][name]["deploy"]["resources"]["reservations"]["devices"]
        assert device["capabilities"] == ["gpu"], name
        # By id, not `count: 1` (which Docker maps to GPU 0 for every container): a host with two GPUs
        # can give the teacher one and the gpu worker the other.
        assert device["device_ids"] == [f"${{{variable}:-0}}"] and "count" not in device, name
    assert "deploy" not in COMPOSE["services"]["worker"]


def test_app_environment_names_real_settings():
    from app.config import Settings

    env = COMPOSE["services"]["api"]["environment"]
    boto3_names = {"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"}
    assert set(env) - boto3_names <= {name.upper() for name in Settings.model_fields}
    assert env["TEACHER_URL"] == "http://vllm:8000/v1"


def test_every_app_service_keeps_artifacts_in_minio_and_waits_for_its_bucket():
    minio = COMPOSE["services"]["minio"]["environment"]
    for name in APP_SERVICES:
        service = COMPOSE["services"][name]
        env = service["environment"]
        assert env["ARTIFACT_STORE"] == "s3://vibetune/artifacts", name
        assert env["AWS_ENDPOINT_URL"] == "http://minio:9000", name
        assert env["AWS_ACCESS_KEY_ID"] == minio["MINIO_ROOT_USER"], name
        assert env["AWS_SECRET_ACCESS_KEY"] == minio["MINIO_ROOT_PASSWORD"], name
        assert env["AWS_REGION"], name
        assert "ARTIFACT_DIR" not in env, name
        assert service["depends_on"]["minio-bucket"]["condition"] == "service_completed_successfully", name


def test_minio_is_healthchecked_and_the_bucket_is_made_once_it_is_healthy():
    minio, bucket = COMPOSE["services"]["minio"], COMPOSE["services"]["minio-bucket"]
    assert minio["image"].startswith("minio/minio") and minio["command"][:2] == ["server", "/data"]
    assert minio["healthcheck"]["test"] == ["CMD", "mc", "ready", "local"]
    assert minio["volumes"] == ["miniodata:/data"] and "miniodata" in COMPOSE["volumes"]
    for variable in ("MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"):
        assert re.fullmatch(rf"\$\{{{variable}:-.{{8,}}\}}", minio["environment"][variable]), variable

    assert bucket["image"].startswith("minio/mc") and bucket["restart"] == "no"
    assert bucket["depends_on"]["minio"]["condition"] == "service_healthy"
    env = minio["environment"]
    assert bucket["environment"]["MC_HOST_minio"] == (
        f"http://{env['MINIO_ROOT_USER']}:{env['MINIO_ROOT_PASSWORD']}@minio:9000")
    store_bucket = COMPOSE["services"]["api"]["environment"]["ARTIFACT_STORE"].removeprefix("s3://").split("/")[0]
    assert bucket["command"] == ["mb", "--ignore-existing", f"minio/{store_bucket}"]


def test_no_app_service_shares_a_disk_with_another():
    assert "artifacts" not in COMPOSE["volumes"]
    for name in APP_SERVICES:
        service = COMPOSE["services"][name]
        assert "volumes" not in service and "volumes_from" not in service, name
        assert service["environment"]["WORK_DIR"] == "/data/work", name  # scratch inside its own container


def test_workers_can_be_scaled():
    # `--scale`: no fixed container name or host port may clash between replicas.
    for name in ("worker", "gpu-worker"):
        service = COMPOSE["services"][name]
        assert "container_name" not in service and "ports" not in service, name
    assert COMPOSE["services"]["api"]["environment"]["DEFAULT_WORKER_SLOTS"] == "${DEFAULT_WORKER_SLOTS:-2}"


def test_dockerfile_copies_what_the_commands_need():
    dockerfile = (ROOT / "Dockerfile").read_text()
    for path in ("app", "workers", "migrations", "alembic.ini", "pyproject.toml", "frontend"):
        assert f"COPY {path}" in dockerfile or f" {path} " in dockerfile, path
    assert "pip install '.[train]'" in dockerfile, (
        "the image trains, packages and serves students: it needs the train extra"
    )


def test_the_image_builds_llama_cpp_where_the_package_stage_looks_for_it():
    from workers.packaging.llama_build import SOURCE_PACKAGE, SOURCE_VERSION

    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "python /tmp/llama_build.py" in dockerfile and "COPY workers/packaging/llama_build.py" in dockerfile
    assert f"ENV LLAMA_CPP_BIN=/opt/vibetune/llama.cpp/{SOURCE_PACKAGE}-{SOURCE_VERSION}/bin" in dockerfile


def test_the_gpu_teacher_schedules_by_priority_like_the_bundled_one():
    from workers.teacher_server import server_command

    for command in (COMPOSE["services"]["vllm"]["command"], server_command("/m", "teacher", 8011)):
        assert command[command.index("--scheduling-policy") + 1] == "priority"
