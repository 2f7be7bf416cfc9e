"""`vibetune data import`'s file reading and `vibetune retrain`'s body (pure)."""

import argparse

import pytest

from app.cli.commands import UsageError
from app.cli.data_commands import read_edited_rows, retrain_body


def test_an_edited_export_is_read_with_its_indexes_and_object_outputs():
    text = ('{"index": 0, "input": "a", "output": "spam", "split": "train"}\n\n'
            '{"input": "new", "output": {"date": "Friday"}}\n')
    assert read_edited_rows("rows.jsonl", text) == [
        {"input": "a", "output": "spam", "index": 0, "split": "train"},
        {"input": "new", "output": '{"date": "Friday"}'}]
    with pytest.raises(UsageError, match="rows.jsonl line 2 is not valid JSON"):
        read_edited_rows("rows.jsonl", '{"input": "a"}\n{oops\n')
    with pytest.raises(UsageError, match="line 1: expected an object"):
        read_edited_rows("rows.jsonl", '"just text"\n')


def test_retrain_sends_only_what_was_given():
    args = argparse.Namespace(id="J", student="S", teacher=None, until=None, training=["epochs=2", "method=lora"])
    assert retrain_body(args) == {"from_job": "J", "student": "S", "training": {"epochs": 2, "method": "lora"}}
    with pytest.raises(UsageError, match="KEY=VALUE"):
        retrain_body(argparse.Namespace(id="J", student=None, teacher=None, until=None, training=["epochs"]))
