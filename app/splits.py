"""Seeded splits of labelled rows into fitted and held-out parts (API fits and offline fits)."""

from __future__ import annotations

import numpy as np


def holdout_split(n: int, holdout: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted row indices ``(fit, held_out)``.

    The rows are permuted with ``numpy.random.default_rng(seed)`` and the first
    ``round(holdout · n)`` of the permutation are held out, with at least one row in each part.
    """
    if not 0 < holdout < 1:
        raise ValueError(f"holdout must lie in (0, 1); got {holdout!r}")
    if n < 2:
        raise ValueError(f"a held-out split needs at least 2 rows; got {n}")
    order = np.random.default_rng(seed).permutation(n)
    n_held_out = min(max(round(holdout * n), 1), n - 1)
    return np.sort(order[n_held_out:]), np.sort(order[:n_held_out])


def fold_assignment(n: int, folds: int, seed: int) -> np.ndarray:
    """Fold index of every row: a seeded permutation cut into ``folds`` near-equal parts."""
    order = np.random.default_rng(seed).permutation(n)
    fold_of = np.empty(n, dtype=np.int64)
    for fold, part in enumerate(np.array_split(order, folds)):
        fold_of[part] = fold
    return fold_of
