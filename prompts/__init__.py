"""Prompt templates, the per-task answer schema, and the tolerant parser of LLM answers.

Pure Python, standard library only; never imports ``app``. See ``prompts.templates`` for the
template format and versioning, ``prompts.schema`` for the structured-output request field and
``prompts.parser`` for what the parser accepts, repairs and rejects.
"""

from prompts.parser import ParseResult, parse_distribution
from prompts.schema import (
    REASONING_KEY,
    STRUCTURED_OUTPUT_MODES,
    build_response_schema,
    response_format_for,
)
from prompts.templates import (
    DEFAULT_TEMPLATE_NAME,
    RecoveredPrompt,
    Template,
    TemplateError,
    default_template,
    load_template,
    prompt_version,
    recover_prompt_fields,
    render_messages,
    template_from_text,
)

__all__ = [
    "DEFAULT_TEMPLATE_NAME",
    "REASONING_KEY",
    "STRUCTURED_OUTPUT_MODES",
    "ParseResult",
    "RecoveredPrompt",
    "Template",
    "TemplateError",
    "build_response_schema",
    "default_template",
    "load_template",
    "parse_distribution",
    "prompt_version",
    "recover_prompt_fields",
    "render_messages",
    "response_format_for",
    "template_from_text",
]
