"""Vector scaling: a per-class scale and bias on inverse-softmax logits.

``q = softmax(w ⊙ z + b)`` with ``z = inverse_softmax(P, eps)``; ``w = 1, b = 0`` is the
identity. ``(w, b)`` minimize the mean sample-weighted NLL plus an explicit L2 pull towards the
identity::

    L(w, b) = Σ_i s_i (-log q_{i, y_i}) / Σ_i s_i + l2 · (‖w - 1‖² + ‖b‖²)

with the analytic gradient ``∂/∂a_{ik} = s_i (q_ik - 1[y_i = k]) / Σ s`` chained through
``a = w ⊙ z + b``, by scipy's L-BFGS-B. Repeated rows are collapsed first (as in
:class:`~calibrators.temperature.TemperatureScaling`). Unlike temperature scaling, vector
scaling can change the argmax.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
from scipy.optimize import minimize

from calibrators._dedup import label_weights, unique_probability_rows
from calibrators._validation import check_labels, check_sample_weight
from calibrators.base import Persisted, check_n_classes, fit_diagnostics, restore_diagnostics
from calibrators.logits import (
    check_eps,
    inverse_softmax,
    inverse_softmax_unchecked,
    softmax_unchecked,
)


def _nll_and_gradient(theta: np.ndarray, Z: np.ndarray, W: np.ndarray, l2: float):
    """Regularized mean NLL of ``softmax(w ⊙ Z + b)`` on unique rows and its gradient."""
    n_classes = Z.shape[1]
    scale, bias = theta[:n_classes], theta[n_classes:]
    row_weight = W.sum(axis=1)
    total_weight = row_weight.sum()
    A = Z * scale + bias
    A -= A.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(A).sum(axis=1))
    nll = (row_weight @ log_norm - np.einsum("ij,ij->", W, A)) / total_weight
    residual = softmax_unchecked(A) * row_weight[:, None] - W
    residual /= total_weight
    grad_scale = np.einsum("ij,ij->j", residual, Z) + 2.0 * l2 * (scale - 1.0)
    grad_bias = residual.sum(axis=0) + 2.0 * l2 * bias
    penalty = l2 * (np.sum((scale - 1.0) ** 2) + np.sum(bias**2))
    return nll + penalty, np.concatenate([grad_scale, grad_bias])


class VectorScaling(Persisted):
    """Vector scaling ``q = softmax(w ⊙ inverse_softmax(P, eps) + b)``.

    Parameters
    ----------
    eps : float >= 0, default=1e-3
        Smoothing of :func:`~calibrators.logits.inverse_softmax` (as in temperature scaling).
    l2 : float >= 0, default=1e-4
        Weight of ``‖w - 1‖² + ‖b‖²`` added to the mean NLL. It keeps ``b`` unique (softmax
        ignores a common shift of ``b``) and ``w`` finite on separable data.
    tol : float > 0, default=1e-10
        L-BFGS-B ``gtol`` and ``ftol``.
    max_iter : int >= 1, default=500

    Attributes
    ----------
    scale_, bias_ : ndarray of shape (K,)
    eps_ : float
    n_classes_ : int
    n_iter_ : int
    converged_ : bool
    loss_before_, loss_after_ : float
        Mean NLL (without the penalty) on the fit data at the identity and at the fit.
    """

    method = "vector"
    _fitted_attribute = "scale_"

    def __init__(self, eps=1e-3, l2=1e-4, tol=1e-10, max_iter=500):
        self.eps = eps
        self.l2 = l2
        self.tol = tol
        self.max_iter = max_iter

    def _validated_params(self):
        eps = check_eps(self.eps)
        if isinstance(self.l2, bool) or not isinstance(self.l2, numbers.Real):
            raise ValueError(f"l2 must be a finite number >= 0; got {self.l2!r}")
        if not (math.isfinite(self.l2) and self.l2 >= 0):
            raise ValueError(f"l2 must be a finite number >= 0; got {self.l2!r}")
        if isinstance(self.tol, bool) or not isinstance(self.tol, numbers.Real) or self.tol <= 0:
            raise ValueError(f"tol must be a positive number; got {self.tol!r}")
        if (
            isinstance(self.max_iter, bool)
            or not isinstance(self.max_iter, numbers.Integral)
            or self.max_iter < 1
        ):
            raise ValueError(f"max_iter must be an integer >= 1; got {self.max_iter!r}")
        return eps, float(self.l2), float(self.tol), int(self.max_iter)

    def fit(self, P, y, sample_weight=None):
        """Fit ``(w, b)`` on probabilities ``P`` (n, K) and labels ``y`` in ``0..K-1``."""
        eps, l2, tol, max_iter = self._validated_params()
        unique, inverse = unique_probability_rows(P, eps)
        n_samples, n_classes = inverse.size, unique.shape[1]
        y = check_labels(y, n_samples, n_classes)
        weight = check_sample_weight(sample_weight, n_samples)
        W = label_weights(inverse, y, weight, unique.shape[0], n_classes)
        Z = inverse_softmax_unchecked(unique, eps)

        identity = np.concatenate([np.ones(n_classes), np.zeros(n_classes)])
        result = minimize(
            _nll_and_gradient,
            identity,
            args=(Z, W, l2),
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": max_iter, "gtol": tol, "ftol": tol},
        )
        self.scale_ = result.x[:n_classes].copy()
        self.bias_ = result.x[n_classes:].copy()
        self.eps_ = eps
        self.n_classes_ = n_classes
        self.n_iter_ = int(result.nit)
        self.converged_ = bool(result.success)
        self.loss_before_ = float(_nll_and_gradient(identity, Z, W, 0.0)[0])
        self.loss_after_ = float(_nll_and_gradient(result.x, Z, W, 0.0)[0])
        return self

    def transform(self, P) -> np.ndarray:
        """Calibrated probabilities ``softmax(scale_ ⊙ inverse_softmax(P, eps_) + bias_)``."""
        Z = inverse_softmax(self._checked_input(P), self.eps_)
        return softmax_unchecked(Z * self.scale_ + self.bias_)

    def get_params(self) -> dict:
        """Constructor parameters, JSON-safe."""
        return {
            "eps": float(self.eps),
            "l2": float(self.l2),
            "tol": float(self.tol),
            "max_iter": int(self.max_iter),
        }

    def _fitted_dict(self) -> dict:
        """``to_dict()["fitted"]``: ``scale``, ``bias``, ``eps``, ``n_classes`` and the fit's
        ``n_iter``, ``converged``, ``loss_before``, ``loss_after``."""
        return {
            "scale": [float(v) for v in self.scale_],
            "bias": [float(v) for v in self.bias_],
            "eps": float(self.eps_),
            "n_classes": int(self.n_classes_),
            **fit_diagnostics(self),
        }

    @classmethod
    def from_dict(cls, data: dict) -> VectorScaling:
        """Rebuild a fitted instance from :meth:`to_dict` output."""
        model, fitted = cls._restore(data)
        n_classes = check_n_classes(fitted.get("n_classes"))
        scale = np.asarray(fitted.get("scale"), dtype=np.float64)
        bias = np.asarray(fitted.get("bias"), dtype=np.float64)
        if scale.shape != (n_classes,) or bias.shape != (n_classes,):
            raise ValueError(f"scale and bias must each hold n_classes={n_classes} numbers")
        if not (np.all(np.isfinite(scale)) and np.all(np.isfinite(bias))):
            raise ValueError("scale and bias must be finite")
        model.scale_, model.bias_ = scale, bias
        model.eps_ = check_eps(fitted.get("eps"))
        model.n_classes_ = n_classes
        restore_diagnostics(model, fitted)
        return model
