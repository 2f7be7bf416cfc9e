"""A LoRA job's package stage: the adapter becomes a GGUF adapter (llama.cpp's LoRA converter)
that llama.cpp runs on the base student's GGUF and that answers as the merged model does in
transformers."""

import json

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer

from app.artifacts import ADAPTER_FOLDER, PREDICTIONS_ARTIFACT, save_artifact, save_folder
from app.db import session_scope
from app.inference import FREE_ANSWER_TOKENS, generate, load_student
from app.specs import JobSpec
from app.storage import get_storage
from tests.support.factories import make_finished_job
from tests.workers.test_package_stage import METRICS, SPEC, STUDENT_DIR, TEST_ROWS
from workers.bundled_models import STUDENT
from workers.stages.base import StageContext
from workers.stages.package import PackageStage


@pytest.fixture(scope="module")
def lora_job(test_database, tmp_path_factory):
    """A finished job whose student is the bundled one with a (random, nonzero) LoRA adapter: the
    adapter folder and the merged model stored as its artifacts, and the merged model's answers."""
    folder = tmp_path_factory.mktemp("lora")
    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(STUDENT_DIR), LoraConfig(
        r=8, lora_alpha=16, target_modules=["q_proj", "v_proj", "down_proj"], task_type="CAUSAL_LM"))
    for name, weight in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(weight, std=0.02)
    model.save_pretrained(folder / "adapter")
    model.merge_and_unload().save_pretrained(folder / "model")
    AutoTokenizer.from_pretrained(STUDENT_DIR).save_pretrained(folder / "model")
    job_id = make_finished_job(model_dir=folder / "model", metrics=METRICS, labels=["spam", "ham"])
    merged = load_student(str(folder / "model"))
    texts = [generate(merged, [{"role": "user", "content": row.input}], max_tokens=FREE_ANSWER_TOKENS).text.strip()
             for row in TEST_ROWS]
    with session_scope() as session:
        save_folder(session, get_storage(), job_id, ADAPTER_FOLDER, folder / "adapter")
        save_artifact(session, get_storage(), job_id, PREDICTIONS_ARTIFACT, "".join(
            json.dumps({"input": r.input, "student_text": t}) + "\n" for r, t in zip(TEST_ROWS, texts, strict=True)
        ).encode())
    spec = JobSpec(task=SPEC["task"], teacher="qwen2.5-coder-1.5b-instruct", student=STUDENT.name,
                   test_set=TEST_ROWS, exports=["f16"])
    results = {**METRICS, "evaluate": {**METRICS["evaluate"], "student": {
        **METRICS["evaluate"]["student"], "free_generation": {"accuracy": 0.4}}}}
    ctx = StageContext(job_id=job_id, spec=spec, work_dir=tmp_path_factory.mktemp("work"), storage=get_storage(),
                       results=results)
    return job_id, PackageStage().run(ctx)


def test_the_adapter_runs_on_the_base_gguf_in_llama_cpp_as_the_merged_model_in_transformers(lora_job):
    job_id, metrics = lora_job
    exports = {e["name"]: e for e in metrics["exports"]}
    assert list(exports) == ["student.gguf", "adapter.gguf"]
    adapter = exports["adapter.gguf"]
    assert adapter["export"] == "lora" and adapter["n"] == len(TEST_ROWS)
    assert adapter["same_answers"] == 1.0 and exports["student.gguf"]["same_answers"] == 1.0, exports
    stored = get_storage().local_path(f"{job_id}/adapter.gguf")
    assert adapter["size_bytes"] == stored.stat().st_size < 0.1 * exports["student.gguf"]["size_bytes"]
    assert metrics["recommended_export"] == "student.gguf", "an adapter alone is never the file to run"
    assert "--lora adapter.gguf" in get_storage().local_path(f"{job_id}/README.md").read_text()
