"""The `vibetune` command: server commands (`up`, `worker`, `migrate`) and job client commands
(`tune`, `jobs`, `status`, `download`, `cancel`, `resume`) that talk to the REST API."""

from __future__ import annotations

import argparse
import sys

CLIENT_COMMANDS = ("tune", "jobs", "status", "download", "cancel", "resume")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _client_commands(commands: argparse._SubParsersAction) -> None:
    # SUPPRESS keeps a subcommand from overwriting a --url given before it with its own default.
    remote = argparse.ArgumentParser(add_help=False)
    remote.add_argument("--url", default=argparse.SUPPRESS,
                        help="API base URL (default: $VIBETUNE_URL or http://127.0.0.1:8000)")

    tune = commands.add_parser("tune", parents=[remote], help="submit a task and follow the job to its model")
    tune.add_argument("task", help="the task in plain words")
    tune.add_argument("--labels", help="comma-separated allowed outputs of a classification task")
    tune.add_argument("--examples", metavar="CSV", help="seed examples: a CSV file with columns input,output")
    tune.add_argument("--test", metavar="CSV", help="held-out test set: a CSV file with columns input,output")
    tune.add_argument("--num-examples", type=_positive, metavar="N", help="training examples the teacher makes")
    tune.add_argument("--until", choices=["data", "model"], help="stop after the data (default: model)")
    tune.add_argument("--teacher", metavar="NAME", help="teacher model (see GET /api/models)")
    tune.add_argument("--student", metavar="NAME", help="student model: a name, local path or hub id")
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vibetune", description="Self-hostable vibe-tuning service.")
    parser.add_argument("--url", default=None, help="API base URL for the client commands "
                                                    "(default: $VIBETUNE_URL or http://127.0.0.1:8000)")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="migrate, then run the API and workers in the foreground")
    up.add_argument("--host", default=None)
    up.add_argument("--port", default=None)
    worker = commands.add_parser("worker", help="run one worker")
    worker.add_argument("--queue", choices=["default", "gpu"], default="default")
    worker.add_argument("--concurrency", type=int, default=None)
    commands.add_parser("migrate", help="create the database if needed and apply migrations")
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
    from app.cli.supervisor import ensure_database, migrate
    from app.config import get_settings

    ensure_database(get_settings().database_url)
    migrate()
    print("database is at the newest migration")
    return 0


if __name__ == "__main__":
    sys.exit(main())
