"""The simulated LLM's generative model and answer styles (pure functions)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.llm.simulator import ANSWER_STYLES, format_answer, reasoning_for, round_to_grid
from app.llm.simulator.answers import runner_up, style_for

LABELS = ["billing", "technical", "account"]
VALUES = [0.7, 0.25, 0.05]


@given(
    st.lists(st.floats(0.0, 1.0), min_size=2, max_size=8).filter(lambda v: sum(v) > 1e-6),
    st.sampled_from([0.0, 0.01, 0.05, 0.1, 0.25]),
)
def test_rounding_keeps_a_distribution(values, grid):
    probabilities = np.array(values) / sum(values)
    rounded = round_to_grid(probabilities, grid)
    assert rounded.sum() == pytest.approx(1.0)
    assert np.all(rounded >= 0)
    assert rounded[np.argmax(probabilities)] > 0


def test_reasoning_names_the_top_label_and_the_runner_up():
    assert reasoning_for(LABELS, VALUES) == (
        "The text reads most like billing (70% sure); technical is still plausible."
    )
    assert reasoning_for(LABELS, VALUES, quoted=True) == (
        'The text reads most like "billing" (70% sure); "technical" is still plausible.'
    )
    assert reasoning_for(["a", "b"], [1.0, 0.0]) == "The text reads most like a (100% sure)."


def test_reasoning_flavour_puts_the_reasoning_key_first():
    answer = json.loads(format_answer(LABELS, VALUES, "json", 4, reasoning=True))
    assert list(answer) == ["reasoning", *LABELS]
    assert answer["reasoning"] == reasoning_for(LABELS, VALUES)
    assert list(json.loads(format_answer(LABELS, VALUES, "json", 4))) == LABELS


def test_corpus_style_answer_is_the_real_models_format():
    text = format_answer(LABELS, VALUES, "reasoning_answer", 4)
    assert text == (
        "{\n"
        '"Reasoning": "The text reads most like billing (70% sure); technical is still '
        'plausible.",\n'
        '"Answer": "billing",\n'
        '"billing": 0.7,\n"technical": 0.25,\n"account": 0.05\n'
        "}"
    )
    assert json.loads(text)["Answer"] == "billing"


def test_broken_quote_style_is_invalid_json_only_because_of_the_quotes():
    text = format_answer(LABELS, VALUES, "broken_quote", 4)
    assert '"Reasoning": "The text reads most like "billing" (70% sure)' in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    repaired = text.replace('"billing" (', '\\"billing\\" (').replace(
        '"technical" is', '\\"technical\\" is'
    )
    assert json.loads(repaired)["billing"] == 0.7


def test_stated_answer_can_name_the_runner_up():
    assert runner_up(LABELS, VALUES) == "technical"
    text = format_answer(LABELS, VALUES, "reasoning_answer", 4, stated_answer="technical")
    assert json.loads(text)["Answer"] == "technical"


def test_mixed_uses_every_style():
    seen = {style_for(f"text {i}", "mixed") for i in range(200)}
    assert seen == set(ANSWER_STYLES)
    assert style_for("anything", "fenced") == "fenced"
