"""Temperature scaling of verbalized probabilities.

``q = softmax(z / T)`` with ``z = inverse_softmax(P, eps)`` (DESIGN.md, "Numeric conventions").
``T`` is fitted in log-space, ``u = log T`` within ``log(bounds)``, in float64, by minimizing a
mean sample-weighted proper scoring rule with analytic first and second derivatives:

- ``nll``: ``-log q_y`` (log loss; the default);
- ``brier``: ``Σ_k (q_k - 1[y = k])²``;
- ``spherical``: ``-q_y / ‖q‖₂`` (the spherical score, negated so that lower is better).

``T = 1`` is the identity on ``(P/ΣP + eps) / (1 + K·eps)``; ``T > 1`` softens, ``T < 1``
sharpens. Dividing logits by ``T > 0`` keeps their order, so the argmax never changes (up to
floating-point ties at extreme temperatures; ties go to the lowest index).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from calibrators._dedup import label_weights, unique_probability_rows
from calibrators._validation import check_labels, check_sample_weight
from calibrators.base import (
    Persisted,
    check_n_classes,
    check_positive_number,
    fit_diagnostics,
    restore_diagnostics,
)
from calibrators.logits import (
    check_eps,
    inverse_softmax,
    inverse_softmax_unchecked,
    softmax_unchecked,
)
from calibrators.splits import stratified_folds

OBJECTIVES = ("nll", "brier", "spherical")
DEFAULT_EPS_GRID = (1e-6, 1e-4, 1e-3, 1e-2, 3e-2, 1e-1)
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


class TemperatureScaling(FittedTemperature):
    """Temperature scaling ``q = softmax(inverse_softmax(P, eps) / T)``.

    Parameters
    ----------
    objective : {"nll", "brier", "spherical"}, default="nll"
        Mean sample-weighted objective minimized over ``T`` (see the module docstring).
    eps : float >= 0 or "auto", default=1e-3
        Smoothing of :func:`~calibrators.logits.inverse_softmax`. ``1e-3`` keeps a verbalized
        0 at ``log 1e-3 ≈ -6.9``, below any answer on a 0.01 grid (``log 0.01 ≈ -4.6``).
        ``"auto"`` scores each value of ``eps_grid`` by stratified ``auto_folds``-fold
        cross-validated NLL (whatever the ``objective``): ``T`` is fitted on all folds but one
        and the held-out fold's NLL summed, for every fold. It keeps the best (ties: the first
        in the grid) and refits ``T`` on all data.
    bounds : (float, float), default=(1e-2, 1e2)
        ``0 < low < high``; the search is over ``log T`` in ``[log low, log high]``.
    eps_grid : sequence of float > 0, default=(1e-6, 1e-4, 1e-3, 1e-2, 3e-2, 1e-1)
        Candidates for ``eps="auto"``.
    auto_folds : int >= 2, default=5
        Cross-validation folds for ``eps="auto"``.
    random_state : int or None, default=0
        Seed of the ``eps="auto"`` folds.
    tol : float > 0, default=1e-9
        Absolute tolerance on ``log T`` (a relative tolerance on ``T``).
    max_iter : int >= 1, default=100
        Maximum Newton iterations.

    Attributes
    ----------
    temperature_ : float
    eps_ : float
        The ``eps`` used (chosen from ``eps_grid`` when ``eps="auto"``).
    objective_ : str
    n_classes_ : int
    n_iter_ : int
        Newton iterations of the final fit.
    converged_ : bool
    at_bound_ : bool
        True when ``temperature_`` sits on a bound (the objective still decreases beyond it).
    loss_before_, loss_after_ : float
        The objective on the fit data at ``T = 1`` and at ``temperature_`` (same ``eps_``).
    eps_scores_ : list of dict or None
        For ``eps="auto"``: ``{"eps", "temperature", "heldout_nll"}`` per grid value
        (``temperature`` fitted on all data, ``heldout_nll`` cross-validated).
    n_unique_rows_ : int
        Distinct probability rows the fit ran on.
    """

    method = "temperature"

    def __init__(
        self,
        objective="nll",
        eps=1e-3,
        bounds=(1e-2, 1e2),
        eps_grid=DEFAULT_EPS_GRID,
        auto_folds=5,
        random_state=0,
        tol=1e-9,
        max_iter=100,
    ):
        self.objective = objective
        self.eps = eps
        self.bounds = bounds
        self.eps_grid = eps_grid
        self.auto_folds = auto_folds
        self.random_state = random_state
        self.tol = tol
        self.max_iter = max_iter

    def _validated_params(self):
        log_bounds, tol, max_iter = check_search_params(
            self.objective, self.bounds, self.tol, self.max_iter
        )
        eps = "auto" if isinstance(self.eps, str) and self.eps == "auto" else None
        if eps is None:
            if isinstance(self.eps, str):
                raise ValueError(f"eps must be a number >= 0 or 'auto'; got {self.eps!r}")
            eps = check_eps(self.eps)
        grid = [check_positive_number(e, "every eps_grid value") for e in self.eps_grid]
        if not grid:
            raise ValueError("eps_grid must not be empty")
        folds = self.auto_folds
        if isinstance(folds, bool) or not isinstance(folds, numbers.Integral) or folds < 2:
            raise ValueError(f"auto_folds must be an integer >= 2; got {folds!r}")
        return eps, log_bounds, grid, int(folds), tol, max_iter

    def fit(self, P, y, sample_weight=None):
        """Fit ``T`` on probabilities ``P`` (n, K) and labels ``y`` in ``0..K-1``.

        ``sample_weight`` (n,) non-negative: integer weights are equivalent to repeated rows.
        Repeated probability rows are collapsed first (their label weights summed), which
        leaves the objective unchanged and makes the fit cost scale with the distinct rows.
        """
        eps, log_bounds, grid, folds, tol, max_iter = self._validated_params()
        unique, inverse = unique_probability_rows(P, None if eps == "auto" else eps)
        n_samples, n_classes = inverse.size, unique.shape[1]
        y = check_labels(y, n_samples, n_classes)
        weight = check_sample_weight(sample_weight, n_samples)
        W = label_weights(inverse, y, weight, unique.shape[0], n_classes)

        eps_scores = None
        if eps == "auto":
            eps, eps_scores = self._select_eps(
                unique, inverse, y, weight, grid, folds, log_bounds, tol, max_iter
            )
        Z = inverse_softmax_unchecked(unique, eps)
        objective = LogTemperatureObjective(Z, W, self.objective)
        fit = fit_log_temperature(objective, log_bounds, tol, max_iter)
        self._record_fit(objective, fit, unique.shape[0])
        self.eps_ = eps
        self.eps_scores_ = eps_scores
        return self

    def _select_eps(self, unique, inverse, y, weight, grid, folds, log_bounds, tol, max_iter):
        """Pick ``eps`` from ``grid`` by cross-validated NLL; returns ``(eps, scores)``."""
        if y.size < folds:
            raise ValueError(
                f"eps='auto' with auto_folds={folds} needs at least {folds} samples; got "
                f"{y.size}: pass a numeric eps or more data"
            )
        fold_of = stratified_folds(y, folds, self.random_state)
        n_unique, n_classes = unique.shape
        splits = []
        for fold in range(folds):
            held = fold_of == fold
            W_fit = label_weights(inverse[~held], y[~held], weight[~held], n_unique, n_classes)
            W_held = label_weights(inverse[held], y[held], weight[held], n_unique, n_classes)
            if W_fit.sum() > 0 and W_held.sum() > 0:
                splits.append((W_fit, W_held))
        if not splits:
            raise ValueError("eps='auto' needs positive sample weight in the folds")
        W_all = label_weights(inverse, y, weight, n_unique, n_classes)
        total_held = sum(W_held.sum() for _, W_held in splits)
        scores = []
        for eps in grid:
            Z = inverse_softmax_unchecked(unique, eps)
            held_loss = 0.0
            for W_fit, W_held in splits:
                objective = LogTemperatureObjective(Z, W_fit, self.objective)
                u = fit_log_temperature(objective, log_bounds, tol, max_iter)[0]
                # objective_value is a weighted mean; weight it back to a sum over the fold.
                held_loss += objective_value(u, Z, W_held, "nll") * W_held.sum()
            full = LogTemperatureObjective(Z, W_all, self.objective)
            u_all = fit_log_temperature(full, log_bounds, tol, max_iter)[0]
            scores.append(
                {
                    "eps": eps,
                    "temperature": math.exp(u_all),
                    "heldout_nll": float(held_loss / total_held),
                }
            )
        best = min(range(len(grid)), key=lambda i: scores[i]["heldout_nll"])
        return grid[best], scores

    def transform(self, P) -> np.ndarray:
        """Calibrated probabilities ``softmax(inverse_softmax(P, eps_) / temperature_)``."""
        Z = inverse_softmax(self._checked_input(P), self.eps_)
        Z /= self.temperature_
        return softmax_unchecked(Z)

    def get_params(self) -> dict:
        """Constructor parameters, JSON-safe."""
        return {
            "objective": self.objective,
            "eps": self.eps if isinstance(self.eps, str) else float(self.eps),
            "bounds": [float(b) for b in self.bounds],
            "eps_grid": [float(e) for e in self.eps_grid],
            "auto_folds": int(self.auto_folds),
            "random_state": None if self.random_state is None else int(self.random_state),
            "tol": float(self.tol),
            "max_iter": int(self.max_iter),
        }

    def _fitted_dict(self) -> dict:
        """``to_dict()["fitted"]``: the fitted attributes without their trailing underscore
        (``temperature``, ``eps``, ``objective``, ``n_classes``, ``n_iter``, ``converged``,
        ``at_bound``, ``loss_before``, ``loss_after``, ``eps_scores``, ``n_unique_rows``).
        Floats round-trip exactly through JSON, so :meth:`from_dict` transforms identically.
        """
        return super()._fitted_dict() | {"eps": float(self.eps_), "eps_scores": self.eps_scores_}

    @classmethod
    def from_dict(cls, data: dict) -> TemperatureScaling:
        """Rebuild a fitted instance from :meth:`to_dict` output."""
        model, fitted = cls._restore(data)
        model.eps_ = check_eps(fitted.get("eps"))
        model.eps_scores_ = fitted.get("eps_scores")
        return model
