"""Text the `vibetune` client commands print: pure functions of the API's JSON, so they are unit-testable.

Job snapshots are the dicts `GET /api/jobs/{id}/events` sends (a job summary plus `warnings` and
`stages`); reports are `GET /api/jobs/{id}/report` bodies."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

FINISHED = ("succeeded", "failed", "canceled")
BAR_WIDTH = 24
_ANSI_UP = "\x1b[{n}A"
_ANSI_CLEAR_LINE = "\x1b[2K"


def human_size(size: int | float | None) -> str:
    """Bytes for people: `512 B`, `1.5 KB`, `12.3 MB`, `1.20 GB`."""
    if size is None:
        return "-"
    if size < 1000:
        return f"{int(size)} B"
    for unit, scale in (("KB", 1e3), ("MB", 1e6), ("GB", 1e9), ("TB", 1e12)):
        if size < scale * 1000 or unit == "TB":
            value = size / scale
            return f"{value:.2f} {unit}" if unit in ("GB", "TB") else f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


def parse_time(value: str | None) -> datetime | None:
    """An API timestamp (ISO 8601) as an aware datetime."""
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def age(created_at: str | None, now: datetime | None = None) -> str:
    """How long ago a timestamp was: `12s ago`, `3m ago`, `5h ago`, `2d ago`."""
    when = parse_time(created_at)
    if when is None:
        return "-"
    seconds = max(0, int(((now or datetime.now(UTC)) - when).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def duration(seconds: float | None) -> str:
    """A number of seconds as `45s`, `3m 05s` or `2h 10m`; `-` when unknown."""
    if seconds is None:
        return "-"
    total = int(round(seconds))
    if total < 60:
        return f"{total}s"
    if total < 3600:
        return f"{total // 60}m {total % 60:02d}s"
    return f"{total // 3600}h {total % 3600 // 60:02d}m"


def rough_duration(seconds: float) -> str:
    """A time estimate in round figures: `40 s`, `14 min`, `2 h 5 min`."""
    total = max(0, int(round(seconds)))
    if total < 60:
        return f"{max(1, total)} s"
    minutes = int(round(total / 60))
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h" + (f" {minutes % 60} min" if minutes % 60 else "")


def estimate_text(estimate: dict[str, Any]) -> str:
    """`vibetune tune --dry-run`: the upfront estimate (POST /api/jobs/estimate) in one line, e.g.
    `about 14 min: generate 3 min, label 4 min, ...`, then each stage with what it is based on."""
    stages = estimate.get("stages") or []
    parts = ", ".join(f"{s['name']} {rough_duration(s.get('seconds') or 0)}" for s in stages)
    lines = [f"about {rough_duration(estimate.get('total_seconds') or 0)}" + (f": {parts}" if parts else "")]
    if stages:
        rows = [[s["name"], rough_duration(s.get("seconds") or 0), str(s.get("basis") or "-")] for s in stages]
        lines += ["", table(["STAGE", "TIME", "BASED ON"], rows)]
    if estimate.get("basis"):
        lines += ["", f"based on: {estimate['basis']}"]
    lines.append("(dry run: nothing was submitted)")
    return "\n".join(lines)


def percent(fraction: float | None) -> str:
    """0..1 as a whole percentage."""
    return "-" if fraction is None else f"{int(fraction * 100)}%"


def truncate(text: str, width: int) -> str:
    """One line of at most `width` characters, with an ellipsis when cut."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns separated by two spaces."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = [headers, *rows]
    return "\n".join("  ".join(str(cell).ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
                     for line in lines)


def jobs_table(items: Sequence[dict[str, Any]], total: int | None = None, now: datetime | None = None) -> str:
    """The `vibetune jobs` listing: id, status, stage, progress, age and task."""
    if not items:
        return "no jobs yet; submit one with: vibetune tune \"<task>\""
    rows = [[job["id"], job["status"], job.get("stage") or "-", percent(job.get("progress")),
             age(job.get("created_at"), now), truncate(job.get("task", ""), 48)] for job in items]
    text = table(["ID", "STATUS", "STAGE", "PROGRESS", "AGE", "TASK"], rows)
    if total is not None and total > len(items):
        text += f"\n({len(items)} of {total} jobs; see more with --limit)"
    return text


def keys_table(items: Sequence[dict[str, Any]], now: datetime | None = None) -> str:
    """API keys, one per line: id, owner, admin, key prefix, name, age, last use, revoked."""
    rows = [[str(k["id"]), k["owner"], "admin" if k["admin"] else "", f"{k['prefix']}...", truncate(k["name"], 24),
             age(k["created_at"], now), age(k["last_used_at"], now) if k.get("last_used_at") else "never",
             "revoked" if k.get("revoked_at") else ""] for k in items]
    return table(["ID", "OWNER", "ADMIN", "KEY", "NAME", "MADE", "USED", ""], rows) if rows else "no keys"


def progress_bar(fraction: float, width: int = BAR_WIDTH) -> str:
    """`[#########---------------]` for a fraction 0..1."""
    filled = int(round(max(0.0, min(1.0, fraction)) * width))
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def stage_counts(stage: dict[str, Any]) -> str:
    """`50/200` when the stage reported items, else nothing."""
    done, total = stage.get("done"), stage.get("total")
    return f"{done}/{total}" if done is not None and total else ""


def item_rate(stage: dict[str, Any]) -> str:
    """`12/min` (`0.5/min` below ten) when a running stage reports its items per minute, else nothing."""
    rate = stage.get("items_per_min")
    if rate is None or stage.get("status") != "running":
        return ""
    return f"{rate:.0f}/min" if rate >= 10 else f"{rate:.1f}/min"


def stage_line(stage: dict[str, Any], name_width: int = 13) -> str:
    """One stage with a progress bar, its status or progress, item counts and ETA when known."""
    status, fraction = stage["status"], stage.get("progress") or 0.0
    state = percent(fraction).rjust(4) if status == "running" else status
    parts = [stage["name"].ljust(name_width), progress_bar(fraction), state]
    counts = stage_counts(stage)
    if counts and status == "running":
        parts.append(counts)
    if item_rate(stage):
        parts.append(item_rate(stage))
    if status == "running" and stage.get("eta_seconds") is not None:
        parts.append(f"eta {duration(stage['eta_seconds'])}")
    if stage.get("error"):
        parts.append(f"({truncate(stage['error'], 60)})")
    return "  ".join(parts)


def stage_progress(stage: dict[str, Any]) -> str:
    """`generate: 50% (100/200, 12/min, eta 1m 05s)`: a running stage in one log line."""
    details = [part for part in (stage_counts(stage), item_rate(stage), stage.get("eta_seconds") is not None
                                 and f"eta {duration(stage['eta_seconds'])}") if part]
    return f"{stage['name']}: {percent(stage.get('progress'))}" + (f" ({', '.join(details)})" if details else "")


def job_headline(job: dict[str, Any]) -> str:
    """`job <id>: running (generate, 42%)`."""
    running = job.get("stage") and job["status"] == "running"
    where = f" ({job['stage']}, {percent(job.get('progress'))})" if running else ""
    return f"job {job['id']}: {job['status']}{where}"


def error_text(job: dict[str, Any]) -> str:
    """Why a job ended without succeeding, for people."""
    error = job.get("error")
    if error:
        return f"job {job['id']} {job['status']}: {error.get('message') or error.get('code')} [{error.get('code')}]"
    return f"job {job['id']} {job['status']}"


class LiveProgress:
    """Stage bars redrawn in place on a terminal: each update moves the cursor back up over the
    lines drawn last time and writes the new ones."""

    def __init__(self) -> None:
        self._drawn = 0

    def update(self, job: dict[str, Any]) -> str:
        """The text (with ANSI cursor moves) that replaces the previous drawing with this snapshot."""
        lines = [job_headline(job), *(stage_line(s) for s in job.get("stages", []))]
        prefix = _ANSI_UP.format(n=self._drawn) if self._drawn else ""
        self._drawn = len(lines)
        return prefix + "".join(f"\r{_ANSI_CLEAR_LINE}{line}\n" for line in lines)


class LineProgress:
    """Progress as plain appended lines, for logs and pipes: one when the job's status changes,
    when a stage starts, when its progress crosses each 25%, and when it finishes."""

    def __init__(self) -> None:
        self._status: str | None = None
        self._stages: dict[str, tuple[str, int]] = {}  # name -> (status, quarters printed)

    def update(self, job: dict[str, Any]) -> list[str]:
        """The lines this snapshot adds."""
        lines = [line for stage in job.get("stages", []) for line in self._stage_lines(stage)]
        if job["status"] != self._status:
            self._status = job["status"]
            # A job's start reads best before its stages' lines, its end after them.
            headline = f"job {job['id']}: {job['status']}"
            lines = [*lines, headline] if job["status"] in FINISHED else [headline, *lines]
        return lines

    def _stage_lines(self, stage: dict[str, Any]) -> list[str]:
        name, status = stage["name"], stage["status"]
        seen_status, quarters = self._stages.get(name, ("pending", 0))
        lines: list[str] = []
        if status == "pending":
            # A resumed stage starts again from nothing.
            self._stages[name] = ("pending", 0)
            return lines
        if status == "running" and seen_status != "running":
            quarters = 0
            lines.append(f"{name}: started")
        if status == "running":
            crossed = min(3, int((stage.get("progress") or 0.0) * 4))
            if crossed > quarters:
                quarters = crossed
                lines.append(stage_progress(stage))
        elif status != seen_status:
            lines.append(f"{name}: {status}" + (f" ({stage['error']})" if stage.get("error") else ""))
        self._stages[name] = (status, quarters)
        return lines


def _number(value: Any, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _interval(value: Any) -> str:
    return "-" if not value else f"{value[0]:.2f}-{value[1]:.2f}"


def has_scores(report: dict[str, Any]) -> bool:
    """Whether any model has been scored yet."""
    return any(report.get(key) for key in ("teacher", "base_student", "student"))


MODELS = (("teacher", "teacher"), ("untuned student", "base_student"), ("tuned student", "student"))
#: How many tool-call mismatches `report_table` lists.
MISMATCHES_SHOWN = 5


def report_kind(report: dict[str, Any]) -> str:
    """The task type a report scores, from the keys its per-type rule adds: `extraction` (`fields`,
    `parse_rate`), `tool_calling` (`valid_call_rate`, `mismatches`), `qa` (`f1`), else `classification`."""
    entries = [report.get(key) or {} for _, key in MODELS]
    if any("fields" in e or "parse_rate" in e for e in entries):
        return "extraction"
    if any("valid_call_rate" in e or "mismatches" in e for e in entries):
        return "tool_calling"
    if any(e.get("rule") == "qa" or "f1" in e for e in entries):
        return "qa"
    return "classification"


# The columns between ACCURACY and P50 MS, per task type: (header, key in a model's scores).
_EXTRA_COLUMNS = {
    "classification": [("MACRO-F1", "macro_f1")],
    "extraction": [("MACRO-F1", "macro_f1"), ("PARSED", "parse_rate")],
    "qa": [("F1", "f1")],
    "tool_calling": [("CALLS", "call_accuracy"), ("VALID", "valid_call_rate"), ("NO-CALL", "no_call_accuracy")],
}


def _prf_cell(scores: dict[str, Any] | None) -> str:
    if not scores:
        return "-"
    return "/".join(_number(scores.get(key), 2) for key in ("precision", "recall", "f1"))


def field_table(report: dict[str, Any]) -> str | None:
    """An extraction report's per-field precision/recall/F1, one column per scored model."""
    models = [(label, report[key]) for label, key in MODELS if report.get(key)]
    names = sorted({name for _, scores in models for name in scores.get("fields") or {}})
    if not names:
        return None
    headers = ["FIELD", "N", *(f"{label.split()[0].upper()} P/R/F1" for label, _ in models)]
    rows = []
    for name in names:
        counts = [scores["fields"][name]["n"] for _, scores in models if name in (scores.get("fields") or {})]
        rows.append([name, str(counts[0]) if counts else "-",
                     *(_prf_cell((scores.get("fields") or {}).get(name)) for _, scores in models)])
    return table(headers, rows)


def _call_text(call: Any) -> str:
    if not call:
        return "no call"
    if isinstance(call, dict) and "name" in call:
        return f"{call['name']} {json.dumps(call.get('arguments', {}), ensure_ascii=False)}"
    return json.dumps(call, ensure_ascii=False)


def mismatch_lines(report: dict[str, Any]) -> list[str]:
    """The first tool-call mismatches of the last model scored (the tuned student once it is):
    row, expected call, what the model answered, and why it does not count."""
    scored = [(label, report[key]) for label, key in MODELS if report.get(key)]
    if not scored:
        return []
    label, scores = scored[-1]
    mismatches = scores.get("mismatches") or []
    if not mismatches:
        return []
    shown = mismatches[:MISMATCHES_SHOWN]
    # The scorer keeps the first 20 mismatches; `n - correct` counts them all.
    wrong = max(len(mismatches), (scores.get("n") or 0) - (scores.get("correct") or 0))
    more = f", {len(shown)} of {wrong} shown" if wrong > len(shown) else ""
    lines = [f"mismatches of the {label}{more}:"]
    for m in shown:
        if m.get("predicted") is None:
            got = "no answer"
        else:
            got = f"{truncate(str(m['predicted']), 60) or '(empty)'} ({m.get('reason')})"
        lines.append(f"  row {m.get('index')}: expected {truncate(_call_text(m.get('expected')), 60)}; got {got}")
    return lines


VERDICT_REASONS = {
    "reaches_teacher": "the tuned student's 95% interval reaches the teacher's score",
    "closed_gap": "tuning closed at least 0.8 of the gap to the teacher",
    "behind_teacher": "the tuned student is behind the teacher beyond its interval",
}


def report_table(report: dict[str, Any]) -> str:
    """Teacher, untuned and tuned student side by side (accuracy, the headline score of every task
    type, then the type's own numbers), then the verdict and tuned/teacher ratio. An extraction report
    adds a per-field table, a tool-calling one its first mismatches."""
    kind = report_kind(report)
    extra = _EXTRA_COLUMNS[kind]
    rows = []
    for label, key in MODELS:
        scores = report.get(key) or {}
        latency = (scores.get("latency_ms") or {}).get("p50")
        rows.append([label, _number(scores.get("accuracy")), _interval(scores.get("accuracy_ci95")),
                     *(_number(scores.get(k)) for _, k in extra),
                     _number(latency, 1), human_size(scores.get("size_bytes"))])
    lines = [table(["MODEL", "ACCURACY", "95% CI", *(h for h, _ in extra), "P50 MS", "SIZE"], rows)]
    if kind == "extraction" and (fields := field_table(report)):
        lines += ["", fields, ""]
    if kind == "tool_calling" and (mismatches := mismatch_lines(report)):
        lines += ["", *mismatches, ""]
    tuned = (report.get("student") or {}).get("accuracy")
    teacher = (report.get("teacher") or {}).get("accuracy")
    reason = VERDICT_REASONS.get(report.get("verdict_reason") or "")
    lines.append(f"verdict: {report.get('verdict') or '-'}" + (f" ({reason})" if reason else ""))
    if report.get("closed") is not None:
        lines.append(f"gap closed: {report['closed']:.2f} of untuned -> teacher")
    ratio = report.get("ratio") or (tuned / teacher if tuned is not None and teacher else None)
    if ratio is not None:
        lines.append(f"tuned/teacher accuracy: {ratio:.2f}")
    for warning in report.get("warnings") or []:
        lines.append(f"warning: {warning.get('message') or warning.get('code')}")
    return "\n".join(lines)


def task_type_text(job: dict[str, Any]) -> str | None:
    """`extraction (fields: date, party_size)`: the job's task type (asked for, else the teacher's
    plan) with its fields or tools; None when neither says."""
    spec, plan = job.get("spec") or {}, job.get("plan") or {}
    kind = spec.get("task_type")
    inferred = kind is None and plan.get("task_type") is not None
    kind = kind or plan.get("task_type")
    if not kind:
        return None
    fields = [f.get("name") for f in spec.get("fields") or plan.get("fields") or [] if isinstance(f, dict)]
    tools = [(t.get("function") or {}).get("name") for t in spec.get("tools") or [] if isinstance(t, dict)]
    details = (f"fields: {', '.join(map(str, fields))}" if fields else
               f"tools: {', '.join(map(str, tools))}" if tools else
               f"labels: {', '.join(spec['labels'])}" if spec.get("labels") else "")
    text = f"{kind}{' (inferred)' if inferred else ''}"
    return f"{text}{f' - {truncate(details, 90)}' if details else ''}"


def status_text(job: dict[str, Any], now: datetime | None = None) -> str:
    """`vibetune status`: the summary, each stage with progress and ETA, and warnings."""
    lines = [
        f"job       {job['id']}",
        f"task      {truncate(job.get('task', ''), 100)}",
        f"status    {job['status']}" + (f" (stage {job['stage']}, {percent(job.get('progress'))})"
                                        if job.get("stage") and job["status"] == "running" else ""),
        f"created   {age(job.get('created_at'), now)}",
    ]
    if kind := task_type_text(job):
        lines.insert(2, f"type      {kind}")
    if job.get("error"):
        lines.append(f"error     {job['error'].get('code')}: {job['error'].get('message')}")
    stages = job.get("stages") or []
    if stages:
        rows = [[s["name"], s["status"], percent(s.get("progress")),
                 duration(s.get("eta_seconds")) if s["status"] == "running" else "-"] for s in stages]
        lines += ["", table(["STAGE", "STATUS", "PROGRESS", "ETA"], rows)]
    warnings = job.get("warnings") or []
    if warnings:
        lines += ["", "warnings:", *(f"  {w.get('code', 'warning')}: {w.get('message', '')}" for w in warnings)]
    return "\n".join(lines)


def download_line(name: str, size: int, skipped: bool) -> str:
    """One downloaded (or already present) artifact."""
    return f"  {name}  {human_size(size)}" + ("  (already here)" if skipped else "")


def download_summary(count: int, total_size: int, folder: str) -> str:
    """The closing line of a download."""
    return f"{count} file{'s' if count != 1 else ''}, {human_size(total_size)} in {folder}"
