"""Which stages a job runs, in order. Names only: implementations live in workers/stages."""

from __future__ import annotations

DATA_STAGES: tuple[str, ...] = ("plan", "generate", "label", "curate", "teacher_check")
#: The error-driven round (`training.rounds: 2`): more data where the first model was wrong, more training.
REFINE = "refine"
#: Every stage that trains, scores or packages the student; a job runs `model_stages(rounds)` of them.
MODEL_STAGES: tuple[str, ...] = ("train", REFINE, "evaluate", "package")
#: The stages that train the student: their time depends on the training setting (method, epochs).
TRAINING_STAGES: tuple[str, ...] = ("train", REFINE)


def model_stages(rounds: int = 1) -> tuple[str, ...]:
    """The model stages of a job with `rounds` training rounds (`refine` only with two)."""
    return tuple(name for name in MODEL_STAGES if name != REFINE or rounds > 1)


#: A default job's stages.
ALL_STAGES: tuple[str, ...] = DATA_STAGES + model_stages()


def stages_for(until: str, rounds: int = 1) -> tuple[str, ...]:
    """The stages a job with this `until` runs (`data` stops after the teacher stages)."""
    return DATA_STAGES if until == "data" else DATA_STAGES + model_stages(rounds)
