"""The shape an answer of each non-classification task type must have: one module for the API
(validating a job body), the teacher's label stage (structured outputs under a JSON schema),
curation (checking answers) and serving. Plain pydantic and jsonschema, no settings and no I/O.

Extraction
    The fields to extract are `FieldSpec`s (from the CLI's `--fields name[:description[:type]],...`
    via `parse_fields_text`, or from a JSON object schema via `fields_from_json_schema`). An answer
    is one JSON object with every field as a key and `null` where the text does not say
    (`extraction_schema`). `check_extraction` cleans an answer and drops span values that do not
    occur in the input text.

Tool calling
    Tools are OpenAI function tools, `{"type": "function", "function": {"name", "description",
    "parameters"}}`, checked and normalised by `validate_tools`. A call is the JSON object
    `{"name": ..., "arguments": {...}}` (`call_schema`, `check_call`).

    The text format of tools for a model whose chat template has no tool support (SmolLM2), the
    one text that training, evaluation, serving and the exported Modelfile all render, is
    `tools_prompt(tools)`, a system-prompt block of these lines (joined by "\\n", no final newline)::

        You can call these functions (each a JSON object with its name, description and parameters):
        {"description": "Book a table", "name": "book", "parameters": {"properties": {...}, "type": "object"}}
        ... one line per tool, in the order given ...
        To call a function, answer with only a JSON object {"name": ..., "arguments": {...}}; ⏎
        if no function fits, answer in plain text.

    (the last line shown wrapped at ⏎: it is one line, with one space after the ';').

    Each function line is `json.dumps(function, ensure_ascii=False, sort_keys=True)` of the
    normalised function object (an empty description left out). The canonical answer text of a call
    (`call_text`) puts `name` first, then `arguments` with its keys sorted at every depth:
    `{"name": "book", "arguments": {"date": "2024-05-01", "people": 2}}`.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

# --------------------------------------------------------------------------------------------
# Extraction
# --------------------------------------------------------------------------------------------

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


_FENCE = re.compile(r"^```[A-Za-z0-9_-]*\s*\n?(.*?)\n?\s*```$", re.DOTALL)
_TOOL_CALL_TAG = re.compile(r"^<tool_call>\s*(.*?)\s*(?:</tool_call>)?$", re.DOTALL)
_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_GROUPED_NUMBER = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")


def _unwrap(text: str) -> str:
    # A ```json fence and/or a <tool_call>...</tool_call> wrapper around a JSON answer.
    text = text.strip()
    for _ in range(2):
        m = _FENCE.match(text) or _TOOL_CALL_TAG.match(text)
        if m:
            text = m.group(1).strip()
    return text


def _load_object(answer: Any) -> dict[str, Any] | None:
    if isinstance(answer, str):
        try:
            answer = json.loads(_unwrap(answer))
        except ValueError:
            return None
    return answer if isinstance(answer, dict) else None


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


def check_extraction(answer: dict[str, Any] | str, fields: Sequence[FieldSpec], input_text: str) -> ExtractionCheck:
    """Check and clean one extraction answer (a dict or its JSON text, a ```json fence tolerated):
    missing keys become None, "" and [] become None, numbers are read from strings such as "12" or
    "1,000", "true"/"false" strings become booleans, list items are stripped and de-duplicated. A
    span value that does not occur in `input_text` (case-insensitive, whitespace collapsed) is
    dropped, never kept. A non-object, an unknown key or a value of the wrong type is a problem."""
    obj = _load_object(answer)
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
            continue
        if f.type in ("number", "integer"):
            number = _to_number(raw, f.type == "integer")
            if number is None:
                kind = "an integer" if f.type == "integer" else "a number"
                problems.append(f"field {f.name!r}: {raw!r} is not {kind}")
            value[f.name] = number
        elif f.type == "boolean":
            flag = raw if isinstance(raw, bool) else {"true": True, "false": False}.get(str(raw).strip().lower())
            if flag is None:
                problems.append(f"field {f.name!r}: {raw!r} is not a boolean")
            value[f.name] = flag
        elif f.type == "string":
            text = _to_text(raw)
            if text is None:
                problems.append(f"field {f.name!r}: {raw!r} is not a string")
            elif f.span and text and _norm(text) not in haystack:
                dropped.append(f.name)
                text = None
            value[f.name] = text or None
        else:
            items = raw if isinstance(raw, list) else [raw]
            kept: list[str] = []
            seen: set[str] = set()
            lost = False
            for item in items:
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
            if lost:
                dropped.append(f.name)
            value[f.name] = kept or None
    if problems:
        return ExtractionCheck(None, problems, dropped)
    return ExtractionCheck(value, [], dropped)


# --------------------------------------------------------------------------------------------
# Tool calling
# --------------------------------------------------------------------------------------------

MAX_TOOLS = 20
TOOL_NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
_TOOL_NAME = re.compile(TOOL_NAME_PATTERN)
EMPTY_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}
_TOOL_KEYS = {"type", "function"}
_FUNCTION_KEYS = {"name", "description", "parameters", "strict"}

Location = tuple[str | int, ...]


class ToolsError(ValueError):
    """Invalid tools: `errors` holds `(location, message)` pairs, the location starting at
    `"tools"`, e.g. `(("tools", 2, "function", "name"), "duplicate tool name 'book'")`."""

    def __init__(self, errors: list[tuple[Location, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{'.'.join(str(p) for p in loc)}: {msg}" for loc, msg in errors))


def _has_ref(schema: Any) -> bool:
    if isinstance(schema, dict):
        return any(k in ("$ref", "$dynamicRef") or _has_ref(v) for k, v in schema.items())
    if isinstance(schema, list):
        return any(_has_ref(v) for v in schema)
    return False


def _check_parameters(params: Any, loc: Location, errors: list[tuple[Location, str]]) -> None:
    if not isinstance(params, dict):
        errors.append((loc, "must be a JSON schema object"))
        return
    try:
        Draft202012Validator.check_schema(params)
    except SchemaError as e:
        where = "".join(f"[{p!r}]" for p in e.path)
        errors.append((loc, f"not a valid JSON schema: {e.message}" + (f" (at {where})" if where else "")))
        return
    if params.get("type") != "object":
        errors.append((loc, "must be a JSON schema of \"type\": \"object\""))
    elif _has_ref(params):
        errors.append((loc, "$ref is not supported: write the schema out"))


def validate_tools(tools: Any) -> list[dict[str, Any]]:
    """Check 1-20 OpenAI function tools and return them normalised: each
    `{"type": "function", "function": {"name", "description" ("" if none), "parameters"}}`
    (`strict` kept when given), parameters defaulting to an empty object schema. Raises ToolsError."""
    errors: list[tuple[Location, str]] = []
    if not isinstance(tools, list):
        raise ToolsError([(("tools",), "must be a list of tools")])
    if not tools:
        raise ToolsError([(("tools",), "give at least one tool")])
    if len(tools) > MAX_TOOLS:
        raise ToolsError([(("tools",), f"at most {MAX_TOOLS} tools, got {len(tools)}")])
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, tool in enumerate(tools):
        at: Location = ("tools", i)
        if not isinstance(tool, dict):
            errors.append((at, "must be an object"))
            continue
        errors.extend(((*at, k), "unknown key") for k in tool if k not in _TOOL_KEYS)
        if tool.get("type") != "function":
            errors.append(((*at, "type"), "must be 'function'"))
        fn = tool.get("function")
        if not isinstance(fn, dict):
            errors.append(((*at, "function"), "must be an object"))
            continue
        at = (*at, "function")
        errors.extend(((*at, k), "unknown key") for k in fn if k not in _FUNCTION_KEYS)
        name = fn.get("name")
        if not isinstance(name, str) or not _TOOL_NAME.match(name):
            errors.append(((*at, "name"), f"must be 1-64 letters, digits, '_', '.' or '-' (got {name!r})"))
        elif name in seen:
            errors.append(((*at, "name"), f"duplicate tool name {name!r}"))
        else:
            seen.add(name)
        description = fn.get("description", "")
        if not isinstance(description, str):
            errors.append(((*at, "description"), "must be a string"))
        params = fn.get("parameters", EMPTY_PARAMETERS)
        _check_parameters(params, (*at, "parameters"), errors)
        if "strict" in fn and not isinstance(fn["strict"], bool):
            errors.append(((*at, "strict"), "must be a boolean"))
        normal: dict[str, Any] = {"name": name, "description": description, "parameters": copy.deepcopy(params)}
        if "strict" in fn:
            normal["strict"] = fn["strict"]
        out.append({"type": "function", "function": normal})
    if errors:
        raise ToolsError(errors)
    return out


def _functions(tools: Any) -> list[dict[str, Any]]:
    return [t["function"] for t in validate_tools(tools)]


def call_schema(tools: Any) -> dict[str, Any]:
    """The JSON schema of a call of one of the tools (anyOf, one branch per tool):
    `{"name": <that tool's name>, "arguments": <its parameters>}`, for vLLM structured outputs."""
    return {"anyOf": [
        {"type": "object",
         "properties": {"name": {"type": "string", "const": fn["name"]}, "arguments": fn["parameters"]},
         "required": ["name", "arguments"], "additionalProperties": False}
        for fn in _functions(tools)]}


@dataclass
class CallCheck:
    """A checked tool call: `call` is `{"name", "arguments"}`, or None exactly when there are `problems`."""

    call: dict[str, Any] | None
    problems: list[str] = field(default_factory=list)


def _arg_path(path: Iterable[Any]) -> str:
    return ".".join(str(p) for p in path)


def _summarise(error: ValidationError) -> list[str]:
    # One jsonschema error in words, naming the argument.
    path = list(error.absolute_path)
    prefix = _arg_path(path) + "." if path else ""
    instance = error.instance
    if error.validator == "required" and isinstance(instance, dict):
        required = error.validator_value if isinstance(error.validator_value, list) else []
        return [f"missing required argument '{prefix}{r}'" for r in required if r not in instance]
    if error.validator == "additionalProperties" and isinstance(instance, dict) and error.validator_value is False:
        known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
        patterns = error.schema.get("patternProperties", {}) if isinstance(error.schema, dict) else {}
        extra = [k for k in instance if k not in known and not any(re.search(p, k) for p in patterns)]
        return [f"unknown argument '{prefix}{k}'" for k in extra]
    if path:
        return [f"argument '{_arg_path(path)}': {error.message}"]
    return [f"arguments: {error.message}"]


def check_call(call: dict[str, Any] | str | None, tools: Any) -> CallCheck:
    """Check one tool call against the tools: a dict or its JSON text (a ```json fence or a
    `<tool_call>...</tool_call>` wrapper tolerated; OpenAI's `{"function": {...}}` shape and
    arguments given as JSON text accepted). Problems: no JSON object, unknown keys, an unknown
    tool, arguments that are no object or fail the tool's parameter schema."""
    functions = {fn["name"]: fn for fn in _functions(tools)}
    obj = None if call is None else _load_object(call)
    if obj is None:
        return CallCheck(None, ["no call" if call is None else "not a JSON object"])
    if isinstance(obj.get("function"), dict):
        obj = obj["function"]
    problems = [f"unknown key {k!r} in the call" for k in obj if k not in ("name", "arguments")]
    name = obj.get("name")
    arguments = obj.get("arguments", {})
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            pass
    if not isinstance(name, str):
        problems.append("the call has no tool name" if name is None else "the tool name must be a string")
    elif name not in functions:
        problems.append(f"unknown tool {name!r}")
    if not isinstance(arguments, dict):
        problems.append("arguments must be a JSON object")
    elif isinstance(name, str) and name in functions:
        validator = Draft202012Validator(functions[name]["parameters"])
        errors = sorted(validator.iter_errors(arguments),
                        key=lambda e: ([str(p) for p in e.absolute_path], str(e.validator), e.message))
        for error in errors:
            problems.extend(p for p in _summarise(error) if p not in problems)
    if problems:
        return CallCheck(None, problems)
    return CallCheck({"name": name, "arguments": arguments})


TOOLS_PROMPT_HEADER = "You can call these functions (each a JSON object with its name, description and parameters):"
TOOLS_PROMPT_FOOTER = ('To call a function, answer with only a JSON object {"name": ..., "arguments": {...}}; '
                       "if no function fits, answer in plain text.")


def tools_prompt(tools: Any) -> str:
    """The system-prompt block that shows the tools to a model without tool support (the format
    in the module docstring): deterministic, so every stage renders the same text."""
    lines = [TOOLS_PROMPT_HEADER]
    for fn in _functions(tools):
        shown = {k: v for k, v in fn.items() if k in ("name", "description", "parameters") and v != ""}
        lines.append(json.dumps(shown, ensure_ascii=False, sort_keys=True))
    lines.append(TOOLS_PROMPT_FOOTER)
    return "\n".join(lines)


def call_text(call: dict[str, Any]) -> str:
    """The canonical answer text of a call: `name` first, then `arguments` with sorted keys,
    `ensure_ascii=False`, e.g. `{"name": "book", "arguments": {"date": "2024-05-01", "people": 2}}`."""
    name, arguments = call.get("name"), call.get("arguments", {})
    if not isinstance(name, str) or not isinstance(arguments, dict):
        raise ValueError("a call is {\"name\": <string>, \"arguments\": <object>}")
    return ('{"name": ' + json.dumps(name, ensure_ascii=False) + ', "arguments": '
            + json.dumps(arguments, ensure_ascii=False, sort_keys=True) + "}")


# --------------------------------------------------------------------------------------------
# BFCL
# --------------------------------------------------------------------------------------------

_BFCL_TYPES = {"dict": "object", "float": "number", "tuple": "array"}
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")


def _bfcl_schema(node: Any) -> Any:
    # One BFCL schema node in JSON schema terms, walking its sub-schemas (not its property names).
    if not isinstance(node, dict):
        return node
    out = dict(node)
    t = out.get("type")
    if t == "any":
        del out["type"]
    elif isinstance(t, str):
        out["type"] = _BFCL_TYPES.get(t, t)
    elif isinstance(t, list):
        out["type"] = [_BFCL_TYPES.get(x, x) for x in t if x != "any"]
    if isinstance(out.get("properties"), dict):
        out["properties"] = {k: _bfcl_schema(v) for k, v in out["properties"].items()}
    for key in ("items", "additionalProperties"):
        if isinstance(out.get(key), dict):
            out[key] = _bfcl_schema(out[key])
    if isinstance(out.get("items"), list):  # an old-style tuple: draft 2020-12 spells it prefixItems
        out["prefixItems"] = out.pop("items")
    for key in _SUBSCHEMA_LISTS:
        if isinstance(out.get(key), list):
            out[key] = [_bfcl_schema(v) for v in out[key]]
    return out


def bfcl_to_openai_tool(fn: dict[str, Any]) -> dict[str, Any]:
    """A BFCL function doc (`{"name", "description", "parameters"}` with BFCL's type names:
    dict, float, tuple, any) as an OpenAI function tool."""
    function: dict[str, Any] = {"name": fn["name"], "description": fn.get("description", ""),
                                "parameters": _bfcl_schema(fn.get("parameters", EMPTY_PARAMETERS))}
    return {"type": "function", "function": function}
