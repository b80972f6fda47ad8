"""Re-softmax scaling, the baseline: ``q = softmax(P / T)``.

The probabilities themselves are used as logits, ``z = p`` (not ``log p``), and ``T`` is fitted
like :class:`~calibrators.temperature.TemperatureScaling` (same objectives, same Newton search
on ``u = log T`` with analytic derivatives, on the unique rows). It is the wrong way to scale
probabilities: ``softmax(p / T)`` with ``p`` in [0, 1] compresses every answer towards uniform
unless ``T`` is small, and ``T = 1`` is not the identity (``softmax([1, 0]) = [0.73, 0.27]``).
verbcal fits it beside every calibrator as the baseline that inverse-softmax temperature
scaling should beat. As with temperature scaling, dividing by ``T > 0`` keeps the argmax.
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
from calibrators.logits import softmax_unchecked
from calibrators.temperature import OBJECTIVES, LogTemperatureObjective, fit_log_temperature


class ResoftmaxScaling(Persisted):
    """Re-softmax scaling ``q = softmax(P / T)`` (the baseline; see the module docstring).

    Parameters
    ----------
    objective : {"nll", "brier", "spherical"}, default="nll"
        Mean sample-weighted objective minimized over ``T``.
    bounds : (float, float), default=(1e-3, 1e3)
        ``0 < low < high``; the search is over ``log T`` in ``[log low, log high]``. Wider
        below than temperature scaling's: logits in [0, 1] need ``T`` well under 1 to sharpen.
    tol : float > 0, default=1e-9
        Absolute tolerance on ``log T``.
    max_iter : int >= 1, default=100

    Attributes
    ----------
    temperature_ : float
    objective_ : str
    n_classes_ : int
    n_iter_ : int
    converged_ : bool
    at_bound_ : bool
    loss_before_, loss_after_ : float
        The objective on the fit data at ``T = 1`` and at ``temperature_``.
    n_unique_rows_ : int
    """

    method = "resoftmax"
    _fitted_attribute = "temperature_"

    def __init__(self, objective="nll", bounds=(1e-3, 1e3), tol=1e-9, max_iter=100):
        self.objective = objective
        self.bounds = bounds
        self.tol = tol
        self.max_iter = max_iter

    def _validated_params(self):
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}; got {self.objective!r}")
        try:
            low, high = (float(b) for b in self.bounds)
        except (TypeError, ValueError):
            raise ValueError(f"bounds must be a pair (low, high); got {self.bounds!r}") from None
        if not (np.isfinite(low) and np.isfinite(high) and 0 < low < high):
            raise ValueError(f"bounds must satisfy 0 < low < high, finite; got {self.bounds!r}")
        tol = check_positive_number(self.tol, "tol")
        max_iter = self.max_iter
        if isinstance(max_iter, bool) or not isinstance(max_iter, numbers.Integral) or max_iter < 1:
            raise ValueError(f"max_iter must be an integer >= 1; got {max_iter!r}")
        return (math.log(low), math.log(high)), tol, int(max_iter)

    def fit(self, P, y, sample_weight=None):
        """Fit ``T`` on probabilities ``P`` (n, K) and labels ``y`` in ``0..K-1``."""
        log_bounds, tol, max_iter = self._validated_params()
        unique, inverse = unique_probability_rows(P)
        n_samples, n_classes = inverse.size, unique.shape[1]
        y = check_labels(y, n_samples, n_classes)
        weight = check_sample_weight(sample_weight, n_samples)
        W = label_weights(inverse, y, weight, unique.shape[0], n_classes)
        objective = LogTemperatureObjective(unique, W, self.objective)
        u, n_iter, converged, at_bound = fit_log_temperature(objective, log_bounds, tol, max_iter)
        self.temperature_ = math.exp(u)
        self.objective_ = self.objective
        self.n_classes_ = n_classes
        self.n_iter_ = n_iter
        self.converged_ = bool(converged)
        self.at_bound_ = bool(at_bound)
        self.loss_before_ = objective.value(0.0)
        self.loss_after_ = objective.value(u)
        self.n_unique_rows_ = int(unique.shape[0])
        return self

    def transform(self, P) -> np.ndarray:
        """Calibrated probabilities ``softmax(P / temperature_)`` (rows of ``P`` renormalized)."""
        return softmax_unchecked(self._checked_input(P) / self.temperature_)

    def get_params(self) -> dict:
        """Constructor parameters, JSON-safe."""
        return {
            "objective": self.objective,
            "bounds": [float(b) for b in self.bounds],
            "tol": float(self.tol),
            "max_iter": int(self.max_iter),
        }

    def _fitted_dict(self) -> dict:
        """``to_dict()["fitted"]``: ``temperature``, ``objective``, ``n_classes``, the fit's
        ``n_iter``, ``converged``, ``loss_before``, ``loss_after``, and ``at_bound``,
        ``n_unique_rows``."""
        return {
            "temperature": float(self.temperature_),
            "objective": self.objective_,
            "n_classes": int(self.n_classes_),
            **fit_diagnostics(self),
            "at_bound": bool(self.at_bound_),
            "n_unique_rows": int(self.n_unique_rows_),
        }

    @classmethod
    def from_dict(cls, data: dict) -> ResoftmaxScaling:
        """Rebuild a fitted instance from :meth:`to_dict` output."""
        model, fitted = cls._restore(data)
        model.temperature_ = check_positive_number(fitted.get("temperature"), "temperature")
        model.n_classes_ = check_n_classes(fitted.get("n_classes"))
        model.objective_ = fitted.get("objective", model.objective)
        restore_diagnostics(model, fitted)
        model.at_bound_ = bool(fitted.get("at_bound", False))
        model.n_unique_rows_ = int(fitted.get("n_unique_rows", 0))
        return model
