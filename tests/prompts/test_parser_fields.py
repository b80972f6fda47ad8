"""Keys beside the labels, the stated answer, invalid JSON recovery and the tolerance's edge."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from prompts import REASONING_KEY, parse_distribution
from prompts.parser import ANSWER_FIELD_NAMES

ABCD = ["A", "B", "C", "D"]
REAL_STYLE = (
    '{"Reasoning": "The passage says ...", "Answer": "C", '
    '"A": 0.05, "B": 0.05, "C": 0.85, "D": 0.05}'
)


def test_other_keys_are_ignored_and_named_when_every_label_is_present():
    result = parse_distribution(REAL_STYLE, ABCD)
    assert result.status == "repaired"
    assert result.as_list() == pytest.approx([0.05, 0.05, 0.85, 0.05], abs=1e-15)
    assert result.repairs == ("ignored keys 'Reasoning', 'Answer'",)
    assert result.reasoning == "The passage says ..."
    assert (result.answer_label, result.answer_agrees) == ("C", True)


def test_our_own_reasoning_key_is_expected_and_no_repair():
    answer = json.dumps(
        {REASONING_KEY: "step 1 ... step 2 ...", "A": 0.1, "B": 0.2, "C": 0.3, "D": 0.4}
    )
    result = parse_distribution(answer, ABCD)
    assert (result.status, result.repairs) == ("ok", ())
    assert result.reasoning == "step 1 ... step 2 ..."
    assert result.answer_agrees is None


@pytest.mark.parametrize(
    "extra",
    [{"confidence": 0.9}, {"meta": {"A": 1.0}}, {"notes": [1, 2]}, {"flag": True}, {"x": None}],
)
def test_ignored_values_never_change_the_distribution(extra):
    answer = json.dumps({"A": 0.1, "B": 0.2, "C": 0.3, "D": 0.4, **extra})
    result = parse_distribution(answer, ABCD)
    assert result.as_list() == pytest.approx([0.1, 0.2, 0.3, 0.4], abs=1e-15)
    assert result.repairs == (f"ignored keys {next(iter(extra))!r}",)


def test_unknown_keys_fail_while_a_label_is_missing():
    result = parse_distribution('{"A": 0.5, "B": 0.5, "Cc": 0.0}', ["A", "B", "C"])
    assert result.status == "failed" and result.reason == "unknown labels: 'Cc'"
    filled = parse_distribution(
        '{"answer": "A", "reasoning": "r", "A": 1}', ["A", "B"], missing_labels="fill_zero"
    )
    assert filled.as_list() == [1.0, 0.0] and filled.answer_agrees is True


@pytest.mark.parametrize(
    ("field", "value", "label", "agrees"),
    [
        ("Answer", "A", "A", False),
        ("answer", "c", "C", True),
        ("LABEL", " (C). ", "C", True),
        ("prediction", "C", "C", True),
        ("final_answer", "B", "B", False),
        ("Answer", "E", None, None),
        ("Answer", "The answer is C", None, None),
        ("Answer", 3, None, None),
    ],
)
def test_a_stated_answer_is_checked_against_the_argmax(field, value, label, agrees):
    answer = json.dumps({field: value, "A": 0.1, "B": 0.1, "C": 0.7, "D": 0.1})
    result = parse_distribution(answer, ABCD)
    assert result.as_list() == pytest.approx([0.1, 0.1, 0.7, 0.1])
    assert (result.answer_label, result.answer_agrees) == (label, agrees)


def test_a_label_tied_for_the_maximum_agrees():
    answer = '{"Answer": "B", "A": 0.4, "B": 0.4, "C": 0.1, "D": 0.1}'
    assert parse_distribution(answer, ABCD).answer_agrees is True


def test_the_wrappers_answer_is_checked_against_the_nested_distribution():
    answer = '{"label": "spam", "probabilities": {"spam": 0.2, "ham": 0.8}}'
    result = parse_distribution(answer, ["spam", "ham"])
    assert result.as_list() == pytest.approx([0.2, 0.8])
    assert (result.answer_label, result.answer_agrees) == ("spam", False)


def test_answer_field_names_are_variants_of_themselves():
    assert {"answer", "label", "prediction"} <= ANSWER_FIELD_NAMES


# --- invalid JSON ------------------------------------------------------------------------------

UNESCAPED = (
    '{"Reasoning": "The author calls it "a new law" and\n"the" end.", "Answer": "B",\n'
    '"A": 0.1, "B": 0.6, "C": 0.2, "D": 0.1}'
)


def test_unescaped_quotes_are_recovered_from_the_label_pairs():
    result = parse_distribution(UNESCAPED, ABCD)
    assert result.status == "repaired"
    assert result.as_list() == pytest.approx([0.1, 0.6, 0.2, 0.1])
    assert result.repairs[0].startswith("recovered the label values from invalid JSON")
    assert (result.answer_label, result.answer_agrees) == ("B", True)


def test_unquoted_reasoning_and_answer_are_recovered():
    answer = (
        '{\n"Reasoning": The passage is about "x",\n"Answer": D,\n'
        '"A": 0.1,\n"B": "0.2",\n"C": 0.2,\n"D": 0.5\n}'
    )
    result = parse_distribution(answer, ABCD)
    assert result.as_list() == pytest.approx([0.1, 0.2, 0.2, 0.5])
    assert "converted numeric string '0.2' for 'B'" in result.repairs
    assert result.answer_label == "D"


def test_raw_newlines_inside_a_string_are_accepted():
    answer = '{"reasoning": "line one\nline two", "A": 0.25, "B": 0.25, "C": 0.25, "D": 0.25}'
    result = parse_distribution(answer, ABCD)
    assert result.status == "repaired" and result.reasoning == "line one\nline two"
    assert result.repairs == ("accepted raw control characters (newlines) inside a string",)


@pytest.mark.parametrize(
    "answer",
    [
        # A label pair twice (here once inside the broken reasoning): nothing is guessed.
        '{"Reasoning": "maybe, "A": 0.9, surely", "A": 0.1, "B": 0.6, "C": 0.2, "D": 0.1}',
        # A label missing from the pairs.
        '{"Reasoning": "the "x" one", "A": 0.1, "B": 0.6, "C": 0.3}',
        # A value that is no number.
        '{"Reasoning": "the "x" one", "A": 0.1, "B": high, "C": 0.2, "D": 0.1}',
    ],
)
def test_invalid_json_without_exactly_one_pair_per_label_fails(answer):
    assert parse_distribution(answer, ABCD).status == "failed"


# --- what fails --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "fragment"),
    [
        ("I'm sorry, but I can't help with that.", "no JSON object found"),
        ("The answer is C with probability 0.85.", "no JSON object found"),
        ('{"Reasoning": "The passage begins by describing how the', "truncated"),
        ('{"A": 0.1, "B": 0.6, "C": 0.2, "D": 0.1, "Reasoning": "cut o', "truncated"),
    ],
)
def test_refusals_prose_and_cut_off_answers_fail_with_a_clear_reason(answer, fragment):
    result = parse_distribution(answer, ABCD)
    assert result.status == "failed" and fragment in result.reason


# --- the tolerance's edge ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "passes"),
    [
        ([0.75, 0.2], True),  # 0.95: abs(0.95 - 1) is 0.050000000000000044 in floats
        ([0.5, 0.55], True),  # 1.05
        ([0.5, 0.4499], False),
        ([0.5, 0.5501], False),
    ],
)
def test_sums_on_the_tolerance_edge_pass(values, passes):
    labels = ["x", "y"]
    result = parse_distribution(json.dumps(dict(zip(labels, values, strict=True))), labels)
    assert result.succeeded is passes


def test_the_papers_real_edge_sums_pass():
    for answer in (
        '{"A": 0.75, "B": 0.2, "C": 0.0, "D": 0.0}',
        '{"A": 0.8, "B": 0.1, "C": 0.05, "D": 0.05, "E": 0.05}',
    ):
        labels = sorted(json.loads(answer))
        result = parse_distribution(answer, labels)
        assert result.status == "repaired", result
        assert sum(result.as_list()) == pytest.approx(1, abs=1e-12)
    assert parse_distribution('{"A": 94.99, "B": 0}', ["A", "B"]).status == "failed"
    assert parse_distribution('{"A": 95, "B": 0}', ["A", "B"]).status == "repaired"


# --- properties --------------------------------------------------------------------------------

extra_keys = st.dictionaries(
    st.text(min_size=1, max_size=12).filter(lambda key: key.strip().casefold() not in "abcd"),
    st.one_of(st.text(max_size=20), st.floats(allow_nan=False), st.integers(), st.none()),
    max_size=4,
)


@given(
    st.lists(st.integers(min_value=0, max_value=100), min_size=4, max_size=4).filter(
        lambda weights: sum(weights) > 0
    ),
    extra_keys,
)
def test_extra_keys_never_change_a_valid_distribution(weights, extra):
    total = sum(weights)
    values = {label: weight / total for label, weight in zip(ABCD, weights, strict=True)}
    plain = parse_distribution(json.dumps(values), ABCD)
    with_extra = parse_distribution(json.dumps({**extra, **values}), ABCD)
    assert with_extra.probabilities == plain.probabilities


@given(st.text(alphabet='{}":,. ABCD0123456789abc\n', max_size=80))
def test_recovery_never_invents_a_label_value(answer):
    result = parse_distribution(answer, ABCD)
    if result.succeeded:
        for label in ABCD:
            assert f'"{label}"' in answer
