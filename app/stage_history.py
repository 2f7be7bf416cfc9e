"""The recent succeeded stage runs of this installation, as `app.estimate` samples: how long each
took, for how many units, with which teacher or student, setting and task type."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from app.estimate import FACT_PATHS, Sample, sample_model, sample_units, training_setting
from app.models import Job, JobStage, StageStatus
from app.stage_plan import TRAINING_STAGES

#: Runs read per stage, newest first: enough to find `estimate.HISTORY` of the same kind among them.
SCAN = 100


def recent_samples(session: Session, scan: int = SCAN) -> list[Sample]:
    """The `scan` most recent succeeded runs of each stage that say how much they did, newest first."""
    facts = func.jsonb_build_object(*[part for name, path in FACT_PATHS.items()
                                      for part in (name, JobStage.metrics[path])])
    plan = aliased(JobStage)
    planned_type = (select(plan.metrics[("task_spec", "task_type")].astext)
                    .where(plan.job_id == JobStage.job_id, plan.name == "plan").scalar_subquery())
    recent = (
        select(
            JobStage.name,
            func.extract("epoch", JobStage.finished_at - JobStage.started_at).label("seconds"),
            facts.label("facts"),
            Job.spec["teacher"].astext.label("teacher"),
            Job.spec["student"].astext.label("student"),
            Job.spec["training"].label("training"),
            func.coalesce(Job.spec["task_type"].astext, planned_type).label("task_type"),
            JobStage.finished_at,
            func.row_number().over(partition_by=JobStage.name, order_by=JobStage.finished_at.desc()).label("n"),
        )
        .join(Job, Job.id == JobStage.job_id)
        .where(JobStage.status == StageStatus.SUCCEEDED.value,
               JobStage.started_at.is_not(None), JobStage.finished_at.is_not(None))
        .subquery()
    )
    rows = session.execute(select(recent).where(recent.c.n <= scan).order_by(recent.c.finished_at.desc())).all()
    samples = []
    for row in rows:
        units = sample_units(row.name, row.facts or {})
        if units is None:
            continue
        samples.append(Sample(
            stage=row.name, seconds=max(0.0, float(row.seconds)), units=units, task_type=row.task_type,
            model=sample_model(row.name, row.teacher or "", row.student or ""),
            setting=training_setting(row.training or {}) if row.name in TRAINING_STAGES else None,
        ))
    return samples
