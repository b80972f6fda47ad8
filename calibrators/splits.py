"""Seeded splits of labelled rows: a holdout, plain folds and class-stratified folds.

One owner for every split in verbcal: API fits and offline fits (:func:`holdout_split`,
:func:`fold_assignment`) and the ``eps="auto"`` cross-validation of temperature scaling
(:func:`stratified_folds`). Each is a pure function of its seed
(``numpy.random.default_rng(seed)``), so a fit can be repeated row for row.
"""

from __future__ import annotations

import numpy as np


def holdout_split(n: int, holdout: float, seed) -> tuple[np.ndarray, np.ndarray]:
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


def fold_assignment(n: int, folds: int, seed) -> np.ndarray:
    """Fold index of every row: a seeded permutation cut into ``folds`` near-equal parts
    (``np.array_split``, so the first ``n % folds`` folds are one row longer)."""
    order = np.random.default_rng(seed).permutation(n)
    fold_of = np.empty(n, dtype=np.int64)
    for fold, part in enumerate(np.array_split(order, folds)):
        fold_of[part] = fold
    return fold_of


def stratified_folds(y: np.ndarray, n_folds: int, random_state) -> np.ndarray:
    """Fold index (0..n_folds−1) of every sample, stratified by class.

    The members of each class are permuted with ``numpy.random.default_rng(random_state)`` and
    dealt round-robin, continuing from where the previous class stopped, so fold sizes differ
    by at most one.
    """
    rng = np.random.default_rng(random_state)
    folds = np.empty(y.size, dtype=np.int64)
    start = 0
    for k in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == k))
        folds[members] = (start + np.arange(members.size)) % n_folds
        start += members.size
    return folds
