"""The chat format checked byte for byte: the prompt llama.cpp builds from the GGUF's own chat
template, and the one Ollama builds from the Modelfile's `TEMPLATE`, must equal the tokenizer's
`apply_chat_template` for the same messages; the Modelfile's stop strings must end an answer
where the tokenizer's template ends it.

A mismatch here is the "exported model talks gibberish in Ollama" bug, found before download.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from workers.packaging.template import ChatFormat

Messages = list[dict[str, str]]

_ACTION = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)


def render_ollama_prompt(template: str, system: str, prompt: str) -> str:
    """The prompt Ollama sends for one exchange: `template` rendered with `.System` and `.Prompt`,
    cut where `{{ .Response }}` starts (Ollama generates from there). Only the actions
    `workers.packaging.template` writes are understood; anything else raises ValueError."""
    out: list[str] = []
    emitting = [True]  # one entry per open `if`: whether its current branch is taken
    branch_taken: list[bool] = []
    position = 0
    for match in _ACTION.finditer(template):
        if all(emitting):
            out.append(template[position:match.start()])
        position = match.end()
        action = match.group(1).strip()
        if action == ".Response":
            return "".join(out) if all(emitting) else _unclosed()
        if action == "if .System":
            branch_taken.append(bool(system))
            emitting.append(bool(system))
        elif action == "else":
            emitting[-1] = not branch_taken[-1]
        elif action == "end":
            emitting.pop()
            branch_taken.pop()
        elif action in (".System", ".Prompt"):
            if all(emitting):
                out.append(system if action == ".System" else prompt)
        elif action == '"{{"':
            if all(emitting):
                out.append("{{")
        else:
            raise ValueError(f"template action {{{{ {action} }}}} is not one vibetune writes")
    raise ValueError("the template has no {{ .Response }}")


def _unclosed() -> str:
    raise ValueError("{{ .Response }} inside a branch not taken")


def ollama_prompt(chat: ChatFormat, messages: Messages) -> str:
    """Ollama's prompt for a student's messages: an optional system message, then the input."""
    system = next((m["content"] for m in messages if m["role"] == "system"), "")
    user = next(m["content"] for m in messages if m["role"] == "user")
    return render_ollama_prompt(chat.template, system, user)


def first_difference(expected: str, got: str) -> dict[str, Any] | None:
    """Where two prompts part: the offset and a little of each from there; None when equal."""
    if expected == got:
        return None
    at = next((i for i, (a, b) in enumerate(zip(expected, got, strict=False)) if a != b), min(len(expected), len(got)))
    return {"offset": at, "expected": expected[at:at + 40], "got": got[at:at + 40]}


def check_chat_format(tokenizer: Any, chat: ChatFormat | None, conversations: Sequence[Messages],
                      llama_prompt: Callable[[Messages], str] | None = None,
                      llama_tokens: Callable[[str], list[int]] | None = None, adds_bos: bool = False
                      ) -> dict[str, Any]:
    """Each conversation's prompt from the tokenizer against llama.cpp's (`llama_prompt`, the
    server's /apply-template) and Ollama's (from `chat`); the token ids of the tokenizer's prompt
    against the GGUF tokenizer's (`llama_tokens`); and whether the stop strings end an answer.
    `ok` is True only when everything checked is equal. `adds_bos`: the runtime puts the BOS token
    in front by itself, so Ollama's prompt is compared without the template's leading BOS text."""
    expected = [tokenizer.apply_chat_template(m, add_generation_prompt=True, tokenize=False) for m in conversations]
    result: dict[str, Any] = {"conversations": len(conversations)}
    if llama_prompt is not None:
        result["llama_cpp"] = _compare(expected, [llama_prompt(m) for m in conversations])
    if chat is not None:
        bos = (tokenizer.bos_token or "") if adds_bos else ""
        result["ollama"] = _compare([e.removeprefix(bos) if bos else e for e in expected],
                                    [ollama_prompt(chat, m) for m in conversations])
        result["stop"] = _stop_check(tokenizer, chat, conversations[0])
    if llama_tokens is not None:
        ids = [list(tokenizer(p, add_special_tokens=False).input_ids) for p in expected]
        result["token_ids_equal"] = sum(llama_tokens(p) == i for p, i in zip(expected, ids, strict=True))
    result["ok"] = bool(conversations) and all((
        result.get("llama_cpp", {}).get("equal", 0) == len(conversations),
        chat is not None and result["ollama"]["equal"] == len(conversations) and result["stop"]["ends_answer"],
        result.get("token_ids_equal", len(conversations)) == len(conversations)))
    return result


def _compare(expected: list[str], got: list[str]) -> dict[str, Any]:
    differences = [d for d in (first_difference(e, g) for e, g in zip(expected, got, strict=True)) if d]
    return {"equal": len(expected) - len(differences), **({"first_difference": differences[0]} if differences else {})}


def _stop_check(tokenizer: Any, chat: ChatFormat, messages: Messages) -> dict[str, Any]:
    """Whether the tokenizer's template, after an answer, goes on with one of the stop strings."""
    answer = "vibetune-answer"
    full = tokenizer.apply_chat_template([*messages, {"role": "assistant", "content": answer}], tokenize=False)
    after = full.split(answer, 1)[1] if answer in full else ""
    return {"stops": list(chat.stop), "after_answer": after[:20],
            "ends_answer": any(after.lstrip().startswith(stop) for stop in chat.stop if stop)}
