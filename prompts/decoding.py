"""Finding ``{...}`` objects in an LLM answer and decoding them tolerantly.

``object_spans`` returns the top-level balanced objects of a text (skipping quoted strings) and
whether an unbalanced one was seen. ``decode`` decodes one: strict JSON first, then without
trailing commas, then with raw control characters inside strings, then as a Python literal
(literal nodes only, nothing is evaluated); the repairs it returns say which fallback was needed.
Decoded objects remember keys the answer repeated (``DecodedObject.duplicate_keys``).
"""

from __future__ import annotations

import ast
import json
from typing import Any

# Bounds the work on adversarial answers full of unmatched "{".
MAX_UNBALANCED_STARTS = 8
MAX_CANDIDATES = 64
MAX_LITERAL_DEPTH = 32
QUOTE_OPENERS = "{[,:"


def shorten(raw: str, limit: int = 40) -> str:
    """``raw``, cut to ``limit`` characters with an ellipsis (to quote it in a reason)."""
    return raw if len(raw) <= limit else raw[:limit] + "…"


def object_spans(text: str) -> tuple[list[str], bool]:
    """Return the top-level balanced ``{...}`` substrings and whether an unbalanced one was seen."""
    spans: list[str] = []
    saw_unbalanced = False
    unbalanced_starts = 0
    position = text.find("{")
    while position != -1 and len(spans) < MAX_CANDIDATES:
        end = _matching_brace(text, position)
        if end is None:
            saw_unbalanced = True
            unbalanced_starts += 1
            if unbalanced_starts >= MAX_UNBALANCED_STARTS:
                break
            position = text.find("{", position + 1)
            continue
        spans.append(text[position : end + 1])
        position = text.find("{", end + 1)
    return spans, saw_unbalanced


def _matching_brace(text: str, start: int) -> int | None:
    """Index of the brace closing the one at ``start``, skipping quoted strings; None if none.

    A single quote opens a string only where a Python literal could start one (after ``{[,:``),
    so apostrophes in prose inside an object do not hide its closing brace.
    """
    depth = 0
    quote: str | None = None
    previous_significant = ""
    index = start
    length = len(text)
    while index < length:
        char = text[index]
        if quote is not None:
            if char == "\\":
                index += 2
                continue
            if char == quote:
                quote = None
                previous_significant = char
        elif char == '"' or (char == "'" and previous_significant in QUOTE_OPENERS):
            quote = char
        elif char == "{":
            depth += 1
            previous_significant = char
        elif char == "}":
            depth -= 1
            if depth == 0:
                return index
            previous_significant = char
        elif not char.isspace():
            previous_significant = char
        index += 1
    return None


class DecodeError(Exception):
    pass


class DecodedObject(dict):
    """A decoded JSON object that remembers keys the answer repeated (dicts would drop them)."""

    duplicate_keys: tuple[Any, ...] = ()


def _object_from_pairs(pairs: list[tuple[Any, Any]]) -> DecodedObject:
    obj = DecodedObject()
    duplicates = []
    for key, value in pairs:
        if key in obj:
            duplicates.append(key)
        obj[key] = value
    if duplicates:
        obj.duplicate_keys = tuple(duplicates)
    return obj


def decode(candidate: str) -> tuple[Any, tuple[str, ...]]:
    """Decode a ``{...}`` candidate; the repairs say which fallback was needed."""
    try:
        return json.loads(candidate, object_pairs_hook=_object_from_pairs), ()
    except (ValueError, RecursionError) as exc:
        json_error = exc
    without_commas = _without_trailing_commas(candidate)
    if without_commas != candidate:
        try:
            decoded = json.loads(without_commas, object_pairs_hook=_object_from_pairs)
            return decoded, ("removed trailing comma",)
        except (ValueError, RecursionError):
            pass
    try:
        decoded = json.loads(candidate, object_pairs_hook=_object_from_pairs, strict=False)
        return decoded, ("accepted raw control characters (newlines) inside a string",)
    except (ValueError, RecursionError):
        pass
    try:
        return _python_literal(candidate), ("parsed Python-style literal",)
    except DecodeError:
        pass
    raise DecodeError(shorten(str(json_error), 120))


def _without_trailing_commas(candidate: str) -> str:
    pieces: list[str] = []
    in_string = False
    index = 0
    length = len(candidate)
    while index < length:
        char = candidate[index]
        if in_string:
            if char == "\\":
                pieces.append(candidate[index : index + 2])
                index += 2
                continue
            if char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == ",":
            lookahead = index + 1
            while lookahead < length and candidate[lookahead].isspace():
                lookahead += 1
            if lookahead < length and candidate[lookahead] in "}]":
                index += 1
                continue
        pieces.append(char)
        index += 1
    return "".join(pieces)


def _python_literal(candidate: str) -> Any:
    try:
        tree = ast.parse(candidate.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError) as exc:
        raise DecodeError(str(exc)) from None
    if not isinstance(tree.body, ast.Dict):
        raise DecodeError("not a dict literal")
    return _literal_value(tree.body, 0)


def _literal_value(node: ast.AST, depth: int) -> Any:
    """Convert literal-only AST nodes; anything that would need evaluation is rejected."""
    if depth > MAX_LITERAL_DEPTH:
        raise DecodeError("literal nested too deeply")
    if isinstance(node, ast.Constant):
        if isinstance(node.value, str | int | float | bool) or node.value is None:
            return node.value
        raise DecodeError(f"unsupported constant {type(node.value).__name__}")
    if (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, ast.USub | ast.UAdd)
        and isinstance(node.operand, ast.Constant)
        and isinstance(node.operand.value, int | float)
        and not isinstance(node.operand.value, bool)
    ):
        value = node.operand.value
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.Dict):
        pairs = []
        for key_node, value_node in zip(node.keys, node.values, strict=True):
            if key_node is None:
                raise DecodeError("dict unpacking is not a literal")
            key = _literal_value(key_node, depth + 1)
            if not isinstance(key, str | int | float | bool) and key is not None:
                raise DecodeError("unhashable dict key")
            pairs.append((key, _literal_value(value_node, depth + 1)))
        return _object_from_pairs(pairs)
    if isinstance(node, ast.List | ast.Tuple):
        return [_literal_value(element, depth + 1) for element in node.elts]
    raise DecodeError(f"not a literal: {type(node).__name__}")
