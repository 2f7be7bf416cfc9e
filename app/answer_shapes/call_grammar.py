"""The answers a tool-calling student may give, as a grammar its decoding follows: plain text, or
exactly one canonical call (`call_text`) of one of its tools, with argument names and value types
from that tool's parameters.

Greedy decoding of a small student goes astray in a call's skeleton more than in its values: it
writes a function or argument name it half remembers (`"seat_table"`), which no scoring or caller
accepts. Under the grammar the student still decides whether to call, which tool and what values;
the grammar only rules out text that cannot become a valid call. The same language is written
twice, once per runtime, and kept in step by the tests:

- `CallGrammar.check` says whether an answer so far can still become a valid answer, and whether
  it may end here (`app.decoding` and evaluate, through `app.inference.Answer`);
- `CallGrammar.gbnf` is the same language in llama.cpp's GBNF (`app.answer_shapes.call_gbnf`; the
  export check, and a file in the bundle for `llama-cli --grammar-file` / llama-server's `grammar`).

The language: an answer whose first non-blank character is not `{` is plain text, any text. One
that starts with `{` is a call: `{"name": <a tool's name>, "arguments": <object>}` as `call_text`
writes it (`", "` and `": "` separators, argument keys sorted, each at most once, every required
one present, none unknown), and nothing after it. A value follows its schema's `type` (string,
number, integer, boolean, null, array with its `items`, object with its `properties`, or a list
of types), `enum` and `const`; a schema without a type (or with `anyOf`/`oneOf`) takes any JSON
value. Other keywords (`pattern`, `minimum`, ...) are left to the scoring's check.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import Enum
from typing import Any

from app.answer_shapes.call_gbnf import call_gbnf
from app.answer_shapes.grammar_schema import ANY, array_items, dump, literal_texts, next_keys, object_keys, value_types
from app.answer_shapes.tools import validate_tools

_HEX = set("0123456789abcdefABCDEF")
_DIGITS = set("0123456789")
_BLANK = " \t\n\r"


class Prefix(Enum):
    """What an answer so far is under the grammar."""

    INVALID = "invalid"  # no continuation makes it a valid answer
    OPEN = "open"  # a valid answer's beginning that may not end here
    DONE = "done"  # a valid answer as it stands (plain text may still go on)


class _Short(Exception):
    """The text ended where the grammar needs more."""


class _Bad(Exception):
    """The text breaks the grammar."""


class _Cursor:
    def __init__(self, text: str, pos: int = 0) -> None:
        self.text, self.pos = text, pos

    def peek(self) -> str:
        if self.pos >= len(self.text):
            raise _Short
        return self.text[self.pos]

    def take(self) -> str:
        ch = self.peek()
        self.pos += 1
        return ch

    def literal(self, expected: str) -> None:
        for ch in expected:
            if self.take() != ch:
                raise _Bad

    def choice(self, options: Sequence[str]) -> str:
        """Read one of `options` (none a prefix of another); the one read."""
        live, i = list(options), 0
        while True:
            done = [o for o in live if len(o) == i]
            if done:
                self.pos += i
                return done[0]
            if self.pos + i >= len(self.text):
                raise _Short
            ch = self.text[self.pos + i]
            live = [o for o in live if len(o) > i and o[i] == ch]
            if not live:
                raise _Bad
            i += 1


# ------------------------------------------------------------------------------ the checker

def _string(c: _Cursor) -> None:
    c.literal('"')
    while True:
        ch = c.take()
        if ch == '"':
            return
        if ch == "\\":
            esc = c.take()
            if esc == "u":
                for _ in range(4):
                    if c.take() not in _HEX:
                        raise _Bad
            elif esc not in '"\\/bfnrt':
                raise _Bad
        elif ord(ch) < 0x20:
            raise _Bad


def _digits(c: _Cursor) -> None:
    if c.take() not in _DIGITS:
        raise _Bad
    while c.peek() in _DIGITS:
        c.pos += 1


def _number(c: _Cursor, integer: bool) -> None:
    # Ends only at a character that cannot continue it, so a number at the text's end is open.
    if c.peek() == "-":
        c.pos += 1
    if c.take() == "0":
        pass
    else:
        c.pos -= 1
        if c.peek() not in "123456789":
            raise _Bad
        _digits(c)
    if integer:
        c.peek()
        return
    if c.peek() == ".":
        c.pos += 1
        _digits(c)
    if c.peek() in "eE":
        c.pos += 1
        if c.peek() in "+-":
            c.pos += 1
        _digits(c)


def _array(c: _Cursor, items: Any) -> None:
    c.literal("[")
    if c.peek() == "]":
        c.pos += 1
        return
    while True:
        _value(c, items)
        if c.peek() == "]":
            c.pos += 1
            return
        c.literal(", ")


def _free_object(c: _Cursor) -> None:
    c.literal("{")
    if c.peek() == "}":
        c.pos += 1
        return
    while True:
        _string(c)
        c.literal(": ")
        _value(c, ANY)
        if c.peek() == "}":
            c.pos += 1
            return
        c.literal(", ")


def _object(c: _Cursor, schema: dict[str, Any]) -> None:
    shape = object_keys(schema)
    if shape is None:
        _free_object(c)
        return
    names, required = shape
    props = schema.get("properties") or {}
    c.literal("{")
    last = -1
    while True:
        allowed, may_close = next_keys(names, required, last)
        if c.peek() == "}":
            if not may_close:
                raise _Bad
            c.pos += 1
            return
        if not allowed:
            raise _Bad
        if last >= 0:
            c.literal(", ")
        keys = {dump(names[j]) + ": ": j for j in allowed}
        last = keys[c.choice(list(keys))]
        _value(c, props.get(names[last], ANY))


def _boolean(c: _Cursor) -> None:
    c.choice(["true", "false"])


_PARSERS: dict[str, Callable[[_Cursor, dict[str, Any]], None]] = {
    "string": lambda c, s: _string(c),
    "number": lambda c, s: _number(c, integer=False),
    "integer": lambda c, s: _number(c, integer=True),
    "boolean": lambda c, s: _boolean(c),
    "null": lambda c, s: c.literal("null"),
    "array": lambda c, s: _array(c, array_items(s)),
    "object": _object,
}
_STARTS = {"string": '"', "number": "-0123456789", "integer": "-0123456789", "boolean": "tf", "null": "n",
           "array": "[", "object": "{"}


def _value(c: _Cursor, schema: Any) -> None:
    literals = literal_texts(schema)
    if literals is not None:
        c.choice(literals)
        return
    kinds = value_types(schema) or ["string", "number", "boolean", "null", "array", "object"]
    schema = schema if isinstance(schema, dict) and value_types(schema) else {}
    first = c.peek()
    # The types' first characters differ (number and integer are merged), so at most one fits.
    for kind in kinds:
        if kind in _STARTS and first in _STARTS[kind]:
            _PARSERS[kind](c, schema)
            return
    raise _Bad


# ------------------------------------------------------------------------------ the grammar

class CallGrammar:
    """The answers a student with these tools may give (see the module docstring)."""

    def __init__(self, tools: Any, *, text: bool = True) -> None:
        """`text=False` leaves out plain text: the answer must be a call."""
        self.tools = validate_tools(tools)
        self.text = text
        self._parameters = {str(t["function"]["name"]): t["function"].get("parameters") or {}
                            for t in self.tools}
        self._names = {dump(name): name for name in self._parameters}
        self._gbnf: str | None = None

    def check(self, text: str) -> Prefix:
        """Whether `text`, an answer so far, can become or already is a valid answer."""
        start = len(text) - len(text.lstrip(_BLANK))
        if start == len(text):
            return Prefix.DONE if self.text else Prefix.OPEN
        if text[start] != "{":
            return Prefix.DONE if self.text else Prefix.INVALID
        c = _Cursor(text, start)
        try:
            c.literal('{"name": ')
            name = self._names[c.choice(list(self._names))]
            c.literal(', "arguments": ')
            _object(c, self._parameters[name])
            c.literal("}")
        except _Short:
            return Prefix.OPEN
        except _Bad:
            return Prefix.INVALID
        return Prefix.DONE if c.pos == len(text) else Prefix.INVALID

    def gbnf(self) -> str:
        """The same language as a llama.cpp GBNF grammar (root rule `root`), made once."""
        if self._gbnf is None:
            self._gbnf = call_gbnf(self._parameters, self.text)
        return self._gbnf
