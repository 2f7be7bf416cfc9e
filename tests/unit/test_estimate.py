"""The upfront estimate's arithmetic: a job's units per stage, seconds per unit from past runs
like it (or the defaults), and the basis it says."""

import pytest

from app import estimate
from app.estimate import DEFAULT_RATES, Sample, SourceData, sample_units, training_setting, workload
from app.specs import JobSpec, TrainingOptions
from app.stage_plan import ALL_STAGES, DATA_STAGES, model_stages, stages_for

TEACHER, STUDENT = "qwen", "smol"


def spec(**extra) -> JobSpec:
    return JobSpec.model_validate({"task": "spam or not", "teacher": TEACHER, "student": STUDENT, **extra})


def sample(stage: str, seconds: float, units: float = 1.0, task_type: str | None = "classification",
           model: str | None = None, setting: str | None = None) -> Sample:
    return Sample(stage, seconds, units, task_type, model or estimate.sample_model(stage, TEACHER, STUDENT),
                  setting or (training_setting({}) if stage in ("train", "refine") else None))


def test_the_data_stages_grow_with_the_examples_and_votes():
    work = workload(spec(labels=["spam", "ham"], num_examples=150,
                         test_set=[{"input": f"t{i}", "output": "spam"} for i in range(60)]))
    assert work.stages == ALL_STAGES and work.task_type == "classification"
    assert work.units["generate"] == 42, "1.4 x 150 inputs, 5 a call"
    assert work.units["label"] == 42 * 5 * 3, "each generated input answered 3 times (the default votes)"
    assert work.units["curate"] == 150 and work.units["teacher_check"] == 60 and work.units["evaluate"] == 60
    assert work.units["train"] == 135 * 3, "the train split (90%) in 3 epochs"
    one_vote = workload(spec(labels=["spam", "ham"], num_examples=150, curation={"votes": 1}))
    assert one_vote.units["label"] == 42 * 5


def test_a_small_data_set_trains_more_epochs_and_without_a_test_set_evaluates_the_validation_split():
    work = workload(spec(num_examples=30, training={"batch_size": 8}))
    assert work.units["train"] == 27 * 10, "at least 40 steps: 4 a pass over 27 rows, so 10 passes"
    assert work.units["evaluate"] == 3 and work.units["teacher_check"] == 0
    assert work.task_type is None, "left to the plan"


def test_a_from_job_job_runs_only_the_model_stages_on_that_jobs_data():
    work = workload(spec(num_examples=500, training={"epochs": 2}),
                    SourceData(train_rows=40, validation_rows=5, task_type="extraction"))
    assert work.stages == model_stages() and work.task_type == "extraction"
    assert work.units == {"train": 80, "evaluate": 5, "package": 2}, "package: the default f16 and q8_0 files"
    assert workload(spec(until="data"), SourceData(10, 1, None)).stages == ()


def test_a_second_round_adds_the_refine_stage_after_train_at_about_a_training_runs_cost():
    assert stages_for("model", 2) == (*DATA_STAGES, "train", "refine", "evaluate", "package")
    assert stages_for("model") == ALL_STAGES and "refine" not in ALL_STAGES and stages_for("data", 2) == DATA_STAGES
    work = workload(spec(labels=["spam", "ham"], num_examples=150, training={"rounds": 2}))
    assert work.stages == stages_for("model", 2) and work.units["refine"] == work.units["train"]
    seconds = {s.name: s.seconds for s in estimate.estimate(work, []).stages}
    assert seconds["refine"] == pytest.approx(estimate.REFINE_OVER_TRAIN * seconds["train"], abs=0.1)
    measured = estimate.estimate(work, [sample("refine", 90.0, 45.0)])
    assert {s.name: s.basis for s in measured.stages}["refine"] == "measured (1 stages)"
    assert estimate.sample_units("refine", {"examples": 40, "epochs": 2}) == 80


def test_a_fresh_install_takes_the_defaults_of_the_task_type():
    work = workload(spec(labels=["spam", "ham"], num_examples=150))
    result = estimate.estimate(work, [])
    assert [s.basis for s in result.stages] == ["default"] * len(ALL_STAGES) and result.basis == "default"
    rates = DEFAULT_RATES["classification"]
    assert result.stages[1].seconds == pytest.approx(42 * rates["generate"], abs=0.1)
    assert result.total_seconds == pytest.approx(sum(s.seconds for s in result.stages), abs=0.1)
    tools = estimate.estimate(workload(spec(task_type="qa", num_examples=150)), [])
    assert tools.stages[-2].seconds != result.stages[-2].seconds, "each type has its own evaluate speed"


def test_measured_runs_give_the_median_speed_of_the_most_recent_alike():
    work = workload(spec(labels=["spam", "ham"], num_examples=100, until="data"))
    samples = [sample("generate", 30, units=10),  # 3 s a call, the newest
               sample("generate", 50, units=10),
               sample("generate", 40, units=10),
               sample("generate", 900, units=10, model="another-teacher"),
               sample("generate", 900, units=10, task_type="extraction"),
               sample("generate", 900, units=10)]  # the oldest: beyond the history of 3
    rate, used = estimate.stage_rate("generate", work, samples, history=3)
    assert (rate, used) == (4.0, 3)
    result = estimate.estimate(work, samples, history=3)
    generate = result.stages[1]
    assert generate.seconds == 4.0 * 28 and generate.basis == "measured (3 stages)"
    assert result.basis == "measured (3 stages); default for plan, label, curate, teacher_check"


def test_training_speed_is_measured_per_student_and_setting():
    lora = spec(num_examples=100, training={"method": "lora", "lora_r": 8})
    work = workload(lora)
    assert work.setting == "soft_labels/lora/r8" != training_setting(TrainingOptions().model_dump())
    samples = [sample("train", 100, units=100, setting="soft_labels/default/r16"),
               sample("train", 500, units=100, setting="soft_labels/lora/r8"),
               sample("train", 700, units=100, setting="soft_labels/lora/r8", model="another-student")]
    assert estimate.stage_rate("train", work, samples) == (5.0, 1)


def test_past_runs_count_only_the_work_they_did():
    assert sample_units("generate", {"calls": 42, "answers_restored": 12}) == 30
    assert sample_units("generate", {"calls": 42, "answers_restored": 42}) is None, "all restored: no speed"
    assert sample_units("label", {"labeled": 200, "malformed_answers": 10, "votes": 3, "answers_restored": 10}) == 600
    assert sample_units("teacher_check", {"check_rows": 60}) == 60
    assert sample_units("teacher_check", {}) is None, "skipped (no test set)"
    assert sample_units("train", {"examples": 135, "epochs": 3.0}) == 405
    assert sample_units("train", {"examples": 135, "epochs": 3.0, "resumed_from": "checkpoint-20"}) is None
    assert sample_units("evaluate", {"eval_rows": 60}) == 60
    assert sample_units("package", {}) == 1
    assert sample_units("package", {"export_files": [{"name": "student.gguf"}, {"name": "student.q8_0.gguf"}]}) == 2
    assert sample_units("curate", {"copied_from": "a-job"}) is None, "a stage copied from another job ran nowhere"


def test_the_estimates_assumptions_match_the_stages():
    from workers import generation
    from workers.stages import curate

    assert (estimate.PER_CALL, estimate.OVERGENERATE) == (generation.PER_CALL, generation.OVERGENERATE)
    assert estimate.VALIDATION_FRACTION == curate.VALIDATION_FRACTION
    assert all(set(rates) == set(ALL_STAGES) for rates in DEFAULT_RATES.values())
