"""The `vibetune` command. Server-side commands now; the job client commands arrive with the CLI issue."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vibetune", description="Self-hostable vibe-tuning service.")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="migrate, then run the API and workers in the foreground")
    up.add_argument("--host", default=None)
    up.add_argument("--port", default=None)
    worker = commands.add_parser("worker", help="run one worker")
    worker.add_argument("--queue", choices=["default", "gpu"], default="default")
    worker.add_argument("--concurrency", type=int, default=None)
    commands.add_parser("migrate", help="create the database if needed and apply migrations")
    args = parser.parse_args(argv)

    if args.command == "up":
        from app.supervisor import main as supervise

        extra = [*(["--host", args.host] if args.host else []), *(["--port", str(args.port)] if args.port else [])]
        return supervise(extra)
    if args.command == "worker":
        from workers.main import main as run_worker

        run_worker(["--queue", args.queue, *(["--concurrency", str(args.concurrency)] if args.concurrency else [])])
        return 0
    from app.config import get_settings
    from app.supervisor import ensure_database, migrate

    ensure_database(get_settings().database_url)
    migrate()
    print("database is at the newest migration")
    return 0


if __name__ == "__main__":
    sys.exit(main())
