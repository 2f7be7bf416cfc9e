"""Stages for exercising the runner and the workers before the real stages exist.

They do real, observable work: each run appends a line to `<work>/<job>/runs.log`, reports
progress, and can be made slow or failing through the job's task text:
`[slow N]` makes `plan` take about N seconds, `[fail STAGE]` makes STAGE raise.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.artifacts import save_artifact
from app.db import session_scope
from app.stage_plan import DATA_STAGES, MODEL_STAGES
from workers.stages import StageContext, StageError


def runs_log(work_dir: Path, job_id: object) -> Path:
    return work_dir / str(job_id) / "runs.log"


def runs(work_dir: Path, job_id: object) -> list[str]:
    path = runs_log(work_dir, job_id)
    return path.read_text().split() if path.exists() else []


@dataclass
class RecordingStage:
    name: str
    queue: str = "default"

    def run(self, ctx: StageContext) -> dict[str, Any]:
        with runs_log(ctx.work_dir.parent.parent, ctx.job_id).open("a") as log:
            log.write(f"{self.name}\n")
        task = ctx.spec.task
        if f"[fail {self.name}]" in task:
            raise StageError("test_failure", f"{self.name} was told to fail")
        if f"[crash {self.name}]" in task:
            raise RuntimeError("unexpected")
        steps = 1
        if self.name == "plan" and (m := re.search(r"\[slow (\d+(?:\.\d+)?)\]", task)):
            steps = max(1, int(float(m.group(1)) * 10))
        for step in range(steps):
            if steps > 1:
                time.sleep(0.1)
            ctx.progress(step + 1, steps)
        if self.name == "package":
            with session_scope() as session:
                save_artifact(session, ctx.storage, ctx.job_id, "report.json", b'{"ok": true}\n')
        metrics: dict[str, Any] = {"ran": self.name, "seen": sorted(ctx.results)}
        if f"[hold {self.name}]" in task:
            metrics["hold"] = {"code": "label_short", "message": f"{self.name} held the job"}
        return metrics


def recording_registry(gpu_stages: tuple[str, ...] = ("train",)) -> dict[str, RecordingStage]:
    """A stage for every planned name; `gpu_stages` run on the gpu queue."""
    return {name: RecordingStage(name, "gpu" if name in gpu_stages else "default")
            for name in (*DATA_STAGES, *MODEL_STAGES)}
