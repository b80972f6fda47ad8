"""Logits from verbalized probabilities, and back.

The paper's point (Wang et al., arXiv 2410.06707): probabilities are not logits. Applying
``softmax`` to a probability vector ``p`` does not return ``p`` and caps its maximum at
``e / (e + K - 1)``. The right logits are ``z = log p`` (up to a per-row constant), so that
``softmax(z) == p`` and temperature scaling ``softmax(z / T)`` acts on the distribution itself.

Conventions (DESIGN.md, "Numeric conventions"):

- ``inverse_softmax(P, eps) = log((P/ΣP + eps) / (1 + K·eps))``, centred per row
  (each row of logits has mean 0). ``eps >= 0`` is always explicit: it mixes ``P`` with the
  uniform distribution, ``(p + eps) / (1 + K·eps)``, which keeps zero entries finite.
- ``softmax(inverse_softmax(P, 0)) == P/ΣP`` for rows with positive entries.
"""

from __future__ import annotations

import numbers

import numpy as np

from calibrators._validation import check_probabilities, name_rows


def check_eps(eps) -> float:
    """Validate a smoothing ``eps``: a finite real number ``>= 0``."""
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real):
        raise ValueError(f"eps must be a finite real number >= 0; got {eps!r}")
    eps = float(eps)
    if not np.isfinite(eps) or eps < 0:
        raise ValueError(f"eps must be a finite real number >= 0; got {eps!r}")
    return eps


def softmax(Z) -> np.ndarray:
    """Row-wise softmax ``q_k = exp(z_k - max z) / Σ_j exp(z_j - max z)``, in float64.

    Subtracting the row maximum makes it overflow-free and shows the shift invariance
    ``softmax(z + c) == softmax(z)``. Entries may be ``-inf`` (probability 0), but a row needs
    at least one finite entry; NaN and ``+inf`` are invalid (``ValueError`` naming the rows).
    """
    Z = np.asarray(Z, dtype=np.float64)
    if Z.ndim != 2:
        raise ValueError(f"Z must be a 2-D array of shape (n, K); got shape {Z.shape}")
    if Z.shape[1] < 1:
        raise ValueError("Z must have at least one column")
    bad = np.isnan(Z).any(axis=1) | np.isposinf(Z).any(axis=1) | ~np.isfinite(Z).any(axis=1)
    if bad.any():
        raise ValueError(
            "invalid logit rows (NaN, +inf or no finite entry) at indices "
            + name_rows(np.flatnonzero(bad))
        )
    return softmax_unchecked(Z)


def softmax_unchecked(Z: np.ndarray) -> np.ndarray:
    """:func:`softmax` without input validation, for internal hot loops on checked logits."""
    Q = Z - Z.max(axis=1, keepdims=True)
    np.exp(Q, out=Q)
    Q /= Q.sum(axis=1, keepdims=True)
    return Q


def inverse_softmax(P, eps) -> np.ndarray:
    """Logits ``z`` with ``softmax(z) == (P/ΣP + eps) / (1 + K·eps)``, centred per row.

    ``z = log((P/ΣP + eps) / (1 + K·eps)) - mean_k(...)``. Centring only removes a per-row
    constant, to which softmax is invariant; it makes the logits comparable across rows.

    Parameters
    ----------
    P : array-like of shape (n, K)
        Non-negative rows, renormalized to sum to 1. Invalid rows (negative, NaN, infinite
        or all zero) raise ``ValueError`` naming their indices.
    eps : float >= 0
        Required, no default. With ``eps = 0`` every entry must be positive (``log 0`` is
        undefined); a zero entry raises ``ValueError`` naming the rows.

    Returns
    -------
    Z : ndarray of shape (n, K), float64
    """
    eps = check_eps(eps)
    P = check_probabilities(P)
    check_log_domain(P, eps)
    return inverse_softmax_unchecked(P, eps)


def check_log_domain(P: np.ndarray, eps: float) -> None:
    """With ``eps = 0``, raise ``ValueError`` naming the rows of ``P`` with a zero entry."""
    if eps == 0:
        has_zero = np.flatnonzero((P == 0).any(axis=1))
        if has_zero.size:
            raise ValueError(
                "inverse_softmax with eps=0 takes log 0 at rows with a zero entry; use eps > 0 "
                "or remove the rows; zero entries at indices " + name_rows(has_zero)
            )


def inverse_softmax_unchecked(P: np.ndarray, eps: float) -> np.ndarray:
    """:func:`inverse_softmax` on rows already renormalized and valid for ``eps``."""
    Z = P + eps
    Z /= 1.0 + P.shape[1] * eps
    np.log(Z, out=Z)
    Z -= Z.mean(axis=1, keepdims=True)
    return Z
