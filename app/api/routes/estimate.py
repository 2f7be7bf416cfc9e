"""`POST /api/jobs/estimate`: how long a job would take, before it is submitted."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from app import estimate
from app.api.auth import AUTHENTICATED, CallerDep
from app.api.deps import load_job
from app.db import session_scope
from app.errors import APIError, errors
from app.models import Job, StageStatus
from app.schemas import JobCreate
from app.specs import JobSpec
from app.stage_history import recent_samples
from app.stage_plan import DATA_STAGES

router = APIRouter(prefix="/api/jobs", tags=["jobs"], **AUTHENTICATED)


class StageEstimatePublic(BaseModel):
    name: str
    seconds: float = Field(description="Expected seconds of the stage.")
    basis: str = Field(description="`measured (n stages)`: the median speed of this installation's last n runs of "
                                   "the stage like this one; `default`: a fresh install's figure for the bundled "
                                   "models on a 2-core CPU.")


class EstimatePublic(BaseModel):
    stages: list[StageEstimatePublic] = Field(description="The stages the job would run, in order.")
    total_seconds: float = Field(description="Expected seconds from the job's start to its end (waiting in the "
                                             "queue not included).")
    basis: str = Field(description="`measured (n stages)` (naming the stages that took the default, if any) or "
                                   "`default`.")


@router.post("/estimate", response_model=EstimatePublic, responses=errors(400, 404, 409, 413, 422))
def estimate_job(body: JobCreate, caller: CallerDep) -> EstimatePublic:
    """How long the job this body describes would take, per stage and in all, from the measured
    speed of this installation's teacher and trainer (a default for a fresh install). Takes the
    body of `POST /api/jobs` and creates nothing. With `from_job`, only the model stages run, on that
    job's data: 404 if the caller may not see that job, 409 `no_data` if it has no complete data set."""
    with session_scope() as session:
        if body.from_job is not None:
            source_job = load_job(session, body.from_job, caller)
            spec, source = _retrain(source_job, body)
        else:
            spec, source = body.to_spec(), None
        result = estimate.estimate(estimate.workload(spec, source), recent_samples(session))
    return EstimatePublic(
        stages=[StageEstimatePublic(name=s.name, seconds=s.seconds, basis=s.basis) for s in result.stages],
        total_seconds=result.total_seconds, basis=result.basis,
    )


def _retrain(source: Job, body: JobCreate) -> tuple[JobSpec, estimate.SourceData]:
    """The spec a `from_job` job would get, and the data it would train on."""
    done = {stage.name: stage.metrics or {} for stage in source.stages if stage.status == StageStatus.SUCCEEDED.value}
    if not all(name in done for name in DATA_STAGES):
        raise APIError(409, "no_data", f"job {source.id} has no complete data set to train on (its data stages "
                                       "have not all succeeded)")
    splits: dict[str, Any] = done["curate"].get("splits") or {}
    planned = (done["plan"].get("task_spec") or {}).get("task_type")
    # The data revision does not change how long training takes.
    spec = body.retrain_spec(source.spec, revision=0)
    return spec, estimate.SourceData(train_rows=int(splits.get("train", 0)),
                                     validation_rows=int(splits.get("validation", 0)),
                                     task_type=source.spec.get("task_type") or planned)
