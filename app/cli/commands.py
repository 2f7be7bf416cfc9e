"""The `vibetune` client commands: turn parsed arguments into API calls and print the results.
(Argument parsing is in app.cli.main; the text itself comes from app.cli.output.)"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.cli.client import ClientError, VibetuneClient, api_key, server_url
from app.cli.compare_output import compare_text
from app.cli.exports_output import exports_text
from app.cli.job_options import option_bodies
from app.cli.output import (
    LineProgress,
    LiveProgress,
    download_line,
    download_summary,
    error_text,
    estimate_text,
    has_scores,
    jobs_table,
    keys_table,
    report_table,
    status_text,
)


class UsageError(Exception):
    """Local input the command cannot use (e.g. a malformed CSV file); exit status 2."""


def read_text(path: str, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file ({what})") from None
    except IsADirectoryError:
        raise UsageError(f"{path} is a folder, not a file ({what})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None


def _json_error(path: str, exc: json.JSONDecodeError) -> UsageError:
    return UsageError(f"{path} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})")


def read_json_file(path: str, what: str) -> Any:
    """The JSON value in a file; a missing file or bad JSON is a UsageError naming it."""
    text = read_text(path, what)
    if not text.strip():
        raise UsageError(f"{path} is empty; expected {what}")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _json_error(path, exc) from None


def output_text(value: Any) -> str:
    # An extraction's object or a tool call as JSON text; null (no call) as "".
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return value if isinstance(value, str) else json.dumps(value)


def json_items(path: str, text: str) -> tuple[list[tuple[int, Any]], str]:
    """The values of a JSON Lines file (one a line) or of one JSON list, each with its number, and
    what the numbers count (`line` or `item`)."""
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            items = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise _json_error(path, exc) from None
        return list(enumerate(items, 1)), "item"
    numbered = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            numbered.append((number, json.loads(line)))
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path} line {number} is not valid JSON: {exc.msg} (column {exc.colno})") from None
    return numbered, "line"


def _json_rows(path: str, text: str) -> list[dict[str, Any]]:
    """Rows of a JSON Lines file (one `{"input", "output"}` object a line) or of a JSON list of them.
    An `output` that is an object (an extraction, a tool call) is sent as its JSON text."""
    numbered, where = json_items(path, text)
    rows = []
    for number, item in numbered:
        if not isinstance(item, dict) or "input" not in item:
            raise UsageError(f"{path} {where} {number}: expected an object with the keys input and output")
        if not isinstance(item["input"], str):
            raise UsageError(f"{path} {where} {number}: input must be text")
        row: dict[str, Any] = {"input": item["input"], "output": output_text(item.get("output"))}
        if item.get("tools") is not None:  # the tools offered with the row (tools_in_prompt jobs)
            row["tools"] = item["tools"]
        rows.append(row)
    return rows


def read_examples(path: str) -> list[dict[str, Any]]:
    """Rows of a CSV file with a header row naming the columns `input` and `output`, or of a JSON
    Lines file (or JSON list) of `{"input", "output"}` objects (and the `tools` offered with each,
    for a job with tools in the prompt); outputs are sent as text."""
    expected = "expected a header row with the columns input,output (or JSON Lines of {\"input\", \"output\"})"
    text = read_text(path, "examples")
    if text.lstrip().startswith(("{", "[")) or path.endswith((".jsonl", ".json", ".ndjson")):
        rows = _json_rows(path, text)
        if not rows:
            raise UsageError(f"{path} has no rows")
        return rows
    try:
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader, None)
        if header is None:
            raise UsageError(f"{path} is empty; {expected}")
        columns = [name.strip().lower() for name in header]
        missing = [name for name in ("input", "output") if name not in columns]
        if missing:
            raise UsageError(f"{path} has no {' or '.join(missing)} column; {expected}")
        at_input, at_output = columns.index("input"), columns.index("output")
        rows = [{"input": row[at_input] if at_input < len(row) else "",
                 "output": row[at_output] if at_output < len(row) else ""}
                for row in reader if any(cell.strip() for cell in row)]
    except csv.Error as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    if not rows:
        raise UsageError(f"{path} has a header but no rows")
    return rows


def read_inputs(path: str) -> list[str]:
    """Unlabeled real inputs (`--inputs FILE`): a `.txt` file with one input a line, JSON Lines (or
    a JSON list) of `{"input": ...}` objects or of plain strings, or a CSV file whose header names
    an `input` column (other columns, an `output` too, are ignored). Blank inputs are skipped."""
    text = read_text(path, "inputs")
    if path.lower().endswith((".txt", ".log")):
        inputs = [line.strip() for line in text.splitlines()]
    elif text.lstrip().startswith(("{", "[", '"')) or path.lower().endswith((".jsonl", ".json", ".ndjson")):
        numbered, where = json_items(path, text)
        inputs = []
        for number, item in numbered:
            value = item.get("input") if isinstance(item, dict) else item
            if not isinstance(value, str):
                raise UsageError(f"{path} {where} {number}: expected a text or an object with the key input")
            inputs.append(value)
    else:
        inputs = _csv_column(path, text, "input")
    inputs = [value for value in inputs if value.strip()]
    if not inputs:
        raise UsageError(f"{path} holds no inputs")
    return inputs


def _csv_column(path: str, text: str, column: str) -> list[str]:
    """The cells of one named column of a CSV file with a header row."""
    try:
        reader = csv.reader(io.StringIO(text, newline=""))
        header = [name.strip().lower() for name in next(reader, [])]
        if column not in header:
            raise UsageError(f"{path} has no {column} column; expected a CSV header naming it, JSON Lines of "
                             f'{{"{column}": ...}}, or a .txt file with one {column} a line')
        at = header.index(column)
        return [row[at] for row in reader if at < len(row)]
    except csv.Error as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None


def read_tools(path: str) -> list[Any]:
    """The tools of `--tools FILE`: a JSON list of OpenAI function tools, `{"tools": [...]}`, or a
    single tool object. Their content is checked by the server (each problem named by location)."""
    value = read_json_file(path, "a JSON list of tools")
    if isinstance(value, dict) and "tools" in value:
        value = value["tools"]
    elif isinstance(value, dict) and ("function" in value or value.get("type") == "function"):
        value = [value]
    if not isinstance(value, list):
        raise UsageError(f"{path}: expected a JSON list of tools [{{\"type\": \"function\", \"function\": "
                         f"{{\"name\", \"description\", \"parameters\"}}}}, ...] or {{\"tools\": [...]}}")
    if not value:
        raise UsageError(f"{path} holds no tools; give at least one")
    return value


def read_fields(value: str) -> Any:
    """`--fields`: the text `name:description[:type],...` as given (the server parses it), or with
    `@FILE` the JSON in that file: a JSON schema of an object, a list of `{name, description,
    type, span}`, or `{"fields": [...]}`."""
    if not value.startswith("@"):
        if not value.strip():
            raise UsageError("--fields is empty; write name:description[:type],... or @schema.json")
        return value
    path = value[1:]
    fields = read_json_file(path, "a JSON schema of an object, or a JSON list of fields")
    if isinstance(fields, dict) and isinstance(fields.get("fields"), list):
        fields = fields["fields"]
    if not isinstance(fields, (dict, list)):
        raise UsageError(f"{path}: expected a JSON schema object or a list of fields")
    return fields


def job_body(args: argparse.Namespace) -> dict[str, Any]:
    """The `POST /api/jobs` body from `vibetune tune`'s arguments (options left out go unsent).
    Every file is read before anything is sent."""
    body: dict[str, Any] = {"task": args.task}
    if args.task_type is not None:
        body["task_type"] = args.task_type
    if args.labels is not None:
        body["labels"] = [label.strip() for label in args.labels.split(",")]
    if args.fields is not None:
        body["fields"] = read_fields(args.fields)
    if args.tools is not None:
        body["tools"] = read_tools(args.tools)
    if getattr(args, "tools_in_prompt", False):
        body["tools_in_prompt"] = True
    if args.examples:
        body["examples"] = read_examples(args.examples)
    if args.test:
        body["test_set"] = read_examples(args.test)
    if getattr(args, "inputs", None):
        body["inputs"] = read_inputs(args.inputs)
    for option in ("qa_mode", "num_examples", "until", "teacher", "student", "exports"):
        if getattr(args, option, None) is not None:
            body[option] = getattr(args, option)
    return {**body, **option_bodies(args)}


def tune(client: VibetuneClient, args: argparse.Namespace) -> int:
    """Submit a job, then follow it to the end (unless --detach); with --dry-run, print what it
    would take (the server's upfront estimate) and submit nothing."""
    body = job_body(args)
    if getattr(args, "dry_run", False):
        print(estimate_text(client.estimate(body)))
        return 0
    job = client.create_job(body)
    print(f"submitted job {job['id']}")
    if args.detach:
        print(f"see it with: vibetune status {job['id']}")
        return 0
    return follow_job(client, job["id"], args.out)


def resume(client: VibetuneClient, args: argparse.Namespace) -> int:
    """Queue a stopped job again, then follow it to the end (unless --detach)."""
    job = client.resume(args.id)
    print(f"resumed job {job['id']}: {job['status']}")
    if args.detach:
        return 0
    return follow_job(client, job["id"], args.out)


def cancel(client: VibetuneClient, args: argparse.Namespace) -> int:
    """Cancel a queued or running job."""
    job = client.cancel(args.id)
    print(f"job {job['id']}: {job['status']}")
    return 0


def jobs(client: VibetuneClient, args: argparse.Namespace) -> int:
    """List the newest jobs."""
    page = client.list_jobs(args.limit)
    print(jobs_table(page["items"], page.get("total")))
    return 0


def status(client: VibetuneClient, args: argparse.Namespace) -> int:
    """One job's state, stages and warnings, and its scores once there are any."""
    print(status_text(client.get_job(args.id)))
    print_scores(client, args.id)
    return 0


def print_scores(client: VibetuneClient, job_id: str) -> None:
    """The job's score table and its exported files' table, each once there is one."""
    report = client.report(job_id)
    if has_scores(report):
        print()
        print(report_table(report))
    if exports := exports_text(report):
        print()
        print(exports)


def keys(client: VibetuneClient, args: argparse.Namespace) -> int:
    """`keys create` prints the new key alone on stdout (for `$(...)`), its details on stderr;
    `keys list` a table; `keys revoke ID` a line."""
    if args.keys_command == "create":
        made = client.create_key(args.owner, admin=args.admin, name=args.name or "")
        print(made["key"])
        kind = "admin key" if made["admin"] else "key"
        print(f"made {kind} {made['id']} for {made['owner']} (shown once; only its hash is stored)", file=sys.stderr)
    elif args.keys_command == "list":
        print(keys_table(client.list_keys()))
    else:
        client.revoke_key(args.id)
        print(f"revoked key {args.id}")
    return 0


def whoami(client: VibetuneClient, _: argparse.Namespace) -> int:
    """Who the key acts for."""
    me = client.me()
    print(f"{me['owner']}{' (admin)' if me['admin'] else ''}{'' if me['auth'] else ' - AUTH is off'}")
    return 0


def download(client: VibetuneClient, args: argparse.Namespace) -> int:
    """Fetch every artifact of a job."""
    return download_all(client, args.id, args.out)


def download_all(client: VibetuneClient, job_id: str, out: str | None) -> int:
    """Fetch every artifact of the job into `out` (default ./vibetune-<id>), skipping files that
    are already there with the right checksum."""
    folder = Path(out or f"vibetune-{job_id}")
    items = client.artifacts(job_id)
    if not items:
        print(f"job {job_id} has no artifacts yet")
        return 0
    for item in items:
        fetched = client.download(item, folder)
        print(download_line(item["name"], item["size"], skipped=not fetched))
    print(download_summary(len(items), sum(item["size"] for item in items), str(folder)))
    return 0


def follow_job(client: VibetuneClient, job_id: str, out: str | None) -> int:
    """Show the job's progress live; once it ends, print its report and download its artifacts
    (succeeded) or its error (exit status 1)."""
    tty = sys.stdout.isatty()
    live, lines = LiveProgress(), LineProgress()
    job: dict[str, Any] | None = None
    try:
        for job in client.follow(job_id):
            if tty:
                sys.stdout.write(live.update(job))
                sys.stdout.flush()
            else:
                for line in lines.update(job):
                    print(line)
    except KeyboardInterrupt:
        print(f"\nvibetune: stopped following; job {job_id} keeps running on the server "
              f"(see it with `vibetune status {job_id}`, stop it with `vibetune cancel {job_id}`)", file=sys.stderr)
        return 130
    if job is None:
        raise ClientError(f"the server sent no state for job {job_id}")
    if job["status"] != "succeeded":
        print(f"vibetune: {error_text(job)}", file=sys.stderr)
        return 1
    print_scores(client, job_id)
    print()
    return download_all(client, job_id, out)


def compare(client: VibetuneClient, args: argparse.Namespace) -> int:
    """Finished jobs side by side, and the first `--rows` rows where their students differ."""
    if len(args.ids) < 2:
        raise UsageError("compare needs at least two job ids")
    print(compare_text(client.compare(args.ids, rows=args.rows)))
    return 0


COMMANDS: dict[str, Callable[[VibetuneClient, argparse.Namespace], int]] = {
    "tune": tune, "jobs": jobs, "status": status, "download": download, "cancel": cancel, "resume": resume,
    "keys": keys, "whoami": whoami, "compare": compare,
}


def run(args: argparse.Namespace) -> int:
    """Run a client command; expected failures become one message on stderr and an exit status."""
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)  # progress must show up promptly in pipes and logs
    try:
        with VibetuneClient(server_url(args.url), api_key=api_key(getattr(args, "api_key", None))) as client:
            # Imported here: the data commands build on this module's readers and follow_job.
            from app.cli.data_commands import data, retrain

            return {**COMMANDS, "data": data, "retrain": retrain}[args.command](client, args)
    except UsageError as exc:
        print(f"vibetune: {exc}", file=sys.stderr)
        return 2
    except ClientError as exc:
        print("\n".join(exc.lines()), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nvibetune: interrupted", file=sys.stderr)
        return 130
