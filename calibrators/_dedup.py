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

# Odd 64-bit multipliers of the row hash (fixed: results never depend on them, only speed).
_MULTIPLIERS = np.random.default_rng(0x5EED).integers(
    0, 1 << 62, size=64, dtype=np.uint64
) * np.uint64(2) + np.uint64(1)
_FINAL_MIX = np.uint64(0x94D049BB133111EB)
_HALF = np.uint64(32)
_FINAL_SHIFT = np.uint64(29)
# Rows compared per block when checking the hash grouping (the gather stays in cache).
_VERIFY_BLOCK_ROWS = 1 << 16


def _multipliers(n_columns: int) -> np.ndarray:
    if n_columns <= _MULTIPLIERS.size:
        return _MULTIPLIERS[:n_columns]
    rng = np.random.default_rng(0x5EED)
    return rng.integers(0, 1 << 62, size=n_columns, dtype=np.uint64) * np.uint64(2) + np.uint64(1)


def _row_hashes(bits: np.ndarray) -> np.ndarray:
    """64-bit hash of each row of a uint64 array: one matrix-vector product (wrapping).

    Each entry is first folded, ``b ^ (b >> 32)``, so that two different entries differ in
    their low 32 bits: their difference ``d`` then has fewer than 32 trailing zero bits and
    ``d·m`` is never 0 mod 2^64 for an odd ``m`` (float bit patterns on a grid such as 0.25,
    0.5, 0.75 differ only in high bits, which would make a purely linear hash of the raw bits
    collide often). Rows are then combined linearly with random odd multipliers and the sum is
    mixed once. Collisions remain possible; :func:`unique_rows` checks them exactly.
    """
    folded = bits >> _HALF
    folded ^= bits
    hashes = folded @ _multipliers(bits.shape[1])
    hashes ^= hashes >> _FINAL_SHIFT
    hashes *= _FINAL_MIX
    return hashes


def _grouping_is_exact(bits: np.ndarray, unique_bits: np.ndarray, inverse: np.ndarray) -> bool:
    """``unique_bits[inverse] == bits`` for every row, checked block by block."""
    n = bits.shape[0]
    for start in range(0, n, _VERIFY_BLOCK_ROWS):
        stop = min(start + _VERIFY_BLOCK_ROWS, n)
        if not np.array_equal(unique_bits[inverse[start:stop]], bits[start:stop]):
            return False
    return True


def unique_rows(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique rows of a float64 2-D array and the inverse map, ``X == U[inverse]`` bitwise.

    Rows are hashed to 64-bit integers (one matrix-vector product, then one sort of n integers
    instead of a lexicographic sort of n rows); every row is then checked bitwise against the
    representative of its hash, and a collision falls back to the exact
    ``np.unique(..., axis=0)``. Unique rows are in order of first occurrence in ``X``, so
    results never depend on the hash (the fallback is in lexicographic order).
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
    # Renumber the groups by first occurrence: a sort of the (few) unique rows only.
    by_occurrence = np.argsort(first_rows)
    rank = np.empty(by_occurrence.size, dtype=np.intp)
    rank[by_occurrence] = np.arange(by_occurrence.size)
    first_rows = first_rows[by_occurrence]
    inverse = np.empty(hashes.size, dtype=np.intp)
    inverse[order] = rank[group_of_sorted]
    if not _grouping_is_exact(bits, bits[first_rows], inverse):
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
