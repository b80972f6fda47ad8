"""Brier and log score decompositions and AURC: hand vectors, exact identities, invariants."""

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from calibrators import brier_score, selective_curve
from calibrators.decomposition import (
    aurc,
    brier_decomposition,
    log_score_decomposition,
    optimal_aurc,
    score_decompositions,
)

# Two distinct forecasts, four rows each; every quantity is a dyadic rational.
P_HAND = np.array([[0.75, 0.25]] * 4 + [[0.5, 0.5]] * 4)
Y_HAND = np.array([0, 0, 0, 1, 0, 1, 1, 1])


def test_brier_decomposition_by_hand_is_exact():
    # Group A: q = ō = (3/4, 1/4): REL 0. Group B: q = (1/2, 1/2), ō = (1/4, 3/4): 4 x 1/8.
    # ō = (1/2, 1/2): RES = (4 x 1/8 + 4 x 1/8) / 8, UNC = 1/2, BS = (3 x 1/8 + 9/8 + 4/2) / 8.
    result = brier_decomposition(P_HAND, Y_HAND)
    assert result["reliability"] == 0.0625
    assert result["resolution"] == 0.125
    assert result["uncertainty"] == 0.5
    assert result["score"] == 0.4375
    assert result["reliability"] - result["resolution"] + result["uncertainty"] == result["score"]
    assert result["within_variance"] == result["within_covariance"] == 0.0
    assert (result["grouping"], result["n_bins"], result["n_groups"], result["n"]) == (
        "distinct",
        None,
        2,
        8,
    )


def test_log_decomposition_by_hand():
    result = log_score_decomposition(P_HAND, Y_HAND)
    kl_b = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    assert result["reliability"] == pytest.approx(4 * kl_b / 8, abs=1e-15)
    assert result["resolution"] == pytest.approx(kl_b, abs=1e-15)  # both groups: KL = kl_b
    assert result["uncertainty"] == pytest.approx(math.log(2), abs=1e-15)
    score = (3 * -math.log(0.75) - math.log(0.25) + 4 * -math.log(0.5)) / 8
    assert result["score"] == pytest.approx(score, abs=1e-15)
    identity = result["reliability"] - result["resolution"] + result["uncertainty"]
    assert identity == pytest.approx(result["score"], abs=1e-15)
    assert result["remainder"] == 0.0 and result["note"] is None


def test_log_decomposition_is_null_with_a_note_when_an_observed_class_has_zero_probability():
    P = np.array([[1.0, 0.0], [0.6, 0.4], [0.6, 0.4]])
    result = log_score_decomposition(P, [1, 0, 1])
    for key in ("score", "reliability", "resolution", "uncertainty", "remainder"):
        assert result[key] is None
    assert result["note"].startswith("undefined: 1 row(s) give probability 0")
    json.dumps(result, allow_nan=False)
    # A zero on a class that was not observed is fine.
    assert log_score_decomposition(P, [0, 0, 1])["score"] is not None


def test_top_label_grouping_identity_with_within_group_terms_by_brute_force():
    rng = np.random.default_rng(0)
    P = rng.dirichlet(np.ones(3), size=300)
    y = rng.integers(0, 3, size=300)
    result = brier_decomposition(P, y, grouping="top_label", n_bins=5)
    confidence = P.max(axis=1)
    edges = np.arange(6) / 5
    bins = np.clip(np.searchsorted(edges, confidence, side="left"), 1, 5) - 1
    onehot = np.eye(3)[y]
    wv = wc = rel = 0.0
    for b in np.unique(bins):
        rows = bins == b
        q_bar, o_bar = P[rows].mean(axis=0), onehot[rows].mean(axis=0)
        rel += rows.sum() * np.sum((q_bar - o_bar) ** 2)
        wv += np.sum((P[rows] - q_bar) ** 2)
        wc += np.sum((P[rows] - q_bar) * (onehot[rows] - o_bar))
    assert result["reliability"] == pytest.approx(rel / 300, abs=1e-12)
    assert result["within_variance"] == pytest.approx(wv / 300, abs=1e-12)
    assert result["within_covariance"] == pytest.approx(wc / 300, abs=1e-12)
    identity = (
        result["reliability"]
        - result["resolution"]
        + result["uncertainty"]
        + result["within_variance"]
        - 2 * result["within_covariance"]
    )
    assert identity == pytest.approx(result["score"], abs=1e-12)
    assert result["n_bins"] == 5 and result["n_groups"] == len(np.unique(bins))


def test_injective_calibration_keeps_distinct_groups_and_resolution():
    # Temperature scaling maps distinct rows to distinct rows: same groups, same RES and UNC.
    from calibrators import TemperatureScaling

    rng = np.random.default_rng(1)
    grid = np.round(rng.dirichlet(np.ones(4) * 0.3, size=400) * 10) / 10 + 0.01
    y = np.array([rng.choice(4, p=p / p.sum()) for p in grid])
    Q = TemperatureScaling().fit(grid, y).transform(grid)
    raw, calibrated = brier_decomposition(grid, y), brier_decomposition(Q, y)
    assert raw["n_groups"] == calibrated["n_groups"]
    assert calibrated["resolution"] == pytest.approx(raw["resolution"], abs=1e-12)
    assert calibrated["uncertainty"] == raw["uncertainty"]
    assert calibrated["reliability"] < raw["reliability"]


def test_aurc_by_hand_with_a_tie():
    # Confidences 0.9 (right), 0.8 (wrong), 0.8 (right), 0.6 (wrong).
    P = np.array([[0.9, 0.1], [0.8, 0.2], [0.8, 0.2], [0.6, 0.4]])
    y = np.array([0, 1, 0, 1])
    result = aurc(P, y)
    # Thresholds 0.9, 0.8, 0.6 keep 1, 3, 4 rows with risks 0, 1/3, 1/2.
    assert result["aurc"] == pytest.approx((1 * 0 + 2 * (1 / 3) + 1 * 0.5) / 4, abs=1e-15)
    assert result["optimal_aurc"] == pytest.approx((1 / 3 + 2 / 4) / 4, abs=1e-15)
    assert result["excess_aurc"] == pytest.approx(result["aurc"] - result["optimal_aurc"])
    assert result["risk"] == 0.5 and result["n_thresholds"] == 3 and result["n"] == 4


def test_optimal_aurc_edge_cases():
    assert optimal_aurc(5, 5) == 0.0
    assert optimal_aurc(0, 4) == 1.0
    assert optimal_aurc(1, 2) == pytest.approx(0.25)


# ----------------------------------------------------------------------------- invariants


@st.composite
def _forecasts(draw):
    n_classes = draw(st.integers(2, 5))
    n = draw(st.integers(1, 80))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    P = rng.dirichlet(np.ones(n_classes), size=n)
    if draw(st.booleans()):  # a verbalized grid: ties and zeros
        P = np.round(P * 10) / 10
        P[P.sum(axis=1) == 0, 0] = 1.0
    y = rng.integers(0, n_classes, size=n)
    return P / P.sum(axis=1, keepdims=True), y


@given(_forecasts(), st.sampled_from(["distinct", "top_label"]), st.integers(1, 20))
def test_identities_and_bounds(data, grouping, n_bins):
    P, y = data
    result = score_decompositions(P, y, grouping=grouping, n_bins=n_bins)
    json.dumps(result, allow_nan=False)
    brier = result["brier"]
    assert brier["score"] == pytest.approx(brier_score(P, y), abs=1e-12)
    assert brier["reliability"] >= 0 and brier["resolution"] >= 0
    assert 0 <= brier["uncertainty"] <= 1 - 1 / P.shape[1] + 1e-12
    assert brier["resolution"] <= brier["uncertainty"] + 1e-12
    identity = (
        brier["reliability"]
        - brier["resolution"]
        + brier["uncertainty"]
        + brier["within_variance"]
        - 2 * brier["within_covariance"]
    )
    assert identity == pytest.approx(brier["score"], abs=1e-12)
    log = result["log"]
    if log["score"] is not None:
        assert log["reliability"] >= -1e-12 and log["resolution"] >= -1e-12
        total = log["reliability"] - log["resolution"] + log["uncertainty"] + log["remainder"]
        assert total == pytest.approx(log["score"], abs=1e-9)
        if grouping == "distinct":
            assert log["remainder"] == 0.0
            assert brier["within_variance"] == brier["within_covariance"] == 0.0


@given(_forecasts())
def test_aurc_is_the_mean_risk_at_each_rows_threshold(data):
    P, y = data
    result = aurc(P, y)
    confidence = P.max(axis=1)
    correct = np.argmax(P, axis=1) == y
    risks = [1 - correct[confidence >= c].mean() for c in confidence]
    assert result["aurc"] == pytest.approx(np.mean(risks), abs=1e-12)
    assert result["optimal_aurc"] - 1e-12 <= result["aurc"] <= 1.0
    curve = selective_curve(P, y, max_points=None)
    coverage = np.asarray(curve["coverage"])
    area = np.diff(coverage, prepend=0.0) @ (1 - np.asarray(curve["accuracy"]))
    assert result["aurc"] == pytest.approx(area, abs=1e-12)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: brier_decomposition(P_HAND, Y_HAND, grouping="quantile"), "grouping must be"),
        (lambda: brier_decomposition(P_HAND, Y_HAND, "top_label", 0), "n_bins must be"),
        (lambda: log_score_decomposition(P_HAND, Y_HAND[:3]), r"y must have shape \(8,\)"),
        (lambda: aurc([[0.5, -0.5]], [0]), "invalid probability rows"),
    ],
)
def test_bad_input_raises(call, message):
    with pytest.raises(ValueError, match=message):
        call()
