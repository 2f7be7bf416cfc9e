"""The per-type scoring rules behind `workers.scoring.score_answers`: extraction (field-level
precision/recall), QA (SQuAD exact match and token F1) and tool calling (BFCL-style AST match).
Pure: no I/O. The public entry points are re-exported by `workers.scoring`."""

from __future__ import annotations

import json
import re
import string
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, UnknownType

from app.answer_shapes import load_json, standard_text

MAX_MISMATCHES = 20


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _share(count: int, total: int) -> float | None:
    return _round(count / total) if total else None


def _common(n: int, correct: int, invalid: int, rule: str) -> dict[str, Any]:
    return {"accuracy": _share(correct, n), "n": n, "correct": correct, "invalid": invalid,
            "macro_f1": None, "per_label": {}, "confusion": {}, "rule": rule}


# ---------------------------------------------------------------- extraction

_NUMBER = re.compile(r"[+-]?(?:0|[1-9]\d{0,2}(?:,\d{3})+|[1-9]\d*)(?:\.\d+)?")


def _value(value: Any) -> Any:
    """A hashable canonical form of an extracted value; None means absent (null, "", [], {}).
    Numbers (also "1,000") compare as numbers, strings as `standard_text`."""
    if value is None:
        return None
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, int | float):
        return ("n", float(value))
    if isinstance(value, str):
        text = " ".join(value.split()).casefold()
        if _NUMBER.fullmatch(text):
            return ("n", float(text.replace(",", "")))
        # Compared as BFCL compares strings, the same rule as a call's arguments: a span's trailing
        # full stop or a spacing ("7.30pm" / "7.30 PM.") is no different answer.
        text = standard_text(text)
        return ("s", text) if text else None
    if isinstance(value, list):
        items = [v for v in (_value(item) for item in value) if v is not None]
        return ("l", tuple(sorted(items, key=repr))) if items else None
    if isinstance(value, dict):
        fields = {k: v for k, v in ((k, _value(v)) for k, v in value.items()) if v is not None}
        return ("d", tuple(sorted(fields.items()))) if fields else None
    return ("s", str(value))


def _elements(value: Any) -> Counter[Any]:
    """The multiset a field's value counts as: the items of a list, else the value itself."""
    if value is None:
        return Counter()
    return Counter(value[1]) if value[0] == "l" else Counter([value])


def _prf(tp: int, fp: int, fn: int) -> dict[str, Any]:
    return {"precision": _share(tp, tp + fp), "recall": _share(tp, tp + fn),
            "f1": _share(2 * tp, 2 * tp + fp + fn)}


def score_extraction(expected: Sequence[str], predicted: Sequence[str | None],
                     rule: str = "extraction") -> dict[str, Any]:
    """Whole-object exact match (`accuracy`), `parse_rate`, per-field and micro precision/recall/F1
    for JSON-object answers, values compared after `_value` normalisation (lists as multisets)."""
    n = len(expected)
    counts: dict[str, dict[str, int]] = {}
    correct = parsed = 0
    for exp_text, pred_text in zip(expected, predicted, strict=True):
        exp = load_json(exp_text)
        exp = exp if isinstance(exp, dict) else {}
        pred = load_json(pred_text)
        ok = isinstance(pred, dict)
        parsed += ok
        pred = pred if isinstance(pred, dict) else {}
        exp_v = {k: v for k, v in ((k, _value(v)) for k, v in exp.items()) if v is not None}
        pred_v = {k: v for k, v in ((k, _value(v)) for k, v in pred.items()) if v is not None}
        correct += ok and exp_v == pred_v
        for key in set(exp) | set(pred_v):
            field = counts.setdefault(key, {"n": 0, "tp": 0, "fp": 0, "fn": 0})
            e, p = exp_v.get(key), pred_v.get(key)
            field["n"] += e is not None
            if e is not None and p is not None and "l" not in (e[0], p[0]):
                match = e == p
                field["tp"] += match
                field["fp"] += not match
                field["fn"] += not match
            else:
                e_items, p_items = _elements(e), _elements(p)
                field["tp"] += sum((e_items & p_items).values())
                field["fp"] += sum((p_items - e_items).values())
                field["fn"] += sum((e_items - p_items).values())
    fields = {key: {"n": c["n"], **_prf(c["tp"], c["fp"], c["fn"]), "tp": c["tp"], "fp": c["fp"], "fn": c["fn"]}
              for key, c in sorted(counts.items())}
    totals = {k: sum(c[k] for c in counts.values()) for k in ("tp", "fp", "fn")}
    f1s = [f["f1"] for f in fields.values() if f["n"] and f["f1"] is not None]
    return {**_common(n, correct, n - parsed, rule), "macro_f1": _round(sum(f1s) / len(f1s)) if f1s else None,
            "parse_rate": _share(parsed, n), "fields": fields,
            "micro": _prf(totals["tp"], totals["fp"], totals["fn"])}


# ---------------------------------------------------------------- qa


_PUNCTUATION = frozenset(string.punctuation)


def squad_normalize(text: str) -> str:
    """SQuAD answer normalisation: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


def token_f1(expected: str, predicted: str) -> float:
    """SQuAD token-level F1 of two answers (both empty: 1, one empty: 0)."""
    gold, pred = squad_normalize(expected).split(), squad_normalize(predicted).split()
    if not gold or not pred:
        return float(gold == pred)
    same = sum((Counter(gold) & Counter(pred)).values())
    if not same:
        return 0.0
    precision, recall = same / len(pred), same / len(gold)
    return 2 * precision * recall / (precision + recall)


def score_qa(expected: Sequence[str], predicted: Sequence[str | None]) -> dict[str, Any]:
    """SQuAD exact match (`accuracy`) and mean token F1 (`f1`); no answer (None) scores 0."""
    n = len(expected)
    pairs = list(zip(expected, predicted, strict=True))
    correct = sum(p is not None and squad_normalize(e) == squad_normalize(p) for e, p in pairs)
    f1 = sum(token_f1(e, p) for e, p in pairs if p is not None)
    return {**_common(n, correct, sum(p is None for p in predicted), "qa"), "f1": _round(f1 / n) if n else None}


# ---------------------------------------------------------------- tool calling

_JSON_TYPES = {"dict": "object", "float": "number", "tuple": "array", "int": "integer", "bool": "boolean",
               "str": "string", "list": "array"}
_LITERAL_KEYS = frozenset({"default", "enum", "const", "examples", "required", "description"})


def _json_schema(schema: Any) -> Any:
    """A tool's parameter schema with BFCL's Python type names (dict, float, tuple, any) made JSON Schema."""
    if isinstance(schema, list):
        return [_json_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: v if k in _LITERAL_KEYS else _json_schema(v) for k, v in schema.items() if k != "type"}
    kind = schema.get("type")
    if isinstance(kind, str) and kind != "any":
        out["type"] = _JSON_TYPES.get(kind, kind)
    elif isinstance(kind, list):
        out["type"] = [_JSON_TYPES.get(k, k) for k in kind]
    if "properties" in schema and isinstance(schema["properties"], dict):
        out["properties"] = {k: _json_schema(v) for k, v in schema["properties"].items()}
    return out


def _tool_index(tools: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Tool name -> JSON-Schema `parameters`, from OpenAI-style ({"function": {...}}) or plain tool dicts."""
    index: dict[str, dict[str, Any]] = {}
    for tool in tools:
        spec = tool.get("function", tool)
        if isinstance(spec, Mapping) and isinstance(spec.get("name"), str):
            index[spec["name"]] = _json_schema(spec.get("parameters") or {"type": "object", "properties": {}})
    return index


def _as_call(obj: Any) -> dict[str, Any] | None:
    """{"name", "arguments"} from a parsed JSON value, or None if it is not one call."""
    if isinstance(obj, list) and len(obj) == 1:
        obj = obj[0]
    if not isinstance(obj, dict):
        return None
    if isinstance(obj.get("function"), dict):  # OpenAI {"type": "function", "function": {...}}
        obj = obj["function"]
    if not isinstance(obj.get("name"), str):
        return None
    args = obj.get("arguments", obj.get("parameters", {}))
    if isinstance(args, str):  # OpenAI sends the arguments as JSON text
        try:
            args = json.loads(args) if args.strip() else {}
        except ValueError:
            return None
    return {"name": obj["name"].strip(), "arguments": args} if isinstance(args, dict) else None


def _looks_like_call(text: str) -> bool:
    stripped = text.strip()
    return stripped.startswith(("{", "[", "```", "<tool_call>"))


def parse_call(text: str | None) -> dict[str, Any] | None:
    """The tool call in a model's answer ({"name", "arguments"}): JSON, maybe in a ```json fence or a
    <tool_call> tag, arguments as an object or JSON text. None for plain text or anything else."""
    if text is None or not _looks_like_call(text):
        return None
    return _as_call(load_json(text))


def _expected_call(value: Any) -> dict[str, Any] | None:
    """The expected call from JSON text or a dict, in {"name", "arguments"} or BFCL {name: {args}} form;
    None when no call is expected ("", "null", "{}", None, or text that holds no call)."""
    from_text = isinstance(value, str)
    if isinstance(value, str):
        value = load_json(value) if _looks_like_call(value) else None
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if not value:
        return None
    if isinstance(value, dict) and "name" not in value and len(value) == 1:
        name, args = next(iter(value.items()))
        if isinstance(args, dict):
            return {"name": name, "arguments": args}
    call = _as_call(value)
    if call is None and not from_text:
        raise ValueError(f"not a tool call: {value!r}")
    return call


def _norm_str(text: str) -> str:
    # BFCL's string rule: "April 1, 2024" equals "april 1 2024", "1:15 PM." equals "1:15 pm".
    return standard_text(text)


def _coerce(value: Any, schema: Mapping[str, Any]) -> Any:
    kind = schema.get("type")
    if isinstance(value, str) and kind in ("number", "integer"):
        try:
            return float(value.strip())
        except ValueError:
            return value
    if isinstance(value, str) and kind == "boolean" and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return value


def _equal(expected: Any, predicted: Any, schema: Mapping[str, Any], acceptable: bool) -> bool:
    """One argument value against the expected one, after type coercion and normalisation. With
    `acceptable`, values of nested objects are BFCL lists of acceptable values."""
    predicted = _coerce(predicted, schema)
    if isinstance(expected, bool) or isinstance(predicted, bool):
        return isinstance(expected, bool) and isinstance(predicted, bool) and expected == predicted
    if isinstance(expected, int | float) and isinstance(predicted, int | float):
        return float(expected) == float(predicted)
    if isinstance(expected, str) and isinstance(predicted, str):
        return _norm_str(expected) == _norm_str(predicted)
    if isinstance(expected, list) and isinstance(predicted, list):
        items = schema.get("items")
        item_schema = items if isinstance(items, dict) else {}
        return len(expected) == len(predicted) and all(
            _equal(e, p, item_schema, acceptable) for e, p in zip(expected, predicted, strict=True))
    if isinstance(expected, dict) and isinstance(predicted, dict):
        props = schema.get("properties") or {}
        for key in set(expected) | set(predicted):
            if key not in predicted:
                if not (acceptable and "" in _options(expected[key])):
                    return False
            elif key not in expected or not _matches(expected[key], predicted[key], props.get(key, {}), acceptable):
                return False
        return True
    return expected is None and predicted is None


def _options(expected: Any) -> list[Any]:
    return expected if isinstance(expected, list) else [expected]


def _matches(expected: Any, predicted: Any, schema: Mapping[str, Any], acceptable: bool) -> bool:
    if acceptable:
        return any(_equal(e, predicted, schema, acceptable) for e in _options(expected) if e != "" or predicted == "")
    return _equal(expected, predicted, schema, acceptable)


def _call_error(exp: dict[str, Any], pred: dict[str, Any], params: dict[str, Any] | None,
                acceptable: bool) -> str | None:
    """Why a predicted call is not the expected one (BFCL AST check), or None when it is."""
    if pred["name"] != exp["name"]:
        return "wrong function"
    exp_args, pred_args = exp["arguments"], pred["arguments"]
    props: dict[str, Any] = (params or {}).get("properties") or {}
    if params is not None:
        required = list(params.get("required") or [])
    else:
        required = [k for k, v in exp_args.items() if not (acceptable and "" in _options(v))]
    for key in required:
        if key not in pred_args:
            return f"missing argument {key}"
    for key in pred_args:
        if key not in (props if params is not None else exp_args):
            return f"unknown argument {key}"
    for key, value in exp_args.items():
        schema = props.get(key) or {}
        if key not in pred_args:
            optional = "" in _options(value) if acceptable else "default" in schema and schema["default"] == value
            if not optional:
                return f"missing argument {key}"
        elif not _matches(value, pred_args[key], schema, acceptable):
            return f"wrong value for {key}"
    for key in pred_args:
        if key not in exp_args and not ("default" in props.get(key, {}) and props[key]["default"] == pred_args[key]):
            return f"unexpected argument {key}"
    return None


def _valid(call: dict[str, Any], tools: dict[str, dict[str, Any]]) -> bool:
    """A parsed call names a known tool and its arguments pass the tool's JSON schema (no tools: True)."""
    if not tools:
        return True
    if call["name"] not in tools:
        return False
    try:
        return bool(Draft202012Validator(tools[call["name"]]).is_valid(call["arguments"]))
    except (SchemaError, UnknownType):  # a schema that cannot be checked does not fail the call
        return True


def score_calls(expected_calls: Sequence[Any], predicted_texts: Sequence[str | None],
                tools: Sequence[Mapping[str, Any]] = (), acceptable_lists: bool = True, *,
                row_tools: Sequence[Sequence[Mapping[str, Any]]] | None = None) -> dict[str, Any]:
    """Tool-call answers scored like the Berkeley Function Calling Leaderboard's AST check.

    `expected_calls`: per row a call ({"name", "arguments"} or BFCL {name: {args}}, as a dict or JSON
    text) or "" / "null" / "{}" / None for "no call needed". With `acceptable_lists`, each expected
    argument value is a list of acceptable values, "" meaning it may be omitted (BFCL `possible_answer`).
    `tools` (shared) or `row_tools` (one list per row) give the schemas for required / known arguments,
    coercion and `valid_call_rate`. A prediction that is not a parsable call counts as no call (as in
    BFCL's irrelevance check); None (no answer at all) is always wrong."""
    shared = _tool_index(tools)
    rows = list(zip(expected_calls, predicted_texts, strict=True))
    if row_tools is not None and len(row_tools) != len(rows):
        raise ValueError("row_tools needs one list of tools per row")
    n = len(rows)
    correct = correct_call = n_call = no_call_right = attempted = valid = invalid = 0
    mismatches: list[dict[str, Any]] = []
    for index, (exp_value, text) in enumerate(rows):
        known = _tool_index(row_tools[index]) if row_tools is not None else shared
        exp = _expected_call(exp_value)
        pred = parse_call(text)
        tried = text is not None and _looks_like_call(text)
        attempted += tried
        invalid += text is None or (tried and pred is None)
        valid += pred is not None and _valid(pred, known)
        n_call += exp is not None
        if text is None:
            reason: str | None = "no answer"
        elif exp is None:
            reason = None if pred is None else "called a tool when none was needed"
            no_call_right += reason is None
        elif pred is None:
            reason = "not a valid call" if tried else "no call"
        else:
            reason = _call_error(exp, pred, known.get(exp["name"]) if known else None, acceptable_lists)
            correct_call += reason is None
        correct += reason is None
        if reason and len(mismatches) < MAX_MISMATCHES:
            mismatches.append({"index": index, "expected": exp, "predicted": text, "reason": reason})
    return {**_common(n, correct, invalid, "tool_calling"), "call_accuracy": _share(correct_call, n_call),
            "valid_call_rate": _share(valid, attempted), "no_call_accuracy": _share(no_call_right, n - n_call),
            "n_call": n_call, "n_no_call": n - n_call, "mismatches": mismatches}
