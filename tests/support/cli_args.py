"""What the `vibetune` command line hands a client command, with nothing sent to a server."""

from __future__ import annotations

import argparse

import pytest

import app.cli.commands as commands
from app.cli.main import main


def parsed_args(monkeypatch: pytest.MonkeyPatch, *argv: str) -> argparse.Namespace:
    """The arguments `vibetune ARGV...` hands its command (the command itself is not run)."""
    seen: list[argparse.Namespace] = []

    def run(args: argparse.Namespace) -> int:
        seen.append(args)
        return 0

    monkeypatch.setattr(commands, "run", run)
    assert main(list(argv)) == 0
    return seen[0]
