"""The job body's `exports` (the GGUF files the package stage makes): normalised on the stored
spec, carried by a retrain, and sent by `vibetune tune --exports` and `vibetune retrain --exports`."""

from __future__ import annotations

from typing import get_args

import pytest
from pydantic import ValidationError

import app.cli.commands as commands
from app.cli.commands import job_body
from app.cli.data_commands import retrain_body
from app.cli.main import main
from app.schemas import RETRAIN_FIELDS, JobCreate
from app.specs import DEFAULT_EXPORTS, EXPORT_FORMATS, ExportFormat, JobSpec
from tests.support.cli_args import parsed_args

SPEC = {"task": "spam or ham", "teacher": "t", "student": "s"}


def spec(**fields: object) -> JobSpec:
    return JobSpec.model_validate({**SPEC, **fields})


def test_the_formats_are_the_literals_in_size_order():
    assert EXPORT_FORMATS == get_args(ExportFormat) == ("f16", "q8_0", "q5_k_m", "q4_k_m")
    assert DEFAULT_EXPORTS == ("f16", "q8_0")


@pytest.mark.parametrize("given,stored", [
    (None, ["f16", "q8_0"]),
    ([], ["f16"]),
    (["q4_k_m"], ["f16", "q4_k_m"]),
    (["q4_k_m", "q8_0", "q4_k_m", "f16", "q8_0"], ["f16", "q8_0", "q4_k_m"]),
    (["q5_k_m", "q4_k_m", "q8_0"], ["f16", "q8_0", "q5_k_m", "q4_k_m"]),
])
def test_the_stored_exports_are_deduplicated_ordered_and_hold_f16(given, stored):
    assert spec(**({} if given is None else {"exports": given})).exports == stored
    body = JobCreate(task="spam or ham", **({} if given is None else {"exports": given}))
    assert body.to_spec().exports == stored
    assert body.to_spec().model_dump(mode="json")["exports"] == stored


def test_a_spec_stored_before_exports_existed_gets_the_default():
    assert spec().exports == ["f16", "q8_0"]
    assert JobSpec.model_validate_json(spec(exports=["q5_k_m"]).model_dump_json()).exports == ["f16", "q5_k_m"]


def test_an_unknown_export_is_a_validation_error_naming_the_allowed_ones():
    with pytest.raises(ValidationError) as raised:
        JobCreate(task="spam or ham", exports=["q8_0", "q3_k"])
    [error] = raised.value.errors()
    assert error["loc"] == ("exports", 1)
    assert all(name in error["msg"] for name in EXPORT_FORMATS)
    with pytest.raises(ValidationError):
        spec(exports=["Q8_0"])
    with pytest.raises(ValidationError):
        JobCreate(task="spam or ham", exports="q8_0")


def test_the_schema_describes_every_format():
    field = JobCreate.model_json_schema()["properties"]["exports"]
    assert field["default"] == ["f16", "q8_0"] and field["items"]["enum"] == list(EXPORT_FORMATS)
    for words in ("half precision", "8-bit", "k-quants", "always made", "llama.cpp", "margin"):
        assert words in field["description"], words


def test_a_retrain_may_choose_other_exports_and_keeps_the_sources_otherwise():
    assert "exports" in RETRAIN_FIELDS
    source = spec(exports=["q4_k_m"]).model_dump(mode="json")
    kept = JobCreate(from_job="J").retrain_spec(source, revision=2)
    assert kept.exports == ["f16", "q4_k_m"] and kept.data_revision == 2
    chosen = JobCreate(from_job="J", exports=["q5_k_m", "q5_k_m"]).retrain_spec(source, revision=0)
    assert chosen.exports == ["f16", "q5_k_m"]
    old_source = {key: value for key, value in source.items() if key != "exports"}
    assert JobCreate(from_job="J").retrain_spec(old_source, revision=0).exports == ["f16", "q8_0"]


parsed = parsed_args


def test_tune_and_retrain_send_the_exports_flag(monkeypatch):
    args = parsed(monkeypatch, "tune", "sort tickets", "--exports", "f16, Q8_0,q4_k_m")
    assert job_body(args) == {"task": "sort tickets", "exports": ["f16", "q8_0", "q4_k_m"]}
    assert job_body(parsed(monkeypatch, "tune", "sort tickets", "--exports", "")) == {
        "task": "sort tickets", "exports": []}, "f16 alone (the server adds it)"
    assert "exports" not in job_body(parsed(monkeypatch, "tune", "sort tickets")), "left out, the server's default"
    args = parsed(monkeypatch, "retrain", "J", "--exports", "q5_k_m")
    assert retrain_body(args) == {"from_job": "J", "exports": ["q5_k_m"]}
    assert retrain_body(parsed(monkeypatch, "retrain", "J")) == {"from_job": "J"}, "left out, the source's"


@pytest.mark.parametrize("command", [["tune", "sort tickets"], ["retrain", "J"]])
def test_an_unknown_export_is_a_usage_error_before_anything_is_sent(monkeypatch, capsys, command):
    monkeypatch.setattr(commands, "run", lambda args: pytest.fail("nothing may be sent"))
    with pytest.raises(SystemExit) as exited:
        main([*command, "--exports", "f16,q3_k"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "argument --exports: unknown export 'q3_k'; choose from f16, q8_0, q5_k_m, q4_k_m" in err


def test_help_names_the_formats_and_the_default(capsys):
    with pytest.raises(SystemExit):
        main(["tune", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--exports LIST comma-separated GGUF files to make: f16, q8_0, q5_k_m, q4_k_m" in text
    assert "(default: f16,q8_0)" in text
