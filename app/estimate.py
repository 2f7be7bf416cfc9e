"""How long a job will take, stage by stage, before it is submitted: from how fast this
installation's teacher and trainer have been (plain arithmetic; `app.stage_history` reads the
past stages from the database).

A stage's time is its number of units times the seconds a unit takes:

| stage | unit |
| --- | --- |
| plan | the stage itself (a fixed time) |
| package | an exported GGUF file (made, then run in llama.cpp on the evaluation rows) |
| generate | a generate call (`PER_CALL` inputs; `OVERGENERATE` x the requested examples are asked for) |
| label | a teacher answer: an input (generated or imported) times its votes |
| curate | a requested example (the top-up rounds, when a label comes out short, grow with it) |
| teacher_check | a test row (else a seed example) the teacher answers |
| train | an example-epoch: one training example in one pass |
| evaluate | a row the models are scored on (the test set, else the validation split) |

Seconds per unit: the median over the `HISTORY` most recent succeeded runs of the stage with the
same teacher (data stages) or the same student and training setting (model stages), and the
same task type when the job states it. A stage with no such run takes `DEFAULT_RATES`, measured
with the bundled teacher and student on a 2-core CPU machine.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.specs import JobSpec, TaskType, votes_for
from app.stage_plan import DATA_STAGES, MODEL_STAGES, REFINE, TRAINING_STAGES, stages_for
from workers.training.options import default_epochs

#: Past runs of a stage its speed is the median of.
HISTORY = 10
#: What the data stages do, as `workers.generation` and the curate stage have it (a unit test
#: keeps these equal to theirs; importing them here would load the teacher client into the API).
PER_CALL = 5
OVERGENERATE = 1.4
VALIDATION_FRACTION = 0.1

#: Seconds per unit on a fresh install, by task type: the bundled teacher (qwen2.5-coder-1.5b-instruct
#: on vLLM's CPU build) and student (smollm2-135m-instruct) on a 2-core CPU machine, from the
#: stage times in bench/results/quality_*.json and levers_sms_spam.json (medians; classification:
#: 150 examples, 60 test rows, 3 votes; the other types 30 examples (tool calling also 160), 1 vote).
DEFAULT_RATES: dict[str, dict[str, float]] = {
    TaskType.CLASSIFICATION.value: {"plan": 16.2, "generate": 4.72, "label": 0.249, "curate": 0.54,
                                    "teacher_check": 0.29, "train": 0.52, "evaluate": 0.59, "package": 9.8},
    TaskType.EXTRACTION.value: {"plan": 12.0, "generate": 6.0, "label": 2.26, "curate": 0.002,
                                "teacher_check": 2.17, "train": 1.3, "evaluate": 12.97, "package": 9.5},
    TaskType.QA.value: {"plan": 6.3, "generate": 5.74, "label": 0.99, "curate": 0.005,
                        "teacher_check": 3.22, "train": 0.66, "evaluate": 5.79, "package": 8.2},
    TaskType.TOOL_CALLING.value: {"plan": 10.1, "generate": 5.98, "label": 2.4, "curate": 0.04,
                                  "teacher_check": 1.96, "train": 1.1, "evaluate": 18.1, "package": 8.1},
}
#: The refine stage's default rate per unit of training, against the train stage's (a guess until measured).
REFINE_OVER_TRAIN = 1.5
#: The defaults when the job leaves its type to the teacher: the most common type.
UNKNOWN_TYPE_DEFAULTS = TaskType.CLASSIFICATION.value

#: The facts of a past stage's metrics the units are counted from, by the path to each.
FACT_PATHS: dict[str, tuple[str, ...]] = {
    "calls": ("calls",), "answers_restored": ("answers_restored",), "labeled": ("labeled",),
    "malformed_answers": ("malformed_answers",), "votes": ("votes",), "check_rows": ("teacher", "n"),
    "examples": ("examples",), "epochs": ("plan", "epochs"), "resumed_from": ("resumed_from",),
    "eval_rows": ("student", "n"), "copied_from": ("copied_from",), "export_files": ("exports",),
}


@dataclass(frozen=True)
class Workload:
    """What a job will do: its stages, each stage's units, and what its speed depends on."""

    stages: tuple[str, ...]
    units: dict[str, float]
    task_type: str | None
    teacher: str
    student: str
    setting: str


@dataclass(frozen=True)
class Sample:
    """One past succeeded stage run: how long it took for how many units, and with what."""

    stage: str
    seconds: float
    units: float
    task_type: str | None
    model: str
    setting: str | None = None


@dataclass(frozen=True)
class StageEstimate:
    name: str
    seconds: float
    basis: str


@dataclass(frozen=True)
class Estimate:
    stages: list[StageEstimate]
    total_seconds: float
    basis: str


@dataclass(frozen=True)
class SourceData:
    """The data set a `from_job` job trains on: its rows per split and its task type."""

    train_rows: int
    validation_rows: int
    task_type: str | None


def training_setting(training: Mapping[str, Any]) -> str:
    """What a training run's speed depends on besides the student: the distillation, the method
    as asked (`default`: the student's size decides) and, unless fully fine-tuned, the LoRA rank."""
    method = training.get("method") or "default"
    rank = "" if method == "full" else f"/r{training.get('lora_r', 16)}"
    return f"{training.get('distillation', 'soft_labels')}/{method}{rank}"


def stated_task_type(spec: JobSpec) -> str | None:
    """The job's task type if it says it (labels mean classification); None leaves it to the plan."""
    if spec.task_type is not None:
        return spec.task_type.value
    return TaskType.CLASSIFICATION.value if spec.labels else None


def workload(spec: JobSpec, source: SourceData | None = None) -> Workload:
    """The job's stages and their units; with `source` (a `from_job` job) only the model stages,
    on that job's data."""
    task_type = source.task_type if source is not None else stated_task_type(spec)
    if task_type not in DEFAULT_RATES:
        task_type = None
    if source is not None:
        stages = tuple(s for s in stages_for(spec.until, spec.training.rounds) if s in MODEL_STAGES)
        train_rows, validation_rows = source.train_rows, source.validation_rows
    else:
        stages = stages_for(spec.until, spec.training.rounds)
        validation_rows = round(spec.num_examples * VALIDATION_FRACTION)
        seeds = sum(bool((row.output or "").strip()) for row in spec.examples) * spec.curation.seed_copies
        train_rows = spec.num_examples - validation_rows + len(spec.inputs) + seeds
    calls = math.ceil(spec.num_examples * OVERGENERATE / PER_CALL)
    votes = votes_for(spec.curation, TaskType(task_type or UNKNOWN_TYPE_DEFAULTS))
    epochs = spec.training.epochs or default_epochs(train_rows, spec.training.batch_size)
    units = {
        "plan": 1.0, "generate": float(calls), "label": float((calls * PER_CALL + len(spec.inputs)) * votes),
        "curate": float(spec.num_examples), "teacher_check": float(len(spec.test_set or spec.examples)),
        "train": float(train_rows * math.ceil(epochs)),
        # The error-driven round trains on its new rows and as many old ones: about the first round's work.
        "refine": float(train_rows * math.ceil(epochs)),
        "evaluate": float(len(spec.test_set) or validation_rows), "package": float(len(spec.exports) or 1),
    }
    return Workload(stages=stages, units={name: units[name] for name in stages}, task_type=task_type,
                    teacher=spec.teacher, student=spec.student,
                    setting=training_setting(spec.training.model_dump()))


def sample_units(stage: str, facts: Mapping[str, Any]) -> float | None:
    """The units a past run of `stage` did in its own time, from its metrics' `FACT_PATHS` facts;
    None when it says too little (a copied stage, a train run resumed from a checkpoint, answers
    all restored from an earlier run)."""
    if facts.get("copied_from"):
        return None
    restored = _number(facts.get("answers_restored"))
    units: float | None
    if stage == "plan":
        units = 1.0
    elif stage == "package":  # a run from before exports were re-scored made one file
        files = facts.get("export_files")
        units = float(len(files)) if isinstance(files, list) and files else 1.0
    elif stage == "generate":
        units = _number(facts.get("calls")) - restored
    elif stage == "label":
        rows = _number(facts.get("labeled")) + _number(facts.get("malformed_answers"))
        units = (rows - restored) * max(1.0, _number(facts.get("votes")))
    elif stage == "teacher_check":
        units = _number(facts.get("check_rows"))
    elif stage in TRAINING_STAGES:
        resumed = facts.get("resumed_from")
        units = None if resumed else _number(facts.get("examples")) * math.ceil(_number(facts.get("epochs")))
    elif stage == "evaluate":
        units = _number(facts.get("eval_rows"))
    else:
        units = None
    return units if units is not None and units > 0 else None


def sample_model(stage: str, teacher: str, student: str) -> str:
    """Whose speed a stage measures: the teacher's (data stages) or the student's (model stages)."""
    return teacher if stage in DATA_STAGES else student


def estimate(work: Workload, samples: Sequence[Sample], history: int = HISTORY) -> Estimate:
    """Seconds per stage and in all; `samples` newest first (see the module's docstring)."""
    stages: list[StageEstimate] = []
    measured = 0
    defaulted: list[str] = []
    for name in work.stages:
        rate, used = stage_rate(name, work, samples, history)
        basis = f"measured ({used} stages)" if used else "default"
        measured += used
        if not used:
            defaulted.append(name)
        stages.append(StageEstimate(name, round(rate * work.units[name], 1), basis))
    total = round(sum(stage.seconds for stage in stages), 1)
    if not measured:
        basis = "default"
    else:
        basis = f"measured ({measured} stages)" + (f"; default for {', '.join(defaulted)}" if defaulted else "")
    return Estimate(stages, total, basis)


def stage_rate(name: str, work: Workload, samples: Sequence[Sample], history: int = HISTORY) -> tuple[float, int]:
    """Seconds per unit of the stage and how many past runs it is the median of (0: the default)."""
    model = sample_model(name, work.teacher, work.student)
    alike = [s for s in samples if s.stage == name and s.model == model and s.units > 0
             and (name not in TRAINING_STAGES or s.setting == work.setting)
             and (work.task_type is None or s.task_type == work.task_type)][:history]
    if alike:
        return statistics.median(s.seconds / s.units for s in alike), len(alike)
    defaults = DEFAULT_RATES[work.task_type or UNKNOWN_TYPE_DEFAULTS]
    if name == REFINE:
        # Not measured on a fresh install: a training run's rate, plus half again for the teacher's new
        # rows and the first model's answers on the validation rows.
        return REFINE_OVER_TRAIN * defaults["train"], 0
    return defaults[name], 0


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0
