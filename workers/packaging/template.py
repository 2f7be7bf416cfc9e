"""The student's chat format, read from its tokenizer's chat template, as an Ollama template.

The Jinja template is rendered with marker strings in place of the system prompt, the input and
the answer; the text around the markers is the format. Ollama then sends a bare input exactly as
the student saw it in training (for SmolLM2 including its default system prompt).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SYSTEM, _USER, _ANSWER = "\x02vt-system\x03", "\x02vt-user\x03", "\x02vt-answer\x03"

CHATML_TEMPLATE = (
    "{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
    "<|im_start|>user\n{{ .Prompt }}<|im_end|>\n<|im_start|>assistant\n{{ .Response }}<|im_end|>\n"
)


@dataclass(frozen=True)
class ChatFormat:
    """An Ollama (Go) template for one exchange, and the strings that end an answer."""

    template: str
    stop: tuple[str, ...]
    derived: bool  # False: the ChatML fallback, not read from the model's own template


def read_chat_template(model_dir: Path) -> tuple[str | None, dict[str, Any]]:
    """The model's Jinja chat template (`chat_template.jinja` or in `tokenizer_config.json`) and
    its tokenizer config."""
    config_path = model_dir / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
    jinja_path = model_dir / "chat_template.jinja"
    if jinja_path.is_file():
        return jinja_path.read_text(encoding="utf-8"), config
    template = config.get("chat_template")
    if isinstance(template, list):  # named templates: [{"name": "default", "template": ...}, ...]
        named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
        template = named.get("default")
    return (template if isinstance(template, str) else None), config


def ollama_chat_format(chat_template: str | None, tokenizer_config: dict[str, Any] | None = None,
                       adds_bos: bool = False) -> ChatFormat | None:
    """The Ollama template for this chat template; ChatML when it cannot be derived but the
    template is ChatML; None when there is no usable template at all. `adds_bos`: the runtime
    puts the BOS token in front by itself (the GGUF's `tokenizer.ggml.add_bos_token`), so a
    template's leading BOS text is dropped rather than doubled."""
    config = tokenizer_config or {}
    if chat_template:
        try:
            return _derive(chat_template, config, adds_bos)
        except (ValueError, ImportError):
            pass
        if "<|im_start|>" in chat_template:
            return ChatFormat(CHATML_TEMPLATE, ("<|im_end|>",), derived=False)
    return None


def _token(config: dict[str, Any], key: str) -> str:
    value = config.get(key)
    if isinstance(value, dict):  # older configs store AddedToken dicts
        value = value.get("content")
    return value if isinstance(value, str) else ""


def _render(chat_template: str, config: dict[str, Any], messages: list[dict[str, str]], generation: bool) -> str:
    from jinja2 import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise ValueError(message)

    # The same environment options transformers renders chat templates with.
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = lambda value, **kw: json.dumps(value, ensure_ascii=False, **kw)
    env.globals["raise_exception"] = raise_exception
    try:
        return env.from_string(chat_template).render(
            messages=messages, add_generation_prompt=generation, bos_token=_token(config, "bos_token"),
            eos_token=_token(config, "eos_token"), tools=None, documents=None,
        )
    except TemplateError as exc:
        raise ValueError(f"chat template does not render: {exc}") from exc


def _split(text: str, *markers: str) -> list[str]:
    """`text` cut at each marker, in order; each marker must appear exactly once."""
    parts, rest = [], text
    for marker in markers:
        if rest.count(marker) != 1:
            raise ValueError(f"marker {marker!r} not rendered exactly once")
        head, rest = rest.split(marker)
        parts.append(head)
    return [*parts, rest]


def _go_literal(text: str) -> str:
    if '"""' in text:
        raise ValueError("the chat format contains triple quotes, which a Modelfile cannot hold")
    return text.replace("{{", '{{ "{{" }}')


def _derive(chat_template: str, config: dict[str, Any], adds_bos: bool) -> ChatFormat:
    bos = _token(config, "bos_token") if adds_bos else ""
    user, system, answer = ({"role": "user", "content": _USER}, {"role": "system", "content": _SYSTEM},
                            {"role": "assistant", "content": _ANSWER})
    bare_prefix, prompt_suffix = _split(_render(chat_template, config, [user], True), _USER)
    full = _render(chat_template, config, [user, answer], False)
    if not full.startswith(bare_prefix + _USER + prompt_suffix):
        raise ValueError("the generation prompt differs from the trained answer's prefix")
    answer_suffix = _split(full, _ANSWER)[1]
    bare_prefix = bare_prefix.removeprefix(bos) if bos else bare_prefix
    try:
        system_prefix, system_to_user, _ = _split(_render(chat_template, config, [system, user], True), _SYSTEM, _USER)
        system_prefix = system_prefix.removeprefix(bos) if bos else system_prefix
        head = (f"{{{{ if .System }}}}{_go_literal(system_prefix)}{{{{ .System }}}}{_go_literal(system_to_user)}"
                f"{{{{ else }}}}{_go_literal(bare_prefix)}{{{{ end }}}}")
    except ValueError:  # templates without a system role
        head = _go_literal(bare_prefix)
    template = (f"{head}{{{{ .Prompt }}}}{_go_literal(prompt_suffix)}"
                f"{{{{ .Response }}}}{_go_literal(answer_suffix)}")
    stops = [s for s in (answer_suffix.strip(), _token(config, "eos_token")) if s]
    return ChatFormat(template, tuple(dict.fromkeys(stops)), derived=True)
