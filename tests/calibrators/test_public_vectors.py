"""Known vectors from public calibration libraries' own test suites.

Every input and expected number below is copied from the cited test file (never recomputed);
each test states which convention the library uses and how it maps onto ours (DESIGN.md,
"Numeric conventions"). Tolerances are the ones the library itself asserts (rounding to 4
decimals, ``assert_almost_equal`` with 7 or 6 decimals).
"""

import numpy as np
import pytest
from numpy.random import RandomState

from calibrators.binning import assign_bins
from calibrators.metrics import brier_score, expected_calibration_error, log_loss

# ----------------------------------------------------------------------------- MAPIE
# scikit-learn-contrib/MAPIE, mapie/tests/test_metrics.py (commit 00b23d39...):
#     prng = RandomState(1234567890)
#     y_score = prng.random(51)
#     y_scores = prng.random((51, 5))
#     y_true = prng.randint(0, 2, 51)
#     test_ece_score:      np.round(expected_calibration_error(y_true, y_score), 4) == 0.4471
#     test_ece_scores:     np.round(expected_calibration_error(y_true, y_scores), 4) == 0.5363
#     test_top_lable_ece:  np.round(top_label_ece(y_true, y_scores), 4) == 0.6997
#
# MAPIE's convention (mapie/metrics/calibration.py): default num_bins=50,
# split_strategy="uniform": edges np.linspace(0, 1, 50) and np.digitize(right=True), i.e. bins
# (e_{j-1}, e_j] right-closed plus a bin {0} of its own: with no confidence equal to 0 (true
# here, and always for a top-label confidence) this is our uniform binning with
# M = num_bins - 1 = 49. ``y_true`` is the 0/1 *correctness* of the top label, ``y_scores`` is
# the top-label confidence (1-D) or a (n, K) array whose raw row max is taken WITHOUT
# renormalizing (rows of y_scores do not sum to 1; we renormalize, so we adapt: the raw row
# max is fed to us as the confidence).
MAPIE_PRNG = RandomState(1234567890)
MAPIE_Y_SCORE = MAPIE_PRNG.random(51)
MAPIE_Y_SCORES = MAPIE_PRNG.random((51, 5))
MAPIE_Y_TRUE = MAPIE_PRNG.randint(0, 2, 51)
MAPIE_NUM_BINS = 50
OUR_N_BINS = MAPIE_NUM_BINS - 1


def _rows_with_confidence(confidence, correct):
    """(P, y) whose top-label confidence is exactly ``confidence`` and correctness ``correct``.

    Row i is ``[c_i, (1 - c_i)/(K - 1), ...]`` with ``K > 1/min c`` so that ``c_i`` is the
    maximum (a tie goes to column 0, the lowest index); rows sum to 1 within 1e-9, so they are
    kept exactly (no renormalization moves ``c_i``). ``y = 0`` when correct, else 1.
    """
    confidence = np.asarray(confidence, dtype=np.float64)
    k = int(np.ceil(1.0 / confidence.min())) + 1
    P = np.empty((confidence.size, k))
    P[:, 0] = confidence
    P[:, 1:] = ((1.0 - confidence) / (k - 1))[:, None]
    assert np.all(np.argmax(P, axis=1) == 0)
    assert np.all(np.abs(P.sum(axis=1) - 1.0) <= 1e-12)
    return P, np.where(np.asarray(correct) == 1, 0, 1)


def test_mapie_ece_on_top_label_confidences():
    # Convention: top-label ECE, uniform right-closed bins, mapped M = num_bins - 1.
    assert MAPIE_Y_SCORE.min() > 0  # MAPIE's extra {0} bin is empty
    P, y = _rows_with_confidence(MAPIE_Y_SCORE, MAPIE_Y_TRUE)
    ece = expected_calibration_error(P, y, n_bins=OUR_N_BINS)
    assert np.round(ece, 4) == 0.4471


def test_mapie_ece_on_unnormalized_score_rows():
    # Convention: MAPIE takes the raw row max of unnormalized scores as the confidence (no
    # renormalization, unlike us); we pass that raw max as the confidence. M = num_bins - 1.
    P, y = _rows_with_confidence(MAPIE_Y_SCORES.max(axis=1), MAPIE_Y_TRUE)
    ece = expected_calibration_error(P, y, n_bins=OUR_N_BINS)
    assert np.round(ece, 4) == 0.5363


def test_mapie_top_label_ece_class_conditional():
    # Convention: MAPIE's top_label_ece (Gupta & Ramdas) is the mean over predicted classes l
    # of the ECE of the rows predicted l, with correctness 1[y_true = l]; ours is one pooled
    # ECE, so we compute one ECE per predicted class (raw row max as confidence, M = 49) and
    # average them.
    predicted = np.argmax(MAPIE_Y_SCORES, axis=1)
    confidence = MAPIE_Y_SCORES.max(axis=1)
    per_class = []
    for label in np.unique(predicted):
        rows = predicted == label
        P, y = _rows_with_confidence(confidence[rows], MAPIE_Y_TRUE[rows] == label)
        per_class.append(expected_calibration_error(P, y, n_bins=OUR_N_BINS))
    assert np.round(np.mean(per_class), 4) == 0.6997


# ----------------------------------------------------------------------------- scikit-learn
# scikit-learn/scikit-learn, sklearn/metrics/tests/test_classification.py, test_log_loss and
# test_brier_score_loss (commit cc928d13...). sklearn's log_loss is our NLL: mean of
# -log p_y with rows renormalized when they do not sum to 1 (it warns "y_pred values do not
# sum to one"); string / listed labels are mapped to column indices in sorted label order.
# No probability here comes near our clip 1e-15.


def test_sklearn_log_loss_multiclass():
    # Convention: same NLL (natural log, mean over rows); labels already 0..K-1.
    y_true = [1, 0, 2]
    y_pred = [[0.2, 0.7, 0.1], [0.6, 0.2, 0.2], [0.6, 0.1, 0.3]]
    assert log_loss(y_pred, y_true) == pytest.approx(0.6904911, abs=1.5e-7)
    # "doubling the length": sklearn asserts the *sum* (normalize=False) 0.6904911 * 6; our
    # log_loss is the mean, so the same data doubled has mean 0.6904911 * 6 / 6.
    assert log_loss(y_pred * 2, y_true * 2) * 6 == pytest.approx(0.6904911 * 6, abs=1.5e-6)


def test_sklearn_log_loss_unnormalized_rows_and_string_labels():
    # Convention: rows renormalized (as ours); labels "ham" < "spam" → columns 0, 1.
    y_true = ["ham", "spam", "spam", "ham"]
    y_pred = [[0.2, 0.7], [0.6, 0.5], [0.4, 0.1], [0.7, 0.2]]
    y = [["ham", "spam"].index(label) for label in y_true]
    assert log_loss(y_pred, y) == pytest.approx(1.0383217, abs=1.5e-6)


def test_sklearn_log_loss_with_labels_argument():
    # Convention: labels=[1, 2, 3] name the columns → our indices 0, 1, 2; rows renormalized.
    y_true = [1, 2, 2]
    y_score2 = [[0.2, 0.7, 0.3], [0.6, 0.5, 0.3], [0.3, 0.9, 0.1]]
    y = [[1, 2, 3].index(label) for label in y_true]
    assert log_loss(y_score2, y) == pytest.approx(1.0630345, abs=1.5e-6)


def test_sklearn_binary_brier_score_loss():
    # Convention differs by a factor 2: sklearn's binary brier_score_loss is (p_1 - 1[y=1])²
    # on the positive-class probability; ours sums over both classes, (p_0 - 1[y=0])² +
    # (p_1 - 1[y=1])² = 2 (p_1 - 1[y=1])². Mapping: ours / 2 with P = [[1 - p, p]].
    #   brier_score_loss([0], [0.4]) == 0.16, brier_score_loss([1], [0.4]) == 0.36
    assert brier_score([[0.6, 0.4]], [0]) / 2 == pytest.approx(0.16, abs=1.5e-7)
    assert brier_score([[0.6, 0.4]], [1]) / 2 == pytest.approx(0.36, abs=1.5e-7)


def test_sklearn_calibration_curve_uniform_bins():
    # scikit-learn/scikit-learn, sklearn/tests/test_calibration.py, test_calibration_curve:
    #     y_true = [0, 0, 0, 1, 1, 1]; y_pred = [0., 0.1, 0.2, 0.8, 0.9, 1.]
    #     calibration_curve(y_true, y_pred, n_bins=2) → prob_true [0, 1], prob_pred [0.1, 0.9]
    # Convention: a binary reliability curve on the positive-class score (not top-label), over
    # uniform edges j/n_bins, non-empty bins only; 0 falls in the first bin (as ours). We bin
    # the scores with our uniform rule (M = 2) and take per-bin means.
    y_true = np.array([0, 0, 0, 1, 1, 1])
    y_pred = np.array([0.0, 0.1, 0.2, 0.8, 0.9, 1.0])
    bins = assign_bins(y_pred, n_bins=2, binning="uniform")
    count = np.bincount(bins.bin_ids, minlength=2)
    nonempty = count > 0
    prob_true = np.bincount(bins.bin_ids, weights=y_true, minlength=2)[nonempty] / count[nonempty]
    prob_pred = np.bincount(bins.bin_ids, weights=y_pred, minlength=2)[nonempty] / count[nonempty]
    np.testing.assert_almost_equal(prob_true, [0, 1])
    np.testing.assert_almost_equal(prob_pred, [0.1, 0.9])
