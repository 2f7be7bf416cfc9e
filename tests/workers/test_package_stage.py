"""The package stage on a real job: the bundled student (standing in for a tuned one) becomes a
GGUF file that reads back as the same model and a q8_0 file, each run in llama.cpp on the test rows
(the f16 file answering as transformers does), plus Modelfile, model card and report.json."""

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gguf import GGUFReader
from safetensors import safe_open
from transformers import AutoTokenizer

from app.artifacts import PREDICTIONS_ARTIFACT, find_artifact, save_artifact
from app.db import session_scope
from app.inference import FREE_ANSWER_TOKENS, generate, load_student
from app.specs import JobSpec, Row
from app.storage import get_storage
from tests.support.factories import make_finished_job
from workers.bundled_models import STUDENT, is_prepared, model_dir
from workers.monitor import JobCanceled
from workers.packaging.chat_check import render_ollama_prompt
from workers.stages.base import StageContext, StageError
from workers.stages.package import PackageStage

STUDENT_DIR = model_dir(STUDENT)
SPEC: dict[str, Any] = {
    "task": "Decide whether an SMS message is spam or a normal message",
    "task_type": "classification",
    "labels": [{"name": "spam", "description": "unsolicited advertising or a scam"},
               {"name": "ham", "description": "a normal, legitimate message"}],
    "instruction": "Answer with the label only.",
}
METRICS: dict[str, dict[str, Any]] = {
    "plan": {"task_spec": SPEC},
    "train": {"method": "full", "student": STUDENT.name, "plan": {"epochs": 3, "learning_rate": 5e-5, "batch_size": 8},
              "train_loss": 0.43217},
    "evaluate": {
        "teacher": {"model": "qwen2.5-coder-1.5b-instruct", "accuracy": 0.9, "macro_f1": 0.8812, "n": 60,
                    "latency_ms": {"p50": 812.34, "p95": 1530.0}, "size_bytes": 3_087_000_000},
        "base_student": {"accuracy": 0.45, "macro_f1": 0.31, "n": 60, "latency_ms": {"p50": 40.2, "p95": 55.9},
                         "size_bytes": 538_090_408},
        "student": {"accuracy": 0.8667, "macro_f1": 0.8512, "n": 60, "latency_ms": {"p50": 41.04, "p95": None},
                    "size_bytes": 538_090_408, "per_label": {"spam": {"accuracy": 0.8}, "ham": {"accuracy": 0.9}}},
        "verdict": "deploy", "reference": "test_set", "ratio": 0.963,
    },
}
OUTPUTS = {"student.gguf", "student.q8_0.gguf", "Modelfile", "README.md", "report.json"}
TEST_ROWS = [Row(input=text, output=label) for text, label in (
    ("WINNER!! You have won a 1000 cash prize. Call 09061701461 to claim now", "spam"),
    ("Are you coming to dinner tonight? Mum is making lasagne", "ham"),
    ("URGENT: your mobile number has been awarded a free holiday, text YES to 80082", "spam"),
    ("ok see you at the station at 5", "ham"),
    ("Free entry in a weekly competition to win FA Cup final tickets. Text FA to 87121", "spam"),
)]


def transformers_answers() -> list[str]:
    """The bundled student's greedy free answers to the test rows in transformers (what evaluate
    stores as `student_text`): what the GGUF files must reproduce in llama.cpp."""
    student = load_student(str(STUDENT_DIR))
    return [generate(student, [{"role": "user", "content": row.input}], max_tokens=FREE_ANSWER_TOKENS).text.strip()
            for row in TEST_ROWS]


class Recorder:
    """A progress sink that records every report; `cancel_after` checks it raises JobCanceled."""

    def __init__(self, cancel_after: int | None = None) -> None:
        self.reports: list[tuple[int, int]] = []
        self.checks = 0
        self.cancel_after = cancel_after

    def progress(self, done: int, total: int) -> None:
        self.reports.append((done, total))
        self.check_canceled()

    def check_canceled(self) -> None:
        self.checks += 1
        if self.cancel_after is not None and self.checks > self.cancel_after:
            raise JobCanceled()


def model_copy(folder: Path) -> Path:
    """The bundled student's files (links, not copies), without the cache's `.complete` marker."""
    folder.mkdir()
    for path in STUDENT_DIR.iterdir():
        if path.is_file() and not path.name.startswith("."):
            (folder / path.name).symlink_to(path)
    return folder


def context(job_id, work_dir: Path, sink=None, metrics=METRICS) -> StageContext:
    return StageContext(job_id=job_id, spec=JobSpec(task=SPEC["task"], teacher="qwen2.5-coder-1.5b-instruct",
                                                    student=STUDENT.name, test_set=TEST_ROWS,
                                                    exports=["f16", "q8_0"]),
                        work_dir=work_dir, storage=get_storage(), results=metrics, sink=sink)


def stored(job_id, name: str) -> Path:
    return get_storage().local_path(f"{job_id}/{name}")


@pytest.fixture(scope="module")
def packaged(test_database, tmp_path_factory):
    """One run of the stage on a finished job holding the bundled student as `model/`."""
    assert is_prepared(STUDENT), "the bundled student is not prepared: run `make models` (make test does)"
    job_id = make_finished_job(model_dir=model_copy(tmp_path_factory.mktemp("student") / "model"),
                               metrics=METRICS, labels=["spam", "ham"])
    texts = transformers_answers()
    predictions = "".join(json.dumps({"input": row.input, "expected": row.output, "student": row.output,
                                      "student_text": text}) + "\n" for row, text in zip(TEST_ROWS, texts, strict=True))
    with session_scope() as session:
        save_artifact(session, get_storage(), job_id, PREDICTIONS_ARTIFACT, predictions.encode())
    right = sum(text.strip().lower() == row.output for row, text in zip(TEST_ROWS, texts, strict=True))
    results = {**METRICS, "evaluate": {**METRICS["evaluate"], "student": {
        **METRICS["evaluate"]["student"], "free_generation": {"accuracy": right / len(TEST_ROWS)}}}}
    sink = Recorder()
    work_dir = tmp_path_factory.mktemp("work")
    metrics = PackageStage().run(context(job_id, work_dir, sink, results))
    return job_id, metrics, sink, work_dir, texts


def test_outputs_are_artifacts_with_matching_checksums(packaged):
    job_id, metrics, _, work_dir, _ = packaged
    assert {a["name"] for a in metrics["artifacts"]} == OUTPUTS
    with session_scope() as session:
        for item in metrics["artifacts"]:
            data = stored(job_id, item["name"]).read_bytes()
            row = find_artifact(session, job_id, item["name"])
            assert row is not None and (row.size, row.sha256) == (item["size"], item["sha256"])
            assert hashlib.sha256(data).hexdigest() == item["sha256"] and len(data) == item["size"]
    assert not (work_dir / "student.gguf").exists()


def test_gguf_reads_back_as_the_same_model(packaged):
    job_id, metrics, _, _, _ = packaged
    reader = GGUFReader(stored(job_id, "student.gguf"))
    with safe_open(STUDENT_DIR / "model.safetensors", "np") as weights:
        names = list(weights.keys())
        down = weights.get_tensor("model.layers.0.mlp.down_proj.weight")
        norm = weights.get_tensor("model.norm.weight")
    config = json.loads((STUDENT_DIR / "config.json").read_text())

    assert reader.get_field("general.architecture").contents() == "llama"
    assert len(reader.tensors) == len(names) == 272
    assert len(reader.get_field("tokenizer.ggml.tokens").data) == config["vocab_size"]
    assert reader.get_field("tokenizer.ggml.pre").contents() == "smollm"
    tensors = {t.name: t for t in reader.tensors}
    assert tensors["blk.0.ffn_down.weight"].tensor_type.name == "F16"
    np.testing.assert_array_equal(np.asarray(tensors["blk.0.ffn_down.weight"].data), down.astype(np.float16))
    np.testing.assert_array_equal(np.asarray(tensors["output_norm.weight"].data), norm)

    facts = metrics["gguf"]
    assert facts["architecture"] == "llama" and facts["file_type"] == "MOSTLY_F16"
    assert facts["tensor_count"] == facts["source_tensor_count"] == 272
    assert facts["tokenizer"]["tokens"] == config["vocab_size"] and facts["tokenizer"]["chat_template"]
    assert facts["size_bytes"] == stored(job_id, "student.gguf").stat().st_size
    assert facts["name"] == f"vibetune-{str(job_id)[:8]}"


def test_modelfile_uses_the_students_chat_format(packaged):
    job_id, metrics, _, _, _ = packaged
    text = stored(job_id, "Modelfile").read_text()
    comments, rest = text.split("\nFROM ", 1)
    assert all(line.startswith("# ") or not line for line in comments.splitlines())
    how_to_call = " ".join(line[2:] for line in comments.splitlines() if line)
    assert "as the user message" in how_to_call and how_to_call.endswith("It answers with the label.")
    assert rest.startswith(f"./{metrics['recommended_export']}\n"), "the Modelfile loads the recommended file"
    assert 'PARAMETER stop "<|im_end|>"' in text and "PARAMETER temperature 0" in text
    template = text.split('TEMPLATE """', 1)[1].split('"""', 1)[0]
    tokenizer = AutoTokenizer.from_pretrained(STUDENT_DIR)
    for messages in ([{"role": "user", "content": "WIN a prize, call now"}],
                     [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "see you at 5"}]):
        trained = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        system = messages[0]["content"] if len(messages) == 2 else ""
        assert render_ollama_prompt(template, system, messages[-1]["content"]) == trained
    assert metrics["chat_template"] == "derived"


def test_model_card_and_report(packaged):
    job_id, metrics, _, _, _ = packaged
    card = stored(job_id, "README.md").read_text()
    assert SPEC["task"] in card and "`spam`" in card and "unsolicited advertising" in card
    assert "**Verdict: deploy**" in card
    assert "| teacher (`qwen2.5-coder-1.5b-instruct`) | 0.900 | 0.881 | 812.3 ms | 1530.0 ms | 3.09 GB |" in card
    assert "| untuned student | 0.450 | 0.310 | 40.2 ms | 55.9 ms | 538.1 MB |" in card
    assert "| **tuned student** | 0.867 | 0.851 | 41.0 ms | – | 538.1 MB |" in card
    assert "full fine-tuning" in card and "0.4322" in card
    for usage in ("AutoModelForCausalLM", "vllm serve ./model", "ollama create", f'"model": "{job_id}"'):
        assert usage in card

    report = json.loads(stored(job_id, "report.json").read_text())
    assert report["evaluate"]["teacher"] == METRICS["evaluate"]["teacher"] and report["train"] == METRICS["train"]
    assert report["exports"] == metrics["exports"] and report["costs"] == metrics["costs"]
    assert report["task_spec"] == SPEC and report["gguf"]["tensor_count"] == 272


def test_every_export_runs_in_llama_cpp_and_the_f16_file_answers_as_transformers(packaged):
    job_id, metrics, _, _, texts = packaged
    exports = {e["name"]: e for e in metrics["exports"]}
    assert list(exports) == ["student.gguf", "student.q8_0.gguf"]
    for name, export in exports.items():
        assert export["runtime"] == "llama.cpp" and export["n"] == len(TEST_ROWS)
        assert export["accuracy"] is not None and len(export["accuracy_ci95"]) == 2
        assert export["tokens_per_second"] > 0 and export["latency_ms"]["n"] == len(TEST_ROWS)
        assert export["size_bytes"] == stored(job_id, name).stat().st_size
        assert isinstance(export["flagged"], bool)
    assert exports["student.gguf"]["same_answers"] == 1.0, f"llama.cpp's f16 answers differ from {texts}"
    assert exports["student.gguf"]["change"] == 0.0
    assert exports["student.q8_0.gguf"]["size_bytes"] < 0.6 * exports["student.gguf"]["size_bytes"]
    assert GGUFReader(stored(job_id, "student.q8_0.gguf")).get_field("general.file_type").contents() == 7  # Q8_0
    assert metrics["recommended_export"] in exports and not exports[metrics["recommended_export"]]["flagged"]
    card = stored(job_id, "README.md").read_text()
    assert "## Exported files, each run in llama.cpp" in card
    assert all(f"| `{name}` |" in card for name in exports) and "**recommended**" in card


def test_the_chat_format_is_checked_byte_for_byte_in_llama_cpp_and_ollama(packaged):
    _, metrics, _, _, _ = packaged
    check = metrics["chat_format_check"]
    n = len(TEST_ROWS)
    assert check["conversations"] == n and check["ok"] is True, check
    assert check["llama_cpp"]["equal"] == check["ollama"]["equal"] == check["token_ids_equal"] == n
    assert check["stop"]["ends_answer"] and "<|im_end|>" in check["stop"]["stops"]


def test_cost_per_million_requests_from_the_measured_latencies(packaged):
    job_id, metrics, _, _, _ = packaged
    rows = {row["model"]: row for row in metrics["costs"]["rows"]}
    assert list(rows) == ["qwen2.5-coder-1.5b-instruct", "student (model/)", "student.gguf", "student.q8_0.gguf"]
    teacher = rows["qwen2.5-coder-1.5b-instruct"]
    assert teacher["runtime"] == "vLLM" and teacher["size_gb"] == 3.087
    assert teacher["cost_per_million"] == pytest.approx(0.81234 * 1e6 / 3600 * teacher["price_per_hour"], abs=0.01)
    assert all(row["cost_per_million"] > 0 for row in rows.values())
    assert metrics["costs"]["teacher_over_cheapest_student"] > 1
    assert "## Cost per million requests" in stored(job_id, "README.md").read_text()


def test_progress_is_reported_to_the_end(packaged):
    _, _, sink, _, _ = packaged
    assert sink.reports[0] == (0, 7) and sink.reports[-1] == (7, 7)
    assert [done for done, _ in sink.reports] == sorted(done for done, _ in sink.reports)
    assert sink.checks > len(sink.reports)  # the conversion polls for cancel while it runs


def test_job_without_model_fails_with_missing_model(tmp_path):
    job_id = make_finished_job(metrics=METRICS)
    with pytest.raises(StageError) as caught:
        PackageStage().run(context(job_id, tmp_path))
    assert caught.value.code == "missing_model"


def test_broken_weights_fail_with_the_converters_message(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        (folder / name).symlink_to(STUDENT_DIR / name)
    (folder / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00not json")
    job_id = make_finished_job(model_dir=folder, metrics=METRICS)
    with pytest.raises(StageError) as caught:
        PackageStage().run(context(job_id, tmp_path / "work"))
    assert caught.value.code == "gguf_failed" and "exited with" in caught.value.message
    with session_scope() as session:
        assert find_artifact(session, job_id, "student.gguf") is None


def test_cancel_stops_the_conversion(tmp_path):
    job_id = make_finished_job(model_dir=model_copy(tmp_path / "model"), metrics=METRICS)
    sink = Recorder(cancel_after=2)  # canceled at the conversion's second poll, while the converter runs
    with pytest.raises(JobCanceled):
        PackageStage().run(context(job_id, tmp_path / "work", sink))
    assert not (tmp_path / "work" / "student.gguf").exists()
    with session_scope() as session:
        assert find_artifact(session, job_id, "student.gguf") is None
