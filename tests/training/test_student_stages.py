"""The train and evaluate stages in process, with the real teacher, the real bundled student and
real SMS messages: every model is scored the same way on the same rows."""

import json

import pytest

from app import job_stages
from app.artifacts import PREDICTIONS_ARTIFACT as PREDICTIONS
from app.config import get_settings
from app.db import session_scope
from app.specs import JobSpec
from app.storage import get_storage
from tests.support.datasets import sms_spam
from tests.support.factories import load, make_trainable_job, sms_training_rows, stored_jsonl
from workers.stages import REGISTRY, StageContext


def run_stage(name, job_id, results):
    job = load(job_id)
    work = get_settings().work_dir / str(job_id) / name
    work.mkdir(parents=True, exist_ok=True)
    ctx = StageContext(job_id=job_id, spec=JobSpec.model_validate(job.spec), work_dir=work, storage=get_storage(),
                       results=results)
    return REGISTRY[name].run(ctx)


@pytest.fixture(scope="module")
def test_rows():
    return sms_spam(per_class=60)[-10:]  # not among the training rows below


def test_train_then_evaluate_scores_all_three_models_the_same_way(teacher_settings, test_rows):
    job_id = make_trainable_job(sms_training_rows(24, 4), training={"epochs": 2}, test_set=test_rows)
    with session_scope() as session:
        results = job_stages.stage_results(session, job_id)
    results["train"] = run_stage("train", job_id, results)
    assert results["train"]["steps"] == 6 and results["train"]["soft_labels"]

    metrics = run_stage("evaluate", job_id, results)
    assert metrics["reference"] == "test_set"
    for name in ("teacher", "base_student", "student"):
        part = metrics[name]
        assert part["n"] == 10 and part["accuracy"] is not None and part["invalid"] == 0, (name, part)
        assert sum(sum(row.values()) for row in part["confusion"].values()) == 10
        assert part["latency_ms"]["n"] > 0 and part["size_bytes"] > 0
    assert metrics["teacher"]["answers_from"] == "evaluate", "no teacher_check ran, so the teacher was asked here"
    assert metrics["teacher"]["size_bytes"] > metrics["student"]["size_bytes"]
    assert 0 <= metrics["student"]["free_generation"]["valid_label_rate"] <= 1
    assert metrics["verdict"] in ("deploy", "retune")
    assert metrics["predictions"]["name"] == PREDICTIONS

    # What evaluate recorded as the tuned student's free answer is what /v1 serves for the same input.
    from app.api.openai import serving

    recorded = stored_jsonl(job_id, PREDICTIONS)
    for name in ("teacher", "base_student", "student"):  # the rows `?wrong=` filters agree with the scores
        assert sum(row["correct"][name] for row in recorded) == metrics[name]["correct"], name
    for row in recorded[:3]:
        served = serving.complete(str(job_id), [{"role": "user", "content": row["input"]}], max_tokens=16)
        assert served.text.strip() == row["student_text"], row


EXTRACTION_SPEC = {
    "task": "Extract the city a message mentions", "task_type": "extraction",
    "instruction": "Give the city named in the message.", "output_fields": ["city"], "labels": [],
}


def test_extraction_jobs_are_scored_by_exact_match_of_the_answer(teacher_settings):
    from app.artifacts import MODEL_FOLDER, save_folder
    from workers.bundled_models import STUDENT, model_dir

    test_set = [{"input": f"I am flying to {city} next week.", "output": json.dumps({"city": city})}
                for city in ("Paris", "Tokyo", "Lima", "Oslo")]
    job_id = make_trainable_job([{"input": "Meet me in Rome", "output": '{"city": "Rome"}', "split": "train"}],
                                task_spec=EXTRACTION_SPEC, task_type="extraction", test_set=test_set)
    with session_scope() as session:
        save_folder(session, get_storage(), job_id, MODEL_FOLDER, model_dir(STUDENT))  # untrained stand-in
        results = job_stages.stage_results(session, job_id)
    metrics = run_stage("evaluate", job_id, results)
    for name in ("teacher", "base_student", "student"):
        part = metrics[name]
        assert part["rule"] == "exact_match" and part["n"] == 4 and part["per_label"] == {}, (name, part)
        assert part["latency_ms"]["n"] > 0
    assert metrics["teacher"]["accuracy"] >= 0.75, "the teacher finds the city in a one-line message"
    assert metrics["verdict"] in ("deploy", "retune")


QA_SPEC = {
    "task": "Answer questions about a short notice, using only the notice", "task_type": "qa",
    "qa_mode": "open_book", "instruction": "Answer from the notice.", "labels": [],
}


def test_open_book_qa_is_scored_with_token_f1_and_the_teacher_judge(teacher_settings):
    from app.artifacts import MODEL_FOLDER, save_folder
    from workers.bundled_models import STUDENT, model_dir

    test_set = [{"input": "We open at noon and close at ten.\n\nQuestion: When do you open?", "output": "at noon"},
                {"input": "The terrace seats twenty guests.\n\nQuestion: How many guests fit on the terrace?",
                 "output": "twenty"}]
    job_id = make_trainable_job([{"input": "We close on Mondays.\n\nQuestion: When are you closed?",
                                  "output": "on Mondays", "split": "train"}],
                                task_spec=QA_SPEC, task_type="qa", qa_mode="open_book", test_set=test_set)
    with session_scope() as session:
        save_folder(session, get_storage(), job_id, MODEL_FOLDER, model_dir(STUDENT))  # untrained stand-in
        results = job_stages.stage_results(session, job_id)
    metrics = run_stage("evaluate", job_id, results)
    for name in ("teacher", "base_student", "student"):
        part = metrics[name]
        assert part["rule"] == "qa" and part["n"] == 2 and 0 <= part["f1"] <= 1, (name, part)
        judge = part["judge"]
        assert judge["rule"] == "teacher_judge" and judge["n"] == 2 and 0 <= judge["accuracy"] <= 1, (name, judge)
    # How well each model answers is bench/quality.py's to measure; here the scores must follow from
    # the answers evaluate recorded, by the same SQuAD rule for all three models.
    from workers.scoring_types import token_f1

    recorded = stored_jsonl(job_id, PREDICTIONS)
    assert [row["expected"] for row in recorded] == [row["output"] for row in test_set]
    for name in ("teacher", "base_student", "student"):
        f1s = [token_f1(row["expected"], row[name] or "") for row in recorded]
        assert metrics[name]["f1"] == pytest.approx(sum(f1s) / len(f1s), abs=1e-3), (name, recorded)
        assert sum(row["correct"][name] for row in recorded) == metrics[name]["correct"], name


BOOK = {"type": "function", "function": {
    "name": "book_table", "description": "Book a table at the restaurant",
    "parameters": {"type": "object", "required": ["people"], "properties": {"people": {"type": "integer"}}}}}
HOURS = {"type": "function", "function": {
    "name": "opening_hours", "description": "Tell the opening hours of one day",
    "parameters": {"type": "object", "required": ["day"], "properties": {"day": {"type": "string"}}}}}
PROMPT_TOOLS_SPEC = {"task": "Book tables and tell the opening hours", "task_type": "tool_calling",
                     "instruction": "Call the tool that fits.", "tools": [BOOK, HOURS], "tools_in_prompt": True,
                     "labels": []}


def test_a_student_reading_tools_from_its_prompt_is_trained_and_scored_on_each_rows_tools(teacher_settings):
    from app.answer_shapes import call_text, check_call
    from app.api.openai import serving
    from app.specs import TaskSpec
    from workers.scoring import normalize_answer

    def call(name, **arguments):
        return call_text({"name": name, "arguments": arguments})

    rows = [{"input": f"A table for {n} please", "output": call("book_table", people=n), "split": "train"}
            for n in (2, 3, 4, 5)] + [
            {"input": f"Are you open on {day}?", "output": call("opening_hours", day=day), "split": "train"}
            for day in ("Monday", "Friday")] + [{"input": "Thanks a lot!", "output": "You're welcome!",
                                                 "split": "train"}]
    test_set = [{"input": "A table for 6 please", "output": call("book_table", people=6), "tools": ["book_table"]},
                {"input": "Are you open on Sunday?", "output": call("opening_hours", day="Sunday")},
                # Offered only the other tool, a booking request gets no call from anyone.
                {"input": "A table for 7 please", "output": "", "tools": ["opening_hours"]}]
    job_id = make_trainable_job(rows, training={"epochs": 1, "batch_size": 4, "max_length": 32},
                                task_spec=PROMPT_TOOLS_SPEC, task_type="tool_calling", tools=[BOOK, HOURS],
                                tools_in_prompt=True, test_set=test_set)
    with session_scope() as session:
        results = job_stages.stage_results(session, job_id)
    results["train"] = run_stage("train", job_id, results)
    # The offered tools make each prompt longer than the 32 tokens asked for: raised, not cut.
    assert results["train"]["plan"]["max_length"] > 32, results["train"]
    assert any("max_length raised" in note for note in results["train"]["notes"]), results["train"]["notes"]

    metrics = run_stage("evaluate", job_id, results)
    for name in ("teacher", "base_student", "student"):
        assert metrics[name]["n"] == 3 and metrics[name]["n_call"] == 2, (name, metrics[name])
    recorded = stored_jsonl(job_id, PREDICTIONS)
    # The teacher answered under the schema of the offered tool alone.
    assert check_call(recorded[2]["teacher"] or "", [BOOK]).call is None, recorded[2]
    # Served with the row's tools in the request (decoded under their call grammar, as /v1 does),
    # the tuned student answers as evaluate recorded.
    spec = TaskSpec.model_validate(PROMPT_TOOLS_SPEC)
    for row, stored in zip(test_set, recorded, strict=True):
        served = serving.complete(str(job_id), spec.student_messages(row["input"], row.get("tools")), max_tokens=64,
                                  grammar=spec.call_grammar(row.get("tools")))
        assert normalize_answer(served.text, spec.task_type) == stored["student"], (row, stored)


def test_the_second_round_trains_the_first_model_on_new_rows_like_its_misses(teacher_settings, test_rows):
    """The refine stage with the real teacher and real training; the untrained student stands in
    for the first round's model, so it gets validation rows wrong."""
    from app.artifacts import MODEL_FOLDER, REFINE_ROWS_ARTIFACT, find_artifact, folder_path, save_folder
    from app.stage_plan import stages_for
    from workers.bundled_models import STUDENT, model_dir

    rows = sms_training_rows(16, 6)
    job_id = make_trainable_job(rows, training={"rounds": 2, "epochs": 1}, curation={"votes": 1},
                                test_set=test_rows)
    assert [stage.name for stage in load(job_id).stages] == list(stages_for("model", 2))
    with session_scope() as session:
        save_folder(session, get_storage(), job_id, MODEL_FOLDER, model_dir(STUDENT))
        first_weights = find_artifact(session, job_id, f"{MODEL_FOLDER}/model.safetensors").sha256
        results = job_stages.stage_results(session, job_id)

    metrics = run_stage("refine", job_id, results)
    validation = {r["input"]: r["output"] for r in rows if r["split"] == "validation"}
    assert metrics["validation_rows"] == 6 and 1 <= metrics["misses"] <= 6, metrics
    assert metrics["first_round_validation_accuracy"] == round(1 - metrics["misses"] / 6, 4)
    assert metrics["calls"] == max(metrics["misses"], 2) and metrics["written"] >= metrics["new_rows"] >= 1, metrics
    new = stored_jsonl(job_id, REFINE_ROWS_ARTIFACT)
    assert len(new) == metrics["new_rows"]
    seen = {r["input"] for r in rows} | {r.input for r in load_spec(job_id).test_set}
    for row in new:
        assert row["like"] in validation and row["output"] in ("spam", "ham") and row["split"] == "train", row
        assert row["input"] not in seen and set(row["label_probs"]) == {"spam", "ham"}, row
    assert metrics["replayed_rows"] == min(len(new), 16)
    trained = len(new) + metrics["replayed_rows"] + metrics["repeated_for_balance"]
    assert metrics["examples"] == trained and metrics["steps"] >= 1, metrics

    with session_scope() as session:  # the second model replaced the first, and records its round
        assert find_artifact(session, job_id, f"{MODEL_FOLDER}/model.safetensors").sha256 != first_weights
    stored = folder_path(get_storage(), job_id, MODEL_FOLDER)
    assert json.loads((stored / "refine.json").read_text()) == metrics
    assert run_stage("refine", job_id, results) == {**metrics, "restored": True}, "a re-run does not refine twice"


def load_spec(job_id):
    return JobSpec.model_validate(load(job_id).spec)
