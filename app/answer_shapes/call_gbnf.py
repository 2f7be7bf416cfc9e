"""A call grammar (`app.answer_shapes.call_grammar`) written as llama.cpp GBNF: the same language as
`CallGrammar.check`, rule by rule, for llama.cpp's grammar-constrained sampling."""

from __future__ import annotations

import re
from typing import Any

from app.answer_shapes.grammar_schema import (
    ANY,
    SCALAR_TYPES,
    array_items,
    dump,
    literal_texts,
    next_keys,
    object_keys,
    value_types,
)

_GBNF_COMMON = r"""ws-start ::= [ \t\n\r]*
plain ::= [^{ \t\n\r] [^\x00]*
string ::= "\"" ( [^"\\\x00-\x1f] | "\\" ( ["\\/bfnrt] | "u" [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] ) )* "\""
integer ::= "-"? ( "0" | [1-9] [0-9]* )
number ::= integer ( "." [0-9]+ )? ( [eE] [-+]? [0-9]+ )?
boolean ::= "true" | "false"
null ::= "null"
value ::= string | number | boolean | null | array | object
array ::= "[" ( value ( ", " value )* )? "]"
object ::= "{" ( string ": " value ( ", " string ": " value )* )? "}"
"""


def _quote(text: str) -> str:
    """A GBNF string literal for `text`."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


class _Rules:
    """GBNF rules made while walking the schemas, named in order of making."""

    def __init__(self) -> None:
        self.rules: list[tuple[str, str]] = []

    def add(self, stem: str, body: str) -> str:
        name = f"{re.sub(r'[^a-z0-9]+', '-', stem.lower()).strip('-') or 'r'}-{len(self.rules)}"
        self.rules.append((name, body))
        return name

    def value(self, schema: Any, stem: str) -> str:
        literals = literal_texts(schema)
        if literals is not None:
            return "( " + " | ".join(_quote(t) for t in literals) + " )"
        kinds = value_types(schema)
        if kinds is None:
            return "value"
        parts = []
        for kind in kinds:
            if kind == "array":
                item = self.value(array_items(schema), stem + "-item")
                parts.append(self.add(stem + "-array", f'"[" ( {item} ( ", " {item} )* )? "]"'))
            elif kind == "object":
                parts.append(self.object(schema, stem))
            elif kind in SCALAR_TYPES:
                parts.append(kind)
        return "( " + " | ".join(parts) + " )" if parts else "value"

    def object(self, schema: dict[str, Any], stem: str) -> str:
        shape = object_keys(schema)
        if shape is None:
            return "object"
        names, required = shape
        props = schema.get("properties") or {}
        values = [self.value(props.get(n, ANY), f"{stem}-{n}") for n in names]
        # tail[j]: what may follow key j; built from the last key back so each names the next.
        tails: dict[int, str] = {}
        for j in range(len(names) - 1, -1, -1):
            allowed, may_close = next_keys(names, required, j)
            options = [f'", " {_quote(dump(names[k]) + ": ")} {values[k]} {tails[k]}' for k in allowed]
            body = " | ".join(f"( {o} )" for o in options) if options else ""
            if may_close:
                body = f"( {body} )?" if body else '""'
            tails[j] = self.add(f"{stem}-after-{names[j]}", body)
        allowed, may_close = next_keys(names, required, -1)
        firsts = " | ".join(f"( {_quote(dump(names[k]) + ': ')} {values[k]} {tails[k]} )" for k in allowed)
        inner = (f"( {firsts} )?" if may_close else f"( {firsts} )") if firsts else ""
        return self.add(stem + "-object", f'"{{" {inner} "}}"' if inner else '"{}"')


def call_gbnf(parameters: dict[str, dict[str, Any]], text: bool) -> str:
    """The GBNF grammar (root rule `root`) of calls of the tools whose `parameters` are given by
    name, and of plain text when `text`."""
    rules = _Rules()
    calls = []
    for name, params in parameters.items():
        arguments = rules.object(params if params.get("type") == "object" else {"type": "object"}, f"args-{name}")
        opening = '{"name": ' + dump(name) + ', "arguments": '
        calls.append(f'( {_quote(opening)} {arguments} "}}" )')
    root = "root ::= ws-start ( call | plain )?" if text else "root ::= ws-start call"
    lines = [root, "call ::= " + " | ".join(calls)]
    lines += [f"{rule} ::= {body}" for rule, body in rules.rules]
    return "\n".join(lines) + "\n" + _GBNF_COMMON
