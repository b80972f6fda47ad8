"""Percentile bootstrap with multinomial weights: determinism and equality with resampling."""

import numpy as np
import pytest

from calibrators.bootstrap import (
    binned_replicates,
    bootstrap_ci,
    weighted_binned_errors,
)
from calibrators.metrics import (
    brier_score,
    expected_calibration_error,
    log_loss,
    maximum_calibration_error,
    rms_calibration_error,
)


def _data(n, seed=0, k=4):
    rng = np.random.default_rng(seed)
    P = np.round(rng.dirichlet(np.ones(k), size=n) * 20) / 20
    P[P.sum(axis=1) == 0, 0] = 1.0
    return P, rng.integers(0, k, n)


def test_deterministic_under_seed_and_contains_estimate():
    P, y = _data(2000)
    first = bootstrap_ci("ece", P, y, n_boot=100, seed=3)
    assert first == bootstrap_ci(expected_calibration_error, P, y, n_boot=100, seed=3)
    assert first != bootstrap_ci("ece", P, y, n_boot=100, seed=4)
    for metric in ("ece", "mce", "nll", "brier", "spherical", "accuracy", "entropy_gap"):
        ci = bootstrap_ci(metric, P, y, n_boot=200)
        assert ci["lower"] <= ci["estimate"] <= ci["upper"], metric
        assert set(ci) >= {"estimate", "lower", "upper", "n_boot", "seed", "alpha"}
    assert bootstrap_ci("ece", P, y)["estimate"] == pytest.approx(
        expected_calibration_error(P, y), abs=1e-12
    )
    assert bootstrap_ci("nll", P, y)["estimate"] == pytest.approx(log_loss(P, y), abs=1e-12)


@pytest.mark.parametrize("binning", ["uniform", "quantile"])
def test_weights_equal_naive_resampling_with_same_counts(binning):
    P, y = _data(40, seed=1)
    Q = P / P.sum(axis=1, keepdims=True)
    c, o = Q.max(axis=1), (Q.argmax(axis=1) == y).astype(float)
    order = np.argsort(c, kind="stable") if binning == "quantile" else np.arange(40)
    rng = np.random.default_rng(0)
    for _ in range(20):
        counts = rng.multinomial(40, np.full(40, 1 / 40))
        rows = np.repeat(np.arange(40), counts)  # the naive resample, original row order
        naive = [
            f(P[rows], y[rows], 5, binning)
            for f in (expected_calibration_error, maximum_calibration_error, rms_calibration_error)
        ]
        weighted = weighted_binned_errors(c[order], o[order], counts[order], 5, binning)
        assert np.allclose(weighted, naive, atol=1e-12)


def test_generic_callable_path_equals_naive_loop():
    P, y = _data(30, seed=2)
    ci = bootstrap_ci(lambda P, y: brier_score(P, y), P, y, n_boot=25, seed=5)
    rng = np.random.default_rng(5)
    reps = []
    for _ in range(25):
        rows = np.repeat(np.arange(30), rng.multinomial(30, np.full(30, 1 / 30)))
        reps.append(brier_score(P[rows], y[rows]))
    assert ci["lower"] == pytest.approx(np.quantile(reps, 0.025))
    assert ci["upper"] == pytest.approx(np.quantile(reps, 0.975))


def test_group_draws_have_the_row_level_distribution():
    # Mean of the ECE replicates over many draws: grouped and row-level draws agree.
    P, y = _data(300, seed=4)
    Q = P / P.sum(axis=1, keepdims=True)
    c, o = Q.max(axis=1), (Q.argmax(axis=1) == y).astype(float)
    _, grouped = binned_replicates(c, o, np.random.default_rng(0), 400, 15, "uniform")
    rng = np.random.default_rng(1)
    rowwise = [
        weighted_binned_errors(c, o, rng.multinomial(300, np.full(300, 1 / 300)), 15, "uniform")
        for _ in range(400)
    ]
    assert grouped[:, 0].mean() == pytest.approx(np.mean(rowwise, axis=0)[0], rel=0.05)


def test_invalid_arguments():
    P, y = _data(10)
    with pytest.raises(ValueError, match="unknown metric"):
        bootstrap_ci("f1", P, y)
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_ci("ece", P, y, n_boot=0)
    with pytest.raises(ValueError, match="unexpected"):
        bootstrap_ci("brier", P, y, n_bins=5)


def test_precomputed_rows_give_the_same_intervals():
    from calibrators._validation import check_probabilities
    from calibrators.bootstrap import bootstrap_cis, bootstrap_cis_unchecked
    from calibrators.metrics import brier_rows, log_loss_rows, top_label

    P, y = _data(3000, seed=5)
    P = check_probabilities(P)
    names = ("ece", "mce", "nll", "brier")
    rows = {
        "top_label": top_label(P, y),
        "nll": log_loss_rows(P, y, 1e-15),
        "brier": brier_rows(P, y),
    }
    given = bootstrap_cis_unchecked(names, P, y, 50, 2, 0.05, {}, rows=rows)
    assert given == bootstrap_cis(names, P, y, n_boot=50, seed=2)
