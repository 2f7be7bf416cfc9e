"""The `vibetune` command: server commands (`up`, `worker`, `migrate`, `admin-key`) and client
commands (`tune`, `jobs`, `status`, `download`, `cancel`, `resume`, `keys`, `whoami`, `compare`, ...) that talk
to the REST API with an API key (`--api-key` / VIBETUNE_API_KEY)."""

from __future__ import annotations

import argparse
import sys

from app.cli import data_parsers
from app.cli.job_options import QA_MODES, add_exports_argument, add_option_arguments, body_default, options_epilog

CLIENT_COMMANDS = ("tune", "jobs", "status", "download", "cancel", "resume", "keys", "whoami", "data", "retrain",
                   "compare")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


TASK_TYPES = ("classification", "extraction", "qa", "tool_calling")


def _task_type(text: str) -> str:
    value = text.strip().lower().replace("-", "_")
    if value not in TASK_TYPES:
        raise argparse.ArgumentTypeError(f"must be one of {', '.join(TASK_TYPES)}, not {text!r}")
    return value


def _row_count(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 500:
        raise argparse.ArgumentTypeError(f"must be 0 to 500, not {value}")
    return value


def _client_commands(commands: argparse._SubParsersAction) -> None:
    # SUPPRESS keeps a subcommand from overwriting a --url given before it with its own default.
    remote = argparse.ArgumentParser(add_help=False)
    remote.add_argument("--url", default=argparse.SUPPRESS,
                        help="API base URL (default: $VIBETUNE_URL or http://127.0.0.1:8000)")
    remote.add_argument("--api-key", default=argparse.SUPPRESS, metavar="KEY",
                        help="API key (default: $VIBETUNE_API_KEY)")

    tune = commands.add_parser("tune", parents=[remote], help="submit a task and follow the job to its model",
                               epilog=options_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    tune.add_argument("task", help="the task in plain words")
    tune.add_argument("--task-type", type=_task_type, metavar="TYPE",
                      help=f"{', '.join(TASK_TYPES)} (default: the teacher infers it; --fields and --tools imply it)")
    tune.add_argument("--labels", help="comma-separated allowed outputs of a classification task")
    tune.add_argument("--fields", metavar="SPEC",
                      help="the fields of an extraction task: name:description[:type],... (type: string, number, "
                           "integer, boolean, list), or @FILE with a JSON schema of an object")
    tune.add_argument("--tools", metavar="FILE",
                      help="a tool-calling task's tools: a JSON file with a list of OpenAI function tools "
                           "(or {\"tools\": [...]})")
    tune.add_argument("--tools-in-prompt", action="store_true",
                      help="with --tools: the student reads the tools offered with each request from its prompt, so "
                           "clients may send other tools each time (default: the tools are learned into its weights)")
    tune.add_argument("--examples", metavar="FILE",
                      help="seed examples: a CSV file with columns input,output, or JSON Lines of {input, output}")
    tune.add_argument("--test", metavar="FILE",
                      help="held-out test set: a CSV file with columns input,output, or JSON Lines of {input, output}")
    tune.add_argument("--inputs", metavar="FILE",
                      help="real unlabeled inputs (e.g. production logs) the teacher labels for the train split and "
                           "generation imitates: a .txt file with one a line, JSON Lines of {input} or of strings, or "
                           "a CSV file with an input column")
    tune.add_argument("--qa-mode", choices=QA_MODES,
                      help="qa tasks: open_book (a passage and its question) or closed_book (default: asked of the "
                           "teacher)")
    tune.add_argument("--num-examples", type=_positive, metavar="N",
                      help=f"training examples the teacher makes (default: {body_default('num_examples')})")
    tune.add_argument("--until", choices=["data", "model"], help="stop after the data (default: model)")
    tune.add_argument("--teacher", metavar="NAME", help="teacher model (see GET /api/models)")
    tune.add_argument("--student", metavar="NAME", help="student model: a name, local path or hub id")
    add_option_arguments(tune)
    add_exports_argument(tune)
    tune.add_argument("--dry-run", action="store_true",
                      help="print the upfront estimate of each stage's time and submit nothing")
    tune.add_argument("--out", metavar="DIR", help="where to download the artifacts (default ./vibetune-<id>)")
    tune.add_argument("--detach", action="store_true", help="print the job id and return without following")

    jobs = commands.add_parser("jobs", parents=[remote], help="list the newest jobs")
    jobs.add_argument("--limit", type=_positive, default=20, metavar="N")
    status = commands.add_parser("status", parents=[remote], help="one job's stages, warnings and scores")
    status.add_argument("id")
    download = commands.add_parser("download", parents=[remote], help="download a job's artifacts")
    download.add_argument("id")
    download.add_argument("--out", metavar="DIR", help="target folder (default ./vibetune-<id>)")
    cancel = commands.add_parser("cancel", parents=[remote], help="cancel a queued or running job")
    cancel.add_argument("id")
    resume = commands.add_parser("resume", parents=[remote], help="run a failed, canceled or data-only job on")
    resume.add_argument("id")
    resume.add_argument("--out", metavar="DIR", help="where to download the artifacts (default ./vibetune-<id>)")
    resume.add_argument("--detach", action="store_true", help="return once it is queued")

    keys = commands.add_parser("keys", parents=[remote], help="make, list and revoke API keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = key_commands.add_parser("create", parents=[remote], help="make a key (admins only); prints it once")
    create.add_argument("--owner", required=True, help="who the key acts for")
    create.add_argument("--admin", action="store_true", help="the key may see and manage everyone's jobs and keys")
    create.add_argument("--name", help="a note to tell keys apart")
    key_commands.add_parser("list", parents=[remote], help="the keys you may see")
    revoke = key_commands.add_parser("revoke", parents=[remote], help="revoke a key by its id")
    revoke.add_argument("id", type=int)
    commands.add_parser("whoami", parents=[remote], help="who your API key acts for")
    compare = commands.add_parser("compare", parents=[remote], help="finished jobs side by side on their test rows")
    compare.add_argument("ids", nargs="+", metavar="ID", help="2 to 8 finished (evaluated) jobs")
    compare.add_argument("--rows", type=_row_count, default=10, metavar="N",
                         help="rows where the students differ to show (default 10, at most 500; 0 for none)")
    data_parsers.add_parsers(commands, remote)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vibetune", description="Self-hostable vibe-tuning service.")
    parser.add_argument("--url", default=None, help="API base URL for the client commands "
                                                    "(default: $VIBETUNE_URL or http://127.0.0.1:8000)")
    parser.add_argument("--api-key", default=None, metavar="KEY",
                        help="API key for the client commands (default: $VIBETUNE_API_KEY)")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="migrate, then run the API and workers in the foreground")
    up.add_argument("--host", default=None)
    up.add_argument("--port", default=None)
    worker = commands.add_parser("worker", help="run one worker")
    worker.add_argument("--queue", choices=["default", "gpu"], default="default")
    worker.add_argument("--concurrency", type=int, default=None)
    commands.add_parser("migrate", help="create the database if needed, apply migrations, and print a first "
                                        "admin key on a database that has none")
    admin_key = commands.add_parser("admin-key", help="make an admin key directly in the database (on the server's "
                                                      "machine, e.g. when every admin key is lost)")
    admin_key.add_argument("--owner", default="admin")
    _client_commands(commands)
    args = parser.parse_args(argv)

    if args.command in CLIENT_COMMANDS:
        from app.cli.commands import run

        return run(args)
    if args.command == "up":
        from app.cli.supervisor import main as supervise

        extra = [*(["--host", args.host] if args.host else []), *(["--port", str(args.port)] if args.port else [])]
        return supervise(extra)
    if args.command == "worker":
        from workers.main import main as run_worker

        run_worker(["--queue", args.queue, *(["--concurrency", str(args.concurrency)] if args.concurrency else [])])
        return 0
    from app.cli.supervisor import ensure_database, first_admin_key, migrate, sign_in_text
    from app.config import get_settings

    if args.command == "admin-key":
        from app.auth import create_key
        from app.db import session_scope

        with session_scope() as session:
            print(create_key(session, args.owner, admin=True, name="vibetune admin-key").key)
        return 0
    ensure_database(get_settings().database_url)
    migrate()
    print("database is at the newest migration")
    if key := first_admin_key():
        print(sign_in_text(key))
    return 0


if __name__ == "__main__":
    sys.exit(main())
