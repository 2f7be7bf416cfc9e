"""`vibetune tune` and the new-task form cover the whole job body: every training and curation
option (flags and KEY=VALUE, help and defaults read from the API's own option models), imported
inputs read from CSV, JSON Lines or text files, and `--dry-run` printing the estimate without
submitting."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

import pytest

import app.cli.commands as commands
from app.cli.commands import UsageError, job_body, read_inputs
from app.cli.job_options import key_value
from app.cli.main import main
from app.cli.output import estimate_text, rough_duration
from app.schemas import JobCreate
from app.specs import CurationOptions, TrainingOptions
from tests.support.cli_args import parsed_args

FRONTEND = Path(__file__).resolve().parents[2] / "frontend" / "js"


def parsed(monkeypatch: pytest.MonkeyPatch, *argv: str) -> argparse.Namespace:
    """The arguments `vibetune tune ...` hands its command (nothing is sent)."""
    return parsed_args(monkeypatch, "tune", *argv)


def test_flags_and_key_values_build_the_training_and_curation_objects(monkeypatch):
    args = parsed(monkeypatch, "sort tickets", "--task-type", "qa", "--qa-mode", "open_book", "--distillation",
                  "on_policy", "--method", "lora", "--lora-rank", "8", "--batch-size", "4", "--epochs", "2.5",
                  "--learning-rate", "1e-4", "--votes", "5", "--training", "seed=7", "--training", "batch_size=99",
                  "--training", "teacher_weights=org/teacher", "--curation", "intent_check=false",
                  "--curation", "min_label_share=0", "--num-examples", "40")
    assert job_body(args) == {
        "task": "sort tickets", "task_type": "qa", "qa_mode": "open_book", "num_examples": 40,
        "training": {"distillation": "on_policy", "method": "lora", "lora_r": 8, "batch_size": 4, "epochs": 2.5,
                     "learning_rate": 1e-4, "seed": 7, "teacher_weights": "org/teacher"},
        "curation": {"votes": 5, "intent_check": False, "min_label_share": 0}}, "an explicit flag wins"
    assert job_body(parsed(monkeypatch, "sort tickets")) == {"task": "sort tickets"}, "nothing given, nothing sent"
    with pytest.raises(argparse.ArgumentTypeError):
        key_value("seed")
    assert key_value("method=lora") == ("method", "lora") and key_value("votes=null") == ("votes", None)


def test_help_names_every_option_with_its_default(capsys):
    with pytest.raises(SystemExit):
        main(["tune", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for model in (TrainingOptions, CurationOptions):
        for name, field in model.model_fields.items():
            assert f" {name}" in text, name
            if field.default is not None and not isinstance(field.default, str):
                default = str(field.default).lower()
                assert re.search(rf" {name}( \(--[a-z-]+\))? default: {default} ", text.lower()), name
    assert "--lora-rank N LoRA rank (dropout 0.05, on every linear layer) (default: 16)" in text
    assert "(default: 200)" in text and "--dry-run" in text and "--inputs FILE" in text


@pytest.mark.parametrize("name,text", [
    ("logs.txt", "Where is my parcel?\n\n  the app crashes on login  \n"),
    ("logs.jsonl", '{"input": "Where is my parcel?"}\n"the app crashes on login"\n'),
    ("logs.json", '["Where is my parcel?", {"input": "the app crashes on login", "output": "x"}]'),
    ("logs.csv", 'id,input,output\n1,Where is my parcel?,\n2,"the app crashes on login",\n3,  ,\n'),
])
def test_inputs_files_in_every_format(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    assert [line.strip() for line in read_inputs(str(path))] == ["Where is my parcel?", "the app crashes on login"]


def test_unusable_inputs_files_say_why(tmp_path):
    path = tmp_path / "logs.csv"
    path.write_text("text,label\nhello,x\n")
    with pytest.raises(UsageError, match="has no input column"):
        read_inputs(str(path))
    path.write_text('{"text": 3}\n')
    with pytest.raises(UsageError, match="line 1: expected a text or an object with the key input"):
        read_inputs(str(path))
    (tmp_path / "empty.txt").write_text("\n \n")
    with pytest.raises(UsageError, match="holds no inputs"):
        read_inputs(str(tmp_path / "empty.txt"))
    with pytest.raises(UsageError, match="no such file"):
        read_inputs(str(tmp_path / "missing.txt"))


class Client:
    """Records what `tune` asks of the server."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def estimate(self, body: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("estimate", body))
        return {"stages": [{"name": "generate", "seconds": 170, "basis": "measured"},
                           {"name": "train", "seconds": 40, "basis": "default"}],
                "total_seconds": 840, "basis": "this installation's last 3 jobs"}

    def create_job(self, body: dict[str, Any]) -> dict[str, Any]:
        raise AssertionError("a dry run submits nothing")


def test_dry_run_prints_the_estimate_and_submits_nothing(monkeypatch, tmp_path, capsys):
    (tmp_path / "logs.txt").write_text("a real input\n")
    args = parsed(monkeypatch, "sort tickets", "--inputs", str(tmp_path / "logs.txt"), "--dry-run")
    client = Client()
    assert commands.tune(client, args) == 0
    assert client.calls == [("estimate", {"task": "sort tickets", "inputs": ["a real input"]})]
    out = capsys.readouterr().out
    assert out.startswith("about 14 min: generate 3 min, train 40 s\n")
    assert "based on: this installation's last 3 jobs" in out and "nothing was submitted" in out
    assert estimate_text({"stages": [], "total_seconds": 0}).startswith("about 1 s")
    assert [rough_duration(s) for s in (59, 89, 3600, 7500)] == ["59 s", "1 min", "1 h", "2 h 5 min"]


#: Job body fields that `tune` and the new-task form leave to other paths (`vibetune retrain`, the job page).
ELSEWHERE = {"from_job"}
#: Where `tune` keeps a body field, when not under the field's own name.
TUNE_DEST = {"test_set": "test", "training": "training_options", "curation": "curation_options"}


def test_tune_and_the_new_task_form_cover_every_field_of_the_job_body(monkeypatch):
    args = vars(parsed(monkeypatch, "sort tickets"))
    fields = set(JobCreate.model_fields) - ELSEWHERE
    assert not {name for name in fields if TUNE_DEST.get(name, name) not in args}, "a body field without a flag"
    form = (FRONTEND / "views" / "new_task.js").read_text() + (FRONTEND / "job_options.js").read_text()
    assert not {name for name in fields if name not in form}, "a body field the form never sends"
    assert "'/openapi.json'" in form, "the form's options come from the API's own schema"
