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

import numpy as np

from calibrators._dedup import label_weights, unique_probability_rows
from calibrators._validation import check_labels, check_sample_weight
from calibrators.log_temperature import (
    FittedTemperature,
    LogTemperatureObjective,
    check_search_params,
    fit_log_temperature,
)
from calibrators.logits import softmax_unchecked


class ResoftmaxScaling(FittedTemperature):
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

    def __init__(self, objective="nll", bounds=(1e-3, 1e3), tol=1e-9, max_iter=100):
        self.objective = objective
        self.bounds = bounds
        self.tol = tol
        self.max_iter = max_iter

    def _validated_params(self):
        return check_search_params(self.objective, self.bounds, self.tol, self.max_iter)

    def fit(self, P, y, sample_weight=None):
        """Fit ``T`` on probabilities ``P`` (n, K) and labels ``y`` in ``0..K-1``."""
        log_bounds, tol, max_iter = self._validated_params()
        unique, inverse = unique_probability_rows(P)
        n_samples, n_classes = inverse.size, unique.shape[1]
        y = check_labels(y, n_samples, n_classes)
        weight = check_sample_weight(sample_weight, n_samples)
        W = label_weights(inverse, y, weight, unique.shape[0], n_classes)
        objective = LogTemperatureObjective(unique, W, self.objective)
        fit = fit_log_temperature(objective, log_bounds, tol, max_iter)
        self._record_fit(objective, fit, unique.shape[0])
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

    @classmethod
    def from_dict(cls, data: dict) -> ResoftmaxScaling:
        """Rebuild a fitted instance from :meth:`to_dict` output (``fitted``: ``temperature``,
        ``objective``, ``n_classes``, ``n_iter``, ``converged``, ``loss_before``,
        ``loss_after``, ``at_bound``, ``n_unique_rows``)."""
        return cls._restore(data)[0]
