"""`vibetune tune`'s training and curation options: explicit flags for the common ones and
`--training KEY=VALUE` / `--curation KEY=VALUE` for all of them. Their help text and defaults are
read from the option models the API validates with (`app.specs`), so `--help` says what the
server does; values are not checked here (the server's 422 names the field)."""

from __future__ import annotations

import argparse
import json
import textwrap
from functools import cache
from typing import Any, get_args

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from app.specs import DEFAULT_EXPORTS, EXPORT_FORMATS, CurationOptions, JobSpec, QAMode, TrainingOptions

#: The body's option groups and the models that define them.
GROUPS: dict[str, type[BaseModel]] = {"training": TrainingOptions, "curation": CurationOptions}

#: Options with a flag of their own: (group, key) -> flag.
FLAGS: dict[tuple[str, str], str] = {
    ("training", "distillation"): "--distillation",
    ("training", "method"): "--method",
    ("training", "lora_r"): "--lora-rank",
    ("training", "batch_size"): "--batch-size",
    ("training", "epochs"): "--epochs",
    ("training", "learning_rate"): "--learning-rate",
    ("training", "rounds"): "--rounds",
    ("curation", "votes"): "--votes",
}

_TYPES = {"integer": int, "number": float}


def default_text(field: FieldInfo) -> str | None:
    """An option's default in words: its value, or the run-dependent rule the model gives."""
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    if extra.get("default_text"):
        return str(extra["default_text"]).replace("`", "")
    if field.default is None:
        return None
    return field.default if isinstance(field.default, str) else json.dumps(field.default)


@cache
def _properties(model: type[BaseModel]) -> dict[str, Any]:
    properties: dict[str, Any] = model.model_json_schema()["properties"]
    return properties


def _schema(model: type[BaseModel], key: str) -> dict[str, Any]:
    """The JSON schema of one option, without the `null` branch of an optional one."""
    prop: dict[str, Any] = _properties(model)[key]
    branches = [branch for branch in prop.get("anyOf", []) if branch.get("type") != "null"]
    return {**prop, **branches[0]} if branches else prop


#: The QA modes a job body may name.
QA_MODES: tuple[str, ...] = get_args(QAMode)


def export_list(text: str) -> list[str]:
    """`--exports f16,q8_0,q4_k_m` as the body's `exports` list (blank items skipped: `""` asks
    for f16 alone); a name not in EXPORT_FORMATS is a usage error."""
    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    unknown = [name for name in names if name not in EXPORT_FORMATS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown export {', '.join(map(repr, unknown))}; "
                                         f"choose from {', '.join(EXPORT_FORMATS)}")
    return names


def add_exports_argument(parser: argparse.ArgumentParser, default: str = ",".join(DEFAULT_EXPORTS)) -> None:
    """The `--exports LIST` flag of `tune` and `retrain` (`default`: what leaving it out gives, in words)."""
    parser.add_argument("--exports", type=export_list, metavar="LIST",
                        help=f"comma-separated GGUF files to make: {', '.join(EXPORT_FORMATS)} (f16 half precision, "
                             "q8_0 8-bit, q5_k_m/q4_k_m 5-/4-bit k-quants); f16 is always made, and each file is "
                             f"scored again in llama.cpp (default: {default})")


def body_default(name: str) -> str:
    """The default of a job body field (e.g. `num_examples`), as the stored spec fills it in."""
    return json.dumps(JobSpec.model_fields[name].default)


def _help(field: FieldInfo) -> str:
    text = (field.description or "").replace("`", "")
    default = default_text(field)
    return (f"{text} (default: {default})" if default else text).replace("%", "%%")


def key_value(text: str) -> tuple[str, Any]:
    """`KEY=VALUE` as (key, value): the value as JSON when it reads as JSON (`3`, `0.5`, `true`,
    `null`), else as text (`lora`)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, not {text!r}")
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    return key.strip(), value


def options_epilog() -> str:
    """Every training and curation option with its default and what it does, for the end of
    `tune --help`."""
    lines = []
    for group, model in GROUPS.items():
        lines.append(f"{group} options (--{group} KEY=VALUE, repeatable; a flag above sets the same option):")
        for key, field in model.model_fields.items():
            flag = FLAGS.get((group, key))
            default = default_text(field)
            lines.append(f"  {key}" + (f" ({flag})" if flag else "") + (f"  default: {default}" if default else ""))
            lines += textwrap.wrap((field.description or "").replace("`", ""), 88,
                                   initial_indent=" " * 6, subsequent_indent=" " * 6)
        lines.append("")
    return "\n".join(lines).rstrip().replace("%", "%%")


def add_option_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of FLAGS and the generic `--training` / `--curation KEY=VALUE`."""
    for (group, key), flag in FLAGS.items():
        model = GROUPS[group]
        schema = _schema(model, key)
        kwargs: dict[str, Any] = {"dest": f"{group}__{key}", "help": _help(model.model_fields[key])}
        if "enum" in schema:
            kwargs["choices"] = schema["enum"]
        else:
            kwargs["type"] = _TYPES.get(schema.get("type", ""), str)
            kwargs["metavar"] = "N" if kwargs["type"] is int else "X"
        parser.add_argument(flag, **kwargs)
    for group in GROUPS:
        parser.add_argument(f"--{group}", dest=f"{group}_options", type=key_value, action="append", default=[],
                            metavar="KEY=VALUE",
                            help=f"any {group} option (repeatable; see the list below); a value that reads as JSON "
                                 "is sent as JSON, anything else as text")


def option_bodies(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The body's `training` and `curation` objects from the flags (an explicit flag wins over a
    `KEY=VALUE` of the same option); groups with nothing given are left out."""
    bodies: dict[str, dict[str, Any]] = {}
    for group in GROUPS:
        options = dict(getattr(args, f"{group}_options", None) or [])
        for (flag_group, key), _ in FLAGS.items():
            value = getattr(args, f"{flag_group}__{key}", None)
            if flag_group == group and value is not None:
                options[key] = value
        if options:
            bodies[group] = options
    return bodies
