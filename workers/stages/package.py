"""The `package` stage: the trained student as files to run anywhere.

Converts the merged `model/` folder to `student.gguf` (f16) and reads it back to check it, then
writes an Ollama `Modelfile`, the model card `README.md` and `report.json`, each stored as an
artifact with its size and sha256.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.artifacts import (
    ADAPTER_FOLDER,
    MODEL_CARD_ARTIFACT,
    MODEL_FOLDER,
    MODELFILE_ARTIFACT,
    REPORT_ARTIFACT,
    folder_path,
    save_artifact,
)
from app.db import session_scope
from workers.packaging.card import GGUF_NAME, PackageInfo, model_card, modelfile, report_json
from workers.packaging.gguf_file import ConversionFailed, convert_to_gguf, gguf_facts, safetensors_tensor_count
from workers.packaging.template import ollama_chat_format, read_chat_template
from workers.stages.base import StageContext, StageError

STEPS = 4


class PackageStage:
    name = "package"
    queue = "gpu"

    def run(self, ctx: StageContext) -> dict[str, Any]:
        model_dir = folder_path(ctx.storage, ctx.job_id, MODEL_FOLDER)
        if not (model_dir / "config.json").is_file():
            raise StageError("missing_model",
                             "the job has no trained model (`model/` artifacts); run the train stage again")
        ctx.progress(0, STEPS)
        ctx.work_dir.mkdir(parents=True, exist_ok=True)

        gguf_path = ctx.work_dir / GGUF_NAME
        try:
            convert_to_gguf(model_dir, gguf_path, ctx.work_dir / "convert.log",
                            model_name=f"vibetune-{str(ctx.job_id)[:8]}", check_canceled=ctx.check_canceled)
        except ConversionFailed as exc:
            raise StageError("gguf_failed", str(exc)) from exc
        ctx.progress(1, STEPS)

        facts = _checked_facts(gguf_path, model_dir)
        ctx.progress(2, STEPS)

        info = _package_info(ctx, facts)
        chat_template, tokenizer_config = read_chat_template(model_dir)
        chat = ollama_chat_format(chat_template, tokenizer_config, adds_bos=bool(facts["tokenizer"]["add_bos_token"]))
        texts = {MODELFILE_ARTIFACT: modelfile(chat, info.task_spec).encode(),
                 MODEL_CARD_ARTIFACT: model_card(info).encode(),
                 REPORT_ARTIFACT: report_json(info)}
        ctx.check_canceled()

        stored = []
        with session_scope() as session:
            sources: list[tuple[str, Path | bytes]] = [(GGUF_NAME, gguf_path), *texts.items()]
            for name, source in sources:
                artifact = save_artifact(session, ctx.storage, ctx.job_id, name, source)
                stored.append({"name": artifact.name, "size": artifact.size, "sha256": artifact.sha256})
        gguf_path.unlink(missing_ok=True)  # kept as an artifact now; the work folder need not hold it twice
        ctx.progress(STEPS, STEPS)
        return {"artifacts": stored, "gguf": facts,
                "chat_template": None if chat is None else ("derived" if chat.derived else "chatml")}


def _checked_facts(gguf_path: Path, model_dir: Path) -> dict[str, Any]:
    """The GGUF's own account of itself, with a StageError when it is not a usable model."""
    try:
        facts = gguf_facts(gguf_path)
    except Exception as exc:  # the reader raises assorted errors on a damaged file
        raise StageError("gguf_invalid", f"{GGUF_NAME} cannot be read back: {type(exc).__name__}: {exc}") from exc
    problems = [what for what, bad in (("no architecture", not facts["architecture"]),
                                       ("no tensors", facts["tensor_count"] == 0),
                                       ("no tokenizer", facts["tokenizer"]["tokens"] == 0)) if bad]
    if problems:
        raise StageError("gguf_invalid", f"{GGUF_NAME} is not a usable model: {', '.join(problems)}")
    facts["source_tensor_count"] = safetensors_tensor_count(model_dir)
    return facts


def _package_info(ctx: StageContext, facts: dict[str, Any]) -> PackageInfo:
    train = ctx.results.get("train") or {}
    return PackageInfo(
        job_id=str(ctx.job_id),
        task_spec=(ctx.results.get("plan") or {}).get("task_spec") or {"task": ctx.spec.task},
        train=train, evaluate=ctx.results.get("evaluate") or {}, gguf=facts,
        student=train.get("student") or ctx.spec.student, teacher=ctx.spec.teacher,
        has_adapter=folder_path(ctx.storage, ctx.job_id, ADAPTER_FOLDER).is_dir(),
    )
