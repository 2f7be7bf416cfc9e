"""On-policy distillation (`training.distillation: on_policy`) with TRL's real DistillationTrainer.

The bundled pair (Qwen2.5 teacher, SmolLM2 student) does not share a vocabulary, so it is refused
with `distillation_unavailable`. The real run uses the bundled student's own folder as the teacher:
the same vocabulary by construction. That is a plumbing test of the real trainer (generation,
teacher forward, divergence, checkpoints, saving), not a claim that a model learns from itself.
"""

import json
import math
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from app.config import get_settings
from app.inference import answer_budget
from app.schemas import JobCreate
from app.specs import TaskSpec
from tests.support.factories import SMS_TASK_SPEC, load, make_trainable_job, sms_training_rows
from workers import bundled_models
from workers.errors import StageError
from workers.training.data import on_policy_example
from workers.training.on_policy import teacher_source, vocabularies_match
from workers.training.options import distillation_config, resolve, total_steps
from workers.training.predict import LabelChooser
from workers.training.run import last_complete_checkpoint, train_student
from workers.training.student import load_student, student_source

STUDENT = bundled_models.STUDENT.name
TEACHER = bundled_models.TEACHER.name
LABELS = ["spam", "ham"]
SMALL = 135_000_000


class Canceled(Exception):
    pass


class Hooks:
    """A job's hooks, recorded; canceled once `cancel_after` steps are done."""

    def __init__(self, cancel_after=None):
        self.steps, self.live, self.cancel_after = [], [], cancel_after

    def progress(self, done, total):
        self.steps.append((done, total))

    def check_canceled(self):
        if self.cancel_after is not None and len(self.steps) >= self.cancel_after:
            raise Canceled()

    def live_metrics(self, metrics):
        self.live.append(metrics)


def on_policy_run(out, job, epochs=1):
    """Real on-policy training: 4 SMS prompts, batch 2 (2 steps an epoch), the student as its own teacher."""
    return train_student(
        student=STUDENT, rows=sms_training_rows(4), labels=LABELS, teacher=TEACHER,
        task_spec=TaskSpec.model_validate(SMS_TASK_SPEC),
        options={"distillation": "on_policy", "teacher_weights": student_source(STUDENT), "epochs": epochs,
                 "batch_size": 2},
        checkpoints=out / "ck", out=out / "out", job=job,
    )


# --- the bundled pair is refused, never silently trained another way ------------------------

def test_the_bundled_pair_is_refused_naming_the_vocabulary_mismatch(tmp_path):
    with pytest.raises(StageError) as info:
        train_student(student=STUDENT, rows=sms_training_rows(4), labels=LABELS,
                      options={"distillation": "on_policy"}, teacher=TEACHER,
                      task_spec=TaskSpec.model_validate(SMS_TASK_SPEC),
                      checkpoints=tmp_path / "ck", out=tmp_path / "out")
    assert info.value.code == "distillation_unavailable"
    message = info.value.message
    assert TEACHER in message and STUDENT in message and "vocabulary" in message
    assert "49,152 tokens" in message, message  # SmolLM2's vocabulary, against Qwen2.5's
    assert not (tmp_path / "out").exists() and not (tmp_path / "ck").exists(), "nothing was trained"


def test_the_train_stage_fails_an_on_policy_job_of_the_bundled_pair(settings_env):
    """The real train stage, in process: the job's teacher (the default, bundled one) reaches the check."""
    from app.specs import JobSpec

    settings_env(TEACHER_MODEL=TEACHER)  # the service's default teacher, not the tests' small one
    from app.storage import get_storage
    from workers.stages import REGISTRY, StageContext

    job_id = make_trainable_job(sms_training_rows(4), training={"distillation": "on_policy"})
    job = load(job_id)
    assert job.spec["teacher"] == get_settings().teacher_model == TEACHER
    work = get_settings().work_dir / str(job_id) / "train"
    work.mkdir(parents=True, exist_ok=True)
    ctx = StageContext(job_id=job_id, spec=JobSpec.model_validate(job.spec), work_dir=work, storage=get_storage(),
                       results={"plan": {"task_spec": SMS_TASK_SPEC}})
    with pytest.raises(StageError) as info:
        REGISTRY["train"].run(ctx)
    assert info.value.code == "distillation_unavailable" and TEACHER in info.value.message
    assert not (work / "out").exists()


def test_weights_that_are_not_there_are_refused(tmp_path):
    with pytest.raises(StageError) as info:
        train_student(student=STUDENT, rows=sms_training_rows(4), labels=LABELS,
                      options={"distillation": "on_policy", "teacher_weights": str(tmp_path / "nowhere")},
                      teacher=TEACHER, checkpoints=tmp_path / "ck", out=tmp_path / "out")
    assert info.value.code == "distillation_unavailable" and "nowhere" in info.value.message
    assert "not found" in info.value.message


def test_a_teacher_without_known_weights_is_refused(tmp_path):
    with pytest.raises(StageError) as info:
        teacher_source(None, "remote-teacher")
    assert info.value.code == "distillation_unavailable"
    assert "'remote-teacher'" in info.value.message and "teacher_weights" in info.value.message
    with pytest.raises(StageError, match="no config.json"):
        teacher_source(str(tmp_path), "x")
    assert teacher_source("org/teacher", "x") == "org/teacher", "anything else is taken as a hub id"


def test_vocabularies_match_compares_the_token_map():
    from transformers import AutoTokenizer

    student = load_student(STUDENT).tokenizer
    same = AutoTokenizer.from_pretrained(student_source(STUDENT))
    teacher = AutoTokenizer.from_pretrained(str(bundled_models.model_dir(bundled_models.TEACHER)))
    assert vocabularies_match(student, same)
    assert not vocabularies_match(student, teacher)


# --- a real on-policy run: canceled, then resumed ------------------------------------------

@pytest.fixture(scope="module")
def distilled(tmp_path_factory):
    """One epoch of 2 steps, canceled at the end of step 2 (after checkpoint-1 was written), then
    resumed from checkpoint-1 to the end: 3 real optimiser steps in all, like a job that is
    canceled and later resumed."""
    out = tmp_path_factory.mktemp("on-policy")
    started = time.monotonic()
    canceled = Hooks(cancel_after=1)
    with pytest.raises(Canceled):
        on_policy_run(out, canceled)
    checkpoint_at_cancel = last_complete_checkpoint(out / "ck")
    out_at_cancel = (out / "out").exists()
    hooks = Hooks()
    result = on_policy_run(out, hooks)
    print(f"on-policy runs (canceled + resumed): {time.monotonic() - started:.1f} s")
    return result, out, hooks, canceled, checkpoint_at_cancel, out_at_cancel


def test_a_cancel_stops_the_run_between_steps_after_a_checkpoint(distilled):
    _, _, _, canceled, checkpoint_at_cancel, out_at_cancel = distilled
    assert canceled.steps == [(1, 2)], "stopped at the end of step 2, before reporting it"
    assert canceled.live and canceled.live[0]["loss_history"][0]["step"] == 1, "live loss was reported"
    assert checkpoint_at_cancel.endswith("checkpoint-1") and not out_at_cancel


def test_the_resumed_run_finishes_and_records_the_loss(distilled):
    result, _, hooks, canceled, _, _ = distilled
    m = result.metrics
    assert m["distillation"] == "on_policy" and m["plan"]["distillation"] == "on_policy"
    assert m["resumed_from"] == "checkpoint-1" and m["steps"] == 2 and m["examples"] == 4
    assert m["soft_labels"] is False and m["plan"]["temperature"] == 1.0
    assert m["teacher_weights"] == student_source(STUDENT) and m["teacher_sees_task"] is True
    assert m["max_new_tokens"] <= 8, "answers are one or two tokens, so the student writes a few at most"
    assert [entry["step"] for entry in m["loss_history"]] == [2] and m["tokens"] > 0
    assert hooks.steps == [(2, 2)] and hooks.live and "loss_history" in hooks.live[-1]
    # Teacher and student are the same weights; the loss is above zero because the teacher reads
    # the labeling prompt (task and labels) and the student the bare message.
    losses = [canceled.live[0]["loss_history"][0]["loss"], *(entry["loss"] for entry in m["loss_history"])]
    assert all(math.isfinite(loss) and loss > 0 for loss in losses), losses
    print(f"losses {losses}, {m['train_runtime_s']} s in the resumed trainer")


def test_the_model_folder_is_saved_loads_and_answers(distilled):
    result = distilled[0]
    assert result.adapter_dir is None
    before = load_file(f"{student_source(STUDENT)}/model.safetensors")
    after = load_file(result.model_dir / "model.safetensors")
    assert any(not (after[name] == before[name]).all() for name in after), "training moved some weights"
    # TRL samples with its own generation settings during training; they must not end up in the saved model.
    original = json.loads(Path(student_source(STUDENT), "generation_config.json").read_text())
    saved = json.loads((result.model_dir / "generation_config.json").read_text())
    assert {k: saved.get(k) for k in ("do_sample", "temperature", "max_new_tokens")} == \
        {k: original.get(k) for k in ("do_sample", "temperature", "max_new_tokens")}
    tuned = load_student(str(result.model_dir))
    assert tuned.tokenizer.chat_template
    assert LabelChooser(tuned, LABELS).choose([{"role": "user", "content": "Hi mum"}]) in LABELS


def test_checkpoints_are_kept_until_the_stage_stores_the_model(distilled):
    out = distilled[1]
    # None is written at the last step (the model is saved right after it), so checkpoint-1 is
    # still the newest one when the stage takes over.
    assert last_complete_checkpoint(out / "ck").endswith("checkpoint-1")
    assert not (out / "ck" / "checkpoint-2").exists()


# --- option resolution and the TRL config --------------------------------------------------

def test_soft_labels_stay_the_default():
    plan = resolve({}, SMALL, teacher=TEACHER)
    assert plan.distillation == "soft_labels" and plan.teacher_weights is None and plan.temperature == 2.0
    assert "teacher_weights" not in plan.as_dict()
    assert JobCreate(task="t").to_spec().training.distillation == "soft_labels"


def test_on_policy_defaults_to_the_bundled_teacher_folder():
    plan = resolve({"distillation": "on_policy"}, SMALL, teacher=TEACHER)
    assert plan.teacher_weights == str(bundled_models.model_dir(bundled_models.TEACHER))
    assert plan.temperature == 1.0 and plan.method == "full" and plan.learning_rate == 5e-5
    assert resolve({"distillation": "on_policy", "temperature": 0.7}, SMALL).temperature == 0.7


def test_teacher_model_path_is_where_the_default_teacher_is_served_from(monkeypatch):
    monkeypatch.setenv("TEACHER_MODEL", TEACHER)  # the service's default teacher, not the tests' small one
    monkeypatch.setenv("TEACHER_MODEL_PATH", "/srv/models/my-teacher")
    monkeypatch.setenv("EXTRA_TEACHERS", "other-teacher")
    get_settings.cache_clear()
    try:
        on_policy = {"distillation": "on_policy"}
        assert resolve(on_policy, SMALL, teacher=TEACHER).teacher_weights == "/srv/models/my-teacher"
        assert resolve({"distillation": "on_policy"}, SMALL, teacher="other-teacher").teacher_weights is None
        given = {"distillation": "on_policy", "teacher_weights": "org/teacher"}
        assert resolve(given, SMALL, teacher=TEACHER).teacher_weights == "org/teacher"
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_the_schema_refuses_teacher_weights_without_on_policy():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="only used with distillation: on_policy"):
        JobCreate(task="t", training={"teacher_weights": "org/teacher"})
    with pytest.raises(ValidationError):
        JobCreate(task="t", training={"distillation": "magic"})
    spec = JobCreate(task="t", training={"distillation": "on_policy", "teacher_weights": "org/teacher"}).to_spec()
    assert spec.training.teacher_weights == "org/teacher"


def test_distillation_config_carries_the_plan(tmp_path):
    plan = resolve({"distillation": "on_policy", "epochs": 2, "batch_size": 16, "max_length": 64}, SMALL,
                   teacher=TEACHER)
    config = distillation_config(plan, tmp_path, bf16=False, max_new_tokens=6, n_examples=10, save_steps=3)
    assert config.num_train_epochs == 2 and config.learning_rate == 5e-5  # not TRL's 1e-6
    assert config.per_device_train_batch_size == 10, "TRL drops incomplete batches, so never above the data"
    assert config.max_completion_length == 6 and config.temperature == 1.0
    assert config.bf16 is False and config.gradient_checkpointing is False  # TRL defaults both to True
    assert config.logging_steps == 1 and config.save_steps == 3 and config.output_dir == str(tmp_path)
    distill = distillation_config(plan, tmp_path, bf16=False, max_new_tokens=500, n_examples=10)
    assert distill.max_completion_length == 64
    assert total_steps(10, plan, drop_last=True) == 2 and total_steps(10, plan) == 2
    assert total_steps(20, resolve({"batch_size": 8, "epochs": 1}, SMALL), drop_last=True) == 2


def test_on_policy_examples_give_the_teacher_the_labeling_prompt():
    row = sms_training_rows(1)[0]
    example = on_policy_example(row, TaskSpec.model_validate(SMS_TASK_SPEC))
    assert example["prompt"] == [{"role": "user", "content": row["input"]}]
    system, user = example["teacher_prompt"]
    assert system["role"] == "system" and SMS_TASK_SPEC["task"] in system["content"]
    assert all(label["description"] in system["content"] for label in SMS_TASK_SPEC["labels"])
    assert user == {"role": "user", "content": row["input"]}
    assert on_policy_example(row)["teacher_prompt"] == example["prompt"]
    tokenizer = load_student(STUDENT).tokenizer
    longest = max(len(tokenizer(label, add_special_tokens=False)["input_ids"]) for label in ("spam", "ham"))
    assert answer_budget(tokenizer, ["spam", "ham"]) == longest + 4
