"""The call grammar a tool-calling answer is decoded under: which answers so far it keeps, which
may end, its GBNF text, and the decoding loop choosing only tokens it allows (a character
tokenizer, so the expected tokens are plain characters)."""

from __future__ import annotations

import random

import pytest
import torch

from app.answer_shapes import call_text, check_call
from app.answer_shapes.call_grammar import CallGrammar, Prefix
from app.decoding import _choose
from app.inference import Answer, Student
from tests.unit.test_batching import EOS, CharTokenizer

BOOK = {"type": "function", "function": {"name": "book_table", "parameters": {
    "type": "object", "properties": {k: {"type": "string"} for k in ("people", "date", "time", "first_name")}}}}
CALC = {"type": "function", "function": {"name": "calc", "parameters": {
    "type": "object", "required": ["a"],
    "properties": {"a": {"type": "integer"}, "b": {"type": "number"}, "unit": {"type": "string", "enum": ["km", "mi"]},
                   "xs": {"type": "array", "items": {"type": "string"}}, "on": {"type": "boolean"},
                   "opt": {"type": ["string", "null"]}, "any": {}}}}}
PING = {"type": "function", "function": {"name": "ping"}}
TOOLS = [BOOK, CALC, PING]


@pytest.fixture(scope="module")
def grammar() -> CallGrammar:
    return CallGrammar(TOOLS)


@pytest.mark.parametrize("text", ["", "  ", "Sure, for how many people?", "\nno call {here}"])
def test_plain_text_is_any_text(grammar: CallGrammar, text: str) -> None:
    assert grammar.check(text) is Prefix.DONE


@pytest.mark.parametrize("call", [
    {"name": "book_table", "arguments": {}},
    {"name": "book_table", "arguments": {"people": "2", "time": "7pm"}},
    {"name": "book_table", "arguments": {"date": "tomorrow", "first_name": "Zoë \"Z\" \\ o\n", "people": "me and him"}},
    {"name": "calc", "arguments": {"a": -12}},
    {"name": "calc", "arguments": {"a": 0, "any": {"k": [1, None, {"x": "y"}]}, "b": 2.5e-3, "on": False,
                                   "opt": None, "unit": "mi", "xs": ["a", "b c"]}},
    {"name": "ping", "arguments": {}},
])
def test_every_prefix_of_a_valid_call_is_open_and_the_call_is_done(grammar: CallGrammar, call: dict) -> None:
    text = call_text(call)
    assert grammar.check(text) is Prefix.DONE
    assert all(grammar.check(text[:i]) is Prefix.OPEN for i in range(1, len(text)))
    assert grammar.check("  " + text) is Prefix.DONE


@pytest.mark.parametrize("text", [
    '{"name": "book_tabel"',  # no such tool
    '{"name":"book_table"',  # not the canonical separator
    '{"name": "book_table", "arguments": {"seat": "2"}}',  # unknown argument
    '{"name": "book_table", "arguments": {"time": "7", "people": "2"}}',  # keys out of order
    '{"name": "book_table", "arguments": {"people": 2}}',  # a string argument as a number
    '{"name": "book_table", "arguments": {"people": "2", "people": "3"}}',  # twice
    '{"name": "calc", "arguments": {}}',  # the required "a" left out
    '{"name": "calc", "arguments": {"b": 1, "a": 2}}',  # "a" skipped, then out of order
    '{"name": "calc", "arguments": {"a": 1.5}}',  # an integer with a fraction
    '{"name": "calc", "arguments": {"a": 01}}',  # a leading zero
    '{"name": "calc", "arguments": {"a": 1, "unit": "m"}}',  # not one of the enum
    '{"name": "calc", "arguments": {"a": 1, "on": yes}}',
    '{"name": "ping", "arguments": {"x": 1}}',  # no parameters: no arguments
    '{"name": "ping", "arguments": {}} and more',  # nothing after the call
    '{"name": "ping", "arguments": {}}\n',
    '{"name": "book_table", "arguments": {"time": "7",',  # nothing may follow the last key
    '{"name": "book_table", "arguments": {"people": "a\tb"}}',  # a raw control character in a string
])
def test_a_broken_call_is_invalid(grammar: CallGrammar, text: str) -> None:
    assert grammar.check(text) is Prefix.INVALID


def test_without_text_the_answer_must_be_a_call() -> None:
    strict = CallGrammar([BOOK], text=False)
    assert strict.check("") is Prefix.OPEN
    assert strict.check("Hello") is Prefix.INVALID
    assert strict.check('{"name": "book_table", "arguments": {}}') is Prefix.DONE
    assert "plain" not in strict.gbnf().splitlines()[0]


def test_the_gbnf_names_each_tool_and_its_arguments_in_order(grammar: CallGrammar) -> None:
    text = grammar.gbnf()
    rules = dict(line.split(" ::= ", 1) for line in text.strip().splitlines())
    assert rules["root"] == "ws-start ( call | plain )?"
    assert '"{\\"name\\": \\"book_table\\", \\"arguments\\": "' in rules["call"]
    ping = next(body for name, body in rules.items() if name.startswith("args-ping-object"))
    assert ping == '"{}"'  # no parameters: no arguments
    # every rule used is defined
    used = {word for body in rules.values() for word in body.replace("(", " ").replace(")", " ").split()
            if word[0].isalpha() and not word.startswith('"')}
    assert used <= set(rules) | {"call"}
    # calc's "a" is required: its object cannot be empty, and "a" comes first
    calc_object = next(body for name, body in rules.items() if name.startswith("args-calc-object"))
    assert calc_object.startswith('"{" ( ( "\\"a\\": " ( integer )')
    assert not calc_object.endswith(')? "}"')
    assert '( "\\"km\\"" | "\\"mi\\"" )' in text


# ------------------------------------------------------------------------------ decoding

def _answer(grammar: CallGrammar | None, start: str = "", tokens: int = 400) -> Answer:
    student = Student(model=None, tokenizer=CharTokenizer(), eos_ids=[EOS], context=None)
    answer = Answer(student, [{"role": "user", "content": "book it"}], max_tokens=tokens, grammar=grammar)
    answer.ids = [ord(ch) for ch in start]
    return answer


def _wish(chars: str) -> torch.Tensor:
    """Logits that rank `chars` first, in that order, then every other character, then EOS."""
    logits = torch.zeros(1, 128)
    for rank, ch in enumerate(chars):
        logits[0, ord(ch)] = 100.0 - rank
    logits[0, EOS] = -1.0
    return logits


def test_the_likeliest_allowed_token_is_chosen(grammar: CallGrammar) -> None:
    answer = _answer(grammar, '{"name": "book_tab')
    _choose(_wish("el"), [answer])  # "book_tabe..." is no tool, "book_tabl..." is
    assert answer.ids[-1] == ord("l")
    plain = _answer(grammar, "Sure")
    _choose(_wish("!"), [plain])
    assert plain.ids[-1] == ord("!")


def test_an_open_call_cannot_end_and_a_whole_one_can_only_end(grammar: CallGrammar) -> None:
    open_call = _answer(grammar, '{"name": "ping", "arguments": {}')
    logits = torch.full((1, 128), -5.0)
    logits[0, EOS] = 10.0
    logits[0, ord("}")] = 0.0
    _choose(logits, [open_call])
    assert open_call.ids[-1] == ord("}")
    _choose(_wish(" }\n"), [open_call])
    assert open_call.ids[-1] == EOS and open_call.ended.is_set()
    assert open_call.completion().text == '{"name": "ping", "arguments": {}}'


def test_a_token_past_the_likeliest_candidates_is_still_found(grammar: CallGrammar) -> None:
    # Only "}" may follow, and it is the least likely character: the first-character groups find it.
    answer = _answer(grammar, '{"name": "ping", "arguments": {}')
    _choose(_wish("".join(chr(i) for i in range(1, 128) if chr(i) != "}")), [answer])
    assert answer.ids[-1] == ord("}")


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_random_wishes_under_the_grammar_give_valid_calls(grammar: CallGrammar, temperature: float) -> None:
    rng = random.Random(7)
    torch.manual_seed(7)
    structural = '{}[]",: abcdefghijklmnopqrstuvwxyz0123456789._-'
    ended_calls = 0
    for _ in range(12):
        answer = _answer(grammar, "{", tokens=300)
        answer.temperature = temperature
        while not answer.ended.is_set():
            # A model that mostly wants structure, in an order that changes every step.
            _choose(_wish("".join(rng.sample(structural, len(structural)))), [answer])
            assert grammar.check(answer.completion().text) is not Prefix.INVALID
        text = answer.completion().text
        if answer.ids[-1] == EOS:
            ended_calls += 1
            assert grammar.check(text) is Prefix.DONE
            checked = check_call(text, TOOLS)
            assert checked.call is not None and not checked.problems, text
    assert ended_calls >= 6
