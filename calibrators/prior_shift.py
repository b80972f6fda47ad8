"""Label (prior) shift: correct calibrated probabilities to a new class prior, or estimate it.

Assumption (prior or label shift): the class mix changes from the source prior ``π`` (the
labelled data the probabilities were calibrated on) to a target prior ``π'``, while the
class-conditional distributions ``p(x | k)`` stay the same. Bayes' rule then gives the target
posterior from the source one:

``q'_k = (π'_k / π_k) q_k / Σ_j (π'_j / π_j) q_j``   (Saerens et al. 2002, eq. 2.3).

Estimating ``π'`` from unlabelled target rows (Saerens, Latinne & Decaestecker 2002, "Adjusting
the outputs of a classifier to new a priori probabilities: a simple procedure", Neural
Computation 14(1)) by EM, starting from ``π'^(0) = π``:

- E step: ``q_ik^(s) = (π'^(s)_k / π_k) q_ik / Σ_j (π'^(s)_j / π_j) q_ij``;
- M step: ``π'^(s+1)_k = (1/n) Σ_i q_ik^(s)``;

until ``max_k |π'^(s+1)_k − π'^(s)_k| <= tol`` or ``max_iter`` iterations. Each step does not
decrease the log-likelihood of the unlabelled rows, reported relative to the source prior as
``ℓ(π') = Σ_i log Σ_k (π'_k / π_k) q_ik`` (``ℓ(π) = 0`` since rows sum to 1; ``ℓ >= 0`` at the
estimate). The standard errors are those of the maximum-likelihood estimate from the observed
information ``I = Σ_i r_i r_iᵀ / (r_i·π')²`` with ``r_ik = q_ik / π_k``, on the simplex
(``π'_K = 1 − Σ_{k<K} π'_k``). They are ``None`` (with a ``note``) when an estimated share is
below ``BOUNDARY_SHARE`` (the estimate sits on the boundary of the simplex, where it is not
asymptotically normal) or when ``I`` is singular on the simplex.

The probabilities must be calibrated for the source prior (EM trusts them as posteriors).
Priors must be finite, strictly positive and sum to 1 (within ``PRIOR_SUM_TOLERANCE``; they
are then divided by their sum).
"""

from __future__ import annotations

import numbers

import numpy as np

from calibrators._validation import check_labels, check_probabilities
from calibrators.base import check_fitted, fitted_section

PRIOR_SUM_TOLERANCE = 1e-6
BOUNDARY_SHARE = 1e-6
DEFAULT_MAX_ITER = 1000
DEFAULT_TOL = 1e-10


def check_prior(prior, n_classes: int | None = None, name: str = "prior") -> np.ndarray:
    """Validate a class prior: 1-D float64, finite, every entry > 0, sum 1 (± 1e-6)."""
    try:
        values = np.asarray(prior, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a list of numbers; got {prior!r}") from None
    if values.ndim != 1 or values.size < 2:
        raise ValueError(f"{name} must be a 1-D list of at least 2 numbers; got {prior!r}")
    if n_classes is not None and values.size != n_classes:
        raise ValueError(f"{name} must have {n_classes} entries (one per class); got {values.size}")
    bad = np.flatnonzero(~np.isfinite(values) | ~(values > 0))
    if bad.size:
        raise ValueError(f"{name} must be finite and > 0 for every class; bad at {bad.tolist()}")
    total = values.sum()
    if abs(total - 1.0) > PRIOR_SUM_TOLERANCE:
        raise ValueError(f"{name} must sum to 1; sums to {total!r}")
    return values / total


def class_frequencies(y, n_classes: int) -> np.ndarray:
    """Source prior from labels: ``π_k = #{y_i = k} / n``; every class must occur."""
    y = np.asarray(y)
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"y must be a non-empty 1-D array of labels; got shape {y.shape}")
    y = check_labels(y, y.size, n_classes)
    counts = np.bincount(y, minlength=n_classes)
    missing = np.flatnonzero(counts == 0)
    if missing.size:
        raise ValueError(f"classes {missing.tolist()} have no labelled rows: their prior is 0")
    return counts / y.size


def adjust_to_prior(Q, source_prior, target_prior) -> np.ndarray:
    """``q'_k = (π'_k/π_k) q_k / Σ_j (π'_j/π_j) q_j`` for every row of ``Q`` (n, K)."""
    Q = check_probabilities(Q)
    source = check_prior(source_prior, Q.shape[1], "source_prior")
    target = check_prior(target_prior, Q.shape[1], "target_prior")
    return _adjust(Q, target / source)


def _adjust(Q: np.ndarray, ratio: np.ndarray) -> np.ndarray:
    weighted = Q * ratio
    return weighted / weighted.sum(axis=1, keepdims=True)


def _log_likelihood(R: np.ndarray, prior: np.ndarray) -> float:
    return float(np.log(R @ prior).sum())


def _standard_errors(R: np.ndarray, prior: np.ndarray) -> tuple[list[float] | None, str | None]:
    if prior.min() < BOUNDARY_SHARE:
        return None, "standard errors undefined: a class share is estimated at 0 (boundary)"
    mixture = R @ prior
    scaled = R / mixture[:, None]
    information = scaled.T @ scaled
    n_classes = prior.size
    to_simplex = np.vstack([np.eye(n_classes - 1), -np.ones((1, n_classes - 1))])
    reduced = to_simplex.T @ information @ to_simplex
    if np.linalg.cond(reduced) > 1e12:
        return None, "standard errors undefined: singular information"
    covariance = to_simplex @ np.linalg.inv(reduced) @ to_simplex.T
    return np.sqrt(np.clip(np.diag(covariance), 0.0, None)).tolist(), None


def _check_iteration_params(max_iter, tol) -> tuple[int, float]:
    if isinstance(max_iter, bool) or not isinstance(max_iter, numbers.Integral) or max_iter < 1:
        raise ValueError(f"max_iter must be an integer >= 1; got {max_iter!r}")
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not (0 < tol < 1):
        raise ValueError(f"tol must be a number in (0, 1); got {tol!r}")
    return int(max_iter), float(tol)


def estimate_target_prior(
    Q, source_prior, max_iter: int = DEFAULT_MAX_ITER, tol: float = DEFAULT_TOL
) -> dict:
    """EM estimate of the target prior from unlabelled calibrated probabilities ``Q`` (n, K).

    Returns a JSON-ready dict: ``prior`` (the estimate), ``source_prior``, ``standard_error``
    (list, or ``None`` with the reason in ``note``), ``n_iter``, ``converged``,
    ``log_likelihood`` (``ℓ`` relative to the source prior, >= 0), ``n``, ``max_iter``,
    ``tol`` and ``note``.
    """
    Q = check_probabilities(Q)
    source = check_prior(source_prior, Q.shape[1], "source_prior")
    max_iter, tol = _check_iteration_params(max_iter, tol)
    R = Q / source
    prior = source.copy()
    converged = False
    n_iter = 0
    while n_iter < max_iter:
        n_iter += 1
        updated = _adjust(Q, prior / source).mean(axis=0)
        step = np.max(np.abs(updated - prior))
        prior = updated
        if step <= tol:
            converged = True
            break
    errors, note = _standard_errors(R, prior)
    return {
        "prior": prior.tolist(),
        "source_prior": source.tolist(),
        "standard_error": errors,
        "n_iter": n_iter,
        "converged": converged,
        "log_likelihood": _log_likelihood(R, prior),
        "n": int(Q.shape[0]),
        "max_iter": max_iter,
        "tol": tol,
        "note": note,
    }


class PriorShift:
    """Correct calibrated probabilities from ``source_prior`` to a target prior.

    The target is either given (:meth:`with_target`) or estimated from unlabelled rows by
    :meth:`fit` (EM, :func:`estimate_target_prior`). :meth:`transform` applies
    :func:`adjust_to_prior`.

    Attributes
    ----------
    target_prior_ : ndarray (K,)
    estimate_ : dict or None
        The :func:`estimate_target_prior` result when fitted, ``None`` for a given target.
    """

    method = "prior_shift"

    def __init__(self, source_prior, max_iter=DEFAULT_MAX_ITER, tol=DEFAULT_TOL):
        self.source_prior = source_prior
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, Q):
        """Estimate the target prior from unlabelled calibrated probabilities ``Q`` (n, K)."""
        self.estimate_ = estimate_target_prior(Q, self.source_prior, self.max_iter, self.tol)
        self.target_prior_ = np.asarray(self.estimate_["prior"], dtype=np.float64)
        return self

    @classmethod
    def with_target(cls, source_prior, target_prior) -> PriorShift:
        """A fitted instance correcting to a given ``target_prior``."""
        source = check_prior(source_prior, name="source_prior")
        model = cls(source.tolist())
        model.target_prior_ = check_prior(target_prior, source.size, "target_prior")
        model.estimate_ = None
        return model

    def _check_fitted(self):
        check_fitted(self, "target_prior_", "it has no target prior: call fit(Q) or with_target()")

    def transform(self, Q) -> np.ndarray:
        """Prior-corrected probabilities of ``Q`` (n, K)."""
        self._check_fitted()
        return adjust_to_prior(Q, self.source_prior, self.target_prior_)

    def to_dict(self) -> dict:
        """JSON-safe ``{"method": "prior_shift", "params": {...}, "fitted": {...}}``."""
        self._check_fitted()
        return {
            "method": self.method,
            "params": {
                "source_prior": check_prior(self.source_prior, name="source_prior").tolist(),
                "max_iter": int(self.max_iter),
                "tol": float(self.tol),
            },
            "fitted": {
                "target_prior": self.target_prior_.tolist(),
                "estimate": self.estimate_,
            },
        }

    @classmethod
    def from_dict(cls, data: dict) -> PriorShift:
        """Rebuild from :meth:`to_dict` output (no refit)."""
        fitted = fitted_section(data, cls.method)
        params = data.get("params")
        if not isinstance(params, dict):
            raise ValueError("a prior_shift dict needs a 'params' mapping")
        model = cls(**params)
        _check_iteration_params(model.max_iter, model.tol)
        source = check_prior(model.source_prior, name="source_prior")
        model.target_prior_ = check_prior(fitted.get("target_prior"), source.size, "target_prior")
        estimate = fitted.get("estimate")
        if estimate is not None and not isinstance(estimate, dict):
            raise ValueError("estimate must be a mapping or null")
        model.estimate_ = estimate
        return model
