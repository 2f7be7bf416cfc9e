"""The JSON payload of a model's answer, whatever it is wrapped in: one reading for curation,
scoring and serving, so a fence or a tag the student adds is tolerated the same way everywhere."""

from __future__ import annotations

import json
import re
from typing import Any

_FENCE = re.compile(r"^```[A-Za-z0-9_-]*\s*\n?(.*?)\n?\s*(?:```)?$", re.DOTALL)
_TOOL_CALL_TAG = re.compile(r"^<tool_call>\s*(.*?)\s*(?:</tool_call>)?$", re.DOTALL)


def unwrap_json(text: str) -> str:
    """`text` stripped of whitespace and of a ```json fence and/or a <tool_call> tag (in either order,
    the closing one optional: a cut-off answer keeps its payload)."""
    text = text.strip()
    for _ in range(2):
        match = _FENCE.match(text) or _TOOL_CALL_TAG.match(text)
        if match:
            text = match.group(1).strip()
    return text


def load_json(text: str | None) -> Any:
    """The JSON value in an answer's text (see `unwrap_json`), or None when it holds none."""
    if text is None:
        return None
    try:
        return json.loads(unwrap_json(text))
    except ValueError:
        return None


def load_object(answer: Any) -> dict[str, Any] | None:
    """A JSON object given as a dict or as an answer's text; None for anything else."""
    if isinstance(answer, str):
        answer = load_json(answer)
    return answer if isinstance(answer, dict) else None
