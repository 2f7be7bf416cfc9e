"""Stage implementations and the registry the pipeline runner looks them up in.

A stage is plain Python: it gets a `StageContext` and returns its metrics. It must not import
FastAPI or Celery. A job whose next stage is missing from the registry fails with
`stage_unavailable`: no stage is faked.
"""

from __future__ import annotations

from workers.stages.base import Stage, StageContext, StageError
from workers.stages.curate import CurateStage
from workers.stages.evaluate import EvaluateStage
from workers.stages.generate import GenerateStage
from workers.stages.label import LabelStage
from workers.stages.package import PackageStage
from workers.stages.plan import PlanStage
from workers.stages.refine import RefineStage
from workers.stages.teacher_check import TeacherCheckStage
from workers.stages.train import TrainStage

REGISTRY: dict[str, Stage] = {
    stage.name: stage
    for stage in (PlanStage(), GenerateStage(), LabelStage(), CurateStage(), TeacherCheckStage(),
                  TrainStage(), RefineStage(), EvaluateStage(), PackageStage())
}

__all__ = ["REGISTRY", "Stage", "StageContext", "StageError"]
