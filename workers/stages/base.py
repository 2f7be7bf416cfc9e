"""What every stage sees (`StageContext`) and provides (`Stage`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from app.specs import JobSpec, TaskSpec
from app.storage import Storage
from workers.errors import StageError
from workers.progress import ProgressSink

__all__ = ["ProgressSink", "Stage", "StageContext", "StageError"]


@dataclass
class StageContext:
    """Everything a stage may use: the job's spec, its scratch folder, storage, earlier results."""

    job_id: uuid.UUID
    spec: JobSpec
    work_dir: Path
    storage: Storage
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    sink: ProgressSink | None = None

    def progress(self, done: int, total: int, fraction: float | None = None) -> None:
        """Report `done` of `total` items (`fraction`: the share done, when finer than that);
        raises if the job was canceled meanwhile."""
        if self.sink is None:
            return
        if fraction is None:
            self.sink.progress(done, total)
        else:
            self.sink.progress(done, total, fraction)

    def check_canceled(self) -> None:
        """Raise `JobCanceled` if the job was canceled (cheap: reads a flag)."""
        if self.sink is not None:
            self.sink.check_canceled()

    def live_metrics(self, metrics: dict[str, Any]) -> None:
        """Publish metrics while the stage runs (e.g. the loss so far); the returned metrics replace them."""
        if self.sink is not None:
            self.sink.live_metrics(metrics)

    def task_spec(self) -> TaskSpec:
        """The plan stage's task spec (the input of every later teacher stage)."""
        try:
            return TaskSpec.model_validate(self.results["plan"]["task_spec"])
        except KeyError as exc:
            raise StageError("missing_plan", "the plan stage has not produced a task spec") from exc


class Stage(Protocol):
    """One step of the pipeline."""

    name: str
    #: Logical queue whose workers run this stage: `default`, or `gpu` for training.
    queue: str

    def run(self, ctx: StageContext) -> dict[str, Any]:
        """Do the work and return metrics to store on the stage record."""
        ...
