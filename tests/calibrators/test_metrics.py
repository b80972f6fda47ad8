"""Metrics on hand-computed vectors, cross-checked against MAPIE and a plain Python loop."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from calibrators.metrics import (
    accuracy,
    brier_score,
    classwise_ece,
    entropy_gap,
    expected_calibration_error,
    log_loss,
    maximum_calibration_error,
    mean_entropy,
    reliability_table,
    rms_calibration_error,
    spherical_score,
)

# Vector A (K = 2; every row sums to exactly 1.0 in float64):
#   row  q            y  c    correct
#   0    [0.6, 0.4]   0  0.6  1
#   1    [0.6, 0.4]   1  0.6  0
#   2    [0.8, 0.2]   0  0.8  1
#   3    [0.5, 0.5]   1  0.5  0   (argmax tie → class 0)
#   4    [1.0, 0.0]   0  1.0  1
#   5    [0.0, 1.0]   1  1.0  1
P_A = np.array([[0.6, 0.4], [0.6, 0.4], [0.8, 0.2], [0.5, 0.5], [1.0, 0.0], [0.0, 1.0]])
Y_A = np.array([0, 1, 0, 1, 0, 1])


def test_vector_a_uniform_m5():
    # M = 5: 0.6 is on an edge → (0.4, 0.6] with 0.5: c = {.6, .6, .5}, acc 1/3, conf 1.7/3
    #   |gap| = 0.7/3, weight 3/6;  (0.6, 0.8]: 0.8, acc 1, |gap| 0.2, weight 1/6;
    #   (0.8, 1]: {1, 1}, gap 0.  ECE = 0.7/6 + 0.2/6 = 0.15; MCE = 0.7/3;
    #   RMSCE = sqrt(3/6·(0.7/3)² + 1/6·0.2²) = sqrt(0.0338889) = 0.1840894
    assert expected_calibration_error(P_A, Y_A, n_bins=5) == pytest.approx(0.15, abs=1e-15)
    assert maximum_calibration_error(P_A, Y_A, n_bins=5) == pytest.approx(0.7 / 3, abs=1e-15)
    assert rms_calibration_error(P_A, Y_A, n_bins=5) == pytest.approx(
        math.sqrt(0.5 * (0.7 / 3) ** 2 + 0.04 / 6), abs=1e-15
    )


def test_vector_a_reliability_uniform_m5_and_m10():
    table = reliability_table(P_A, Y_A, n_bins=5)
    assert [row["count"] for row in table] == [0, 0, 3, 1, 2]
    assert table[0] == {
        "lower": 0.0,
        "upper": 0.2,
        "count": 0,
        "confidence": None,
        "accuracy": None,
        "gap": None,
    }
    assert table[2]["confidence"] == pytest.approx(1.7 / 3)
    assert table[2]["gap"] == pytest.approx(1 / 3 - 1.7 / 3)  # accuracy − confidence < 0
    # M = 10: 0.6 → (0.5, 0.6], 0.5 → (0.4, 0.5], 0.8 → (0.7, 0.8], 1 → (0.9, 1]
    counts = [row["count"] for row in reliability_table(P_A, Y_A, n_bins=10)]
    assert counts == [0, 0, 0, 0, 1, 2, 0, 1, 0, 2]
    # gaps: (0.4,0.5] −0.5 (1/6), (0.5,0.6] −0.1 (2/6), (0.7,0.8] +0.2 (1/6) → MCE 0.5
    assert maximum_calibration_error(P_A, Y_A, n_bins=10) == pytest.approx(0.5)
    assert expected_calibration_error(P_A, Y_A, n_bins=10) == pytest.approx(0.9 / 6)


def test_vector_a_quantile():
    # stable sort: 0.5(r3,o0) 0.6(r0,o1) | 0.6(r1,o0) 0.8(r2,o1) | 1(r4) 1(r5)
    # gaps: 0.5 − 0.55 = −0.05, 0.5 − 0.7 = −0.2, 0 → ECE = (2·0.05 + 2·0.2)/6 = 0.5/6
    assert expected_calibration_error(P_A, Y_A, 3, "quantile") == pytest.approx(0.5 / 6)
    assert maximum_calibration_error(P_A, Y_A, 3, "quantile") == pytest.approx(0.2)
    # M = 10 > n: six singleton bins: |gaps| .5 .4 .6 .2 0 0 → ECE 1.7/6, MCE 0.6
    assert expected_calibration_error(P_A, Y_A, 10, "quantile") == pytest.approx(1.7 / 6)
    assert maximum_calibration_error(P_A, Y_A, 10, "quantile") == pytest.approx(0.6)
    table = reliability_table(P_A, Y_A, 3, "quantile")
    assert [(r["lower"], r["upper"], r["count"]) for r in table] == [
        (0.5, 0.6, 2),
        (0.6, 0.8, 2),
        (1.0, 1.0, 2),
    ]


def test_vector_a_scores():
    # Brier rows: .32 .72 .08 .5 0 0 → 1.62/6 = 0.27
    assert brier_score(P_A, Y_A) == pytest.approx(0.27, abs=1e-15)
    # NLL: (−ln .6 − ln .4 − ln .8 − ln .5)/6 = 2.3434070/6 = 0.3905678
    nll = -(math.log(0.6) + math.log(0.4) + math.log(0.8) + math.log(0.5)) / 6
    assert log_loss(P_A, Y_A) == pytest.approx(nll, abs=1e-15)
    assert nll == pytest.approx(0.3905678, abs=1e-7)
    # spherical: .6/√.52, .4/√.52, .8/√.68, .5/√.5, 1, 1
    sph = (1.0 / math.sqrt(0.52) + 0.8 / math.sqrt(0.68) + math.sqrt(0.5) + 2) / 6
    assert spherical_score(P_A, Y_A) == pytest.approx(sph, abs=1e-15)
    assert accuracy(P_A, Y_A) == pytest.approx(4 / 6)
    # entropy: 2·H(.6,.4) + H(.8,.2) + ln 2 + 0 + 0 (0·log 0 = 0) = 2.5395726 → /6
    h = lambda p: -(p * math.log(p) + (1 - p) * math.log(1 - p))  # noqa: E731
    ent = (2 * h(0.6) + h(0.8) + math.log(2)) / 6
    assert mean_entropy(P_A) == pytest.approx(ent, abs=1e-15)
    assert ent == pytest.approx(2.5395726 / 6, abs=1e-7)
    assert entropy_gap(P_A, Y_A) == pytest.approx(nll - ent, abs=1e-15)


def test_vector_a_classwise_m5():
    # class 0: q0 = .6 .6 .8 .5 1 0, y==0: 1 0 1 0 1 0
    #   (0.4,0.6]: Σq 1.7 vs 1 → .7; (0.6,0.8]: .8 vs 1 → .2; (.8,1]: 1 vs 1; [0,0.2]: 0 vs 0
    #   → 0.9/6 = 0.15
    # class 1: q1 = .4 .4 .2 .5 0 1, y==1: 0 1 0 1 0 1
    #   (0.2,0.4]: .8 vs 1 → .2; [0,0.2]: .2 (0.2 on the edge) + 0 vs 0 → .2;
    #   (0.4,0.6]: .5 vs 1 → .5; (0.8,1]: 1 vs 1 → 0 → 0.9/6 = 0.15
    assert classwise_ece(P_A, Y_A, n_bins=5) == pytest.approx(0.15)
    # quantile M=6 (singletons): class 0 |q−1[y=0]|: .4 .6 .2 .5 0 0 → 1.7/6;
    # class 1: .4 .6 .2 .5 0 0 → 1.7/6
    assert classwise_ece(P_A, Y_A, 6, "quantile") == pytest.approx(1.7 / 6)


def test_edge_confidence_on_lower_bin_changes_ece():
    # Three classes; rows sum to exactly 1. c = 0.6 (edge, M = 5) must join 0.5 in (0.4, 0.6].
    P = np.array([[0.6, 0.2, 0.2], [0.5, 0.25, 0.25]])
    y = np.array([0, 1])
    assert P.sum(axis=1).tolist() == [1.0, 1.0]
    # one bin: conf .55, acc .5 → ECE .05 (if 0.6 went up: (|1−.6| + |0−.5|)/2 = .45)
    assert expected_calibration_error(P, y, n_bins=5) == pytest.approx(0.05)


def test_single_class_present_and_single_row():
    P = np.array([[0.9, 0.1], [0.7, 0.3], [0.95, 0.05]])
    y = np.array([0, 0, 0])
    # M = 10: 0.9 → (0.8,0.9], 0.7 → (0.6,0.7], 0.95 → (0.9,1]; all correct
    assert expected_calibration_error(P, y, n_bins=10) == pytest.approx((0.1 + 0.3 + 0.05) / 3)
    assert maximum_calibration_error(P, y, n_bins=10) == pytest.approx(0.3)
    # class 1 absent: frequency 0 in every bin; class-1 ECE = mean q1 = .15, class 0 = .15
    assert classwise_ece(P, y, n_bins=10) == pytest.approx(0.15)
    assert expected_calibration_error([[0.3, 0.7]], [1]) == pytest.approx(0.3)


def test_renormalizes_rows_and_rejects_bad_rows():
    assert brier_score(P_A * 7.0, Y_A) == pytest.approx(0.27)
    with pytest.raises(ValueError, match=r"\[1\]"):
        expected_calibration_error([[0.5, 0.5], [0.0, 0.0]], [0, 1])
    with pytest.raises(ValueError, match="min_probability"):
        log_loss(P_A, Y_A, min_probability=0.0)


def test_log_loss_clip_is_explicit():
    P = np.array([[1.0, 0.0]])
    assert log_loss(P, [1]) == pytest.approx(-math.log(1e-15))
    assert log_loss(P, [1], min_probability=1e-3) == pytest.approx(-math.log(1e-3))


def _loop_ece(P, y, m):
    """Straightforward reference: Python loop over rows and bins, edges j/m, right-closed."""
    P = P / P.sum(axis=1, keepdims=True)
    rows = []
    for q, label in zip(P, y, strict=True):
        k = int(np.argmax(q))
        rows.append((q[k], float(k == label)))
    total = 0.0
    for j in range(m):
        lo, hi = j / m, (j + 1) / m
        inside = [(c, o) for c, o in rows if (lo < c <= hi) or (j == 0 and c == 0)]
        if inside:
            conf = sum(c for c, _ in inside) / len(inside)
            acc = sum(o for _, o in inside) / len(inside)
            total += len(inside) / len(rows) * abs(acc - conf)
    return total


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ece_matches_mapie_and_a_python_loop_on_continuous_inputs(seed):
    from mapie.metrics.calibration import expected_calibration_error as mapie_ece
    from mapie.metrics.calibration import top_label_ece

    rng = np.random.default_rng(seed)
    n, k, m = 3000, 4, 15
    P = rng.dirichlet(np.ones(k), size=n)
    y = rng.integers(0, k, n)
    ours = expected_calibration_error(P, y, n_bins=m)
    assert ours == pytest.approx(_loop_ece(P, y, m), abs=1e-12)
    # MAPIE 1.6 uniform bins: np.linspace(0, 1, num_bins) edges with
    # np.digitize(right=True) → right-closed (e_{j-1}, e_j], c = 0 in bin 0: our convention
    # with num_bins = M + 1. top_label_ece averages an ECE per *predicted class*; with one
    # pseudo-class (y_score_arg = 1, y_true = correct) it is the plain top-label ECE.
    c = P.max(axis=1)
    correct = (P.argmax(axis=1) == y).astype(int)
    mapie = top_label_ece(
        correct, c, y_score_arg=np.ones(n), num_bins=m + 1, split_strategy="uniform"
    )
    assert ours == pytest.approx(mapie, abs=1e-12)
    assert ours == pytest.approx(
        mapie_ece(correct, P, num_bins=m + 1, split_strategy="uniform"), abs=1e-12
    )
    # MAPIE classwise ECE (Kull et al.): mean over k of the binary ECE of (q_k, 1[y=k]).
    mapie_cw = mapie_ece(
        None, P, num_bins=m + 1, split_strategy="uniform", classwise=True, class_labels=y
    )
    assert classwise_ece(P, y, n_bins=m) == pytest.approx(mapie_cw, abs=1e-12)


probabilities = arrays(
    np.float64,
    st.tuples(st.integers(1, 30), st.integers(2, 5)),
    elements=st.sampled_from([0.0, 0.05, 0.2, 0.4, 0.6, 0.85, 1.0]) | st.floats(0, 1),
).filter(lambda P: bool(np.all(P.sum(axis=1) > 0)))


@given(probabilities, st.data(), st.sampled_from(["uniform", "quantile"]), st.integers(1, 20))
def test_properties(P, data, binning, m):
    y = np.array(
        data.draw(
            st.lists(st.integers(0, P.shape[1] - 1), min_size=P.shape[0], max_size=P.shape[0])
        )
    )
    ece = expected_calibration_error(P, y, m, binning)
    mce = maximum_calibration_error(P, y, m, binning)
    rmsce = rms_calibration_error(P, y, m, binning)
    assert 0 <= ece <= 1 and 0 <= mce <= 1
    assert mce >= rmsce - 1e-12 and rmsce >= ece - 1e-12
    assert 0 <= classwise_ece(P, y, m, binning) <= 1
    assert 0 <= brier_score(P, y) <= 2
    assert 0 <= spherical_score(P, y) <= 1
    assert log_loss(P, y) >= 0 and mean_entropy(P) >= 0
    # Scaling by a power of two is exact, so 4P renormalizes to exactly P/ΣP and binning cannot
    # move. (P itself may differ from P/ΣP in the last bits: rows within ROW_SUM_TOLERANCE of 1
    # are used as given.) Smooth scores take any c.
    normalized = P / P.sum(axis=1, keepdims=True)
    assert expected_calibration_error(P * 4.0, y, m, binning) == pytest.approx(
        expected_calibration_error(normalized, y, m, binning), abs=1e-12
    )
    scaled = P * 3.5
    assert brier_score(scaled, y) == pytest.approx(brier_score(P, y), abs=1e-12)
    assert log_loss(scaled, y) == pytest.approx(log_loss(P, y), abs=1e-12)
