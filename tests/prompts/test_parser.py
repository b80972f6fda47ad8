"""The tolerant parser of LLM answers: a table of realistic answers plus properties."""

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from prompts import ParseResult, parse_distribution

LABELS = ["billing", "technical", "account"]
SPAM = ["spam", "not spam"]
UNICODE = ["café", "日本語", "naïve"]

CLEAN = '{"billing": 0.7, "technical": 0.2, "account": 0.1}'
CLEAN_PROBS = {"billing": 0.7, "technical": 0.2, "account": 0.1}
OTHER = '{"billing": 0.1, "technical": 0.8, "account": 0.1}'


def approx(probabilities: dict[str, float]):
    return pytest.approx(probabilities, rel=1e-12, abs=1e-15)


def renormalized(values: dict[str, float]):
    total = sum(values.values())
    return approx({label: value / total for label, value in values.items()})


def row(answer, expected_status, expected=None, fragment=None, *, labels=LABELS, id, **options):
    """One table row: answer, labels, parser options, status, probabilities, key substring."""
    return pytest.param(answer, labels, options, expected_status, expected, fragment, id=id)


ROWS = [
    # --- clean answers
    row(CLEAN, "ok", CLEAN_PROBS, id="clean-json"),
    row(
        '{"billing":1,"technical":0,"account":0}',
        "ok",
        {"billing": 1.0, "technical": 0.0, "account": 0.0},
        id="compact-integers",
    ),
    row(
        '{"account": 0.1, "billing": 0.7, "technical": 0.2}',
        "ok",
        CLEAN_PROBS,
        id="keys-in-another-order",
    ),
    row(
        '{\n  "billing": 0.7,\n  "technical": 0.2,\n  "account": 0.1\n}',
        "ok",
        CLEAN_PROBS,
        id="pretty-printed",
    ),
    row(
        '{"billing": 0.998, "technical": 1e-3, "account": 1E-3}',
        "ok",
        {"billing": 0.998, "technical": 0.001, "account": 0.001},
        id="scientific-notation",
    ),
    row(
        '{"billing": 0.5, "technical": 0.5, "account": -0.0}',
        "ok",
        {"billing": 0.5, "technical": 0.5, "account": 0.0},
        id="negative-zero",
    ),
    row(
        '{"billing": 0.7, "technical": 0.2, "account": 0.1000001}',
        "ok",
        approx(
            {
                "billing": 0.7 / 1.0000001,
                "technical": 0.2 / 1.0000001,
                "account": 0.1000001 / 1.0000001,
            }
        ),
        id="float-rounding-sum-is-not-a-repair",
    ),
    # --- JSON in prose or fences (not a repair)
    row(f"```json\n{CLEAN}\n```", "ok", CLEAN_PROBS, id="fenced-json"),
    row(f"```\n{CLEAN}\n```", "ok", CLEAN_PROBS, id="fenced-without-language"),
    row(
        f"Here is my answer:\n```json\n{CLEAN}\n```\nHope this helps!",
        "ok",
        CLEAN_PROBS,
        id="fence-with-prose-around",
    ),
    row(f"Here is the distribution: {CLEAN}", "ok", CLEAN_PROBS, id="prose-before"),
    row(f"{CLEAN}\nLet me know if you need anything else.", "ok", CLEAN_PROBS, id="prose-after"),
    row(
        "The customer mentions an invoice and a double charge, so billing is the most likely "
        "label. I'm fairly confident, but it could be an account issue.\n\n" + CLEAN,
        "ok",
        CLEAN_PROBS,
        id="reasoning-then-json",
    ),
    row(
        "The labels are {billing, technical, account}. Answer: " + CLEAN,
        "ok",
        CLEAN_PROBS,
        id="braces-in-prose-before-json",
    ),
    row(
        "It's clearly about money, I'd say.\n" + CLEAN + "\nThat's my final answer.",
        "ok",
        CLEAN_PROBS,
        id="apostrophes-in-prose",
    ),
    row(
        '{"label": "billing", "confidence": 0.7}\n' + CLEAN,
        "ok",
        CLEAN_PROBS,
        id="reasoning-object-then-distribution",
    ),
    row(f"{CLEAN}\nAs JSON once more: {CLEAN}", "ok", CLEAN_PROBS, id="two-objects-agreeing"),
    row(
        f"First guess: {OTHER}\nOn reflection: {CLEAN}",
        "failed",
        None,
        "ambiguous",
        id="two-objects-disagreeing",
    ),
    row(
        'Partial: {"billing": 0.9}\nFull: ' + CLEAN,
        "ok",
        CLEAN_PROBS,
        id="partial-object-then-full-one",
    ),
    row(
        'Partial: {"billing": 0.9}\nFull: ' + CLEAN,
        "ok",
        CLEAN_PROBS,
        missing_labels="fill_zero",
        id="complete-object-preferred-over-filled-one",
    ),
    # --- decoding repairs
    row(
        "{'billing': 0.7, 'technical': 0.2, 'account': 0.1}",
        "repaired",
        CLEAN_PROBS,
        "Python-style literal",
        id="single-quotes",
    ),
    row(
        "{'billing': 0.7, \"technical\": 0.2, 'account': 0.1,}",
        "repaired",
        CLEAN_PROBS,
        "Python-style literal",
        id="mixed-quotes-trailing-comma",
    ),
    row(
        '{"billing": 0.7, "technical": 0.2, "account": 0.1,}',
        "repaired",
        CLEAN_PROBS,
        "removed trailing comma",
        id="trailing-comma",
    ),
    row(
        '```json\n{\n  "billing": 0.7,\n  "technical": 0.2,\n  "account": 0.1,\n}\n```',
        "repaired",
        CLEAN_PROBS,
        "removed trailing comma",
        id="trailing-comma-fenced",
    ),
    row(
        "{'billing': True, 'technical': False, 'account': False}",
        "failed",
        None,
        "value for 'billing' is a boolean",
        id="python-dict-with-true",
    ),
    row(
        "{'billing': None, 'technical': 0.9, 'account': 0.1}",
        "failed",
        None,
        "value for 'billing' is null",
        id="python-none",
    ),
    row(
        "{'billing': nan, 'technical': 0.9, 'account': 0.1}",
        "failed",
        None,
        "could not parse",
        id="python-bare-nan",
    ),
    row(
        "{'billing': __import__('os').getcwd(), 'technical': 1}",
        "failed",
        None,
        "could not parse",
        id="python-code-is-never-evaluated",
    ),
    row(
        '{"billing": 0.7, // most likely\n "technical": 0.3, "account": 0}',
        "failed",
        None,
        "could not parse",
        id="json-with-comments",
    ),
    # --- label variants
    row(
        '{"Billing": 0.7, "TECHNICAL": 0.2, "account": 0.1}',
        "repaired",
        CLEAN_PROBS,
        "mapped label 'Billing' → 'billing'",
        id="case-variants",
    ),
    row(
        '{" billing ": 0.7, "technical": 0.2, "account": 0.1}',
        "repaired",
        CLEAN_PROBS,
        "mapped label ' billing ' → 'billing'",
        id="whitespace-variant",
    ),
    row(
        '{"billing": 0.5, "Billing": 0.3, "technical": 0.1, "account": 0.1}',
        "failed",
        None,
        "keys 'billing' and 'Billing' both map to label 'billing'",
        id="two-keys-one-label",
    ),
    row(
        '{"billing": 0.5, "billing": 0.3, "technical": 0.1, "account": 0.1}',
        "failed",
        None,
        "duplicate key 'billing'",
        id="duplicate-exact-keys",
    ),
    row(
        '{"spam": 0.1, "not spam": 0.9}',
        "ok",
        {"spam": 0.1, "not spam": 0.9},
        labels=SPAM,
        id="label-with-space",
    ),
    row(
        '{"spam": 0.1, "not_spam": 0.9}',
        "repaired",
        {"spam": 0.1, "not spam": 0.9},
        "mapped label 'not_spam' → 'not spam'",
        labels=SPAM,
        id="underscore-for-space",
    ),
    row(
        '{"SPAM": 0.1, "Not-Spam": 0.9}',
        "repaired",
        {"spam": 0.1, "not spam": 0.9},
        "mapped label 'Not-Spam' → 'not spam'",
        labels=SPAM,
        id="hyphen-and-case",
    ),
    row(
        '{"spam": 0.1, "notspam": 0.9}',
        "failed",
        None,
        "unknown labels: 'notspam'",
        labels=SPAM,
        id="joined-words-are-not-a-variant",
    ),
    row(
        '{"café": 0.5, "日本語": 0.25, "naïve": 0.25}',
        "ok",
        {"café": 0.5, "日本語": 0.25, "naïve": 0.25},
        labels=UNICODE,
        id="unicode-labels",
    ),
    row(
        '{"caf\\u00e9": 0.5, "\\u65e5\\u672c\\u8a9e": 0.25, "na\\u00efve": 0.25}',
        "ok",
        {"café": 0.5, "日本語": 0.25, "naïve": 0.25},
        labels=UNICODE,
        id="unicode-labels-escaped",
    ),
    row(
        '{"CAFÉ": 0.5, "日本語": 0.25, "NAÏVE": 0.25}',
        "repaired",
        {"café": 0.5, "日本語": 0.25, "naïve": 0.25},
        "mapped label 'CAFÉ' → 'café'",
        labels=UNICODE,
        id="unicode-case-variant",
    ),
    row(
        '{"BILLING": 1.0}',
        "failed",
        None,
        "matches several labels",
        labels=["Billing", "billing"],
        id="variant-matching-two-task-labels",
    ),
    row(
        '{"Billing": 0.4, "billing": 0.6}',
        "ok",
        {"Billing": 0.4, "billing": 0.6},
        labels=["Billing", "billing"],
        id="task-labels-differing-by-case",
    ),
    # --- numbers in strings and percentages
    row(
        '{"billing": "0.7", "technical": "0.2", "account": "0.1"}',
        "repaired",
        CLEAN_PROBS,
        "converted numeric string '0.7' for 'billing'",
        id="numeric-strings",
    ),
    row(
        '{"billing": "70%", "technical": "20%", "account": "10%"}',
        "repaired",
        CLEAN_PROBS,
        "converted percentage string '70%' for 'billing'",
        id="percentage-strings",
    ),
    row(
        '{"billing": "70 %", "technical": " 20% ", "account": "10%"}',
        "repaired",
        CLEAN_PROBS,
        "percentage string",
        id="percentage-strings-with-spaces",
    ),
    row(
        '{"billing": 70, "technical": 20, "account": 10}',
        "repaired",
        CLEAN_PROBS,
        "interpreted values as percentages (sum 100)",
        id="percentages-summing-to-100",
    ),
    row(
        '{"billing": 70.5, "technical": 19.5, "account": 10}',
        "repaired",
        {"billing": 0.705, "technical": 0.195, "account": 0.1},
        "percentages",
        id="decimal-percentages",
    ),
    row(
        '{"billing": 70, "technical": 20, "account": 8}',
        "repaired",
        renormalized({"billing": 70, "technical": 20, "account": 8}),
        "interpreted values as percentages (sum 98)",
        id="percentages-summing-to-98",
    ),
    row(
        '{"billing": 60, "technical": 20, "account": 10}',
        "failed",
        None,
        "sum to 90",
        id="percentages-summing-to-90",
    ),
    row('{"billing": 1, "technical": 1, "account": 1}', "failed", None, "sum to 3", id="all-ones"),
    # --- sums
    row(
        '{"billing": 0.7, "technical": 0.2, "account": 0.07}',
        "repaired",
        renormalized({"billing": 0.7, "technical": 0.2, "account": 0.07}),
        "renormalized sum 0.97",
        id="sum-0.97",
    ),
    row(
        '{"billing": 0.7, "technical": 0.2, "account": 0.13}',
        "repaired",
        renormalized({"billing": 0.7, "technical": 0.2, "account": 0.13}),
        "renormalized sum 1.03",
        id="sum-1.03",
    ),
    row(
        '{"billing": 0.3, "technical": 0.1, "account": 0.1}',
        "failed",
        None,
        "probabilities sum to 0.5, outside the tolerance [0.95, 1.05]",
        id="sum-0.5",
    ),
    row(
        '{"billing": 0.9, "technical": 0.4, "account": 0.2}',
        "failed",
        None,
        "sum to 1.5",
        id="sum-1.5",
    ),
    row(
        '{"billing": 0.7, "technical": 0.15, "account": 0.07}',
        "repaired",
        renormalized({"billing": 0.7, "technical": 0.15, "account": 0.07}),
        "renormalized sum 0.92",
        sum_tolerance=0.1,
        id="sum-0.92-with-wider-tolerance",
    ),
    row(
        '{"billing": 0.7, "technical": 0.2, "account": 0.07}',
        "failed",
        None,
        "sum to 0.97",
        sum_tolerance=0.0,
        id="sum-0.97-with-zero-tolerance",
    ),
    row(
        '{"billing": 0, "technical": 0, "account": 0}',
        "failed",
        None,
        "all probabilities are zero",
        id="all-zero",
    ),
    row(
        '{"billing": 0}',
        "failed",
        None,
        "all probabilities are zero",
        missing_labels="fill_zero",
        id="all-zero-after-filling",
    ),
    # --- missing and extra labels
    row(
        '{"billing": 0.8, "technical": 0.2}',
        "failed",
        None,
        "missing labels: 'account'",
        id="missing-label-fails-by-default",
    ),
    row(
        '{"billing": 0.8, "technical": 0.2}',
        "repaired",
        {"billing": 0.8, "technical": 0.2, "account": 0.0},
        "filled missing labels with 0: 'account'",
        missing_labels="fill_zero",
        id="missing-label-filled",
    ),
    row(
        '{"billing": 1.0}',
        "repaired",
        {"billing": 1.0, "technical": 0.0, "account": 0.0},
        "filled missing labels with 0: 'technical', 'account'",
        missing_labels="fill_zero",
        id="two-missing-labels-filled",
    ),
    row(
        '{"billing": 0.6, "technical": 0.2, "account": 0.1, "other": 0.1}',
        "failed",
        None,
        # "other" is ignored as every label is present; the labels' own sum then fails.
        "probabilities sum to 0.9",
        id="extra-key-beside-all-labels",
    ),
    row(
        '{"billing": 0.8, "other": 0.2}',
        "failed",
        None,
        "unknown labels: 'other'",
        missing_labels="fill_zero",
        id="extra-label-with-missing-ones",
    ),
    row("{}", "failed", None, "no JSON object has the task's labels as keys", id="empty-object"),
    # --- invalid values
    row(
        '{"billing": 0.7, "technical": -0.1, "account": 0.4}',
        "failed",
        None,
        "value for 'technical' is negative (-0.1)",
        id="negative",
    ),
    row(
        '{"billing": NaN, "technical": 0.5, "account": 0.5}',
        "failed",
        None,
        "value for 'billing' is not finite (nan)",
        id="json-nan",
    ),
    row(
        '{"billing": Infinity, "technical": 0, "account": 0}',
        "failed",
        None,
        "value for 'billing' is not finite (inf)",
        id="json-infinity",
    ),
    row(
        '{"billing": "Infinity", "technical": 0, "account": 0}',
        "failed",
        None,
        "value for 'billing' is not finite",
        id="infinity-string",
    ),
    row(
        '{"billing": 1e400, "technical": 0, "account": 0}',
        "failed",
        None,
        "value for 'billing' is not finite",
        id="overflowing-number",
    ),
    row(
        '{"billing": null, "technical": 0.5, "account": 0.5}',
        "failed",
        None,
        "value for 'billing' is null",
        id="null-value",
    ),
    row(
        '{"billing": true, "technical": false, "account": false}',
        "failed",
        None,
        "value for 'billing' is a boolean",
        id="json-booleans",
    ),
    row(
        '{"billing": "high", "technical": "low", "account": "low"}',
        "failed",
        None,
        "value for 'billing' is not a number: 'high'",
        id="words-as-values",
    ),
    row(
        '{"billing": {"p": 0.7}, "technical": 0.2, "account": 0.1}',
        "failed",
        None,
        "value for 'billing' is not a number but an object",
        id="object-as-value",
    ),
    row(
        '{"billing": [0.7], "technical": 0.2, "account": 0.1}',
        "failed",
        None,
        "value for 'billing' is not a number but an array",
        id="array-as-value",
    ),
    # --- wrappers
    row(
        '{"probabilities": ' + CLEAN + "}",
        "repaired",
        CLEAN_PROBS,
        "used the nested object under 'probabilities'",
        id="nested-probabilities",
    ),
    row(
        '{"label": "billing", "confidence": 0.7, "probabilities": ' + CLEAN + "}",
        "repaired",
        CLEAN_PROBS,
        "used the nested object under 'probabilities'",
        id="label-confidence-probabilities",
    ),
    row(
        '{"answer": {"distribution": ' + CLEAN + "}}",
        "repaired",
        CLEAN_PROBS,
        "used the nested object under 'answer.distribution'",
        id="doubly-nested",
    ),
    row(
        '{"reasoning": "the {invoice} says \\"refund\\"", "probabilities": ' + CLEAN + "}",
        "repaired",
        CLEAN_PROBS,
        "nested object",
        id="braces-and-quotes-in-reasoning-string",
    ),
    row(
        '{"probabilities": {"billing": 0.3, "technical": 0.1, "account": 0.1}}',
        "failed",
        None,
        "sum to 0.5",
        id="nested-with-bad-sum",
    ),
    row(
        '{"probabilities": [0.7, 0.2, 0.1]}',
        "failed",
        None,
        "no JSON object has the task's labels as keys (keys seen: 'probabilities')",
        id="nested-array",
    ),
    # --- no usable answer
    row("", "failed", None, "empty answer", id="empty-string"),
    row("   \n\t ", "failed", None, "empty answer", id="whitespace-only"),
    row(
        '{"billing": 0.7, "technical": 0.2, "acc', "failed", None, "truncated", id="truncated-json"
    ),
    row(
        '```json\n{"billing": 0.7, "technical":',
        "failed",
        None,
        "truncated",
        id="truncated-in-fence",
    ),
    row("[0.7, 0.2, 0.1]", "failed", None, "a JSON array is not accepted", id="json-array"),
    row(
        '[{"label": "billing", "probability": 0.7}, {"label": "technical", "probability": 0.3}]',
        "failed",
        None,
        "no JSON object has the task's labels as keys",
        id="array-of-records",
    ),
    row("I'm sorry, I can't help with that.", "failed", None, "no JSON object found", id="refusal"),
    row("billing", "failed", None, "no JSON object found", id="bare-label"),
    row(
        "billing: 0.7, technical: 0.2, account: 0.1",
        "failed",
        None,
        "no JSON object found",
        id="key-value-prose",
    ),
]


@pytest.mark.parametrize(
    ("answer", "labels", "options", "expected_status", "expected", "fragment"), ROWS
)
def test_realistic_answers(answer, labels, options, expected_status, expected, fragment):
    result = parse_distribution(answer, labels, **options)
    assert result.status == expected_status, result
    assert result.probabilities == expected
    if expected is not None:
        assert list(result.probabilities) == labels
        assert result.reason is None
        assert (result.status == "repaired") == bool(result.repairs)
    else:
        assert result.reason
    if fragment is not None:
        messages = (result.reason or "", *result.repairs)
        assert any(fragment in message for message in messages), result
    assert_invariants(result, labels)


def test_the_table_is_large():
    assert len(ROWS) >= 60


def test_as_list_follows_label_order():
    result = parse_distribution('{"account": 0.1, "technical": 0.2, "billing": 0.7}', LABELS)
    assert result.as_list() == [0.7, 0.2, 0.1]
    assert result.succeeded
    failed = parse_distribution("nope", LABELS)
    assert failed.as_list() is None
    assert not failed.succeeded


def test_parse_result_is_frozen():
    result = parse_distribution(CLEAN, LABELS)
    with pytest.raises(AttributeError):
        result.status = "failed"  # type: ignore[misc]


def test_answer_that_is_not_a_string_fails():
    result = parse_distribution(None, LABELS)  # type: ignore[arg-type]
    assert result.status == "failed" and "not a string" in result.reason


def test_over_long_answer_fails_quickly():
    result = parse_distribution("{" * 300_000, LABELS)
    assert result.status == "failed" and "too long" in result.reason


def test_adversarial_unmatched_braces_stop_the_brace_search():
    # The brace matcher gives up after a few unmatched "{"; the one complete object behind them
    # is still found by the invalid-JSON recovery, whose label pairs each occur exactly once.
    result = parse_distribution("{ " * 90_000 + CLEAN, LABELS)
    assert result.status == "repaired"
    assert result.probabilities == pytest.approx(CLEAN_PROBS)
    assert any("recovered the label values" in repair for repair in result.repairs)
    truncated = parse_distribution("{ " * 90_000 + '"billing": 0.6', LABELS)
    assert truncated.status == "failed" and "truncated" in truncated.reason


@pytest.mark.parametrize(
    ("labels", "options"),
    [
        ([], {}),
        (["a", "a"], {}),
        ("ab", {}),
        ([1, 2], {}),
        (LABELS, {"missing_labels": "ignore"}),
        (LABELS, {"sum_tolerance": -0.1}),
        (LABELS, {"percent_tolerance": float("nan")}),
    ],
)
def test_invalid_arguments_raise_value_error(labels, options):
    with pytest.raises(ValueError):
        parse_distribution(CLEAN, labels, **options)


# --- properties -----------------------------------------------------------------------------------


def assert_invariants(result: ParseResult, labels: list[str]) -> None:
    assert result.status in ("ok", "repaired", "failed")
    if result.probabilities is None:
        assert result.status == "failed"
        assert isinstance(result.reason, str) and result.reason
        assert result.as_list() is None
        return
    assert result.status in ("ok", "repaired")
    assert result.reason is None
    assert list(result.probabilities) == list(labels)
    values = list(result.probabilities.values())
    assert all(isinstance(value, float) and math.isfinite(value) and value >= 0 for value in values)
    assert abs(math.fsum(values) - 1) <= 1e-9
    assert result.as_list() == values


label_names = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["billing", "Billing", "not spam", "not_spam", "é", "{", "}", '"', "'"]),
)
label_lists = st.lists(label_names, min_size=1, max_size=5, unique=True)
json_fragments = st.sampled_from(
    [
        "{",
        "}",
        "[",
        "]",
        '"',
        "'",
        ",",
        ":",
        " ",
        "\n",
        "\\",
        "0.5",
        "50",
        "%",
        "1e999",
        "-0.1",
        "NaN",
        "Infinity",
        "true",
        "null",
        "None",
        "billing",
        '"billing"',
        "'billing'",
        "```json",
        '"probabilities":',
        "0.25",
        "1",
        "0",
    ]
)
jsonish_texts = st.lists(st.one_of(json_fragments, st.text(max_size=4)), max_size=40).map("".join)


@given(answer=st.one_of(st.text(), jsonish_texts), labels=label_lists)
def test_never_raises_and_results_satisfy_the_invariants(answer, labels):
    assert_invariants(parse_distribution(answer, labels), labels)
    assert_invariants(parse_distribution(answer, labels, missing_labels="fill_zero"), labels)


@given(
    labels=label_lists,
    values=st.lists(
        st.one_of(
            st.floats(allow_nan=True, allow_infinity=True),
            st.integers(-5, 200),
            st.booleans(),
            st.none(),
            st.text(max_size=5),
            st.sampled_from(["70%", "0.5", " 1e-3 ", "-1%"]),
        ),
        min_size=1,
        max_size=5,
    ),
    data=st.data(),
)
def test_any_object_of_label_keys_gives_a_valid_result_or_a_failure(labels, values, data):
    keys = [data.draw(st.sampled_from([*labels, "extra", " X "])) for _ in values]
    answer = json.dumps(dict(zip(keys, values, strict=True)))
    assert_invariants(parse_distribution(answer, labels), labels)


@st.composite
def distributions(draw):
    labels = draw(label_lists)
    weights = draw(
        st.lists(
            st.floats(min_value=0.001, max_value=1000), min_size=len(labels), max_size=len(labels)
        )
    )
    total = math.fsum(weights)
    return {label: weight / total for label, weight in zip(labels, weights, strict=True)}


@given(distribution=distributions(), ensure_ascii=st.booleans())
def test_a_dumped_valid_distribution_parses_ok_with_identical_values(distribution, ensure_ascii):
    labels = list(distribution)
    answer = json.dumps(distribution, ensure_ascii=ensure_ascii)
    result = parse_distribution(answer, labels)
    assert result.status == "ok", result
    assert result.probabilities == distribution
    assert result.repairs == ()


@given(distribution=distributions(), prose=st.sampled_from(["Sure! ", "Answer:\n```json\n"]))
def test_prose_around_a_valid_distribution_does_not_change_it(distribution, prose):
    answer = prose + json.dumps(distribution) + "\n```\nThat is my estimate."
    result = parse_distribution(answer, list(distribution))
    assert result.status == "ok", result
    assert result.probabilities == distribution
