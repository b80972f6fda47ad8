"""Report sections beyond binned ECE: smooth ECE, decompositions, AURC, cross-conformal coverage."""

import json
import math

import numpy as np
import pytest

from calibrators import TemperatureScaling, aurc, score_decompositions, smooth_reliability_diagram
from calibrators.report_extras import (
    MAX_BAND_CELLS,
    band_resamples,
    conformal_coverage,
    report_extras,
)
from calibrators.splits import fold_assignment
from tests.calibrators.simulated import draw_tickets, stated

LABELS = ["a", "b", "c", "d"]


def no_nan(text: str):
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in JSON"))


@pytest.fixture(scope="module")
def tickets():
    rng = np.random.default_rng(7)
    posterior, y, _ = draw_tickets(1200, rng)
    P = stated(posterior)
    fit, held = np.arange(600), np.arange(600, 1200)
    calibrator = TemperatureScaling().fit(P[fit], y[fit])
    return P[held], calibrator.transform(P[held]), y[held]


def test_sections_are_the_library_functions_raw_and_calibrated(tickets):
    P, Q, y = tickets
    extras = report_extras(P, y, LABELS, Q=Q, n_bins=10, n_boot=20, seed=3)
    for name, X in (("raw", P), ("calibrated", Q)):
        assert extras["smooth_ece"][name] == smooth_reliability_diagram(X, y, n_boot=20, seed=3)
        assert extras["aurc"][name] == aurc(X, y)
        for grouping in ("distinct", "top_label"):
            expected = score_decompositions(X, y, grouping, 10)
            assert extras["decompositions"][grouping][name] == expected
            brier = expected["brier"]
            assert brier["score"] == pytest.approx(
                brier["reliability"]
                - brier["resolution"]
                + brier["uncertainty"]
                + brier["within_variance"]
                - 2 * brier["within_covariance"],
                abs=1e-12,
            )
    # The stated answers sit on a grid and temperature scaling maps them injectively: the
    # distinct-forecast groups are the same, so resolution is untouched while calibration
    # lowers the reliability term of the overconfident answers.
    distinct = extras["decompositions"]["distinct"]
    raw, calibrated = distinct["raw"]["brier"], distinct["calibrated"]["brier"]
    assert calibrated["n_groups"] == raw["n_groups"] < len(y) / 2
    assert calibrated["resolution"] == pytest.approx(raw["resolution"], rel=1e-12)
    assert calibrated["reliability"] < raw["reliability"]
    # Some stated answers give the true class 0: the raw log score is infinite, so its
    # decomposition is undefined (nulls and a note); the calibrated one is defined.
    assert distinct["raw"]["log"]["reliability"] is None
    assert "probability 0" in distinct["raw"]["log"]["note"]
    assert distinct["calibrated"]["log"]["note"] is None
    assert (
        extras["smooth_ece"]["calibrated"]["smooth_ece"] < extras["smooth_ece"]["raw"]["smooth_ece"]
    )
    assert extras["conformal"] is None  # no procedure given
    assert extras["notes"] == []


def test_raw_only_and_undefined_log_score_give_nulls_not_nan():
    # Row 1 gives its true class probability 0: the log-score decomposition is undefined.
    P = np.array([[0.9, 0.1, 0.0], [1.0, 0.0, 0.0], [0.2, 0.3, 0.5], [0.6, 0.4, 0.0]])
    y = np.array([0, 1, 2, 0])
    extras = report_extras(P, y, ["x", "y", "z"], n_boot=0)
    assert extras["smooth_ece"]["calibrated"] is None
    assert extras["aurc"]["calibrated"] is None
    log = extras["decompositions"]["distinct"]["raw"]["log"]
    assert log["score"] is None and log["reliability"] is None and "undefined" in log["note"]
    assert extras["smooth_ece"]["raw"]["lower"] is None  # no band without resamples
    no_nan(json.dumps(extras, allow_nan=False))


def brute_force_coverage(Q, y, coverage, folds, seed):
    """Per-row covered and set size by hand: LAC thresholds from the other folds' scores."""
    fold_of = fold_assignment(len(y), folds, seed)
    covered, sizes = np.zeros(len(y), bool), np.zeros(len(y), int)
    for fold in range(folds):
        test = fold_of == fold
        scores = np.sort(1 - Q[~test][np.arange((~test).sum()), y[~test]])
        rank = math.ceil((len(scores) + 1) * coverage - 1e-9)
        tau = math.inf if rank > len(scores) else scores[rank - 1]
        sets = 1 - Q[test] <= tau
        covered[test] = sets[np.arange(test.sum()), y[test]]
        sizes[test] = sets.sum(axis=1)
    return covered, sizes


def test_cross_conformal_coverage_matches_brute_force(tickets):
    _, Q, y = tickets
    params = {"score": "lac", "coverages": [0.8, 0.9]}
    result = conformal_coverage(params, Q, y, LABELS, folds=5, seed=1)
    assert (result["n"], result["folds"], result["score"]) == (600, 5, "lac")
    for entry, coverage in zip(result["coverages"], (0.8, 0.9), strict=True):
        covered, sizes = brute_force_coverage(Q, y, coverage, 5, 1)
        assert entry["coverage"] == coverage
        assert entry["empirical_coverage"] == pytest.approx(covered.mean(), abs=1e-12)
        assert entry["mean_set_size"] == pytest.approx(sizes.mean(), abs=1e-12)
        assert entry["set_size_counts"] == np.bincount(sizes, minlength=5).tolist()
        for k, row in enumerate(entry["per_class"]):
            assert row["label"] == LABELS[k]
            assert row["n"] == int((y == k).sum())
            assert row["empirical_coverage"] == pytest.approx(covered[y == k].mean(), abs=1e-12)
            assert row["mean_set_size"] == pytest.approx(sizes[y == k].mean(), abs=1e-12)


@pytest.mark.parametrize("score", ["lac", "aps"])
@pytest.mark.parametrize("class_conditional", [False, True])
def test_cross_conformal_coverage_reaches_the_target_on_the_simulator(score, class_conditional):
    # Over 20 seeds, the pooled coverage is at least 1 - alpha minus 3 binomial standard errors.
    rates = {0.8: [], 0.9: [], 0.95: []}
    for seed in range(20):
        rng = np.random.default_rng(1000 + seed)
        posterior, y, _ = draw_tickets(400, rng)
        params = {"score": score, "class_conditional": class_conditional}
        result = conformal_coverage(params, posterior, y, LABELS, seed=seed)
        for entry in result["coverages"]:
            rates[entry["coverage"]].append(entry["empirical_coverage"])
    for coverage, values in rates.items():
        tolerance = 3 * math.sqrt(coverage * (1 - coverage) / (400 * 20))
        print(f"{score} class_conditional={class_conditional}: {coverage} -> {np.mean(values):.4f}")
        assert np.mean(values) >= coverage - tolerance


def test_absent_class_gives_null_per_class_values():
    Q = np.array([[0.7, 0.2, 0.1]] * 6 + [[0.1, 0.8, 0.1]] * 6)
    y = np.array([0] * 6 + [1] * 6)
    result = conformal_coverage({"coverages": [0.5]}, Q, y, ["x", "y", "z"], folds=3)
    absent = result["coverages"][0]["per_class"][2]
    assert absent == {"label": "z", "n": 0, "empirical_coverage": None, "mean_set_size": None}
    no_nan(json.dumps(result, allow_nan=False))


def test_bad_input_raises():
    Q = np.array([[0.5, 0.5]])
    with pytest.raises(ValueError, match="at least 2 rows"):
        conformal_coverage({}, Q, [0], ["x", "y"])
    with pytest.raises(ValueError, match="shape of P"):
        report_extras(np.array([[0.5, 0.5], [0.2, 0.8]]), [0, 1], ["x", "y"], Q=Q)


def test_band_resamples_are_capped_for_many_rows():
    assert band_resamples(200, 450) == 200
    assert band_resamples(0, 10**6) == 0
    assert band_resamples(200, 50_000) == MAX_BAND_CELLS // 50_000 == 40
    assert band_resamples(200, 10**7) == 20  # never fewer than MIN_BAND_RESAMPLES
    assert band_resamples(10, 10**7) == 10  # nor more than asked
    rng = np.random.default_rng(1)
    n = MAX_BAND_CELLS // 30 + 1  # just too many rows for 30 resamples
    P = rng.dirichlet([1, 1], size=n)
    extras = report_extras(P, rng.integers(0, 2, n), ["x", "y"], n_boot=30)
    assert extras["smooth_ece"]["raw"]["n_boot"] == 29
    assert extras["notes"] == [
        f"smooth_ece: the band uses 29 bootstrap resamples instead of 30 for {n} rows "
        f"(at most {MAX_BAND_CELLS} resampled rows)"
    ]
