"""Input validation shared by every calibrator and metric.

Conventions (DESIGN.md, "Numeric conventions"):

- ``P`` is a float64 array of shape (n, K); rows need not sum to 1 and are renormalized.
  Rows whose sum is within ``ROW_SUM_TOLERANCE`` of 1 are kept exactly as given: dividing
  ``[0.7, 0.1, 0.1, 0.1]`` by its float sum 0.9999999999999999 would turn 0.7 into
  0.7000000000000001 and move it across the bin edge 0.7.
- A row with a negative, NaN or infinite entry, or a row that is all zero or whose sum
  overflows, is invalid.
  The error names the offending row indices so the API can answer 422 with them.
- ``y`` holds integer labels in ``0..K-1`` (the task's label order).
"""

from __future__ import annotations

import numpy as np

_MAX_ROWS_NAMED = 20
ROW_SUM_TOLERANCE = 1e-9


def name_rows(rows: np.ndarray) -> str:
    """Row indices for an error message: the first 20, then how many more."""
    shown = ", ".join(str(int(i)) for i in rows[:_MAX_ROWS_NAMED])
    more = f" (and {rows.size - _MAX_ROWS_NAMED} more)" if rows.size > _MAX_ROWS_NAMED else ""
    return f"[{shown}]{more}"


def invalid_rows(P: np.ndarray) -> np.ndarray:
    """Indices of rows with a negative, NaN or infinite entry, or whose sum is zero or
    overflows (``[1e308, 1e308]`` would renormalize to zeros)."""
    return np.flatnonzero(_invalid_row_mask(np.asarray(P, dtype=np.float64)))


def _invalid_row_mask(P: np.ndarray, sums: np.ndarray | None = None) -> np.ndarray:
    with np.errstate(invalid="ignore", over="ignore"):
        sums = P.sum(axis=1) if sums is None else sums
        zero_sum = ~((sums > 0) & np.isfinite(sums))
        # Fast path: two reductions over the whole array (NaN fails min >= 0; -inf too).
        if P.size and P.min() >= 0 and P.max() < np.inf:
            return zero_sum
        return (~np.isfinite(P) | (P < 0)).any(axis=1) | zero_sum


def check_probabilities(P, *, min_classes: int = 2) -> np.ndarray:
    """Validate ``P`` and return it as float64 rows renormalized to sum to 1.

    Raises ``ValueError`` when ``P`` is not 2-D, has fewer than ``min_classes`` columns
    or no rows, or contains invalid rows (named by index).
    """
    P = np.asarray(P, dtype=np.float64)
    if P.ndim != 2:
        raise ValueError(f"P must be a 2-D array of shape (n, K); got shape {P.shape}")
    if P.shape[1] < min_classes:
        raise ValueError(f"P must have at least {min_classes} columns; got {P.shape[1]}")
    if P.shape[0] == 0:
        raise ValueError("P has no rows")
    sums = P.sum(axis=1, keepdims=True)
    bad = np.flatnonzero(_invalid_row_mask(P, sums[:, 0]))
    if bad.size:
        raise ValueError(
            "invalid probability rows (negative, NaN, infinite, all zero or overflowing sum) at "
            "indices " + name_rows(bad)
        )
    if np.all(np.abs(sums - 1.0) <= ROW_SUM_TOLERANCE):
        return P
    return np.where(np.abs(sums - 1.0) <= ROW_SUM_TOLERANCE, P, P / sums)


def check_labels(y, n_samples: int, n_classes: int) -> np.ndarray:
    """Validate integer labels in ``0..n_classes-1`` of length ``n_samples``."""
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n_samples:
        raise ValueError(f"y must have shape ({n_samples},); got {y.shape}")
    if (
        y.size
        and not np.issubdtype(y.dtype, np.integer)
        and (
            not np.issubdtype(y.dtype, np.floating)
            or not np.all(np.isfinite(y))
            or np.any(y != np.round(y))
        )
    ):
        raise ValueError("y must hold integer class indices")
    y = y.astype(np.int64)
    out = np.flatnonzero((y < 0) | (y >= n_classes))
    if out.size:
        raise ValueError(
            f"labels must lie in 0..{n_classes - 1}; out of range at indices {name_rows(out)}"
        )
    return y


def check_sample_weight(sample_weight, n_samples: int) -> np.ndarray:
    """Return float64 weights (ones when None); they must be finite, >= 0 and not all zero."""
    if sample_weight is None:
        return np.ones(n_samples, dtype=np.float64)
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.shape != (n_samples,):
        raise ValueError(f"sample_weight must have shape ({n_samples},); got {w.shape}")
    bad = np.flatnonzero(~np.isfinite(w) | (w < 0))
    if bad.size:
        raise ValueError(f"sample_weight must be finite and >= 0; bad at indices {name_rows(bad)}")
    if not w.sum() > 0:
        raise ValueError("sample_weight sums to zero")
    return w
