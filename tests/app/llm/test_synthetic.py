"""The synthetic ticket dataset: deterministic, and its posterior is the generator's."""

from __future__ import annotations

import re

import numpy as np
import pytest

from app.llm import synthetic
from app.llm.synthetic import TICKET_LABELS, generate_examples, posterior


def test_same_seed_same_examples_other_seed_other_examples():
    assert generate_examples(50, seed=3) == generate_examples(50, seed=3)
    assert [e.text for e in generate_examples(50, seed=3)] != [
        e.text for e in generate_examples(50, seed=4)
    ]


def test_texts_have_four_to_twelve_vocabulary_words():
    for example in generate_examples(300, seed=1):
        count = sum(synthetic.vocabulary_counts(example.text).values())
        assert 4 <= count <= 12, example.text


def test_filler_words_are_not_vocabulary_words():
    fillers = " ".join(synthetic._OPENERS + synthetic._JOINERS + synthetic._CLOSERS)
    assert not synthetic.vocabulary_counts(fillers)
    assert all(re.fullmatch(r"[a-z]+", word) for word in synthetic.VOCABULARY)
    assert 50 <= len(synthetic.VOCABULARY) <= 70


def test_posterior_from_text_alone_equals_generation_posterior_and_sums_to_one():
    for example in generate_examples(200, seed=2):
        recovered = posterior(example.text)
        assert recovered.sum() == pytest.approx(1.0, abs=1e-12)
        np.testing.assert_allclose(recovered, example.posterior, rtol=0, atol=1e-12)


def test_posterior_follows_the_requested_label_order_and_case():
    text = generate_examples(1, seed=5)[0].text
    base = posterior(text)
    reordered = posterior(text, ["Other", "ACCOUNT", "technical", "billing"])
    np.testing.assert_allclose(reordered, base[::-1])
    with pytest.raises(ValueError):
        posterior(text, ["spam", "ham"])


def test_text_without_vocabulary_words_gets_the_prior():
    np.testing.assert_allclose(posterior("Hello, lorem ipsum!"), synthetic.CLASS_PRIOR)


def test_bayes_accuracy_matches_expected_accuracy_of_the_posterior():
    examples = generate_examples(4000, seed=0)
    probabilities = np.array([e.posterior for e in examples])
    labels = np.array([TICKET_LABELS.index(e.label) for e in examples])
    accuracy = float(np.mean(probabilities.argmax(axis=1) == labels))
    expected = float(np.mean(probabilities.max(axis=1)))
    standard_error = np.sqrt(expected * (1 - expected) / len(examples))
    assert abs(accuracy - expected) < 4 * standard_error
    assert 0.6 < accuracy < 0.85  # classes overlap, but the words carry real evidence
    # The posterior is calibrated: the mean probability of each class matches its frequency.
    for k in range(len(TICKET_LABELS)):
        assert probabilities[:, k].mean() == pytest.approx(np.mean(labels == k), abs=0.025)
