"""Enough of Ollama's Go templating to render the single-exchange templates vibetune writes."""

from __future__ import annotations

import re

_IF_SYSTEM = re.compile(r"\{\{ if \.System \}\}(.*?)(?:\{\{ else \}\}(.*?))?\{\{ end \}\}", re.S)


def render_prompt(template: str, prompt: str, system: str = "") -> str:
    """What Ollama sends for one user message: the template up to `{{ .Response }}`."""
    text = _IF_SYSTEM.sub(lambda m: m.group(1) if system else (m.group(2) or ""), template)
    text = text.split("{{ .Response }}")[0]
    text = text.replace('{{ "{{" }}', "\x00")
    assert "{{" not in text.replace("{{ .System }}", "").replace("{{ .Prompt }}", ""), text
    return text.replace("{{ .System }}", system).replace("{{ .Prompt }}", prompt).replace("\x00", "{{")
