"""The shape an answer of each non-classification task type must have: one package for the API
(validating a job body), the teacher's label stage (structured outputs under a JSON schema),
curation (checking answers) and serving. Plain pydantic and jsonschema, no settings and no I/O.

Extraction
    The fields to extract are `FieldSpec`s (from the CLI's `--fields name[:description[:type]],...`
    via `parse_fields_text`, or from a JSON object schema via `fields_from_json_schema`). An answer
    is one JSON object with every field as a key and `null` where the text does not say
    (`extraction_schema`). `check_extraction` cleans an answer and drops span values that do not
    occur in the input text.

Tool calling
    Tools are OpenAI function tools, `{"type": "function", "function": {"name", "description",
    "parameters"}}`, checked and normalised by `validate_tools`. A call is the JSON object
    `{"name": ..., "arguments": {...}}` (`check_call`). The teacher answers under `call_schema`,
    which names every argument (null where the request does not state it; `without_unset` drops
    those), and curation leaves out free-text values the request does not state
    (`unstated_arguments`, `stated_call`). Scoring compares string values as BFCL does (`standard_text`).

    The text format of tools for a model whose chat template has no tool support (SmolLM2), the
    one text that training, evaluation, serving and the exported Modelfile all render, is
    `tools_prompt(tools)`, a system-prompt block of these lines (joined by "\\n", no final newline)::

        You can call these functions (each a JSON object with its name, description and parameters):
        {"description": "Book a table", "name": "book", "parameters": {"properties": {...}, "type": "object"}}
        ... one line per tool, in the order given ...
        To call a function, answer with only a JSON object {"name": ..., "arguments": {...}}; ⏎
        if no function fits, answer in plain text.

    (the last line shown wrapped at ⏎: it is one line, with one space after the ';').

    Each function line is `json.dumps(function, ensure_ascii=False, sort_keys=True)` of the
    normalised function object (an empty description left out). The canonical answer text of a call
    (`call_text`) puts `name` first, then `arguments` with its keys sorted at every depth:
    `{"name": "book", "arguments": {"date": "2024-05-01", "people": 2}}`.
"""

from app.answer_shapes.extraction import (
    FIELD_NAME_PATTERN,
    FIELD_TYPES,
    ExtractionCheck,
    FieldSpec,
    FieldType,
    check_extraction,
    extraction_schema,
    fields_from_json_schema,
    parse_fields_text,
)
from app.answer_shapes.json_text import load_json, load_object, unwrap_json
from app.answer_shapes.tools import (
    EMPTY_PARAMETERS,
    MAX_TOOLS,
    TOOL_NAME_PATTERN,
    TOOLS_PROMPT_FOOTER,
    TOOLS_PROMPT_HEADER,
    CallCheck,
    Location,
    ToolsError,
    bfcl_to_openai_tool,
    call_schema,
    call_text,
    check_call,
    parameter_names,
    standard_text,
    stated_call,
    tools_prompt,
    unstated_arguments,
    validate_tools,
    without_unset,
)

__all__ = [
    "EMPTY_PARAMETERS", "FIELD_NAME_PATTERN", "FIELD_TYPES", "MAX_TOOLS", "TOOLS_PROMPT_FOOTER", "TOOLS_PROMPT_HEADER",
    "TOOL_NAME_PATTERN", "CallCheck", "ExtractionCheck", "FieldSpec", "FieldType", "Location", "ToolsError",
    "bfcl_to_openai_tool", "call_schema", "call_text", "check_call", "check_extraction", "extraction_schema",
    "fields_from_json_schema", "load_json", "load_object", "parameter_names", "parse_fields_text", "standard_text",
    "stated_call", "tools_prompt", "unstated_arguments", "unwrap_json", "validate_tools", "without_unset",
]
