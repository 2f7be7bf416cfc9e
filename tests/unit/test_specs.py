"""The typed specs: old stored JSON still loads, and the training options are documented once."""

from pathlib import Path

from app.schemas import JobCreate
from app.specs import TASK_TYPE_NAMES, JobSpec, TaskSpec, TaskType, TrainingOptions, training_options_table
from workers.training.options import resolve

ROOT = Path(__file__).resolve().parents[2]

# A job row's `spec` exactly as the API stored it before the specs were typed (every training
# option null unless given), and a plan stage's `task_spec` of the same time.
STORED_SPEC = {
    "task": "Decide whether an SMS is spam or a normal message", "task_type": None, "labels": ["spam", "ham"],
    "examples": [{"input": "WIN a prize now", "output": "spam"}],
    "test_set": [{"input": "see you at 6", "output": "ham"}],
    "teacher": "qwen2.5-coder-1.5b-instruct", "student": "smollm2-135m-instruct", "num_examples": 30, "until": "data",
    "training": {"method": None, "epochs": None, "learning_rate": None, "batch_size": None, "max_length": None,
                 "lora_r": None, "lora_alpha": None, "soft_label_weight": None, "temperature": None, "seed": None,
                 "distillation": "soft_labels", "teacher_weights": None},
}
STORED_TASK_SPEC = {
    "task": "Decide whether an SMS is spam or a normal message", "task_type": "classification",
    "instruction": "Label unsolicited advertising as spam.",
    "labels": [{"name": "spam", "description": "Messages that advertise"}, {"name": "ham", "description": "normal"}],
    "output_fields": [], "topics": ["prizes"], "styles": ["casual"], "lengths": ["one short sentence"],
}


def test_a_spec_stored_by_earlier_versions_loads_with_the_defaults():
    spec = JobSpec.model_validate(STORED_SPEC)
    assert spec.labels == ["spam", "ham"] and spec.task_type is None and spec.until == "data"
    assert spec.examples[0].input == "WIN a prize now" and spec.test_set[0].output == "ham"
    assert spec.training.batch_size == 8 and spec.training.seed == 0 and spec.seed == 0
    assert spec.training.epochs is None, "a run-dependent default stays open for resolve"
    plan = resolve(spec.training, n_params=135_000_000)
    assert (plan.method, plan.epochs, plan.learning_rate, plan.temperature) == ("full", 3.0, 5e-5, 2.0)


def test_a_new_spec_round_trips_through_its_stored_json():
    spec = JobCreate(task="t", labels=["a", "b"], training={"epochs": 2}).to_spec()
    again = JobSpec.model_validate(spec.model_dump(mode="json"))
    assert again == spec and again.training.epochs == 2


def test_a_plan_stored_by_earlier_versions_loads():
    spec = TaskSpec.model_validate(STORED_TASK_SPEC)
    assert spec.task_type is TaskType.CLASSIFICATION and spec.label_names == ["spam", "ham"]
    assert spec.describe("spam") == "Messages that advertise" and spec.describe("other") == "other"
    extraction = TaskSpec.model_validate({**STORED_TASK_SPEC, "task_type": "extraction", "labels": [],
                                          "output_fields": ["date"]})
    assert extraction.label_names == [] and extraction.output_fields == ["date"]


def test_one_task_type_everywhere():
    schema = JobCreate.model_json_schema()
    assert tuple(schema["$defs"]["TaskType"]["enum"]) == TASK_TYPE_NAMES


def test_the_docs_table_is_the_options_model():
    docs = (ROOT / "docs" / "training.md").read_text()
    assert training_options_table() in docs, "regenerate the table in docs/training.md from app.specs"
    table_rows = training_options_table().splitlines()[2:]
    assert set(TrainingOptions.model_fields) == {line.split("`")[1] for line in table_rows}
