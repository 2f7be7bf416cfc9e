"""Stage implementations and the registry the pipeline runner looks them up in.

A stage is plain Python: it gets a `StageContext` and returns its metrics. It must not import
FastAPI or Celery. Stages register themselves here as the teacher and student issues add them.
"""

from __future__ import annotations

from workers.stages.base import Stage, StageContext, StageError

#: Stage name -> implementation. A job whose next stage is missing here fails with
#: `stage_unavailable`: no stage is faked.
REGISTRY: dict[str, Stage] = {}

__all__ = ["REGISTRY", "Stage", "StageContext", "StageError"]
