"""`vibetune data export|import|history` (edit a stopped job's data set in a text editor) and
`vibetune retrain` (train another student on a job's data, no teacher calls)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from app.cli.client import VibetuneClient
from app.cli.commands import UsageError, follow_job, json_items, output_text, read_text

#: Rows asked for per page while exporting (the API's largest page).
EXPORT_PAGE = 500
CHANGE_KINDS = ("updated", "deleted", "restored", "added")


def _option_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def key_values(items: list[str], flag: str) -> dict[str, Any]:
    """`["epochs=3", "lora=true"]` as `{"epochs": 3, "lora": True}`."""
    options: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{flag} takes KEY=VALUE, not {item!r}")
        options[key.strip()] = _option_value(value.strip())
    return options


def retrain_body(args: argparse.Namespace) -> dict[str, Any]:
    """The POST /api/jobs body of `vibetune retrain`."""
    body: dict[str, Any] = {"from_job": args.id}
    for option in ("student", "teacher", "until", "exports"):
        if getattr(args, option, None) is not None:
            body[option] = getattr(args, option)
    training = key_values(args.training, "--training")
    if training:
        body["training"] = training
    return body


def retrain(client: VibetuneClient, args: argparse.Namespace) -> int:
    """Start a job on another job's data, then follow it (unless --detach)."""
    job = client.create_job(retrain_body(args))
    print(f"submitted job {job['id']}, training {job['spec']['student']} on the data of job {args.id} "
          f"(revision {job['spec'].get('data_revision', 0)})")
    if args.detach:
        return 0
    return follow_job(client, job["id"], args.out)


def export_lines(client: VibetuneClient, job_id: str) -> list[str]:
    """The data set's rows in it now, as JSON lines for a person to edit."""
    lines: list[str] = []
    offset, total = 0, None
    while total is None or offset < total:
        page = client.examples(job_id, limit=EXPORT_PAGE, offset=offset, deleted=False)
        total = page["total"]
        for row in page["items"]:
            lines.append(json.dumps({key: row.get(key) for key in ("index", "input", "output", "split")},
                                    ensure_ascii=False))
        offset += EXPORT_PAGE
    return lines


def read_edited_rows(path: str, text: str) -> list[dict[str, Any]]:
    """The rows of an edited export: JSON objects (one a line, or a JSON list) with `input`,
    `output` and, for a row of the data set, its `index` (and `split`). An object `output` is sent
    as its JSON text."""
    rows = []
    numbered, where = json_items(path, text)
    for number, item in numbered:
        if not isinstance(item, dict) or not isinstance(item.get("input"), str):
            raise UsageError(f"{path} {where} {number}: expected an object with the keys index, input and output")
        row = {"input": item["input"], "output": output_text(item.get("output"))}
        for key in ("index", "split"):
            if item.get(key) is not None:
                row[key] = item[key]
        rows.append(row)
    return rows


def change_summary(result: dict[str, Any]) -> str:
    """`revision 3: 2 updated, 1 deleted, 0 restored, 1 added; 148 rows` (or what a dry run would do)."""
    counts = ", ".join(f"{result['changes'].get(kind, 0)} {kind}" for kind in CHANGE_KINDS)
    if result.get("dry_run"):
        return f"would change (dry run): {counts}; {result['rows']} rows after"
    if not result["edits"]:
        return f"nothing changed: the data set is still at revision {result['revision']} ({result['rows']} rows)"
    return f"revision {result['revision']}: {counts}; {result['rows']} rows"


def _edit_line(edit: dict[str, Any]) -> str:
    if edit["op"] == "update":
        return f"  row {edit['index']}: {edit.get('before')!r} -> {edit.get('after')!r}"
    if edit["op"] == "add":
        after = edit.get("after") or {}
        return f"  row {edit['index']} added: {after.get('input')!r} -> {after.get('output')!r}"
    return f"  row {edit['index']} {edit['op']}d"


def data(client: VibetuneClient, args: argparse.Namespace) -> int:
    """`data export` prints JSON Lines; `data import` prints the diff; `data history` the revisions."""
    if args.data_command == "export":
        for line in export_lines(client, args.id):
            print(line)
        return 0
    if args.data_command == "import":
        text = sys.stdin.read() if args.file == "-" else read_text(args.file, "edited data set")
        rows = read_edited_rows(args.file, text)
        result = client.import_data(args.id, rows, dry_run=args.dry_run)
        print(change_summary(result))
        for edit in result["edits"][:50]:
            print(_edit_line(edit))
        if len(result["edits"]) > 50:
            print(f"  and {len(result['edits']) - 50} more changes")
        return 0
    history = client.data_revisions(args.id)
    print(f"revision {history['current']} is the newest (0: as curated)")
    for item in history["items"]:
        counts = ", ".join(f"{item['changes'].get(kind, 0)} {kind}" for kind in CHANGE_KINDS)
        print(f"  {item['number']}  {item['created_at'][:19]}  {item['actor']}: {counts}")
    return 0
