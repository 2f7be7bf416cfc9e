"""The model card's sections on the exported files (each re-scored in llama.cpp), the chat-format
check and the cost per million requests. Pure functions of the package stage's measurements."""

from __future__ import annotations

from typing import Any

MISSING = "–"


def _num(value: Any, digits: int = 3) -> str:
    return MISSING if not isinstance(value, (int, float)) or isinstance(value, bool) else f"{value:.{digits}f}"


def _interval(value: Any) -> str:
    return f"[{value[0]:.3f}, {value[1]:.3f}]" if isinstance(value, list) and len(value) == 2 else MISSING


def _signed(value: Any) -> str:
    return MISSING if not isinstance(value, (int, float)) else f"{value:+.3f}"


def _mb(value: Any) -> str:
    return MISSING if not isinstance(value, (int, float)) else f"{value / 1e6:.1f} MB"


def exports_section(exports: list[dict[str, Any]], recommended: str | None, margin: float,
                    chat_check: dict[str, Any]) -> list[str]:
    """Each GGUF file run in llama.cpp on the evaluation rows: score, change against the student in
    transformers, identical answers, speed, size, and which file to pick."""
    if not exports:
        return []
    lines = ["## Exported files, each run in llama.cpp", "",
             "Every GGUF file was loaded in llama.cpp's `llama-server` and asked the evaluation rows through its "
             "chat endpoint (the prompt built from the file's own chat template), greedy; each answer scored by "
             "the rule above. *Change* is against the tuned student's free answers in transformers; *same* is "
             "the share of rows where the file's answer equals the student's.", "",
             "| file | type | accuracy | 95% interval | change | same | tokens/s | size | |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for e in exports:
        mark = "**recommended**" if e["name"] == recommended else ("flagged: below the margin" if e.get("flagged")
                                                                   else "")
        lines.append(f"| `{e['name']}` | {e['export']} | {_num(e.get('accuracy'))} | "
                     f"{_interval(e.get('accuracy_ci95'))} | {_signed(e.get('change'))} | "
                     f"{_num(e.get('same_answers'), 2)} | {_num(e.get('tokens_per_second'), 1)} | "
                     f"{_mb(e.get('size_bytes'))} | {mark} |")
    n = exports[0].get("n")
    lines += ["", f"n = {n} rows each. Recommended: the smallest file scoring within {margin:.2f} of the f16 "
              f"file (`{recommended or MISSING}`); the Modelfile loads it."]
    if chat_check:
        lines.append("")
        lines.append(_chat_line(chat_check))
    return lines


def _chat_line(check: dict[str, Any]) -> str:
    n = check.get("conversations", 0)
    parts = []
    if "llama_cpp" in check:
        equal = check["llama_cpp"]["equal"]
        parts.append(f"llama.cpp's prompt from the GGUF's template equals the tokenizer's on {equal} of {n}")
    if "ollama" in check:
        parts.append(f"Ollama's from the Modelfile on {check['ollama']['equal']} of {n}")
    if "token_ids_equal" in check:
        parts.append(f"the GGUF tokenizer gives the same token ids on {check['token_ids_equal']} of {n}")
    if "stop" in check:
        parts.append("the stop strings end an answer" if check["stop"].get("ends_answer")
                     else "the stop strings do NOT end an answer")
    verdict = "Chat format checked byte for byte" if check.get("ok") else "**Chat format mismatch**"
    return f"{verdict}: " + "; ".join(parts) + "."


def costs_section(costs: dict[str, Any]) -> list[str]:
    """Cost per million requests of the teacher and each student form, from measured latencies."""
    rows = costs.get("rows") or []
    if not rows:
        return []
    lines = ["## Cost per million requests", "",
             "| model | runtime | device | $/hour | latency p50 | $ per 1M requests | size |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['runtime']} | {r['device']} | {_num(r.get('price_per_hour'), 3)} | "
                     f"{_num(r.get('latency_p50_ms'), 1)} ms | {_num(r.get('cost_per_million'), 2)} | "
                     f"{_num(r.get('size_gb'), 3)} GB |")
    saving = costs.get("teacher_over_cheapest_student")
    lines += ["", "One request at a time, priced at the settings' device-hour prices; batching lowers every line."
              + (f" The teacher costs {saving}x the cheapest student." if saving else "")]
    return lines
