"""The one-temperature search shared by temperature and re-softmax scaling.

``T`` is fitted in log-space, ``u = log T`` within ``log(bounds)``, in float64, by minimizing a
mean sample-weighted proper scoring rule of ``q = softmax(Z / T)`` with analytic first and second
derivatives (``LogTemperatureObjective``; the objectives are listed in ``calibrators.temperature``):
a safeguarded Newton iteration in a bracket (``fit_log_temperature``), after a coarse grid for the
objectives that are not convex in ``1/T``. ``FittedTemperature`` is what every one-temperature
calibrator stores and persists.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from calibrators.base import (
    Persisted,
    check_n_classes,
    check_positive_number,
    fit_diagnostics,
    restore_diagnostics,
)

OBJECTIVES = ("nll", "brier", "spherical")
# Coarse log-grid used to locate the basin before Newton for objectives that are not convex in
# 1/T (brier, spherical); nll is convex in 1/T, hence unimodal in log T, and needs no grid.
_N_COARSE_GRID = 25
_WARM_START_MIN_ROWS = 100_000
_WARM_START_SUBSET_ROWS = 20_000


class LogTemperatureObjective:
    """Objective ``f(u)`` at ``T = exp(u)`` and its first two derivatives in ``u``.

    ``f`` is the ``W``-weighted mean over the rows of ``Z`` (unique logit rows; ``W[r, k]`` is
    the weight of label ``k`` on row ``r``). Logits are shifted so that each row's maximum is 0,
    ``Zc = Z - max_k Z`` (softmax is shift invariant), hence ``exp(s Zc) <= 1`` never overflows.
    Derivatives are taken in ``s = 1/T = exp(-u)`` and chained: ``f_u = -s f_s`` and
    ``f_uu = s² f_ss + s f_s``. With ``q = softmax(s z)``, ``z̄ = Σ q z``, ``d = z - z̄`` and
    ``V = Σ q d²``: ``q' = q d``, ``q'' = q (d² - V)``; for nll ``f_s = Σ w z̄ - Σ W z`` and
    ``f_ss = Σ w V`` (convex in ``s``).
    """

    def __init__(self, Z: np.ndarray, W: np.ndarray, objective: str):
        self.objective = objective
        self.Zc = Z - Z.max(axis=1, keepdims=True)
        self.W = W
        self.row_weight = W @ np.ones(W.shape[1])
        self.total_weight = self.row_weight.sum()
        self.label_logit_sum = np.einsum("ij,ij->", W, self.Zc)
        self.Zc_sq = self.Zc * self.Zc if objective == "nll" else None
        self._buffer = np.empty_like(self.Zc)
        # Row sums as a matrix-vector product: several times faster than sum(axis=1) for small K.
        self._ones = np.ones(Z.shape[1])
        self._values = {}

    def __call__(self, u: float, order: int) -> tuple[float, float, float]:
        s = math.exp(-u)
        E = np.multiply(self.Zc, s, out=self._buffer)
        np.exp(E, out=E)
        row_sum = E @ self._ones
        if self.objective == "nll":
            result = self._nll(s, E, row_sum, order)
        else:
            E /= row_sum[:, None]
            result = self._brier_or_spherical(s, E, order)
        self._values[u] = result[0]
        return result

    def value(self, u: float) -> float:
        """``f(u)``, reusing an earlier evaluation at the same ``u``."""
        if u not in self._values:
            self(u, 0)
        return float(self._values[u])

    def _nll(self, s, E, row_sum, order):
        w, total = self.row_weight, self.total_weight
        f = (w @ np.log(row_sum) - s * self.label_logit_sum) / total
        if order == 0:
            return f, math.nan, math.nan
        z_mean = np.einsum("ij,ij->i", E, self.Zc) / row_sum
        f_s = (w @ z_mean - self.label_logit_sum) / total
        if order == 1:
            return f, -s * f_s, math.nan
        z_sq_mean = np.einsum("ij,ij->i", E, self.Zc_sq) / row_sum
        f_ss = w @ np.maximum(z_sq_mean - z_mean * z_mean, 0.0) / total
        return f, -s * f_s, s * s * f_ss + s * f_s

    def _brier_or_spherical(self, s, Q, order):
        W, w, total = self.W, self.row_weight, self.total_weight
        sq_norm = np.einsum("ij,ij->i", Q, Q)
        label_mass = np.einsum("ij,ij->i", W, Q)
        norm = np.sqrt(sq_norm)
        if self.objective == "brier":
            f = (w @ (sq_norm + 1.0) - 2.0 * label_mass.sum()) / total
        else:
            f = -(label_mass / norm).sum() / total
        if order == 0:
            return f, math.nan, math.nan

        D = self.Zc - np.einsum("ij,ij->i", Q, self.Zc)[:, None]
        dQ = Q * D
        variance = np.einsum("ij,ij->i", dQ, D)
        d2Q = dQ * D - Q * variance[:, None]
        sq_norm_s = 2.0 * np.einsum("ij,ij->i", Q, dQ)
        sq_norm_ss = 2.0 * (np.einsum("ij,ij->i", dQ, dQ) + np.einsum("ij,ij->i", Q, d2Q))
        label_mass_s = np.einsum("ij,ij->i", W, dQ)
        label_mass_ss = np.einsum("ij,ij->i", W, d2Q)
        if self.objective == "brier":
            f_s = (w @ sq_norm_s - 2.0 * label_mass_s.sum()) / total
            f_ss = (w @ sq_norm_ss - 2.0 * label_mass_ss.sum()) / total
        else:
            norm_s = sq_norm_s / (2.0 * norm)
            norm_ss = sq_norm_ss / (2.0 * norm) - sq_norm_s**2 / (4.0 * norm**3)
            score_s = label_mass_s / norm - label_mass * norm_s / norm**2
            score_ss = (
                label_mass_ss / norm
                - 2.0 * label_mass_s * norm_s / norm**2
                - label_mass * norm_ss / norm**2
                + 2.0 * label_mass * norm_s**2 / norm**3
            )
            f_s = -score_s.sum() / total
            f_ss = -score_ss.sum() / total
        return f, -s * f_s, s * s * f_ss + s * f_s


def objective_value(u: float, Z: np.ndarray, W: np.ndarray, objective: str) -> float:
    """Mean ``W``-weighted objective at ``T = exp(u)`` on logit rows ``Z``."""
    return LogTemperatureObjective(Z, W, objective).value(u)


def _newton_in_bracket(fun, a: float, b: float, x0: float, tol: float, max_iter: int):
    """Minimize on ``[a, b]`` by Newton on ``f'`` from ``x0``, safeguarded by bisection.

    ``fun(u, order)`` returns ``(f, f', f'')``. The sign of ``f'`` at each iterate shrinks the
    bracket. When a step would leave the bracket towards an endpoint whose slope is unknown,
    that slope is evaluated: ``f'(a) >= 0`` (or ``f'(b) <= 0``) means the minimum is on that
    bound and it is returned. Steps leaving a verified bracket, or taken with non-positive
    curvature, are replaced by bisection. Stops when a step or the bracket is ``<= tol``.

    Returns ``(u, n_iter, converged, at_bound)``; ``n_iter`` counts Newton iterations.
    """
    low, high = a, b
    u = min(max(x0, a), b)
    for n_iter in range(1, max_iter + 1):
        _, slope, curvature = fun(u, 2)
        if slope == 0:
            return u, n_iter, True, False
        if slope < 0:
            a = u
        else:
            b = u
        u_next = u - slope / curvature if curvature > 0 else 0.5 * (a + b)
        if u_next >= b and b == high and slope < 0:
            if fun(high, 1)[1] <= 0:
                return high, n_iter, True, True
            high = math.nextafter(high, -math.inf)
        elif u_next <= a and a == low and slope > 0:
            if fun(low, 1)[1] >= 0:
                return low, n_iter, True, True
            low = math.nextafter(low, math.inf)
        if not a < u_next < b:
            u_next = 0.5 * (a + b)
        if abs(u_next - u) <= tol or b - a <= tol:
            # u is within tol of the minimizer and already evaluated (its value is cached).
            return u, n_iter, True, False
        u = u_next
    return u, max_iter, False, False


def _warm_start(fun: LogTemperatureObjective, log_bounds: tuple[float, float]) -> float:
    """Starting ``u``: 0 (``T = 1``), or for many rows a rough fit on an evenly strided subset.

    Newton then needs about 3 iterations on all rows instead of about 6 from ``T = 1``.
    """
    n_rows = fun.Zc.shape[0]
    if n_rows <= _WARM_START_MIN_ROWS:
        return 0.0
    stride = n_rows // _WARM_START_SUBSET_ROWS
    subset = LogTemperatureObjective(fun.Zc[::stride], fun.W[::stride], fun.objective)
    if not subset.total_weight > 0:
        return 0.0
    return _newton_in_bracket(subset, *log_bounds, 0.0, 1e-3, 50)[0]


def fit_log_temperature(
    fun: LogTemperatureObjective, log_bounds: tuple[float, float], tol: float, max_iter: int
):
    """Fit ``u = log T`` minimizing ``fun`` within ``log_bounds``.

    For ``nll`` the objective is convex in ``1/T``, so Newton runs on the whole bracket. For
    ``brier`` and ``spherical`` a coarse log-grid of ``_N_COARSE_GRID`` points first locates
    the best basin, Newton refines inside its neighbouring grid points, and the better of the
    refined point and the best grid point is kept.

    Returns ``(u, n_iter, converged, at_bound)``.
    """

    low, high = log_bounds
    if fun.objective == "nll":
        return _newton_in_bracket(fun, low, high, _warm_start(fun, log_bounds), tol, max_iter)
    grid = np.linspace(low, high, _N_COARSE_GRID)
    values = [fun.value(u) for u in grid]
    best = int(np.argmin(values))
    a, b = grid[max(best - 1, 0)], grid[min(best + 1, grid.size - 1)]
    u, n_iter, converged, _ = _newton_in_bracket(fun, a, b, float(grid[best]), tol, max_iter)
    if fun.value(u) > values[best]:
        u = float(grid[best])
    at_bound = u <= low or u >= high
    return u, n_iter, converged, at_bound


def check_search_params(objective, bounds, tol, max_iter) -> tuple[tuple[float, float], float, int]:
    """Validate a temperature search: ``objective`` in :data:`OBJECTIVES`, ``bounds`` a pair
    ``0 < low < high`` (finite), ``tol > 0``, integer ``max_iter >= 1``.

    Returns ``((log low, log high), tol, max_iter)``.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}; got {objective!r}")
    try:
        low, high = (float(b) for b in bounds)
    except (TypeError, ValueError):
        raise ValueError(f"bounds must be a pair (low, high); got {bounds!r}") from None
    if not (np.isfinite(low) and np.isfinite(high) and 0 < low < high):
        raise ValueError(f"bounds must satisfy 0 < low < high, finite; got {bounds!r}")
    tol = check_positive_number(tol, "tol")
    if isinstance(max_iter, bool) or not isinstance(max_iter, numbers.Integral) or max_iter < 1:
        raise ValueError(f"max_iter must be an integer >= 1; got {max_iter!r}")
    return (math.log(low), math.log(high)), tol, int(max_iter)


class FittedTemperature(Persisted):
    """What every one-temperature calibrator stores: ``temperature_`` found by
    :func:`fit_log_temperature`, its ``objective_``, ``n_classes_``, the fit diagnostics,
    ``at_bound_`` and ``n_unique_rows_``."""

    _fitted_attribute = "temperature_"

    def _record_fit(self, objective: LogTemperatureObjective, fit, n_unique_rows: int) -> None:
        """Set the fitted attributes from ``fit = fit_log_temperature(objective, ...)``."""
        u, n_iter, converged, at_bound = fit
        self.temperature_ = math.exp(u)
        self.objective_ = objective.objective
        self.n_classes_ = int(objective.Zc.shape[1])
        self.n_iter_ = n_iter
        self.converged_ = bool(converged)
        self.at_bound_ = bool(at_bound)
        self.loss_before_ = objective.value(0.0)
        self.loss_after_ = objective.value(u)
        self.n_unique_rows_ = int(n_unique_rows)

    def _fitted_dict(self) -> dict:
        return {
            "temperature": float(self.temperature_),
            "objective": self.objective_,
            "n_classes": int(self.n_classes_),
            **fit_diagnostics(self),
            "at_bound": bool(self.at_bound_),
            "n_unique_rows": int(self.n_unique_rows_),
        }

    @classmethod
    def _restore(cls, data):
        model, fitted = super()._restore(data)
        model.temperature_ = check_positive_number(fitted.get("temperature"), "temperature")
        model.n_classes_ = check_n_classes(fitted.get("n_classes"))
        model.objective_ = fitted.get("objective", model.objective)
        restore_diagnostics(model, fitted)
        model.at_bound_ = bool(fitted.get("at_bound", False))
        model.n_unique_rows_ = int(fitted.get("n_unique_rows", 0))
        return model, fitted
