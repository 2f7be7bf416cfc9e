"""The texts that travel with a packaged student: the Ollama Modelfile, the model card
(`README.md`) and `report.json`. Pure functions of what the earlier stages measured; any
number may be missing and is then shown as "–"."""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass, field
from typing import Any

from app.answer_shapes import TOOLS_PROMPT_FOOTER, TOOLS_PROMPT_HEADER
from app.artifacts import CALL_GRAMMAR_ARTIFACT, GGUF_ARTIFACT
from app.specs import QA_REFUSAL
from workers.packaging.card_exports import costs_section, exports_section
from workers.packaging.template import ChatFormat

GGUF_NAME = GGUF_ARTIFACT
MISSING = "–"
TITLE_CHARS = 80


@dataclass(frozen=True)
class PackageInfo:
    """Everything the texts are built from."""

    job_id: str
    task_spec: dict[str, Any]
    train: dict[str, Any] = field(default_factory=dict)
    evaluate: dict[str, Any] = field(default_factory=dict)
    gguf: dict[str, Any] = field(default_factory=dict)
    student: str | None = None  # the base model the student was trained from
    teacher: str | None = None
    has_adapter: bool = False
    exports: list[dict[str, Any]] = field(default_factory=list)  # each GGUF re-scored in llama.cpp
    recommended: str | None = None  # the smallest export within `margin` of the f16 file's score
    margin: float = 0.05
    chat_check: dict[str, Any] = field(default_factory=dict)
    costs: dict[str, Any] = field(default_factory=dict)

    @property
    def short_name(self) -> str:
        """A model name for Ollama and vLLM: `vibetune-<first 8 characters of the job id>`."""
        return f"vibetune-{self.job_id[:8]}"


_GRAMMAR_NOTE = ("Decode it under `" + CALL_GRAMMAR_ARTIFACT + "`, as evaluate scored it and `/v1` serves it "
                 "(llama.cpp: `--grammar-file " + CALL_GRAMMAR_ARTIFACT + "`, or the file's text as llama-server's "
                 "`grammar`): a call it starts is then a valid call of its functions, argument names and types.")


def answer_shape(spec: dict[str, Any]) -> str:
    """How to call the student of a task spec and what it answers, in one paragraph (the model
    card and the Modelfile show the same)."""
    kind = spec.get("task_type")
    send = "Send the input alone as the user message, with no instructions: the task lives in the weights. "
    if kind == "extraction":
        names = ", ".join(f"`{f}`" for f in _field_names(spec))
        return send + f"It answers with one JSON object with the keys {names}; a field the input lacks is null."
    if kind == "tool_calling" and spec.get("tools_in_prompt"):
        return ("Send the tools it may call as the system message, in the format it was trained on (vibetune's "
                "`tools_prompt`: the line `" + TOOLS_PROMPT_HEADER + "`, then one line per function, the JSON of "
                "its `name`, `description` and `parameters` with sorted keys, then the line `" + TOOLS_PROMPT_FOOTER
                + "`), and the request as the user message. It answers with only the call as JSON, "
                '`{"name": ..., "arguments": {...}}`, when an offered function fits, else in plain text. The '
                "vibetune service's `/v1` writes that system message from the request's `tools` and returns the call "
                "as OpenAI `tool_calls`. " + _GRAMMAR_NOTE)
    if kind == "tool_calling":
        names = ", ".join(f"`{t.get('function', {}).get('name')}`" for t in spec.get("tools") or [])
        return (send + "Its functions are in its weights too (" + names + "), so send no tool list: when a request "
                'needs one it answers with only the call as JSON, `{"name": ..., "arguments": {...}}`, else in plain '
                "text. The vibetune service's `/v1` returns such a call as OpenAI `tool_calls`. " + _GRAMMAR_NOTE)
    if kind == "qa" and spec.get("qa_mode") == "open_book":
        return (send + "Write the input as the passage, a blank line, then `Question: ` and the question. It answers "
                f"from the passage only, or with \"{QA_REFUSAL}\" when the passage does not answer it.")
    return send + "It answers with the label." if kind == "classification" else send + "It answers in plain text."


def _field_names(spec: dict[str, Any]) -> list[str]:
    return [str(f.get("name")) for f in spec.get("fields") or [] if isinstance(f, dict)] or \
        [str(name) for name in spec.get("output_fields") or []]


def modelfile(chat: ChatFormat | None, spec: dict[str, Any] | None = None, gguf_name: str = GGUF_NAME) -> str:
    """An Ollama Modelfile for the GGUF file `gguf_name` next to it: greedy answers, stopping at the
    end of the answer, with how to call the student as a comment. Without a chat format Ollama
    falls back to the template stored in the GGUF."""
    lines = [f"# {line}" for line in textwrap.wrap(answer_shape(spec), 100)] + [""] if spec else []
    lines += [f"FROM ./{gguf_name}", ""]
    if chat is not None:
        lines += [f'TEMPLATE """{chat.template}"""', ""]
        lines += [f'PARAMETER stop "{_quote(stop)}"' for stop in chat.stop]
    lines.append("PARAMETER temperature 0")
    return "\n".join(lines) + "\n"


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def report(info: PackageInfo) -> dict[str, Any]:
    """`report.json`: the task, how the student was trained, every score, the GGUF's facts, each
    export's score in llama.cpp, the chat-format check and the cost table."""
    return {"job_id": info.job_id, "task_spec": info.task_spec, "student": info.student, "teacher": info.teacher,
            "train": info.train, "evaluate": info.evaluate, "gguf": info.gguf, "exports": info.exports,
            "recommended_export": info.recommended, "chat_format_check": info.chat_check, "costs": info.costs}


def report_json(info: PackageInfo) -> bytes:
    return (json.dumps(report(info), indent=2, ensure_ascii=False, default=str) + "\n").encode()


def _number(value: Any, digits: int = 3) -> str:
    return MISSING if not isinstance(value, (int, float)) or isinstance(value, bool) else f"{value:.{digits}f}"


def _ms(value: Any) -> str:
    return MISSING if not isinstance(value, (int, float)) else f"{value:.1f} ms"


def _size(value: Any) -> str:
    if not isinstance(value, (int, float)) or value <= 0:
        return MISSING
    return f"{value / 1e9:.2f} GB" if value >= 1e9 else f"{value / 1e6:.1f} MB"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


_VERDICTS = {
    "deploy": "the tuned student comes close enough to the teacher's accuracy to stand in for it.",
    "retune": "the tuned student falls clearly short of the teacher; more or better data, or another "
              "training run, should come first.",
}
_REASONS = {
    "reaches_teacher": "Its 95% interval reaches the teacher's accuracy.",
    "closed_gap": "It closed at least 0.8 of the gap from the untuned student to the teacher.",
    "behind_teacher": "It is behind the teacher beyond its 95% interval.",
}
_REFERENCES = {
    "test_set": "the held-out test set given with the job (never trained on)",
    "validation": "the validation split of the generated data (its labels are the teacher's own)",
}


def results_table(evaluate: dict[str, Any], teacher: str | None = None) -> list[str]:
    """Markdown rows: teacher, untuned student and tuned student side by side."""
    rows = ["| model | accuracy (95% interval) | macro-F1 | latency p50 | latency p95 | size |",
            "| --- | ---: | ---: | ---: | ---: | ---: |"]
    teacher_name = (evaluate.get("teacher") or {}).get("model") or teacher
    named = (("teacher" + (f" (`{teacher_name}`)" if teacher_name else ""), "teacher"),
             ("untuned student", "base_student"), ("**tuned student**", "student"))
    for label, key in named:
        scores = evaluate.get(key) or {}
        latency = scores.get("latency_ms") or {}
        ci = scores.get("accuracy_ci95")
        accuracy = _number(scores.get("accuracy")) + (f" ({ci[0]:.2f}–{ci[1]:.2f})" if ci else "")
        rows.append(f"| {label} | {accuracy} | {_number(scores.get('macro_f1'))} | "
                    f"{_ms(latency.get('p50'))} | {_ms(latency.get('p95'))} | {_size(scores.get('size_bytes'))} |")
    return rows


def _task_section(spec: dict[str, Any]) -> list[str]:
    lines = ["## Task", "", _cell(spec.get("task") or MISSING), ""]
    if spec.get("task_type"):
        lines.append(f"- Type: {spec['task_type']}")
    if spec.get("instruction"):
        lines.append(f"- Instruction the teacher followed: {_cell(spec['instruction'])}")
    labels = [label for label in spec.get("labels") or [] if isinstance(label, dict)]
    if labels:
        lines += ["", "| label | meaning |", "| --- | --- |"]
        lines += [f"| `{_cell(label.get('name'))}` | {_cell(label.get('description') or '')} |" for label in labels]
    fields = [f for f in spec.get("fields") or [] if isinstance(f, dict)]
    if fields:
        lines += ["", "| field | type | meaning |", "| --- | --- | --- |"]
        lines += [f"| `{_cell(f.get('name'))}` | {_cell(f.get('type') or 'string')} | "
                  f"{_cell(f.get('description') or '')} |" for f in fields]
    tools = [t.get("function", {}) for t in spec.get("tools") or [] if isinstance(t, dict)]
    if tools:
        lines += ["", "| function | arguments (required in bold) | what it does |", "| --- | --- | --- |"]
        for fn in tools:
            params = fn.get("parameters") or {}
            required = set(params.get("required") or [])
            args = ", ".join(f"**{a}**" if a in required else a for a in params.get("properties") or {})
            lines.append(f"| `{_cell(fn.get('name'))}` | {_cell(args)} | {_cell(fn.get('description') or '')} |")
    lines += ["", answer_shape(spec)]
    return lines


def _training_section(info: PackageInfo) -> list[str]:
    method = info.train.get("method")
    methods: dict[str | None, str] = {"lora": "LoRA (the adapter merged into the weights)", "full": "full fine-tuning"}
    lines = ["## How it was trained", ""]
    if info.teacher:
        lines.append(f"- Teacher: `{info.teacher}` wrote and labeled the training data (distillation).")
    lines.append(f"- Student: `{info.student or MISSING}`, {methods.get(method, method or 'method not recorded')}.")
    plan = info.train.get("plan")
    if isinstance(plan, dict) and plan:
        settings = ", ".join(f"{key} {_cell(value)}" for key, value in plan.items()
                             if not isinstance(value, (dict, list)))
        if settings:
            lines.append(f"- Settings: {settings}.")
    if isinstance(info.train.get("train_loss"), (int, float)):
        lines.append(f"- Final training loss: {info.train['train_loss']:.4f}.")
    return lines


def _results_section(info: PackageInfo) -> list[str]:
    evaluate = info.evaluate
    lines = ["## Results", ""]
    if not evaluate:
        return [*lines, "Not measured: the evaluate stage left no scores."]
    n = (evaluate.get("student") or {}).get("n") or (evaluate.get("teacher") or {}).get("n")
    reference = evaluate.get("reference")
    where = _REFERENCES.get(reference, f"`{reference}`") if reference else "the job's reference examples"
    lines += [f"Scored on {where}" + (f", {n} examples." if n else "."), ""]
    lines += results_table(evaluate, info.teacher)
    verdict = evaluate.get("verdict")
    ratio = evaluate.get("ratio")
    lines.append("")
    if verdict in _VERDICTS:
        closed, reason = evaluate.get("closed"), evaluate.get("verdict_reason")
        lines.append(f"**Verdict: {verdict}** — {_VERDICTS[verdict]}"
                     + (f" {_REASONS[reason]}" if reason in _REASONS else "")
                     + (f" Gap closed: {closed:.2f}." if isinstance(closed, (int, float)) else "")
                     + (f" Student/teacher accuracy: {ratio:.2f}." if isinstance(ratio, (int, float)) else ""))
    else:
        lines.append(f"**Verdict: {verdict or 'none'}** — the scores were not complete enough for one.")
    lines += ["", "Latency is one request at a time on the machine that ran the job; `report.json` has every "
              "score, the per-label results and the training metrics."]
    return lines


def _files_section(info: PackageInfo) -> list[str]:
    gguf = info.gguf
    facts = ", ".join(str(part) for part in (gguf.get("architecture"), gguf.get("file_type"),
                                             gguf.get("tensor_count") and f"{gguf['tensor_count']} tensors",
                                             _size(gguf.get("size_bytes"))) if part)
    lines = ["## Files", "", "| file | what it is |", "| --- | --- |",
             f"| `{GGUF_NAME}` | the model as one GGUF file ({facts}) for llama.cpp and Ollama |",
             *(_export_line(e) for e in info.exports if e["name"] != GGUF_NAME),
             "| `Modelfile` | Ollama's recipe: the chat format, greedy answers |",
             "| `model/` | the merged Hugging Face folder, for transformers and vLLM |"]
    if info.has_adapter:
        lines.append("| `adapter/` | the LoRA adapter alone (PEFT), to apply to the base student |")
    lines += ["| `report.json` | every score, the training metrics and the task spec |",
              "| `SHA256SUMS` | in the bundle download: `sha256sum -c SHA256SUMS` checks every file |"]
    return lines


def _export_line(export: dict[str, Any]) -> str:
    size = _size(export.get("size_bytes"))
    if export.get("export") == "lora":
        return (f"| `{export['name']}` | the LoRA adapter as a GGUF adapter ({size}): `llama-server -m <base>.gguf "
                f"--lora {export['name']}` on the base student's GGUF |")
    return f"| `{export['name']}` | the same model quantized to {export.get('export')} ({size}) |"


def _usage_section(info: PackageInfo) -> list[str]:
    name, job = info.short_name, info.job_id
    return [
        "## Use it", "",
        "Transformers:", "",
        "```python",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        "",
        'tokenizer = AutoTokenizer.from_pretrained("./model")',
        'model = AutoModelForCausalLM.from_pretrained("./model")',
        'messages = [{"role": "user", "content": "your input here"}]',
        "ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors=\"pt\", "
        "return_dict=True)",
        "out = model.generate(**ids, max_new_tokens=64, do_sample=False)",
        'print(tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True))',
        "```", "",
        "vLLM (an OpenAI-compatible server):", "",
        "```bash",
        f"vllm serve ./model --served-model-name {name}",
        "curl -s localhost:8000/v1/chat/completions -H 'content-type: application/json' \\",
        f"  -d '{{\"model\": \"{name}\", \"temperature\": 0, "
        f"\"messages\": [{{\"role\": \"user\", \"content\": \"your input here\"}}]}}'",
        "```", "",
        "Ollama (from the folder holding the GGUF file and `Modelfile`):", "",
        "```bash",
        f"ollama create {name} -f Modelfile",
        f"ollama run {name} \"your input here\"",
        "```", "",
        "llama.cpp (the server the exports were checked with; its chat endpoint uses the GGUF's own template):", "",
        "```bash",
        "llama-server -m student.gguf --jinja --port 8080",
        "curl -s localhost:8080/v1/chat/completions -H 'content-type: application/json' \\",
        "  -d '{\"temperature\": 0, \"messages\": [{\"role\": \"user\", \"content\": \"your input here\"}]}'",
        "```", "",
        "The vibetune service that trained it (the job id is the model name):", "",
        "```bash",
        "curl -s http://127.0.0.1:8000/v1/chat/completions -H 'content-type: application/json' \\",
        f"  -d '{{\"model\": \"{job}\", \"temperature\": 0, "
        f"\"messages\": [{{\"role\": \"user\", \"content\": \"your input here\"}}]}}'",
        "```",
    ]


def _looks_like_hub_id(name: str) -> bool:
    return name.count("/") == 1 and not name.startswith((".", "/", "~"))


def model_card(info: PackageInfo) -> str:
    """The model card: the task, how the student was trained, its scores against the teacher and
    the untuned student, the verdict, its files and how to run it."""
    front = ["---", "library_name: transformers", "pipeline_tag: text-generation",
             "tags: [vibetune, gguf, distillation]"]
    if info.student and _looks_like_hub_id(info.student):
        front.append(f"base_model: {json.dumps(info.student)}")
    front.append("---")
    task = _cell(info.task_spec.get("task") or "a vibetune student")
    title = f"# {info.short_name}: {task if len(task) <= TITLE_CHARS else task[:TITLE_CHARS - 1] + '…'}"
    sections = [_task_section(info.task_spec), _training_section(info), _results_section(info),
                exports_section(info.exports, info.recommended, info.margin, info.chat_check),
                costs_section(info.costs), _files_section(info), _usage_section(info)]
    body = [*front, "", title, "", f"Fine-tuned by vibetune (job `{info.job_id}`)."]
    for section in sections:
        if section:
            body += ["", *section]
    return "\n".join(body) + "\n"
