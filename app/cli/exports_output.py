"""The report's exported files (each run in llama.cpp), its chat-format check and its cost table
as `vibetune status` and `vibetune tune` print them: pure functions of the report's JSON."""

from __future__ import annotations

from typing import Any

from app.cli.output import human_size, table


def _num(value: Any, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _signed(value: Any) -> str:
    return "-" if value is None else f"{value:+.3f}"


def exports_text(report: dict[str, Any]) -> str | None:
    """Every exported file's score, speed and size in llama.cpp, the file to pick, the chat-format
    check and what a million requests cost on each model; None before the job is packaged."""
    files = report.get("exports") or []
    if not files:
        return None
    rows = []
    for f in files:
        ci = f.get("accuracy_ci95")
        note = "recommended" if f["name"] == report.get("recommended_export") else ("FLAGGED" if f.get("flagged")
                                                                                    else "")
        rows.append([f["name"], f.get("export") or "-", _num(f.get("accuracy")),
                     f"{ci[0]:.2f}-{ci[1]:.2f}" if ci else "-", _signed(f.get("change")),
                     _num(f.get("same_answers"), 2), _num(f.get("tokens_per_second"), 1),
                     human_size(f.get("size_bytes")), note])
    lines = [f"exports, each run in llama.cpp on the same {files[0].get('n')} rows:",
             table(["FILE", "TYPE", "ACCURACY", "95% CI", "CHANGE", "SAME", "TOK/S", "SIZE", ""], rows)]
    check = report.get("chat_format_check") or {}
    if check:
        lines.append("chat format: " + ("checked byte for byte (llama.cpp, Ollama, token ids, stop strings)"
                                        if check.get("ok") else f"MISMATCH {check}"))
    costs = (report.get("costs") or {}).get("rows") or []
    if costs:
        lines += ["", "cost per million requests (one request at a time):",
                  table(["MODEL", "RUNTIME", "DEVICE", "$/HOUR", "P50 MS", "$/1M", "GB"],
                        [[c["model"], c["runtime"], c["device"], _num(c.get("price_per_hour")),
                          _num(c.get("latency_p50_ms"), 1), _num(c.get("cost_per_million"), 2),
                          _num(c.get("size_gb"))] for c in costs])]
    return "\n".join(lines)
