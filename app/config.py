"""Service configuration, read once from the environment (and an optional `.env` file)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_TEACHER = "qwen2.5-coder-1.5b-instruct"
DEFAULT_STUDENT = "smollm2-135m-instruct"


class Settings(BaseSettings):
    """Every knob of the service. Each field is an environment variable of the same name."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str = Field(
        "postgresql+psycopg://postgres@127.0.0.1:5432/vibetune",
        description="SQLAlchemy URL of the Postgres database.",
    )
    db_pool_size: int = Field(
        5, ge=1, le=200, description="Database connections each process keeps open (SQLAlchemy `pool_size`)."
    )
    db_max_overflow: int = Field(
        10, ge=0, le=200,
        description="Connections a process may open beyond DB_POOL_SIZE under load (SQLAlchemy `max_overflow`). "
        "The API runs at most DB_POOL_SIZE + DB_MAX_OVERFLOW blocking calls at once; more requests wait their turn.",
    )
    db_pool_timeout: float = Field(
        30.0, gt=0, description="Seconds to wait for a free database connection before giving up (503 in the API)."
    )
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0", description="Redis URL used as the Celery broker."
    )
    artifact_dir: Path = Field(
        Path("var/artifacts"), description="Folder where job artifacts are stored (local storage)."
    )
    artifact_store: str | None = Field(
        None, description="`s3://BUCKET/PREFIX` keeps artifacts in an S3-compatible object store (with the "
        "standard AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION) instead of ARTIFACT_DIR, "
        "so workers on machines that share no disk can run one job.")
    artifact_presigned_urls: bool = Field(
        False, description="With an `s3://` ARTIFACT_STORE: a download of one artifact answers 307 with a short-lived "
        "presigned URL of the object, so its bytes come from the store instead of through the API. The URL names the "
        "store as the API reaches it (AWS_ENDPOINT_URL): clients must reach it at that address too.")
    work_dir: Path = Field(
        Path("var/work"), description="Scratch folder for stages (checkpoints, temporary files)."
    )

    teacher_url: str = Field(
        "http://127.0.0.1:8011/v1", description="OpenAI-compatible base URL of the teacher server."
    )
    teacher_model: str = Field(DEFAULT_TEACHER, description="Default teacher model name.")
    teacher_api_key: str = Field("EMPTY", description="API key sent to the teacher server.")
    committee_teachers: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="More OpenAI-compatible teachers for the label stage's self-consistency votes (comma separated "
        "`URL` or `URL|model`; the model defaults to the job's teacher, the key to TEACHER_API_KEY): the votes of "
        "each input take turns over the job's teacher and these, and each teacher's agreement with the majority is "
        "recorded.",
    )
    serve_teacher: bool = Field(
        True,
        description="`make up` starts the bundled vLLM teacher at TEACHER_URL's port "
        "(false: use a teacher running elsewhere).",
    )
    teacher_model_path: str | None = Field(
        None, description="Folder or hub id the started teacher server loads (default: the bundled model)."
    )
    teacher_concurrency: int = Field(
        8, ge=1, le=1024,
        description="Teacher requests one stage run keeps in flight at once (per job; the rest wait their turn). "
        "8 saturates the bundled CPU teacher; raise it for a GPU teacher.",
    )
    teacher_timeout: float = Field(
        300.0, gt=0,
        description="Seconds of silence (no streamed token) before a teacher request is given up and retried; "
        "a slow answer that keeps streaming never times out.",
    )
    teacher_max_retries: int = Field(
        4, ge=0, le=20, description="Retries of a teacher request on 429/5xx/connection errors."
    )
    teacher_priority: bool = Field(
        True,
        description="Send vLLM's request `priority` so short interactive calls (the plan) go ahead of other jobs' "
        "bulk generating and labelling (the teacher needs `--scheduling-policy priority`; an endpoint that refuses "
        "the field is used without it).",
    )
    default_worker_slots: int = Field(
        2, ge=1, le=10_000,
        description="Jobs all default workers together run at once (the sum of their --concurrency; a default "
        "worker runs 2). Those slots are shared fairly between owners, and a queued job's expected start is "
        "reckoned from them.",
    )
    extra_teachers: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="More teacher model names the teacher server offers (comma separated).",
    )
    student_model: str = Field(DEFAULT_STUDENT, description="Default student model.")
    extra_students: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="More student models to offer (comma separated)."
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["127.0.0.1", "localhost", "::1"],
        description="Host names the API answers to (comma separated; `*` for any). Other `Host` headers get 400, "
        "which keeps a web page from reaching the service through a rebound DNS name.",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Origins other than the service's own that browsers may call it from (comma separated; none "
        "by default, so a page on another site cannot change jobs).",
    )

    export_score_margin: float = Field(
        0.05, ge=0, le=1,
        description="How far below the f16 GGUF's accuracy (in llama.cpp) an exported file may score before the "
        "report and model card flag it; the card recommends the smallest file within this margin.",
    )
    price_cpu_core_hour: float = Field(
        0.045, ge=0, description="Price of one CPU core for an hour (US$; an on-demand cloud vCPU, 2026), for the "
        "report's cost per million requests when a model ran on CPU.")
    price_l4_hour: float = Field(0.70, ge=0, description="Price of an NVIDIA L4 for an hour (US$, on demand, 2026).")
    price_h100_hour: float = Field(
        3.00, ge=0, description="Price of an NVIDIA H100 for an hour (US$, on demand, 2026).")
    teacher_device: str = Field(
        "cpu", description="What the teacher's vLLM runs on, for its cost per million requests: `cpu` (the bundled "
        "CPU teacher, priced per core of this machine), `l4` or `h100`.")

    serve_max_models: int = Field(
        2, ge=1, le=64,
        description="Finished students kept loaded for /v1/chat/completions; "
        "beyond this the least recently used is unloaded.",
    )
    serve_max_batch: int = Field(
        32, ge=1, le=256,
        description="Most requests to one student decoded together by /v1/chat/completions (dynamic, "
        "continuous batching); 1 answers them one at a time.",
    )
    serve_batch_window_ms: float = Field(
        5, ge=0, le=1000,
        description="How long an idle student waits after a request for more to batch with it, in milliseconds.",
    )
    serve_dtype: Literal["auto", "float32", "bfloat16"] = Field(
        "auto",
        description="Precision /v1/chat/completions serves students in. auto: as the evaluate stage scored "
        "them (bfloat16 on a GPU that supports it, else float32); bfloat16 on a CPU with native bfloat16 "
        "(AMX, AVX512-BF16) is faster but its answers may differ from the scored ones.",
    )

    max_task_chars: int = Field(4000, ge=1, description="Longest accepted task description.")
    max_num_examples: int = Field(5000, ge=1, description="Largest accepted `num_examples`.")
    max_rows: int = Field(5000, ge=1, description="Most rows accepted in `examples` or `test_set`, and most `inputs`.")
    max_row_chars: int = Field(8000, ge=1, description="Longest accepted example input or output.")
    max_labels: int = Field(200, ge=2, description="Most labels accepted for one job.")
    max_label_chars: int = Field(100, ge=1, description="Longest accepted label.")
    max_spec_bytes: int = Field(
        8 * 1024 * 1024, ge=1024,
        description="Largest accepted job spec: the validated job as stored, in bytes of compact UTF-8 JSON.",
    )
    max_request_bytes: int = Field(
        24 * 1024 * 1024, ge=1024,
        description="Largest request body the API reads (413 beyond it): three times MAX_SPEC_BYTES, so a job at "
        "that limit fits even with every character sent `\\u`-escaped (6 bytes for a 2-byte character).",
    )
    allowed_model_dirs: Annotated[list[Path], NoDecode] = Field(
        default_factory=lambda: [_bundled_models_root()],
        description="Absolute folders a job's `student` or `training.teacher_weights` may name a local model in "
        "(comma separated; default: the bundled models' folder). Names from GET /api/models and hub ids are "
        "always accepted.",
    )

    auth: bool = Field(
        True,
        description="Every /api and /v1 request needs an API key. `AUTH=off` is for a one-person install on "
        "loopback (everyone is the admin `local`); the service refuses to start so on any other address.",
    )
    vibetune_admin_key: str | None = Field(
        None, min_length=24,
        description="An admin key to store on start (at least 24 characters) instead of a random first admin key.",
    )
    auth_cache_seconds: float = Field(
        5.0, ge=0, le=300,
        description="How long an API process trusts a key it has checked before asking the database again "
        "(a revoke reaches other processes within this time; the process that revoked forgets the key at once).",
    )
    max_active_jobs_per_owner: int = Field(
        5, ge=1, le=100_000,
        description="Queued or running jobs one owner may have; beyond it, submit and resume answer 429.",
    )

    job_lease_seconds: int = Field(
        60, ge=5, description="A running job whose worker sent no heartbeat for this long may be taken over."
    )
    job_heartbeat_seconds: float = Field(
        2.0, gt=0, description="How often a running job renews its lease and checks for cancel."
    )
    broker_visibility_timeout: int = Field(
        43200, ge=60, description="Seconds before Redis redelivers an unacknowledged task (above the longest job)."
    )
    events_poll_seconds: float = Field(
        1.0, gt=0, le=60, description="How often `GET /api/jobs/{id}/events` looks for changes to send."
    )
    recovery_sweep_seconds: float = Field(
        30.0, gt=0, description="How often each worker looks for jobs nothing would run any more (a worker died "
        "with no restart, the broker restarted and lost its messages) and puts them back on the queue.",
    )
    train_checkpoint_seconds: float = Field(
        120.0, ge=0, description="Training saves a checkpoint (for resuming after a crash) at most this often.",
    )
    queue_prefix: str = Field("", description="Prefix for queue names (lets test runs share a Redis).")

    @field_validator("extra_teachers", "committee_teachers", "extra_students", "allowed_hosts", "cors_origins",
                     mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("committee_teachers")
    @classmethod
    def _teacher_urls(cls, value: list[str]) -> list[str]:
        bad = [entry for entry in value if not entry.split("|", 1)[0].startswith(("http://", "https://"))]
        if bad:
            raise ValueError(f"each entry is `URL` or `URL|model` with an http(s) URL; not: {', '.join(bad)}")
        return value

    @field_validator("allowed_model_dirs", mode="before")
    @classmethod
    def _split_dirs(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("allowed_model_dirs")
    @classmethod
    def _absolute_dirs(cls, value: list[Path]) -> list[Path]:
        relative = [str(path) for path in value if not path.expanduser().is_absolute()]
        if relative:
            raise ValueError(f"must be absolute folders; not absolute: {', '.join(relative)}")
        return [path.expanduser() for path in value]

    @property
    def teachers(self) -> list[str]:
        """Teacher model names a job may ask for, the default first."""
        return _unique([self.teacher_model, *self.extra_teachers])

    @property
    def students(self) -> list[str]:
        """Student models offered by the service, the default first."""
        return _unique([self.student_model, *self.extra_students])

    def queue_name(self, queue: str) -> str:
        """The broker queue name for a logical queue (`default` or `gpu`)."""
        return f"{self.queue_prefix}{queue}"


def _bundled_models_root() -> Path:
    # Where `workers.bundled_models` converts the bundled models to (`model_dir`), read the same way;
    # the API does not import the workers, and tests/unit/test_limits.py keeps the two equal.
    return Path(os.environ.get("VIBETUNE_CACHE", Path.home() / ".cache" / "vibetune")) / "models"


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (cached; tests clear the cache after changing the environment)."""
    return Settings()
