"""How a tool's JSON schema reads for its call grammar: the value types a schema allows, the exact
texts of an `enum` or `const`, an object's keys in the order `call_text` writes them, and which
key may come next. Shared by the grammar's checker (`call_grammar`) and its GBNF (`call_gbnf`)."""

from __future__ import annotations

import json
from typing import Any

SCALAR_TYPES = ("string", "number", "integer", "boolean", "null")
#: The schema of a value that may be anything.
ANY: dict[str, Any] = {}


def dump(value: Any) -> str:
    """A value's JSON text as `call_text` writes it."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def value_types(schema: dict[str, Any]) -> list[str] | None:
    """The schema's JSON types, or None for any value."""
    if not isinstance(schema, dict) or "anyOf" in schema or "oneOf" in schema:
        return None
    kind = schema.get("type")
    if kind is None:
        return None
    kinds = [kind] if isinstance(kind, str) else [k for k in kind if isinstance(k, str)]
    if "number" in kinds and "integer" in kinds:  # a number covers both
        kinds.remove("integer")
    return kinds or None


def literal_texts(schema: Any) -> list[str] | None:
    """The exact texts an `enum` or `const` allows, or None when the schema has neither."""
    if not isinstance(schema, dict):
        return None
    if "const" in schema:
        return [dump(schema["const"])]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return sorted({dump(v) for v in schema["enum"]})
    return None


def object_keys(schema: dict[str, Any]) -> tuple[list[str], set[str]] | None:
    """An object schema's sorted property names and its required ones; None for a free object
    (one without `properties`, unless `additionalProperties` is false)."""
    props = schema.get("properties")
    if not isinstance(props, dict):
        return None if schema.get("additionalProperties", True) is not False else ([], set())
    required = {r for r in schema.get("required", []) if isinstance(r, str) and r in props}
    return sorted(props), required


def array_items(schema: dict[str, Any]) -> Any:
    items = schema.get("items")
    return items if isinstance(items, dict) else ANY


def next_keys(names: list[str], required: set[str], last: int) -> tuple[list[int], bool]:
    """After the key at `last` (-1 before any): the indices that may come next (sorted order,
    no required key skipped) and whether the object may close."""
    allowed = []
    for j in range(last + 1, len(names)):
        allowed.append(j)
        if names[j] in required:
            return allowed, False
    return allowed, True
