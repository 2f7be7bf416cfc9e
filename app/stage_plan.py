"""Which stages a job runs, in order. Names only: implementations live in workers/stages."""

from __future__ import annotations

DATA_STAGES: tuple[str, ...] = ("plan", "generate", "label", "curate", "teacher_check")
MODEL_STAGES: tuple[str, ...] = ("train", "evaluate", "package")
ALL_STAGES: tuple[str, ...] = DATA_STAGES + MODEL_STAGES


def stages_for(until: str) -> tuple[str, ...]:
    """The stages a job with this `until` runs (`data` stops after the teacher stages)."""
    return DATA_STAGES if until == "data" else ALL_STAGES
