"""Prompt templates: loading, content-hash versioning, rendering to chat messages, recovery.

Template format
---------------
A template is UTF-8 text with two placeholders, ``{labels}`` and ``{text}``. Marker lines may
split it into a system message and a user message::

    === system ===          <- optional, only as the very first line
    ...system part...
    === user ===
    ...user part with {labels} and {text}...

A marker is a line that holds exactly the marker (surrounding whitespace ignored). Without a
``=== user ===`` line the whole text is the user message and no system message is sent. Each part
is stripped of leading and trailing whitespace. More than one ``=== user ===`` line is an error.

Rendering
---------
``{labels}`` becomes the JSON list of the labels (``json.dumps(list(labels), ensure_ascii=False)``,
e.g. ``["billing", "technical"]``) and ``{text}`` the input text verbatim. Substitution is plain
text replacement, never ``str.format``: braces elsewhere in the template (a JSON example) or in the
text are literal. Both placeholders are replaced in one left-to-right pass over the template, so
replaced content is never scanned again: a text containing ``{labels}`` or a label containing
``{text}`` stays as it is (the guarantee that "replace ``{labels}``, then ``{text}`` last" gives,
extended to labels).

Versioning
----------
``Template.version`` is ``"sha256:"`` followed by the first 12 hex digits of the SHA-256 of the
raw template text encoded as UTF-8, e.g. ``"sha256:3f2a9c01b7de"``. Any edit, even whitespace, is a
new version; the same text has the same version whatever the template is called.

The *prompt* version, which keys stored answers, covers the template and the answer schema's
flavour (``prompt_version``): without reasoning it is the template's version; with reasoning it
is the version of the template text followed by ``REASONING_FLAVOUR_MARK``. Answers asked with and
without the reasoning property are therefore never mixed in one fit, even under one template.

Default templates
-----------------
``default`` asks for one object with a probability per label; ``default-reasoning`` asks for the
same object with a ``"reasoning"`` string first (the reasoning flavour of ``prompts.schema``).
``default_template(reasoning=...)`` picks one; a task's own template is used as written in both
flavours (with reasoning on, it should ask for the ``"reasoning"`` key itself).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, NamedTuple

__all__ = [
    "DEFAULT_REASONING_TEMPLATE_NAME",
    "DEFAULT_TEMPLATE_NAME",
    "LABELS_PLACEHOLDER",
    "PLACEHOLDERS_PATTERN",
    "REASONING_FLAVOUR_MARK",
    "SYSTEM_MARKER",
    "TEXT_PLACEHOLDER",
    "USER_MARKER",
    "RecoveredPrompt",
    "Template",
    "TemplateError",
    "default_template",
    "load_template",
    "prompt_version",
    "recover_prompt_fields",
    "render_messages",
    "template_from_text",
    "template_version",
]

DEFAULT_TEMPLATE_NAME = "default"
DEFAULT_REASONING_TEMPLATE_NAME = "default-reasoning"
REASONING_FLAVOUR_MARK = "\n=== answer schema: reasoning first ===\n"
LABELS_PLACEHOLDER = "{labels}"
TEXT_PLACEHOLDER = "{text}"
# What a template must contain, as a JSON Schema ``pattern`` (a search, so unanchored): both
# placeholders, in either order. ``template_from_text`` checks more (the system/user split).
PLACEHOLDERS_PATTERN = "|".join(
    rf"{re.escape(first)}[\s\S]*{re.escape(second)}"
    for first, second in (
        (LABELS_PLACEHOLDER, TEXT_PLACEHOLDER),
        (TEXT_PLACEHOLDER, LABELS_PLACEHOLDER),
    )
)
SYSTEM_MARKER = "=== system ==="
USER_MARKER = "=== user ==="

_PLACEHOLDER_PATTERN = re.compile(re.escape(LABELS_PLACEHOLDER) + "|" + re.escape(TEXT_PLACEHOLDER))
# Template names become file names: a strict pattern rules out path traversal.
_TEMPLATE_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_VERSION_HEX_DIGITS = 12


class TemplateError(ValueError):
    """A template cannot be found or is not usable (e.g. it lacks a placeholder)."""


@dataclass(frozen=True)
class Template:
    """A prompt template with its content-hash version (see the module docstring)."""

    name: str
    text: str
    version: str


class RecoveredPrompt(NamedTuple):
    """What ``recover_prompt_fields`` reads back from a default prompt."""

    text: str
    labels: list[str]
    reasoning: bool


def template_version(text: str) -> str:
    """Return the content-hash version of a template text: ``"sha256:<12 hex digits>"``."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return f"sha256:{digest[:_VERSION_HEX_DIGITS]}"


def prompt_version(template: Template, *, reasoning: bool) -> str:
    """The version that keys answers: the template's, or with the reasoning flavour mixed in."""
    if not reasoning:
        return template.version
    return template_version(template.text + REASONING_FLAVOUR_MARK)


def default_template(*, reasoning: bool = False) -> Template:
    """The packaged default template of a flavour (see "Default templates" above)."""
    return load_template(DEFAULT_REASONING_TEMPLATE_NAME if reasoning else DEFAULT_TEMPLATE_NAME)


def template_from_text(text: str, name: str = "custom") -> Template:
    """Build a template from its text (e.g. a task's own template), checking it is usable.

    Raises ``TemplateError`` when the text is not a string, lacks ``{labels}`` or ``{text}``, or
    has a malformed system/user split.
    """
    if not isinstance(text, str):
        raise TemplateError(f"a prompt template must be a string, not {type(text).__name__}")
    missing = [
        placeholder
        for placeholder in (TEXT_PLACEHOLDER, LABELS_PLACEHOLDER)
        if placeholder not in text
    ]
    if missing:
        raise TemplateError(
            "prompt template lacks the placeholder(s) "
            + ", ".join(missing)
            + f": it must contain both {LABELS_PLACEHOLDER} and {TEXT_PLACEHOLDER}"
        )
    _split_parts(text)
    return Template(name=name, text=text, version=template_version(text))


def load_template(name: str = DEFAULT_TEMPLATE_NAME) -> Template:
    """Load a packaged template, ``prompts/templates/{name}.txt``.

    Raises ``TemplateError`` for an unknown or malformed name.
    """
    if not isinstance(name, str) or not _TEMPLATE_NAME_PATTERN.fullmatch(name):
        raise TemplateError(f"invalid template name {name!r}")
    return _load_packaged_template(name)


@functools.lru_cache(maxsize=32)
def _load_packaged_template(name: str) -> Template:
    resource = resources.files("prompts").joinpath("templates", f"{name}.txt")
    if not resource.is_file():
        raise TemplateError(f"unknown prompt template {name!r}")
    return template_from_text(resource.read_text(encoding="utf-8"), name=name)


def render_messages(template: Template, text: str, labels: Sequence[str]) -> list[dict]:
    """Render a template into OpenAI chat messages for one input text and the task's labels.

    Returns ``[{"role": "system", ...}, {"role": "user", ...}]``, or only the user message when
    the template has no system part.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, not {type(text).__name__}")
    labels_json = _labels_json(labels)
    system_part, user_part = _split_parts(template.text)
    messages: list[dict] = []
    if system_part:
        messages.append({"role": "system", "content": _substitute(system_part, labels_json, text)})
    messages.append({"role": "user", "content": _substitute(user_part, labels_json, text)})
    return messages


def recover_prompt_fields(messages: Any) -> RecoveredPrompt | None:
    """Invert ``render_messages`` for the default templates.

    Given the messages ``render_messages(default_template(reasoning=r), text, labels)`` produced,
    return ``(text, labels, r)`` exactly; return ``None`` for anything else (other templates,
    edited messages, other shapes). Exact for every text, including ones containing ``</text>``,
    braces or the placeholders: the labels are read as one JSON value right after the fixed
    prefix, and the text is what lies between the fixed literal after the labels and the fixed
    suffix.
    """
    for reasoning in (False, True):
        fields = _recover_fields(default_template(reasoning=reasoning), messages)
        if fields is not None:
            return RecoveredPrompt(*fields, reasoning)
    return None


def _recover_fields(template: Template, messages: Any) -> tuple[str, list[str]] | None:
    system_part, user_part = _split_parts(template.text)
    if _PLACEHOLDER_PATTERN.search(system_part):
        return None
    pieces = _PLACEHOLDER_PATTERN.split(user_part)
    placeholders = _PLACEHOLDER_PATTERN.findall(user_part)
    if placeholders != [LABELS_PLACEHOLDER, TEXT_PLACEHOLDER]:
        return None
    before_labels, between, after_text = pieces

    contents = _message_contents(messages, with_system=bool(system_part))
    if contents is None:
        return None
    system_content, user_content = contents
    if system_part and system_content != system_part:
        return None
    if not user_content.startswith(before_labels) or not user_content.endswith(after_text):
        return None
    body_end = len(user_content) - len(after_text)
    if body_end < len(before_labels):
        return None

    try:
        labels, labels_end = json.JSONDecoder().raw_decode(user_content, len(before_labels))
    except (ValueError, RecursionError):
        return None
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        return None
    if not user_content.startswith(between, labels_end):
        return None
    text_start = labels_end + len(between)
    if text_start > body_end:
        return None
    text = user_content[text_start:body_end]
    # The labels JSON might have been hand-written differently (spacing, escapes): only a
    # byte-exact re-rendering counts as the default prompt.
    if render_messages(template, text, labels) != list(messages):
        return None
    return text, labels


def _message_contents(messages: Any, *, with_system: bool) -> tuple[str, str] | None:
    """Return (system content, user content) when messages have exactly the rendered shape."""
    if not isinstance(messages, list | tuple):
        return None
    roles = ["system", "user"] if with_system else ["user"]
    if len(messages) != len(roles):
        return None
    contents: list[str] = []
    for message, role in zip(messages, roles, strict=True):
        if not isinstance(message, dict) or set(message) != {"role", "content"}:
            return None
        if message["role"] != role or not isinstance(message["content"], str):
            return None
        contents.append(message["content"])
    if not with_system:
        contents.insert(0, "")
    return contents[0], contents[1]


def _labels_json(labels: Sequence[str]) -> str:
    if isinstance(labels, str | bytes) or not isinstance(labels, Sequence):
        raise TypeError("labels must be a sequence of strings, not a single string")
    label_list = list(labels)
    for label in label_list:
        if not isinstance(label, str):
            raise TypeError(f"labels must be strings, got {type(label).__name__}")
    return json.dumps(label_list, ensure_ascii=False)


def _substitute(part: str, labels_json: str, text: str) -> str:
    replacements = {LABELS_PLACEHOLDER: labels_json, TEXT_PLACEHOLDER: text}
    return _PLACEHOLDER_PATTERN.sub(lambda match: replacements[match.group(0)], part)


@functools.lru_cache(maxsize=128)
def _split_parts(template_text: str) -> tuple[str, str]:
    """Split a template into (system part, user part); the system part may be empty."""
    lines = template_text.splitlines(keepends=True)
    user_marker_lines = [i for i, line in enumerate(lines) if line.strip() == USER_MARKER]
    if len(user_marker_lines) > 1:
        raise TemplateError(f"prompt template has more than one {USER_MARKER!r} line")
    system_marker_lines = [i for i, line in enumerate(lines) if line.strip() == SYSTEM_MARKER]
    if system_marker_lines and (system_marker_lines != [0] or not user_marker_lines):
        raise TemplateError(
            f"{SYSTEM_MARKER!r} may only be the first line of a template "
            f"that has a {USER_MARKER!r} line"
        )
    if not user_marker_lines:
        return "", template_text.strip()
    marker = user_marker_lines[0]
    system_start = 1 if system_marker_lines else 0
    system_part = "".join(lines[system_start:marker]).strip()
    user_part = "".join(lines[marker + 1 :]).strip()
    if not user_part:
        raise TemplateError(f"prompt template has nothing after its {USER_MARKER!r} line")
    return system_part, user_part
