"""Smooth ECE and the smooth reliability diagram, cross-checked against relplot 1.0.3."""

import json
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from calibrators.smooth_ece import (
    bootstrap_counts,
    kernel_sums,
    mesh_size,
    smooth_ece,
    smooth_ece_at,
    smooth_ece_bandwidth,
    smooth_ece_binary,
    smooth_reliability_binary,
    smooth_reliability_diagram,
    top_label_pairs,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import relplot
    from relplot.estimators import KernelSmoother
    from relplot.kernels import ReflectedGaussianKernel

TOL = 1e-6


def _binary_data(seed, n, grid=None):
    rng = np.random.default_rng(seed)
    f = rng.beta(5, 2, size=n)
    if grid is not None:  # verbalized confidences such as 0.9, 0.95, 1.0
        f = np.round(f / grid) * grid
    y = (rng.random(n) < f**1.5).astype(np.float64)
    return f, y


CASES = [
    (0, 40, None),
    (1, 500, None),
    (2, 3000, None),
    (3, 800, 0.05),
    (4, 300, 0.1),
]


@pytest.mark.parametrize(("seed", "n", "grid"), CASES)
def test_smooth_ece_and_bandwidth_match_relplot(seed, n, grid):
    f, y = _binary_data(seed, n, grid)
    value, sigma = smooth_ece_binary(f, y)
    expected, expected_sigma = relplot.smECE(f, y, return_width=True)
    assert sigma == expected_sigma
    assert value == pytest.approx(expected, abs=TOL)
    assert smooth_ece_bandwidth(f, y) == expected_sigma


@pytest.mark.parametrize("sigma", [0.002, 0.0073, 0.02, 0.05, 0.3, 1.0])
def test_smooth_ece_at_fixed_bandwidth_matches_relplot(sigma):
    # sigma < 0.01 uses a finer grid (m > 1001) and sigma < 0.05 a finer Riemann mesh.
    f, y = _binary_data(5, 700)
    assert smooth_ece_at(f, y, sigma) == pytest.approx(relplot.smECE_sigma(f, y, sigma), abs=TOL)


def test_small_bandwidth_fixed_point_on_calibrated_data_matches_relplot():
    rng = np.random.default_rng(6)
    f = rng.random(20000)
    y = (rng.random(20000) < f).astype(np.float64)
    value, sigma = smooth_ece_binary(f, y)
    expected, expected_sigma = relplot.smECE(f, y, return_width=True)
    assert sigma == expected_sigma and mesh_size(sigma) > 200  # a finer Riemann mesh
    assert value == pytest.approx(expected, abs=TOL)


@pytest.mark.parametrize(("seed", "n", "grid"), CASES)
def test_curve_and_density_match_relplot_diagram(seed, n, grid):
    f, y = _binary_data(seed, n, grid)
    ours = smooth_reliability_binary(f, y, n_boot=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        diagram = relplot.prepare_rel_diagram(f, y, plot_confidence_band=False, report_CE_std=False)
    np.testing.assert_allclose(ours["t"], diagram["mesh"], atol=0)
    np.testing.assert_allclose(ours["accuracy"], diagram["mu"], atol=TOL)
    np.testing.assert_allclose(ours["density"], diagram["density"], atol=TOL)
    assert ours["bandwidth"] == diagram["sigma"]
    assert ours["smooth_ece"] == pytest.approx(diagram["ce"], abs=TOL)
    assert ours["lower"] is None and ours["smooth_ece_interval"] is None


def test_bootstrap_band_matches_relplot_smoother_on_the_same_resamples():
    # Our resample b is default_rng(seed).integers(0, n, n) at the b-th call; relplot's kernel
    # smoother (at the full-data bandwidth) and smECE are run on the materialized resamples.
    f, y = _binary_data(7, 300, 0.05)
    n_boot, seed, alpha = 40, 11, 0.1
    ours = smooth_reliability_binary(f, y, n_boot=n_boot, seed=seed, alpha=alpha)
    t = np.asarray(ours["t"])
    rng = np.random.default_rng(seed)
    curves, values = [], []
    for _ in range(n_boot):
        rows = rng.integers(0, f.size, f.size)
        smoother = KernelSmoother(ReflectedGaussianKernel(ours["bandwidth"]))
        smoother.fit(f[rows].reshape(-1, 1), y[rows])
        curves.append(smoother.predict(t.reshape(-1, 1)))
        values.append(relplot.smECE(f[rows], y[rows]))
    lower, upper = np.quantile(curves, [alpha / 2, 1 - alpha / 2], axis=0)
    np.testing.assert_allclose(ours["lower"], lower, atol=TOL)
    np.testing.assert_allclose(ours["upper"], upper, atol=TOL)
    low, high = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    assert ours["smooth_ece_interval"] == {
        "lower": pytest.approx(low, abs=TOL),
        "upper": pytest.approx(high, abs=TOL),
    }
    assert ours["n_boot"] == n_boot and ours["seed"] == seed and ours["alpha"] == alpha


def test_multiclass_uses_top_label_pairs_like_relplot():
    rng = np.random.default_rng(8)
    P = rng.dirichlet(np.ones(4) * 0.5, size=600)
    y = np.array([rng.choice(4, p=p) for p in P])
    f, correct = relplot.multiclass_logits_to_confidences(P, y, probs=True)
    assert smooth_ece(P, y) == pytest.approx(relplot.smECE(f, correct), abs=TOL)
    ours_f, ours_correct = top_label_pairs(P, y)
    np.testing.assert_array_equal(ours_f, f)
    np.testing.assert_array_equal(ours_correct, correct)


def test_diagram_is_json_ready_and_deterministic():
    rng = np.random.default_rng(9)
    P = rng.dirichlet(np.ones(3), size=200)
    y = rng.integers(0, 3, size=200)
    first = smooth_reliability_diagram(P, y, n_points=50, n_boot=30, seed=3)
    assert json.loads(json.dumps(first, allow_nan=False)) == first
    assert smooth_reliability_diagram(P, y, n_points=50, n_boot=30, seed=3) == first
    assert len(first["t"]) == len(first["accuracy"]) == len(first["lower"]) == 50
    assert all(lo <= hi for lo, hi in zip(first["lower"], first["upper"], strict=True))
    assert first["conventions"]["bandwidth"].startswith("fixed point")


# ----------------------------------------------------------------------------- hand values


def test_constant_calibrated_forecast_has_zero_smooth_ece():
    # f = 0.5 everywhere and half the outcomes 1: the smoothed residual is 0 at every t.
    f = np.full(10, 0.5)
    y = np.array([0.0, 1.0] * 5)
    assert smooth_ece_at(f, y, 0.1) == pytest.approx(0.0, abs=1e-15)
    value, sigma = smooth_ece_binary(f, y)
    assert value == pytest.approx(0.0, abs=1e-15)
    # Every sigma >= 0.001 is above the fixed point 0; 2^-10 < 0.001 counts as below, so the
    # bisection keeps 2^-9.
    assert sigma == 2.0**-9 == relplot.smECE(f, y, return_width=True)[1]


def test_always_wrong_certain_forecast_has_smooth_ece_near_one():
    # f = 1, y = 0: residual 1 wherever there is mass; only the 1e-4 density floor lowers it.
    f, y = np.ones(50), np.zeros(50)
    value, sigma = smooth_ece_binary(f, y)
    assert value == pytest.approx(1.0, abs=1e-4)
    assert sigma == relplot.smECE(f, y, return_width=True)[1]


def test_density_integrates_to_one():
    f, _ = _binary_data(10, 400)
    t = np.linspace(0, 1, 2001)
    density = kernel_sums(f, np.full(f.size, 1 / f.size), t, 0.05)[0]
    assert np.trapezoid(density, t) == pytest.approx(1.0, abs=2e-3)


def test_bootstrap_counts_are_resample_multiplicities():
    counts = bootstrap_counts(5, 3, seed=1)
    rng = np.random.default_rng(1)
    for row in counts:
        np.testing.assert_array_equal(row, np.bincount(rng.integers(0, 5, 5), minlength=5))
    assert counts.sum(axis=1).tolist() == [5, 5, 5]


# ----------------------------------------------------------------------------- invariants


@given(
    st.lists(
        st.tuples(st.floats(0, 1), st.integers(0, 1)),
        min_size=1,
        max_size=60,
    ),
    st.sampled_from([0.02, 0.1, 0.4]),
)
def test_bounds_and_mirror_symmetry(pairs, sigma):
    f = np.array([p[0] for p in pairs])
    y = np.array([p[1] for p in pairs], dtype=np.float64)
    value = smooth_ece_at(f, y, sigma)
    assert 0.0 <= value <= 1.0
    # Mirroring forecasts and outcomes (f, y) -> (1 - f, 1 - y) mirrors the whole picture.
    assert smooth_ece_at(1 - f, 1 - y, sigma) == pytest.approx(value, abs=1e-9)
    # Row order does not matter.
    order = np.argsort(f, kind="stable")[::-1]
    assert smooth_ece_at(f[order], y[order], sigma) == pytest.approx(value, abs=1e-12)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: smooth_ece_binary([0.5, 1.2], [0, 1]), r"f must lie in \[0, 1\]"),
        (lambda: smooth_ece_binary([0.5, np.nan], [0, 1]), r"f must lie in \[0, 1\]"),
        (lambda: smooth_ece_binary([0.5], [0, 1]), "equal length"),
        (lambda: smooth_ece_binary([], []), "non-empty"),
        (lambda: smooth_ece_at([0.5], [1], 0.0), r"bandwidth must be a number in \(0, 1\]"),
        (lambda: smooth_reliability_binary([0.5], [1], n_points=1), "n_points"),
        (lambda: smooth_reliability_binary([0.5], [1], n_boot=-1), "n_boot"),
        (lambda: smooth_reliability_binary([0.5], [1], alpha=1.0), "alpha"),
        (lambda: smooth_ece([[0.5, 0.5]], [2]), "labels must lie in"),
    ],
)
def test_bad_input_raises(call, message):
    with pytest.raises(ValueError, match=message):
        call()
