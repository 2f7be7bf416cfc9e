"""Start a worker for one logical queue: `python -m workers.main --queue gpu --concurrency 1`."""

from __future__ import annotations

import argparse
import os
import socket

from app.config import get_settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run a vibetune Celery worker.")
    parser.add_argument("--queue", choices=["default", "gpu"], default="default")
    parser.add_argument("--concurrency", type=int, default=None)
    parser.add_argument("--loglevel", default="INFO")
    args = parser.parse_args(argv)
    # One default worker runs all DEFAULT_WORKER_SLOTS; with several, set it to their total.
    concurrency = args.concurrency or (1 if args.queue == "gpu" else get_settings().default_worker_slots)

    from workers.celery_app import celery_app

    celery_app.worker_main([
        "worker",
        "-Q", get_settings().queue_name(args.queue),
        "-n", f"{args.queue}-{os.getpid()}@{socket.gethostname()}",
        "--concurrency", str(concurrency),
        "--loglevel", args.loglevel,
        "--without-gossip", "--without-mingle",
    ])


if __name__ == "__main__":
    main()
