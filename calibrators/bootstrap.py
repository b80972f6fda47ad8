"""Percentile bootstrap confidence intervals for calibration metrics (DESIGN.md).

A bootstrap replicate resamples the n rows with replacement. Drawing n rows uniformly is the
same as drawing multiplicities ``w ~ Multinomial(n, (1/n, ..., 1/n))`` and weighting each row by
its multiplicity, so a replicate is a few weighted sums (``np.bincount``) over per-row
quantities computed once (confidence, correct, bin, ``−log q_y``, Brier row term...), never a
copy of ``P``. The counts are exact multinomial counts, not a Poisson approximation.

Rows whose quantities are identical are merged into groups first (verbalized probabilities take
few distinct values): summing a row-level multinomial over a group gives
``Multinomial(n, m_g / n)`` over groups of sizes ``m_g``, so drawing at the group level has
exactly the same distribution. Group counts are drawn with ``rng.multinomial`` when groups are
few, otherwise as ``bincount(group of rng.integers(0, n, n))``, which is the same distribution
and cheaper for many groups. Quantile binning depends on the order of rows within ties, so it
is resampled per row: the resample is the rows in their original order, row ``i`` repeated
``w_i`` times, then stable-sorted by confidence like the original data.

Interval: the ``alpha/2`` and ``1 − alpha/2`` quantiles of the ``n_boot`` replicates
(``np.quantile``, linear interpolation). The estimate is the metric on the original data.
Everything is reproducible from ``np.random.default_rng(seed)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from calibrators import metrics as _m
from calibrators._validation import check_labels, check_probabilities
from calibrators.binning import check_binning, quantile_chunk_sums, uniform_bin_ids

BINNED_METRICS = ("ece", "mce", "rmsce")
SCALAR_METRICS = ("nll", "brier", "spherical", "accuracy", "mean_entropy", "entropy_gap")
METRIC_NAMES = BINNED_METRICS + SCALAR_METRICS

_FUNCTION_NAMES = {
    _m.expected_calibration_error: "ece",
    _m.maximum_calibration_error: "mce",
    _m.rms_calibration_error: "rmsce",
    _m.log_loss: "nll",
    _m.brier_score: "brier",
    _m.spherical_score: "spherical",
    _m.accuracy: "accuracy",
    _m.mean_entropy: "mean_entropy",
    _m.entropy_gap: "entropy_gap",
}
_BINNED_KWARGS = {"n_bins", "binning"}
_SCALAR_KWARGS = {"nll": {"min_probability"}, "entropy_gap": {"min_probability"}}
# Above this many groups per row, drawing n indices is cheaper than G binomial draws.
_MULTINOMIAL_MAX_GROUPS_PER_ROW = 0.2
# Bound on the (replicates × groups) count matrix held at once.
_MAX_DRAW_ELEMENTS = 1 << 22


def _metric_name(metric) -> str | None:
    if isinstance(metric, str):
        if metric not in METRIC_NAMES:
            raise ValueError(f"unknown metric {metric!r}; known: {METRIC_NAMES}")
        return metric
    if metric in _FUNCTION_NAMES:
        return _FUNCTION_NAMES[metric]
    if callable(metric):
        return None
    raise ValueError(f"metric must be a name in {METRIC_NAMES} or a callable; got {metric!r}")


def check_bootstrap_params(n_boot, alpha) -> None:
    if isinstance(n_boot, bool) or not isinstance(n_boot, int | np.integer) or n_boot < 1:
        raise ValueError(f"n_boot must be an integer >= 1; got {n_boot!r}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1); got {alpha!r}")


def _check_kwargs(name: str, kwargs: dict) -> None:
    allowed = _BINNED_KWARGS if name in BINNED_METRICS else _SCALAR_KWARGS.get(name, set())
    unknown = set(kwargs) - allowed
    if unknown:
        raise ValueError(f"unexpected arguments for metric {name!r}: {sorted(unknown)}")


# ----------------------------------------------------------------------------- groups and draws


def group_values(x: np.ndarray, correct: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """Distinct values of ``x`` (or of the pairs ``(x, correct)``) and their multiplicities.

    Returns ``(values, multiplicity)`` or, with ``correct``, ``(values, correct, multiplicity)``;
    groups are ordered by ``correct`` then ``x``. Sort-based, O(n log n).
    """
    if correct is None:
        return np.unique(x, return_counts=True)
    parts = [np.unique(x[correct == o], return_counts=True) for o in (0.0, 1.0)]
    values = np.concatenate([parts[0][0], parts[1][0]])
    correct_values = np.repeat([0.0, 1.0], [parts[0][0].size, parts[1][0].size])
    return values, correct_values, np.concatenate([parts[0][1], parts[1][1]])


def _group_index(x, correct, values, correct_values) -> np.ndarray:
    """Group of each row for the output of :func:`group_values` (needed for index draws)."""
    if correct is None:
        return np.searchsorted(values, x)
    n_wrong = int(np.count_nonzero(correct_values == 0.0))
    index = np.searchsorted(values[:n_wrong], x)
    right = correct == 1.0
    index[right] = n_wrong + np.searchsorted(values[n_wrong:], x[right])
    return index


class _GroupCountDraws:
    """Bootstrap multiplicities of groups, ``Multinomial(n, m_g / n)``, in chunks of replicates.

    Few groups: ``rng.multinomial`` (G binomials per replicate). Many groups: draw n row
    indices and count their groups (same distribution, O(n) instead of O(G) binomials).
    """

    def __init__(self, rng, multiplicity, group_index_factory):
        self.rng = rng
        self.multiplicity = multiplicity
        self.n = int(multiplicity.sum())
        self.use_multinomial = multiplicity.size <= _MULTINOMIAL_MAX_GROUPS_PER_ROW * self.n
        self.group_index = None if self.use_multinomial else group_index_factory()

    def chunks(self, n_boot: int):
        """Yield count matrices of shape (b, G) whose rows total ``n``, b summing to n_boot."""
        g = self.multiplicity.size
        per_chunk = max(1, _MAX_DRAW_ELEMENTS // g)
        for start in range(0, n_boot, per_chunk):
            size = min(per_chunk, n_boot - start)
            if self.use_multinomial:
                yield self.rng.multinomial(self.n, self.multiplicity / self.n, size=size)
            else:
                yield np.stack([self._index_draw(g) for _ in range(size)])

    def _index_draw(self, g: int) -> np.ndarray:
        rows = self.rng.integers(0, self.n, self.n)
        return np.bincount(self.group_index[rows], minlength=g)


# ----------------------------------------------------------------------------- weighted metrics


def weighted_bin_sums(
    confidence: np.ndarray, correct: np.ndarray, counts: np.ndarray, n_bins: int, binning: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-bin (count, Σc, Σo) of resamples where row ``i`` appears ``counts[..., i]`` times.

    ``counts`` is (n,) or (b, n) for b resamples at once (uniform binning only). For
    ``"quantile"`` the rows must be stable-sorted by confidence and ``counts`` 1-D.
    """
    if binning == "quantile":
        count, sums = quantile_chunk_sums(counts, np.column_stack([confidence, correct]), n_bins)
        return count, sums[:, 0], sums[:, 1]
    bin_ids = uniform_bin_ids(confidence, n_bins)
    weights = counts.astype(np.float64)
    if weights.ndim == 2 and confidence.shape[0] * n_bins <= _MAX_DRAW_ELEMENTS:
        # Few groups: all resamples in one matrix product with the bin membership.
        membership = np.zeros((confidence.shape[0], n_bins))
        membership[np.arange(confidence.shape[0]), bin_ids] = 1.0
        columns = np.hstack(
            [membership, membership * confidence[:, None], membership * correct[:, None]]
        )
        sums = weights @ columns
        return sums[:, :n_bins], sums[:, n_bins : 2 * n_bins], sums[:, 2 * n_bins :]
    per_resample = [
        [np.bincount(bin_ids, weights=w * x, minlength=n_bins) for x in (1.0, confidence, correct)]
        for w in np.atleast_2d(weights)
    ]
    count, confidence_sum, correct_sum = (np.array(s) for s in zip(*per_resample, strict=True))
    if weights.ndim == 1:
        return count[0], confidence_sum[0], correct_sum[0]
    return count, confidence_sum, correct_sum


def weighted_binned_errors(
    confidence: np.ndarray, correct: np.ndarray, counts: np.ndarray, n_bins: int, binning: str
) -> np.ndarray:
    """(ECE, MCE, RMSCE) of the resample(s) given by ``counts``; shape (3,) or (b, 3)."""
    return _m.calibration_errors_batch(
        *weighted_bin_sums(confidence, correct, counts, n_bins, binning)
    )


def _scalar_rows(name: str, P: np.ndarray, y: np.ndarray, kwargs: dict) -> np.ndarray:
    min_probability = _m.check_min_probability(
        kwargs.get("min_probability", _m.LOG_LOSS_MIN_PROBABILITY)
    )
    if name == "nll":
        return _m.log_loss_rows(P, y, min_probability)
    if name == "brier":
        return _m.brier_rows(P, y)
    if name == "spherical":
        return _m.spherical_rows(P, y)
    if name == "accuracy":
        return _m.top_label(P, y)[1]
    if name == "mean_entropy":
        return _m.entropy_rows(P)
    return _m.log_loss_rows(P, y, min_probability) - _m.entropy_rows(P)


def scalar_replicates(rows: np.ndarray, rng: np.random.Generator, n_boot: int):
    """(estimate, replicates) of the mean of per-row values ``rows``."""
    values, multiplicity = group_values(rows)
    draws = _GroupCountDraws(rng, multiplicity, lambda: _group_index(rows, None, values, None))
    n = rows.shape[0]
    replicates = np.concatenate([counts @ values / n for counts in draws.chunks(n_boot)])
    return float(multiplicity @ values / n), replicates


def binned_replicates(
    confidence: np.ndarray,
    correct: np.ndarray,
    rng: np.random.Generator,
    n_boot: int,
    n_bins: int,
    binning: str,
):
    """(estimates (3,), replicates (n_boot, 3)) of (ECE, MCE, RMSCE) from one stream of draws."""
    if binning == "quantile":
        order = np.argsort(confidence, kind="stable")
        confidence, correct = confidence[order], correct[order]
        n = confidence.shape[0]
        estimate = weighted_binned_errors(
            confidence, correct, np.ones(n, dtype=np.int64), n_bins, binning
        )
        replicates = np.empty((n_boot, 3))
        for b in range(n_boot):
            counts = np.bincount(rng.integers(0, n, n), minlength=n)[order]
            replicates[b] = weighted_binned_errors(confidence, correct, counts, n_bins, binning)
        return estimate, replicates
    values, correct_values, multiplicity = group_values(confidence, correct)
    draws = _GroupCountDraws(
        rng,
        multiplicity,
        lambda: _group_index(confidence, correct, values, correct_values),
    )
    estimate = weighted_binned_errors(values, correct_values, multiplicity, n_bins, binning)
    replicates = np.concatenate(
        [
            weighted_binned_errors(values, correct_values, counts, n_bins, binning)
            for counts in draws.chunks(n_boot)
        ]
    )
    return estimate, replicates


def _generic_replicates(metric: Callable, P, y, rng, n_boot: int, kwargs: dict) -> np.ndarray:
    # Any callable: materialize each resample (row i repeated counts[i] times, original order).
    n = P.shape[0]
    replicates = np.empty(n_boot)
    for b in range(n_boot):
        counts = rng.multinomial(n, np.full(n, 1.0 / n))
        rows = np.repeat(np.arange(n), counts)
        replicates[b] = metric(P[rows], y[rows], **kwargs)
    return replicates


# ----------------------------------------------------------------------------- public API


def _interval(estimate: float, replicates: np.ndarray, n_boot, seed, alpha, name) -> dict:
    lower, upper = np.quantile(replicates, [alpha / 2.0, 1.0 - alpha / 2.0])
    return {
        "metric": name,
        "estimate": float(estimate),
        "lower": float(lower),
        "upper": float(upper),
        "n_boot": int(n_boot),
        "seed": seed,
        "alpha": float(alpha),
        "method": "percentile",
    }


def bootstrap_cis(
    metrics: Sequence,
    P,
    y,
    n_boot: int = 200,
    seed: int = 0,
    alpha: float = 0.05,
    **metric_kwargs,
) -> dict:
    """:func:`bootstrap_ci` for several metrics, keyed by metric name (or callable's name).

    Each metric gets its own ``default_rng(seed)``, so results equal separate
    :func:`bootstrap_ci` calls; ECE, MCE and RMSCE share one pass over the draws. Binned
    metrics receive ``n_bins``/``binning``; NLL and the entropy gap ``min_probability``.
    """
    check_bootstrap_params(n_boot, alpha)
    P = check_probabilities(P)
    y = check_labels(y, P.shape[0], P.shape[1])
    return bootstrap_cis_unchecked(metrics, P, y, n_boot, seed, alpha, metric_kwargs)


def bootstrap_cis_unchecked(
    metrics, P, y, n_boot, seed, alpha, metric_kwargs: dict, rows: dict | None = None
) -> dict:
    """:func:`bootstrap_cis` on validated inputs.

    ``rows`` optionally holds per-row quantities already computed by the caller (with the
    default ``min_probability``): ``"top_label"`` → ``(confidence, correct)`` of
    :func:`~calibrators.metrics.top_label`, and a scalar metric name (``"nll"``, ``"brier"``,
    ...) → its per-row values; the others are computed here.
    """
    rows = rows or {}
    results: dict = {}
    binned = None
    for metric in metrics:
        name = _metric_name(metric)
        rng = np.random.default_rng(seed)
        if name is None:
            key = getattr(metric, "__name__", repr(metric))
            replicates = _generic_replicates(metric, P, y, rng, n_boot, metric_kwargs)
            estimate = metric(P, y, **metric_kwargs)
            results[key] = _interval(estimate, replicates, n_boot, seed, alpha, key)
            continue
        if name in BINNED_METRICS:
            if binned is None:
                binning = metric_kwargs.get("binning", _m.DEFAULT_BINNING)
                n_bins = check_binning(metric_kwargs.get("n_bins", _m.DEFAULT_N_BINS), binning)
                confidence, correct = rows.get("top_label") or _m.top_label(P, y)
                binned = binned_replicates(confidence, correct, rng, n_boot, n_bins, binning)
            column = BINNED_METRICS.index(name)
            estimate, replicates = binned[0][column], binned[1][:, column]
        else:
            values = rows[name] if name in rows else _scalar_rows(name, P, y, metric_kwargs)
            estimate, replicates = scalar_replicates(values, rng, n_boot)
        results[name] = _interval(estimate, replicates, n_boot, seed, alpha, name)
    return results


def bootstrap_ci(
    metric, P, y, n_boot: int = 200, seed: int = 0, alpha: float = 0.05, **metric_kwargs
) -> dict:
    """Percentile bootstrap CI of one metric (see module docstring for the method).

    Parameters
    ----------
    metric : str or callable
        A name in :data:`METRIC_NAMES` (``"ece"``, ``"mce"``, ``"rmsce"``, ``"nll"``,
        ``"brier"``, ``"spherical"``, ``"accuracy"``, ``"mean_entropy"``, ``"entropy_gap"``),
        the matching public function of :mod:`calibrators.metrics` (fast weighted path), or any
        callable ``metric(P, y, **metric_kwargs) -> float`` (each resample materialized: slow).
    P, y : probabilities (n, K) and labels, validated as everywhere.
    n_boot : number of replicates B.
    seed : seed of ``np.random.default_rng``.
    alpha : the interval is ``[q_{alpha/2}, q_{1-alpha/2}]`` of the replicates.
    **metric_kwargs : ``n_bins``, ``binning`` (binned metrics), ``min_probability`` (NLL).

    Returns
    -------
    dict with ``estimate``, ``lower``, ``upper``, ``n_boot``, ``seed``, ``alpha``, ``metric``
    and ``method`` (``"percentile"``).
    """
    name = _metric_name(metric)
    if name is not None:
        _check_kwargs(name, metric_kwargs)
    result = bootstrap_cis([metric], P, y, n_boot, seed, alpha, **metric_kwargs)
    return next(iter(result.values()))
