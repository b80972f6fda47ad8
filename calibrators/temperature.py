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
    check_positive_number,
)
from calibrators.log_temperature import (
    FittedTemperature,
    LogTemperatureObjective,
    check_search_params,
    fit_log_temperature,
    objective_value,
)
from calibrators.logits import (
    check_eps,
    inverse_softmax,
    inverse_softmax_unchecked,
    softmax_unchecked,
)
from calibrators.splits import stratified_folds

DEFAULT_EPS_GRID = (1e-6, 1e-4, 1e-3, 1e-2, 3e-2, 1e-1)


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
