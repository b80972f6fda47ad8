"""Collapse repeated probability rows before fitting.

Verbalized distributions repeat massively (an LLM answers on a coarse grid such as 0.05), so
calibrators fit on the unique rows, each with a per-class label weight:
``W[r, k] = Σ_{i : row_i = r, y_i = k} sample_weight_i``. Every objective used here is linear
in the per-sample terms, so fitting on ``(unique rows, W)`` gives the same objective as fitting
on all samples, at the cost of the unique rows only.
"""

from __future__ import annotations

import numpy as np

from calibrators._validation import check_probabilities, invalid_rows
from calibrators.logits import check_log_domain

# Odd 64-bit constants of the splitmix64 finalizer; the hash only needs to spread grid values
# (many trailing zero bits) well. Collisions are checked, never trusted.
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)
_SHIFT = np.uint64(29)


def _row_hashes(bits: np.ndarray) -> np.ndarray:
    """Order-dependent 64-bit hash of each row of a uint64 array (wrapping arithmetic)."""
    hashes = np.zeros(bits.shape[0], dtype=np.uint64)
    for column in bits.T:
        mixed = column * _MIX_1
        mixed ^= mixed >> _SHIFT
        hashes ^= mixed
        hashes *= _MIX_2
    return hashes


def unique_rows(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique rows of a float64 2-D array and the inverse map, ``X == U[inverse]`` bitwise.

    Rows are hashed to 64-bit integers (one sort of n integers instead of a lexicographic sort
    of n rows, about 10x faster for 10 columns); equal hashes are then checked bitwise and a
    collision falls back to the exact ``np.unique(..., axis=0)``. The order of the unique rows
    is unspecified.
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    bits = X.view(np.uint64)
    hashes = _row_hashes(bits)
    order = np.argsort(hashes)
    sorted_hashes = hashes[order]
    is_first = np.empty(hashes.size, dtype=bool)
    is_first[:1] = True
    np.not_equal(sorted_hashes[1:], sorted_hashes[:-1], out=is_first[1:])
    group_of_sorted = np.cumsum(is_first) - 1
    first_rows = order[is_first]
    inverse = np.empty(hashes.size, dtype=np.intp)
    inverse[order] = group_of_sorted
    unique_bits = bits[first_rows]
    # Gathering from the small table of unique rows stays in cache; one flat comparison.
    if not np.array_equal(unique_bits[inverse], bits):
        unique, inverse = np.unique(X, axis=0, return_inverse=True)
        return unique, inverse.reshape(-1)
    return X[first_rows], inverse


def unique_probability_rows(P, eps: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Validated, renormalized unique rows of ``P`` and the inverse map.

    Same checks and messages as :func:`~calibrators._validation.check_probabilities` (and, for
    ``eps = 0``, :func:`~calibrators.logits.check_log_domain`), with row indices of ``P``, but
    validation and renormalization run on the unique raw rows only: equal raw rows are equally
    valid and renormalize equally.
    """
    P = np.asarray(P, dtype=np.float64)
    if P.ndim != 2 or P.shape[0] == 0 or P.shape[1] < 2:
        check_probabilities(P)
    unique, inverse = unique_rows(P)
    invalid = invalid_rows(unique).size > 0
    if invalid or (eps == 0 and np.any(unique == 0)):
        check_log_domain(check_probabilities(P), 0.0 if eps is None else eps)
    return check_probabilities(unique), inverse


def label_weights(
    inverse: np.ndarray, y: np.ndarray, sample_weight: np.ndarray, n_unique: int, n_classes: int
) -> np.ndarray:
    """``W[r, k]``: total sample weight of the samples with unique row ``r`` and label ``k``."""
    flat = np.bincount(
        inverse * n_classes + y, weights=sample_weight, minlength=n_unique * n_classes
    )
    return flat.reshape(n_unique, n_classes)
