"""The arguments of `vibetune data` and `vibetune retrain` (argparse only: `vibetune --help`
stays fast; app.cli.data_commands runs them)."""

from __future__ import annotations

import argparse

from app.cli.job_options import add_exports_argument


def add_parsers(commands: argparse._SubParsersAction, remote: argparse.ArgumentParser) -> None:
    """The `data` and `retrain` subcommands."""
    data = commands.add_parser("data", parents=[remote], help="export, edit and import a stopped job's data set")
    actions = data.add_subparsers(dest="data_command", required=True)
    export = actions.add_parser("export", parents=[remote],
                                help="print the data set as JSON Lines ({index, input, output, split} per row)")
    export.add_argument("id")
    imported = actions.add_parser("import", parents=[remote], help="make the data set equal an edited export: "
                                  "rows with an index are kept (output changed), rows without one added, rows left "
                                  "out deleted; saved as one revision")
    imported.add_argument("id")
    imported.add_argument("file", help="the edited JSON Lines file (- for standard input)")
    imported.add_argument("--dry-run", action="store_true", help="only print what would change")
    history = actions.add_parser("history", parents=[remote], help="the data set's revisions: who changed what")
    history.add_argument("id")

    retrain = commands.add_parser("retrain", parents=[remote],
                                  help="train another student on a job's data (copied: no teacher calls)")
    retrain.add_argument("id", help="the job whose data to train on")
    retrain.add_argument("--student", metavar="NAME", help="student model (default: the job's)")
    retrain.add_argument("--teacher", metavar="NAME", help="teacher for evaluation (default: the job's)")
    retrain.add_argument("--training", action="append", default=[], metavar="KEY=VALUE",
                         help="a training option that replaces the job's (repeatable; VALUE is JSON or text), "
                              "e.g. --training epochs=3 --training lora_rank=16")
    add_exports_argument(retrain, default="the job's")
    retrain.add_argument("--until", choices=["data", "model"],
                         help="`data`: stop after copying, to edit the copy's data before training")
    retrain.add_argument("--out", metavar="DIR", help="where to download the artifacts (default ./vibetune-<id>)")
    retrain.add_argument("--detach", action="store_true", help="print the job id and return without following")
