"""One-vs-rest isotonic calibration of each class probability.

For each class ``k`` a non-decreasing step-linear map ``g_k`` is fitted by scikit-learn's
``IsotonicRegression(y_min=0, y_max=1, increasing=True, out_of_bounds="clip")`` on
``(p_k, 1[y = k])``, then ``q_k = g_k(p_k) / Σ_j g_j(p_j)``. A row whose calibrated values are all
zero (every class mapped to 0) has no information left and falls back to the uniform
distribution ``1/K``. Unlike temperature scaling it can change the argmax.

The maps are stored as their knots (``X_thresholds_``, ``y_thresholds_``) and evaluated with
``np.interp`` (linear between knots, constant beyond them, like ``out_of_bounds="clip"``), so a
model rebuilt by :meth:`IsotonicCalibration.from_dict` transforms exactly like the fitted one.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.isotonic import IsotonicRegression

from calibrators._validation import check_labels, check_probabilities, check_sample_weight
from calibrators.base import Persisted, check_n_classes


class IsotonicCalibration(Persisted):
    """One-vs-rest isotonic regression on each class probability, then row renormalization.

    Attributes
    ----------
    X_thresholds_, y_thresholds_ : list of K ndarrays
        Knots of each class's non-decreasing map ``g_k``.
    n_classes_ : int
    loss_before_, loss_after_ : float
        Mean sample-weighted NLL ``-log clip(q_y, 1e-15, 1)`` on the fit data, raw and calibrated.
    """

    method = "isotonic"
    _fitted_attribute = "X_thresholds_"

    def fit(self, P, y, sample_weight=None):
        """Fit one isotonic map per class on probabilities ``P`` (n, K) and labels ``y``."""
        P = check_probabilities(P)
        n_samples, n_classes = P.shape
        y = check_labels(y, n_samples, n_classes)
        weight = check_sample_weight(sample_weight, n_samples)
        self.X_thresholds_, self.y_thresholds_ = [], []
        for k in range(n_classes):
            regression = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
            regression.fit(P[:, k], (y == k).astype(np.float64), sample_weight=weight)
            self.X_thresholds_.append(np.asarray(regression.X_thresholds_, dtype=np.float64))
            self.y_thresholds_.append(np.asarray(regression.y_thresholds_, dtype=np.float64))
        self.n_classes_ = n_classes
        self.loss_before_ = _mean_nll(P, y, weight)
        self.loss_after_ = _mean_nll(self._calibrate(P), y, weight)
        return self

    def _calibrate(self, P: np.ndarray) -> np.ndarray:
        Q = np.column_stack([np.interp(P[:, k], x, v) for k, (x, v) in enumerate(self._knots())])
        row_sum = Q.sum(axis=1, keepdims=True)
        all_zero = row_sum[:, 0] == 0
        Q[all_zero] = 1.0
        row_sum[all_zero] = self.n_classes_
        return Q / row_sum

    def _knots(self):
        return zip(self.X_thresholds_, self.y_thresholds_, strict=True)

    def transform(self, P) -> np.ndarray:
        """Calibrated probabilities ``g_k(p_k) / Σ_j g_j(p_j)`` (all-zero rows → uniform)."""
        return self._calibrate(self._checked_input(P))

    def _fitted_dict(self) -> dict:
        """``to_dict()["fitted"]``: the knots, ``n_classes``, ``loss_before``, ``loss_after``
        (``params`` is empty)."""
        return {
            "X_thresholds": [[float(v) for v in x] for x in self.X_thresholds_],
            "y_thresholds": [[float(v) for v in y] for y in self.y_thresholds_],
            "n_classes": int(self.n_classes_),
            "loss_before": float(self.loss_before_),
            "loss_after": float(self.loss_after_),
        }

    @classmethod
    def from_dict(cls, data: dict) -> IsotonicCalibration:
        """Rebuild a fitted instance from :meth:`to_dict` output (no refit)."""
        model, fitted = cls._restore(data)
        n_classes = check_n_classes(fitted.get("n_classes"))
        xs, ys = fitted.get("X_thresholds"), fitted.get("y_thresholds")
        if not (isinstance(xs, list) and isinstance(ys, list)) or not (
            len(xs) == len(ys) == n_classes
        ):
            raise ValueError(f"X_thresholds and y_thresholds must hold {n_classes} lists each")
        model.X_thresholds_, model.y_thresholds_ = [], []
        for k, (x, v) in enumerate(zip(xs, ys, strict=True)):
            x = np.asarray(x, dtype=np.float64)
            v = np.asarray(v, dtype=np.float64)
            if x.ndim != 1 or x.size == 0 or x.shape != v.shape:
                raise ValueError(f"class {k}: thresholds must be two non-empty equal-length lists")
            if np.any(np.diff(x) < 0) or np.any(np.diff(v) < 0):
                raise ValueError(f"class {k}: thresholds must be non-decreasing")
            if not (np.all(np.isfinite(x)) and np.all((v >= 0) & (v <= 1))):
                raise ValueError(f"class {k}: thresholds must be finite, values within [0, 1]")
            model.X_thresholds_.append(x)
            model.y_thresholds_.append(v)
        model.n_classes_ = n_classes
        model.loss_before_ = float(fitted.get("loss_before", math.nan))
        model.loss_after_ = float(fitted.get("loss_after", math.nan))
        return model


def _mean_nll(Q: np.ndarray, y: np.ndarray, weight: np.ndarray) -> float:
    """``Σ s_i (-log clip(q_{i, y_i}, 1e-15, 1)) / Σ s_i`` (DESIGN.md NLL convention)."""
    picked = np.clip(Q[np.arange(y.size), y], 1e-15, 1.0)
    return float(weight @ -np.log(picked) / weight.sum())
