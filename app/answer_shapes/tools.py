"""Tool calling: OpenAI function tools validated with errors by place (`validate_tools`), a call's
JSON schema and its check against each tool's parameters (`call_schema`, `check_call`), the one
tools prompt for chat templates without tool support, the canonical text of a call, and BFCL
functions as OpenAI tools. See the package docstring for the formats."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError

from app.answer_shapes.json_text import load_object

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


def _function_called(call: dict[str, Any], tools: Any) -> dict[str, Any] | None:
    """The function a call names, if it is one of the tools."""
    return next((f for f in _functions(tools) if f["name"] == call.get("name")), None)


def parameter_names(tools: Any, name: str) -> tuple[list[str], list[str]]:
    """The required and the optional parameter names of tool `name` (both empty if it is none of `tools`)."""
    fn = _function_called({"name": name}, tools) or {}
    parameters = fn.get("parameters") or {}
    required = list(parameters.get("required") or [])
    return required, [p for p in parameters.get("properties") or {} if p not in required]


def _nullable(schema: Any) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def call_schema(tools: Any) -> dict[str, Any]:
    """The JSON schema of the teacher's call of one of the tools (anyOf, one branch per tool):
    `{"name": <that tool's name>, "arguments": <its parameters>}`, for vLLM structured outputs.

    Every parameter is a required key, an optional one nullable: the teacher decides for each
    argument whether the request states it (`null` when not; `without_unset` then leaves it out).
    With optional keys the grammar lets a small teacher keep writing arguments, and it invents
    them: on 30 real restaurant8k requests it filled names and dates no request gave."""
    branches = []
    for fn in _functions(tools):
        params = fn["parameters"]
        properties = params.get("properties") or {}
        required = set(params.get("required") or [])
        arguments = {**params, "required": list(properties),
                     "properties": {k: v if k in required else _nullable(v) for k, v in properties.items()}}
        branches.append({"type": "object",
                         "properties": {"name": {"type": "string", "const": fn["name"]}, "arguments": arguments},
                         "required": ["name", "arguments"], "additionalProperties": False})
    return {"anyOf": branches}


def without_unset(call: dict[str, Any], tools: Any) -> dict[str, Any]:
    """A call under `call_schema` as a plain call: its optional arguments that are null left out."""
    fn = _function_called(call, tools)
    arguments = call.get("arguments")
    if fn is None or not isinstance(arguments, dict):
        return call
    required = set(fn["parameters"].get("required") or [])
    return {**call, "arguments": {k: v for k, v in arguments.items() if v is not None or k in required}}


def standard_text(text: str) -> str:
    """A string value as the Berkeley Function Calling Leaderboard compares it: lower case, without
    spaces and the marks `,./-_*^`, single quotes as double ("1:15 PM." equals "1:15 pm")."""
    return re.sub(r"[ ,./\-_*^]", "", text).lower().replace("'", '"')


#: A string parameter with any of these keys takes fixed or formatted values, not the request's words.
_FIXED_STRING_KEYS = ("enum", "const", "format", "pattern")
_TOKEN = re.compile(r"[^\W\d_]+|\d+")
_NUMBER_WORDS = {word: str(number) for number, word in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}


def _token(token: str) -> str:
    if token.isdigit():
        return token.lstrip("0") or "0"
    word = token.lower()
    return _NUMBER_WORDS.get(word, word)


def _tokens(text: str) -> set[str]:
    # Words in lower case, numbers without leading zeros, small numbers written out as digits:
    # "2023-04-04" is {"2023", "4"}, "five people" is {"5", "people"}.
    return {_token(t) for t in _TOKEN.findall(text)}


def unstated_arguments(call: dict[str, Any], tools: Any, request: str) -> list[str]:
    """The arguments of a call whose value a request does not state: free-text string parameters
    (no enum, const, format or pattern) with a word or number that the request does not hold
    (words compared without case, numbers as numbers and up to twenty also as words, so
    "2023-04-04" is stated by "2023 April 4th", "7:30pm" by "7.30 PM" and "5" by "five", while
    "John" or "tomorrow" for "a table for 7" is not)."""
    fn = _function_called(call, tools)
    arguments = call.get("arguments")
    if fn is None or not isinstance(arguments, dict):
        return []
    properties = fn["parameters"].get("properties") or {}
    said = _tokens(request)
    unstated = []
    for key, value in arguments.items():
        schema = properties.get(key)
        free_text = (isinstance(schema, dict) and schema.get("type") == "string"
                     and not any(k in schema for k in _FIXED_STRING_KEYS))
        if free_text and isinstance(value, str) and not _tokens(value) <= said:
            unstated.append(key)
    return unstated


def stated_call(call: dict[str, Any], tools: Any, request: str) -> tuple[dict[str, Any] | None, list[str]]:
    """A call without the values its request does not state (`unstated_arguments`): optional ones
    left out; None when a required one is unstated (the caller invented what the tool needs) or
    none is left (a call made of invented values only). Returns the call (or None) and the
    unstated argument names."""
    unstated = unstated_arguments(call, tools, request)
    if not unstated:
        return call, []
    fn = _function_called(call, tools) or {"parameters": EMPTY_PARAMETERS}
    left = {k: v for k, v in call["arguments"].items() if k not in unstated}
    if set(unstated) & set(fn["parameters"].get("required") or []) or not left:
        return None, unstated
    return {**call, "arguments": left}, unstated


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
    obj = None if call is None else load_object(call)
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
