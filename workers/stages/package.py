"""The `package` stage: the trained student as files to run anywhere, each proven in its runtime.

1. converts the merged `model/` folder to `student.gguf` (f16) and reads it back to check it;
2. quantizes it to the job's other `exports` (q8_0, q5_k_m, q4_k_m) with llama.cpp's quantizer,
   and for a LoRA job converts the adapter to a GGUF adapter (`adapter.gguf`, llama.cpp's LoRA
   converter), run on the base student's GGUF;
3. runs every file in llama.cpp (`llama-server`) on the rows evaluate scored, by evaluate's rule,
   and checks the chat format byte for byte (llama.cpp's prompt from the GGUF's template and
   Ollama's from the Modelfile against the tokenizer's) on the f16 file;
4. flags files that score more than `EXPORT_SCORE_MARGIN` below the f16 file, recommends the
   smallest within it, and prices a million requests on each model;
5. writes the Ollama `Modelfile` (loading the recommended file), the model card `README.md` and
   `report.json`; every file is stored as an artifact with its size and sha256.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.artifacts import (
    ADAPTER_FOLDER,
    CALL_GRAMMAR_ARTIFACT,
    MODEL_CARD_ARTIFACT,
    MODEL_FOLDER,
    MODELFILE_ARTIFACT,
    PREDICTIONS_ARTIFACT,
    REPORT_ARTIFACT,
    folder_path,
    save_artifact,
)
from app.config import get_settings
from app.db import session_scope
from app.inference import task_answer_budget
from app.specs import Row, TaskSpec, TaskType
from workers.packaging.card import GGUF_NAME, PackageInfo, model_card, modelfile, report_json
from workers.packaging.chat_check import check_chat_format
from workers.packaging.costs import Prices, cost_table, device_named, this_machine
from workers.packaging.export_check import Reference, comparable, export_file_name, flag_and_recommend, score_export
from workers.packaging.gguf_file import ConversionFailed, convert_to_gguf, gguf_facts, safetensors_tensor_count
from workers.packaging.llama_runtime import LlamaServer, RuntimeFailed, RuntimeMissing, convert_lora, quantize
from workers.packaging.template import ChatFormat, ollama_chat_format, read_chat_template
from workers.stages.base import StageContext, StageError
from workers.stages.common import read_jsonl, reference_rows

#: Chat-format check conversations at most (the first reference rows; each a template render).
CHAT_CHECK_ROWS = 8
#: The LoRA adapter as a GGUF adapter, for `llama-server -m <base>.gguf --lora adapter.gguf`.
LORA_GGUF = "adapter.gguf"


@dataclass(frozen=True)
class Served:
    """One export as llama.cpp runs it: the model file, and the adapter applied to it (LoRA)."""

    name: str
    export: str
    model: Path
    lora: Path | None = None

    @property
    def file(self) -> Path:
        """The exported file itself (the adapter, for a LoRA export)."""
        return self.lora or self.model


class PackageStage:
    name = "package"
    queue = "gpu"

    def run(self, ctx: StageContext) -> dict[str, Any]:
        model_dir = folder_path(ctx.storage, ctx.job_id, MODEL_FOLDER)
        if not (model_dir / "config.json").is_file():
            raise StageError("missing_model",
                             "the job has no trained model (`model/` artifacts); run the train stage again")
        exports = list(ctx.spec.exports or ["f16"])
        lora = folder_path(ctx.storage, ctx.job_id, ADAPTER_FOLDER)
        has_lora = (lora / "adapter_config.json").is_file()
        steps = 3 + 2 * (len(exports) + has_lora)
        ctx.progress(0, steps)
        ctx.work_dir.mkdir(parents=True, exist_ok=True)

        gguf_path = ctx.work_dir / GGUF_NAME
        try:
            convert_to_gguf(model_dir, gguf_path, ctx.work_dir / "convert.log",
                            model_name=f"vibetune-{str(ctx.job_id)[:8]}", check_canceled=ctx.check_canceled)
        except ConversionFailed as exc:
            raise StageError("gguf_failed", str(exc)) from exc
        facts = _checked_facts(gguf_path, model_dir)
        ctx.progress(1, steps)

        chat_template, tokenizer_config = read_chat_template(model_dir)
        chat = ollama_chat_format(chat_template, tokenizer_config, adds_bos=bool(facts["tokenizer"]["add_bos_token"]))
        served = _quantized(ctx, gguf_path, exports, steps)
        if has_lora:
            served += _lora_export(ctx, lora)
        spec = ctx.task_spec()
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        reference = _reference(ctx, spec, tokenizer)
        scored, chat_check = _rescored(ctx, spec, served, reference, tokenizer, chat, steps,
                                       adds_bos=bool(facts["tokenizer"]["add_bos_token"]))
        files = {s.name: s.file for s in served}
        settings = get_settings()
        recommended = flag_and_recommend(scored, settings.export_score_margin)
        costs = cost_table(ctx.results.get("evaluate") or {}, scored, _student_device(), device_named(
            settings.teacher_device), Prices(settings.price_cpu_core_hour, settings.price_l4_hour,
                                             settings.price_h100_hour))

        info = _package_info(ctx, facts, scored, recommended, chat_check, costs)
        texts = {MODELFILE_ARTIFACT: modelfile(chat, info.task_spec, recommended or GGUF_NAME).encode(),
                 MODEL_CARD_ARTIFACT: model_card(info).encode(),
                 REPORT_ARTIFACT: report_json(info)}
        grammar = spec.call_grammar()
        if grammar is not None:
            texts[CALL_GRAMMAR_ARTIFACT] = grammar.gbnf().encode()
        ctx.check_canceled()
        stored = []
        with session_scope() as session:
            sources: list[tuple[str, Path | bytes]] = [*((name, path) for name, path in files.items()), *texts.items()]
            for name, source in sources:
                artifact = save_artifact(session, ctx.storage, ctx.job_id, name, source)
                stored.append({"name": artifact.name, "size": artifact.size, "sha256": artifact.sha256})
        for path in {*files.values(), *(s.model for s in served)}:
            path.unlink(missing_ok=True)  # kept as artifacts now; the work folder need not hold them twice
        ctx.progress(steps, steps)
        return {"artifacts": stored, "gguf": facts, "exports": scored, "recommended_export": recommended,
                "chat_format_check": chat_check, "costs": costs,
                "chat_template": None if chat is None else ("derived" if chat.derived else "chatml")}


def _quantized(ctx: StageContext, f16: Path, exports: list[str], steps: int) -> list[Served]:
    """The export files, f16 first, each other type quantized from it."""
    served = [Served(export_file_name("f16"), "f16", f16)]
    for i, export in enumerate(e for e in exports if e != "f16"):
        ctx.check_canceled()
        target = ctx.work_dir / export_file_name(export)
        try:
            quantize(f16, target, export, ctx.work_dir / f"quantize-{export}.log")
        except (RuntimeMissing, RuntimeFailed) as exc:
            raise StageError("llama_cpp_failed", str(exc)) from exc
        served.append(Served(export_file_name(export), export, target))
        ctx.progress(2 + i, steps)
    return served


def _lora_export(ctx: StageContext, adapter_dir: Path) -> list[Served]:
    """The adapter as a GGUF adapter, served on the base student's f16 GGUF (made here, not kept:
    the base model is the person's already); none when the base is not on this machine's disk."""
    base = _base_folder(str((ctx.results.get("train") or {}).get("student") or ctx.spec.student))
    if base is None:
        return []
    ctx.check_canceled()
    target, base_gguf = ctx.work_dir / LORA_GGUF, ctx.work_dir / "base.f16.gguf"
    try:
        convert_lora(adapter_dir, base, target, ctx.work_dir / "convert-lora.log")
        convert_to_gguf(base, base_gguf, ctx.work_dir / "convert-base.log", check_canceled=ctx.check_canceled)
    except RuntimeFailed as exc:
        raise StageError("llama_cpp_failed", str(exc)) from exc
    except ConversionFailed as exc:
        raise StageError("gguf_failed", f"the base student: {exc}") from exc
    return [Served(LORA_GGUF, "lora", base_gguf, lora=target)]


def _base_folder(name: str) -> Path | None:
    """The base student's folder on this disk: bundled, a local folder, or a hub id in the cache."""
    from workers.training.student import student_source

    source = Path(student_source(name))
    if (source / "config.json").is_file():
        return source
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=True))
    except Exception:  # not cached: the adapter is still stored, only not re-scored
        return None


def _reference(ctx: StageContext, spec: TaskSpec, tokenizer: Any) -> Reference:
    """The rows evaluate scored, with the tuned student's free answers to them in transformers."""
    rows, _ = reference_rows(ctx)
    predictions = list(read_jsonl(ctx, PREDICTIONS_ARTIFACT))
    if not rows or len(predictions) != len(rows):
        raise StageError("missing_predictions", "evaluate's predictions do not match the evaluation rows; "
                                                "run the evaluate stage again")
    classification = spec.task_type == TaskType.CLASSIFICATION and bool(spec.label_names)
    student = (ctx.results.get("evaluate") or {}).get("student") or {}
    if classification:
        answers = [comparable(p.get("student_text") or "", spec) for p in predictions]
        accuracy = (student.get("free_generation") or {}).get("accuracy")
    else:
        answers = [p.get("student") for p in predictions]
        accuracy = student.get("accuracy")
    budget = task_answer_budget(tokenizer, spec.task_type, [row.output for row in rows])
    grammar_of = spec.row_call_grammars()

    def grammar(row: Row) -> str | None:
        made = grammar_of(row)
        return made.gbnf() if made else None

    return Reference(rows=rows, messages=lambda row: spec.student_messages(row.input, row.tools),
                     max_tokens=budget, student_answers=answers, student_accuracy=accuracy, grammar=grammar)


def _rescored(ctx: StageContext, spec: TaskSpec, served: list[Served], reference: Reference, tokenizer: Any,
              chat: ChatFormat | None, steps: int, adds_bos: bool) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Each file served by llama.cpp and scored; the chat format checked on the f16 file."""
    scored: list[dict[str, Any]] = []
    chat_check: dict[str, Any] = {}
    done = 1 + len(served)
    for item in served:
        export = item.export
        try:
            with LlamaServer(item.model, ctx.work_dir / f"llama-server-{export}.log", lora=item.lora) as server:
                if export == "f16":
                    conversations = [reference.messages(row) for row in reference.rows[:CHAT_CHECK_ROWS]]
                    chat_check = check_chat_format(tokenizer, chat, conversations,
                                                   server.apply_template, server.tokenize, adds_bos=adds_bos)
                result = score_export(server, spec, reference, seed=ctx.spec.seed, check=ctx.check_canceled)
        except (RuntimeMissing, RuntimeFailed) as exc:
            raise StageError("llama_cpp_failed", str(exc)) from exc
        scored.append({"name": item.name, "export": export, "runtime": "llama.cpp",
                       "size_bytes": item.file.stat().st_size, **result})
        done += 1
        ctx.progress(done, steps)
    return scored, chat_check


def _student_device() -> Any:
    """The device evaluate timed the student on: this gpu worker's GPU, else its CPU."""
    import torch

    return this_machine(torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)


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


def _package_info(ctx: StageContext, facts: dict[str, Any], exports: list[dict[str, Any]], recommended: str | None,
                  chat_check: dict[str, Any], costs: dict[str, Any]) -> PackageInfo:
    train = ctx.results.get("train") or {}
    return PackageInfo(
        job_id=str(ctx.job_id),
        task_spec=(ctx.results.get("plan") or {}).get("task_spec") or {"task": ctx.spec.task},
        train=train, evaluate=ctx.results.get("evaluate") or {}, gguf=facts,
        student=train.get("student") or ctx.spec.student, teacher=ctx.spec.teacher,
        has_adapter=folder_path(ctx.storage, ctx.job_id, ADAPTER_FOLDER).is_dir(),
        exports=exports, recommended=recommended, margin=get_settings().export_score_margin,
        chat_check=chat_check, costs=costs,
    )
