"""Conformal label sets, smooth ECE and prior shift through the API on real LLM answers.

Data: tests/data/real-llm-sat-en (11 LLMs on SAT-EN reading questions, 4 options; MIT licence,
see LICENSE beside it). The distributions the data set's authors read from the answers are
imported with the gold letters, pooled over the models, fitted, and the report's held-out
conformal coverage is printed and checked against its targets.
"""

import json
import math
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[2] / "data" / "real-llm-sat-en" / "answers.jsonl"
LETTERS = ["A", "B", "C", "D"]


def real_items() -> list[dict]:
    records = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]
    return [
        {
            "text": f"{r['model']} / sat_en question {r['question_id']}",
            "label": r["gold"],
            "probabilities": dict(zip(LETTERS, r["parsed"], strict=True)),
        }
        for r in records
        if r["parsed"] is not None
    ]


def test_conformal_coverage_on_real_llm_answers(client, app_client):
    items = real_items()
    assert len(items) == 2232
    assert client.post("/tasks", json={"name": "sat-en", "labels": LETTERS}).status_code == 201
    r = client.post("/tasks/sat-en/predictions", json={"items": items})
    assert r.status_code == 200, r.text
    fit = client.post("/tasks/sat-en/fit", json={"validation": {"holdout": 0.5, "seed": 0}})
    assert fit.status_code == 201, fit.text
    report = client.get("/tasks/sat-en/report", params={"n_boot": 50}).json()
    n = report["n"]
    print(f"\nSAT-EN, {len(items)} real answers of 11 LLMs, {n} held out")
    print(
        f"binned ECE raw {report['raw']['metrics']['ece']:.4f} -> calibrated "
        f"{report['calibrated']['metrics']['ece']:.4f}; smooth ECE raw "
        f"{report['smooth_ece']['raw']['smooth_ece']:.4f} -> calibrated "
        f"{report['smooth_ece']['calibrated']['smooth_ece']:.4f}"
    )
    for entry in report["conformal"]["coverages"]:
        per_class = ", ".join(
            f"{c['label']} {c['empirical_coverage']:.3f}" for c in entry["per_class"]
        )
        print(
            f"coverage {entry['coverage']}: empirical {entry['empirical_coverage']:.4f}, mean "
            f"set size {entry['mean_set_size']:.3f} (per class: {per_class})"
        )
        # Cross-conformal coverage: at or above the target minus 3 binomial standard errors.
        tolerance = 3 * math.sqrt(entry["coverage"] * (1 - entry["coverage"]) / n)
        assert entry["empirical_coverage"] >= entry["coverage"] - tolerance
        # LAC sets may be empty (no label reaches 1 - tau): below 1 on average at 0.8 here.
        assert 0 < entry["mean_set_size"] <= 4
    # A served set at 0.9 holds the argmax of a confident answer.
    answer = {"A": 0.05, "B": 0.85, "C": 0.05, "D": 0.05}
    served = app_client.post(
        "/calibrate", json={"task": "sat-en", "probabilities": answer, "coverage": 0.9}
    ).json()
    print(f"a 0.85 answer for B: set at 0.9 = {served['prediction_set']['labels']}")
    assert "B" in served["prediction_set"]["labels"]


@pytest.mark.parametrize("target", [{"A": 0.1, "B": 0.2, "C": 0.3, "D": 0.4}])
def test_given_prior_on_real_answers_keeps_probabilities_finite(client, app_client, target):
    items = real_items()[:400]
    client.post("/tasks", json={"name": "sat-en", "labels": LETTERS, "prior": target})
    client.post("/tasks/sat-en/predictions", json={"items": items})
    assert client.post("/tasks/sat-en/fit", json={}).status_code == 201
    # A verbalized 0 stays 0 after calibration with eps = 0 only; whatever eps "auto" chose,
    # the corrected distribution is a finite distribution.
    r = app_client.post(
        "/calibrate",
        json={"task": "sat-en", "probabilities": {"A": 1.0, "B": 0.0, "C": 0.0, "D": 0.0}},
    )
    assert r.status_code == 200, r.text
    body = json.loads(r.text, parse_constant=lambda c: pytest.fail(c))
    assert body["prior_shift"]["applied"] is True
    assert sum(body["probabilities"].values()) == pytest.approx(1.0, abs=1e-12)
