"""The parser on 2,265 real answers of 11 LLMs (SAT-EN, tests/data/real-llm-sat-en, MIT licence).

The models were asked for ``{"Reasoning": ..., "Answer": ..., "A": p, ...}``; the data set's
authors read a distribution (``parsed``) from each answer where they could. Our parser must agree
with theirs on at least 98 % of those, and must never read a number out of an answer that holds
no JSON object at all.
"""

import json
from collections import Counter
from pathlib import Path

import pytest

from prompts import parse_distribution

CORPUS = Path(__file__).parents[1] / "data" / "real-llm-sat-en" / "answers.jsonl"
REQUIRED_AGREEMENT = 0.98


def _records() -> list[dict]:
    with CORPUS.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


def _same_distribution(ours: list[float], theirs: list[float]) -> bool:
    total = sum(theirs)
    return total > 0 and all(
        abs(mine - value / total) <= 1e-6 for mine, value in zip(ours, theirs, strict=True)
    )


def test_the_corpus_travels_with_its_licence():
    assert (CORPUS.parent / "LICENSE").read_text().startswith("MIT License")
    assert len(_records()) == 2266


def test_parser_agrees_with_the_data_sets_own_reading_of_real_answers(capsys):
    counts: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    for record in _records():
        answer = record["answer"]
        if answer is None:
            continue
        result = parse_distribution(answer, record["labels"])
        statuses[result.status] += 1
        if "{" not in answer:
            counts["without an object"] += 1
            assert not result.succeeded, answer[:200]
        if record["parsed"] is None:
            continue
        counts["read by the authors"] += 1
        if result.succeeded and _same_distribution(result.as_list(), record["parsed"]):
            counts["same distribution"] += 1
        else:
            failures[(result.reason or "a different distribution").split(",")[0][:40]] += 1

    agreement = counts["same distribution"] / counts["read by the authors"]
    with capsys.disabled():
        print(
            f"\nreal SAT-EN answers: {sum(statuses.values())} parsed as {dict(statuses)}; "
            f"{counts['same distribution']}/{counts['read by the authors']} "
            f"({agreement:.2%}) agree with the authors' reading; "
            f"{counts['without an object']} answers without an object, none read as numbers"
        )
        print(f"disagreements: {dict(failures.most_common())}")
    assert agreement >= REQUIRED_AGREEMENT


@pytest.mark.parametrize("model", ["gpt-4o", "claude-3-haiku-20240307", "deepseek-r1"])
def test_stated_answers_of_real_models_are_checked_against_the_argmax(model):
    results = [
        parse_distribution(record["answer"], record["labels"])
        for record in _records()
        if record["model"] == model and record["answer"]
    ]
    checked = [result for result in results if result.answer_agrees is not None]
    assert len(checked) >= 0.9 * len(results)
    for result in checked:
        stated = result.answer_label
        assert result.answer_agrees == (
            result.probabilities[stated] == max(result.probabilities.values())
        )
        assert "ignored keys" in " ".join(result.repairs)
        assert result.reasoning is None or isinstance(result.reasoning, str)
