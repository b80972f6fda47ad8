"""Bin assignment for confidences in [0, 1] (DESIGN.md, "Numeric conventions").

Two binnings with ``M = n_bins`` bins:

``"uniform"``
    Edges ``e_j = j / M`` for ``j = 0..M``, each computed exactly as one correctly rounded
    division (``np.arange(M + 1) / M``), so the edge 0.2 for ``M = 5`` is the same double as the
    literal ``0.2``. Bins are right-closed: bin ``b`` (0-based) holds ``e_b < c <= e_{b+1}``, and
    ``c = 0`` goes in the first bin. A confidence equal to an edge therefore belongs to the lower
    bin (0.2, 0.4, 0.6 with ``M = 5`` or ``M = 10``). All ``M`` bins exist, empty or not; a bin's
    ``lower`` and ``upper`` are its edges.

``"quantile"``
    Stable sort by ``c`` (``kind="stable"``, ties keep row order), then ``np.array_split`` of the
    sorted rows into ``M`` contiguous chunks; empty chunks (when ``n < M``) are dropped. Equal
    confidences may straddle two chunks. A bin's ``lower`` and ``upper`` are the smallest and
    largest confidence it holds (not edges: quantile bins need not tile [0, 1]).

Per-bin sums for integer resampling counts (the bootstrap) are in :func:`quantile_chunk_sums`:
a row drawn ``w`` times occupies ``w`` consecutive positions of the sorted resample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BINNINGS = ("uniform", "quantile")


@dataclass(frozen=True)
class Bins:
    """Bin of every sample and the bounds of every bin.

    Attributes
    ----------
    bin_ids : ndarray of int64, shape (n,)
        Bin of each sample, in ``0..n_bins - 1``.
    lower, upper : ndarray of float64, shape (n_bins,)
        Bounds of each bin: edges for ``"uniform"``, min / max confidence for ``"quantile"``.
    binning : str
        ``"uniform"`` or ``"quantile"``.
    """

    bin_ids: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    binning: str

    @property
    def n_bins(self) -> int:
        return int(self.lower.shape[0])


def check_binning(n_bins, binning: str) -> int:
    """Validate ``n_bins`` (an integer >= 1) and ``binning``; return ``n_bins`` as int."""
    if isinstance(n_bins, bool) or not isinstance(n_bins, int | np.integer) or n_bins < 1:
        raise ValueError(f"n_bins must be an integer >= 1; got {n_bins!r}")
    if binning not in BINNINGS:
        raise ValueError(f"binning must be one of {BINNINGS}; got {binning!r}")
    return int(n_bins)


def uniform_edges(n_bins: int) -> np.ndarray:
    """Edges ``e_j = j / n_bins``, ``j = 0..n_bins``, each one correctly rounded division."""
    return np.arange(n_bins + 1, dtype=np.float64) / n_bins


def uniform_bin_ids(confidence: np.ndarray, n_bins: int) -> np.ndarray:
    """Right-closed uniform bin of each value: ``b`` such that ``e_b < c <= e_{b+1}``, c=0 → 0.

    A binary search of each value among the exact edges (``side="left"`` puts a value equal
    to an edge in the lower bin), so no product ``c·M`` is rounded. Any shape; the result has
    the shape of ``confidence``.
    """
    c = np.asarray(confidence, dtype=np.float64)
    ids = np.searchsorted(uniform_edges(n_bins), c, side="left")
    np.clip(ids, 1, n_bins, out=ids)
    ids -= 1
    return ids


def quantile_split_points(n_items: int, n_bins: int) -> np.ndarray:
    """Chunk boundaries of ``np.array_split`` of ``n_items`` into ``n_bins``, empty ones dropped.

    Returns ``B`` with ``B[0] = 0``, ``B[-1] = n_items``, strictly increasing: chunk ``j`` is
    positions ``B[j]..B[j+1]-1``. The first ``n_items % n_bins`` chunks are one longer.
    """
    base, extra = divmod(int(n_items), n_bins)
    sizes = np.full(n_bins, base, dtype=np.int64)
    sizes[:extra] += 1
    sizes = sizes[sizes > 0]
    return np.concatenate(([0], np.cumsum(sizes)))


def assign_bins(confidence, n_bins: int = 15, binning: str = "uniform") -> Bins:
    """Bin each confidence in [0, 1] by the uniform or quantile rule (see module docstring)."""
    n_bins = check_binning(n_bins, binning)
    c = np.asarray(confidence, dtype=np.float64)
    if c.ndim != 1 or c.size == 0:
        raise ValueError(f"confidence must be a non-empty 1-D array; got shape {c.shape}")
    if binning == "uniform":
        edges = uniform_edges(n_bins)
        return Bins(uniform_bin_ids(c, n_bins), edges[:-1].copy(), edges[1:].copy(), binning)
    order = np.argsort(c, kind="stable")
    bounds = quantile_split_points(c.size, n_bins)
    sorted_ids = np.repeat(np.arange(bounds.size - 1), np.diff(bounds))
    bin_ids = np.empty(c.size, dtype=np.int64)
    bin_ids[order] = sorted_ids
    c_sorted = c[order]
    return Bins(bin_ids, c_sorted[bounds[:-1]], c_sorted[bounds[1:] - 1], binning)


def quantile_chunk_sums(
    counts_sorted: np.ndarray, values_sorted: np.ndarray, n_bins: int
) -> tuple[np.ndarray, np.ndarray]:
    """Quantile-bin sums of a resample given by integer counts, without materializing it.

    Rows are in stable-sorted confidence order; row ``r`` appears ``counts_sorted[r]`` times,
    i.e. at positions ``C[r-1]..C[r]-1`` with ``C = cumsum(counts)``. The resample of
    ``N = C[-1]`` positions is split like :func:`quantile_split_points`. With ``S(p)`` the sum of
    the values over positions ``< p``, chunk ``j`` sums to ``S(B[j+1]) - S(B[j])``; a row may be
    shared by neighbouring chunks.

    Parameters
    ----------
    counts_sorted : ndarray of int, shape (n,)
        Multiplicity of each row (>= 0, total >= 1).
    values_sorted : ndarray of float64, shape (n, d)
        Per-row quantities to sum (e.g. confidence, correct).
    n_bins : int

    Returns
    -------
    chunk_counts : ndarray of float64, shape (m,)
        Positions per non-empty chunk (``m <= n_bins``).
    chunk_sums : ndarray of float64, shape (m, d)
    """
    counts = np.asarray(counts_sorted, dtype=np.int64)
    values = np.asarray(values_sorted, dtype=np.float64)
    cum_counts = np.cumsum(counts)
    cum_values = np.cumsum(values * counts[:, None], axis=0)
    bounds = quantile_split_points(int(cum_counts[-1]), n_bins)
    # Number of rows entirely before each boundary; the next row (if any) is partially before.
    n_full = np.searchsorted(cum_counts, bounds, side="right")
    sums_full = np.zeros((bounds.size, values.shape[1]))
    has_full = n_full > 0
    sums_full[has_full] = cum_values[n_full[has_full] - 1]
    positions_full = np.where(has_full, cum_counts[np.maximum(n_full - 1, 0)], 0)
    partial_row = np.minimum(n_full, counts.size - 1)
    partial = (bounds - positions_full)[:, None] * values[partial_row]
    prefix = sums_full + partial
    return np.diff(bounds).astype(np.float64), np.diff(prefix, axis=0)
