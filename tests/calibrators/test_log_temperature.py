"""The one-temperature objective and its search, checked against direct formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax

from calibrators.log_temperature import (
    OBJECTIVES,
    LogTemperatureObjective,
    check_search_params,
    fit_log_temperature,
)

Z = np.array([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0], [-1.0, 3.0, 0.0], [0.0, 0.0, 0.0]])
W = np.array([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])


def direct(u: float, objective: str) -> float:
    """The weighted mean score of q = softmax(Z / exp(u)), written out."""
    q = softmax(Z / math.exp(u), axis=1)
    if objective == "nll":
        per_cell = -log_softmax(Z / math.exp(u), axis=1)
    elif objective == "brier":
        onehots = np.eye(3)
        per_cell = np.array([[((row - onehots[k]) ** 2).sum() for k in range(3)] for row in q])
    else:
        per_cell = -q / np.linalg.norm(q, axis=1, keepdims=True)
    return float((W * per_cell).sum() / W.sum())


@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize("u", [-1.0, 0.0, 0.7])
def test_value_and_derivatives_match_the_direct_formula(objective, u):
    fun = LogTemperatureObjective(Z, W, objective)
    f, f_u, f_uu = fun(u, 2)
    h = 1e-4
    assert f == pytest.approx(direct(u, objective), rel=1e-12)
    assert f_u == pytest.approx(
        (direct(u + h, objective) - direct(u - h, objective)) / (2 * h), rel=1e-6, abs=1e-9
    )
    second = (direct(u + h, objective) - 2 * direct(u, objective) + direct(u - h, objective)) / h**2
    assert f_uu == pytest.approx(second, rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_the_search_finds_the_minimum_scipy_finds(objective):
    log_bounds, tol, max_iter = check_search_params(objective, (1e-2, 1e2), 1e-9, 100)
    u, _, converged, at_bound = fit_log_temperature(
        LogTemperatureObjective(Z, W, objective), log_bounds, tol, max_iter
    )
    reference = minimize_scalar(
        lambda v: direct(v, objective),
        bounds=log_bounds,
        method="bounded",
        options={"xatol": 1e-10},
    )
    assert converged or at_bound
    # As low as scipy's minimum; where the objective is not flat, at the same place.
    assert direct(u, objective) <= direct(reference.x, objective) + 1e-12
    if objective != "spherical":  # on this data the spherical score flattens out as T -> 0
        assert not at_bound and u == pytest.approx(reference.x, abs=1e-5)


def test_search_params_are_checked():
    assert check_search_params("nll", (0.5, 2.0), 1e-6, 10) == (
        (math.log(0.5), math.log(2.0)),
        1e-6,
        10,
    )
    with pytest.raises(ValueError, match="objective must be one of"):
        check_search_params("hinge", (0.5, 2.0), 1e-6, 10)
