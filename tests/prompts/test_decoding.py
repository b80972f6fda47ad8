"""Finding and decoding the objects of an answer (the parser's tests cover them through answers)."""

from __future__ import annotations

import pytest

from prompts.decoding import (
    MAX_CANDIDATES,
    DecodedObject,
    DecodeError,
    decode,
    object_spans,
    shorten,
)


def test_object_spans_are_top_level_and_skip_quoted_braces():
    text = 'a {"x": "}", "y": {"z": 1}} b {\'q\': 2} c'
    assert object_spans(text) == (['{"x": "}", "y": {"z": 1}}', "{'q': 2}"], False)


def test_an_apostrophe_in_prose_does_not_hide_the_closing_brace():
    assert object_spans("{it's fine} {") == (["{it's fine}"], True)


def test_object_spans_are_bounded():
    spans, unbalanced = object_spans("{}" * (MAX_CANDIDATES + 5))
    assert len(spans) == MAX_CANDIDATES and not unbalanced


@pytest.mark.parametrize(
    ("candidate", "expected", "repairs"),
    [
        ('{"a": 0.7, "b": 0.3}', {"a": 0.7, "b": 0.3}, ()),
        ('{"a": 0.7, "b": 0.3,}', {"a": 0.7, "b": 0.3}, ("removed trailing comma",)),
        (
            '{"r": "line\nbreak", "a": 1}',
            {"r": "line\nbreak", "a": 1},
            ("accepted raw control characters (newlines) inside a string",),
        ),
        ("{'a': -0.5, 'b': (1, 2)}", {"a": -0.5, "b": [1, 2]}, ("parsed Python-style literal",)),
    ],
)
def test_decode_falls_back_in_order_and_names_the_repair(candidate, expected, repairs):
    assert decode(candidate) == (expected, repairs)


def test_decoded_objects_remember_repeated_keys():
    obj, _ = decode('{"a": 0.1, "a": 0.9}')
    assert isinstance(obj, DecodedObject)
    assert obj == {"a": 0.9} and obj.duplicate_keys == ("a",)


@pytest.mark.parametrize("candidate", ["{'a': __import__('os')}", "{**x}", "{'a': 1 + 1}", "{"])
def test_anything_needing_evaluation_is_not_decoded(candidate):
    with pytest.raises(DecodeError):
        decode(candidate)


def test_shorten():
    assert shorten("abc", 3) == "abc"
    assert shorten("abcd", 3) == "abc…"
