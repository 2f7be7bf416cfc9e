"""Extraction answers: the fields a person names (`FieldSpec`), the answer's JSON schema for the
teacher's structured outputs, and `check_extraction`, which cleans an answer and drops span values
that do not occur in the input. See the package docstring for the shapes."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from app.answer_shapes.json_text import load_object

FieldType = Literal["string", "number", "integer", "boolean", "list"]
FIELD_TYPES: tuple[str, ...] = get_args(FieldType)
FIELD_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"

# Other spellings the CLI accepts for a field's type.
_TYPE_ALIASES = {"str": "string", "text": "string", "float": "number", "int": "integer", "bool": "boolean",
                 "array": "list"}
_JSON_TYPES = {"string": "string", "number": "number", "integer": "integer", "boolean": "boolean"}


class FieldSpec(BaseModel):
    """One field of an extraction answer. `span`: the value must occur in the input text (only
    meaningful for `string` and `list`, a list of strings)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, pattern=FIELD_NAME_PATTERN)
    description: str = Field("", max_length=300)
    type: FieldType = "string"
    span: bool = True


def _make_field(name: str, description: str = "", type_: str = "string") -> FieldSpec:
    try:
        return FieldSpec.model_validate({"name": name, "description": description, "type": type_})
    except PydanticValidationError as e:
        reasons = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors())
        raise ValueError(f"field {name!r}: {reasons}") from None


def _unique(fields: list[FieldSpec]) -> list[FieldSpec]:
    seen: set[str] = set()
    for f in fields:
        if f.name in seen:
            raise ValueError(f"duplicate field name {f.name!r}")
        seen.add(f.name)
    if not fields:
        raise ValueError("no fields given")
    return fields


def parse_fields_text(text: str) -> list[FieldSpec]:
    """The CLI's `--fields name[:description[:type]],...`, e.g.
    `date:the booking date,party_size:number of people:number`. With a type given, a ':' inside the
    description is kept (`time:at 10:30:string`); a description cannot hold a ','."""
    fields: list[FieldSpec] = []
    for entry in text.split(","):
        if not entry.strip():
            continue
        parts = [p.strip() for p in entry.split(":")]
        name, description, type_ = parts[0], "", "string"
        if len(parts) == 2:
            description = parts[1]
        elif len(parts) >= 3:
            description, type_ = ":".join(parts[1:-1]), parts[-1].lower()
            type_ = _TYPE_ALIASES.get(type_, type_)
            if type_ not in FIELD_TYPES:
                raise ValueError(f"field {name!r}: unknown type {parts[-1]!r} (one of {', '.join(FIELD_TYPES)}; "
                                 "write name:description:type)")
        fields.append(_make_field(name, description, type_))
    return _unique(fields)


def _property_type(name: str, prop: Any) -> str:
    # The FieldSpec type of one property of an object schema, nullable forms included.
    if not isinstance(prop, dict):
        raise ValueError(f"property {name!r}: not a JSON schema object")
    if "anyOf" in prop:
        options = [o for o in prop["anyOf"] if not (isinstance(o, dict) and o.get("type") == "null")]
        if len(options) != 1:
            raise ValueError(f"property {name!r}: anyOf must be one type or that type and null")
        return _property_type(name, options[0])
    t = prop.get("type")
    if isinstance(t, list):
        rest = [x for x in t if x != "null"]
        if len(rest) != 1:
            raise ValueError(f"property {name!r}: type must be one type or that type and null")
        t = rest[0]
    if t in _JSON_TYPES:
        return str(t)
    if t == "array":
        items = prop.get("items")
        if isinstance(items, dict) and items.get("type") == "string":
            return "list"
        raise ValueError(f"property {name!r}: an array must have items of type string")
    raise ValueError(f"property {name!r}: unsupported type {t!r} (string, number, integer, boolean or "
                     "array of strings)")


def fields_from_json_schema(schema: dict[str, Any]) -> list[FieldSpec]:
    """The fields of an object schema's `properties` (string, number, integer, boolean or array of
    strings, each optionally nullable; `description` carried). Reads `extraction_schema`'s output back."""
    if not isinstance(schema, dict):
        raise ValueError("the schema must be a JSON object")
    if schema.get("type", "object") != "object":
        raise ValueError(f"the schema must have type 'object', not {schema.get('type')!r}")
    properties = schema.get("properties")
    if not isinstance(properties, dict) or not properties:
        raise ValueError("the schema must have a non-empty 'properties' object")
    fields = []
    for name, prop in properties.items():
        type_ = _property_type(name, prop)
        description = prop.get("description", "")
        if not isinstance(description, str):
            raise ValueError(f"property {name!r}: description must be a string")
        fields.append(_make_field(name, description, type_))
    return _unique(fields)


def extraction_schema(fields: Sequence[FieldSpec]) -> dict[str, Any]:
    """The JSON schema of an extraction answer: every field required and nullable, no other keys.
    Kept simple for vLLM structured outputs (no `$ref`, no `format`)."""
    properties: dict[str, Any] = {}
    for f in fields:
        prop: dict[str, Any]
        if f.type == "list":
            prop = {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]}
        else:
            prop = {"type": [_JSON_TYPES[f.type], "null"]}
        if f.description:
            prop["description"] = f.description
        properties[f.name] = prop
    return {"type": "object", "properties": properties, "required": [f.name for f in fields],
            "additionalProperties": False}


@dataclass
class ExtractionCheck:
    """A checked extraction answer. `value` is the cleaned answer, or None exactly when there are
    `problems`; `dropped_values` names the span fields whose value(s) did not occur in the input
    and were removed (set to None, or for a list, its missing items taken out)."""

    value: dict[str, Any] | None
    problems: list[str] = field(default_factory=list)
    dropped_values: list[str] = field(default_factory=list)


_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_GROUPED_NUMBER = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def _to_number(value: Any, integer: bool) -> int | float | None:
    # None when the value is no number (of that kind).
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        s = value.strip()
        if _GROUPED_NUMBER.match(s):
            s = s.replace(",", "")
        elif not _PLAIN_NUMBER.match(s):
            return None
        value = float(s) if any(c in s for c in ".eE") else int(s)
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        if integer:
            return int(value) if value.is_integer() else None
        return value
    if isinstance(value, int):
        return value
    return None


def _to_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def _read_scalar(f: FieldSpec, raw: Any) -> tuple[Any, str | None]:
    # The value of a number, integer, boolean or string field, and the problem when it is none.
    if f.type in ("number", "integer"):
        number = _to_number(raw, f.type == "integer")
        kind = "an integer" if f.type == "integer" else "a number"
        return number, None if number is not None else f"field {f.name!r}: {raw!r} is not {kind}"
    if f.type == "boolean":
        flag = raw if isinstance(raw, bool) else {"true": True, "false": False}.get(str(raw).strip().lower())
        return flag, None if flag is not None else f"field {f.name!r}: {raw!r} is not a boolean"
    text = _to_text(raw)
    return text or None, None if text is not None else f"field {f.name!r}: {raw!r} is not a string"


def _read_list(f: FieldSpec, raw: Any, haystack: str, problems: list[str]) -> tuple[list[str] | None, bool]:
    # The list's distinct string items, and whether a span item missing from the input was dropped.
    kept: list[str] = []
    seen: set[str] = set()
    lost = False
    for item in raw if isinstance(raw, list) else [raw]:
        text = _to_text(item)
        if text is None:
            problems.append(f"field {f.name!r}: {item!r} is not a string")
            continue
        key = _norm(text)
        if not key or key in seen:
            continue
        if f.span and key not in haystack:
            lost = True
            continue
        seen.add(key)
        kept.append(text)
    return kept or None, lost


def check_extraction(answer: dict[str, Any] | str, fields: Sequence[FieldSpec], input_text: str) -> ExtractionCheck:
    """Check and clean one extraction answer (a dict or its JSON text, a ```json fence tolerated):
    missing keys become None, "" and [] become None, numbers are read from strings such as "12" or
    "1,000", "true"/"false" strings become booleans, list items are stripped and de-duplicated. A
    span value that does not occur in `input_text` (case-insensitive, whitespace collapsed) is
    dropped, never kept. A non-object, an unknown key or a value of the wrong type is a problem."""
    obj = load_object(answer)
    if obj is None:
        return ExtractionCheck(None, ["not a JSON object"])
    names = {f.name for f in fields}
    problems = [f"unknown field {k!r}" for k in obj if k not in names]
    haystack = _norm(input_text)
    value: dict[str, Any] = {}
    dropped: list[str] = []
    for f in fields:
        raw = obj.get(f.name)
        if raw is None or raw == "" or raw == []:
            value[f.name] = None
        elif f.type == "list":
            value[f.name], lost = _read_list(f, raw, haystack, problems)
            if lost:
                dropped.append(f.name)
        else:
            value[f.name], problem = _read_scalar(f, raw)
            if problem:
                problems.append(problem)
            elif f.type == "string" and f.span and value[f.name] and _norm(value[f.name]) not in haystack:
                dropped.append(f.name)
                value[f.name] = None
    if problems:
        return ExtractionCheck(None, problems, dropped)
    return ExtractionCheck(value, [], dropped)
