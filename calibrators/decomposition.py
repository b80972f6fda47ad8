"""Reliability–resolution–uncertainty decompositions of the Brier and log scores, and AURC.

Notation: rows ``i = 1..n`` with forecast ``q_i`` (a probability row over K classes) and outcome
``o_i = e_{y_i}`` (one-hot); ``ō = (1/n) Σ_i o_i`` the class frequencies. Rows are partitioned
into groups ``g`` with ``n_g`` rows, mean forecast ``q̄_g`` and outcome frequencies ``ō_g``.

Grouping (echoed as ``grouping`` in every result)
    ``"distinct"`` (default): one group per distinct forecast row (bitwise equal after the
    usual renormalization). Then ``q_i = q̄_g`` inside each group and the decompositions below
    are exact identities. Verbalized probabilities take few distinct values, and an injective
    calibration map (temperature or vector scaling) keeps the groups, so raw and calibrated
    decompositions share their resolution exactly (the groups' outcome frequencies do not
    change) while reliability changes. With continuous forecasts every row is its own group and
    the terms degenerate (reliability = score − uncertainty + resolution, resolution =
    uncertainty).
    ``"top_label"``: ``n_bins`` uniform right-closed bins of the top-label confidence
    ``max_k q_k`` (:mod:`calibrators.binning`), each bin a group with its mean forecast row.
    The identity then needs within-group terms (below).

Brier score (Murphy 1973, "A new vector partition of the probability score"; multiclass form
and within-bin terms: Stephenson, Coelho & Jolliffe 2008), ``BS = (1/n) Σ_i ‖q_i − o_i‖²``:
``REL = (1/n) Σ_g n_g ‖q̄_g − ō_g‖²``, ``RES = (1/n) Σ_g n_g ‖ō_g − ō‖²``,
``UNC = 1 − ‖ō‖² = Σ_k ō_k (1 − ō_k)``, ``WV = (1/n) Σ_g Σ_{i∈g} ‖q_i − q̄_g‖²`` and
``WC = (1/n) Σ_g Σ_{i∈g} (q_i − q̄_g)·(o_i − ō_g)``; then ``BS = REL − RES + UNC + WV − 2 WC``
(``WV = WC = 0`` for ``"distinct"``).

Log score (ignorance, natural log; Weijs, van Nooijen & van de Giesen 2010, "Kullback–Leibler
divergence as a forecast skill score with classic reliability–resolution–uncertainty
decomposition"), ``LS = (1/n) Σ_i −log q_{i, y_i}`` (no clipping):
``REL = (1/n) Σ_g n_g KL(ō_g ‖ q̄_g)``, ``RES = (1/n) Σ_g n_g KL(ō_g ‖ ō)``, ``UNC = H(ō)``
(``0 log 0 = 0``); ``LS = REL − RES + UNC`` exactly for ``"distinct"``, and ``remainder =
LS − (REL − RES + UNC)`` is reported for ``"top_label"``. Undefined (every term ``None``, with
a ``note``) when some row gives probability 0 to its observed class: ``LS`` and ``REL`` are
then infinite. Verbalized answers often contain such zeros; calibrated ones do not.

AURC (Geifman, Uziel & El-Yaniv 2019, "Bias-reduced uncertainty estimation for deep neural
classifiers"): rows are kept by decreasing top-label confidence; the selective risk at a
threshold ``t`` is ``1 − accuracy`` among the rows with confidence ``>= t``, with rows tied at
``t`` kept together, exactly as :func:`calibrators.thresholds.selective_curve`. With distinct
thresholds ``t_1 > t_2 > …``, coverages ``c_j`` and risks ``r_j`` (``c_0 = 0``):
``AURC = Σ_j (c_j − c_{j−1}) r_j``, the mean over rows of the risk at the row's own threshold
(Geifman's ``(1/n) Σ_i risk(i)`` when there are no ties). ``optimal_aurc`` is the AURC of the
ideal ranking (all correct rows first) with the same accuracy, ``(1/n) Σ_{i > m} (i − m)/i``
for ``m`` correct rows out of ``n``, and ``excess_aurc = aurc − optimal_aurc`` (E-AURC).
"""

from __future__ import annotations

import numpy as np
from scipy.special import rel_entr, xlogy

from calibrators._dedup import label_weights, unique_rows
from calibrators._validation import check_labels, check_probabilities
from calibrators.binning import assign_bins, check_binning
from calibrators.metrics import top_label
from calibrators.thresholds import precision_recall_points

GROUPINGS = ("distinct", "top_label")
DEFAULT_N_BINS = 15
BRIER_IDENTITY = (
    "score = reliability - resolution + uncertainty + within_variance - 2 * within_covariance"
)
LOG_IDENTITY = "score = reliability - resolution + uncertainty + remainder"


def _check_inputs(P, y) -> tuple[np.ndarray, np.ndarray]:
    P = check_probabilities(P)
    return P, check_labels(y, P.shape[0], P.shape[1])


def _check_grouping(grouping: str, n_bins) -> int | None:
    if grouping not in GROUPINGS:
        raise ValueError(f"grouping must be one of {GROUPINGS}; got {grouping!r}")
    return check_binning(n_bins, "uniform") if grouping == "top_label" else None


class _GroupStats:
    """Per-group counts ``n_g``, mean forecasts ``q̄_g`` and outcome frequencies ``ō_g``.

    Distinct forecasts are their own group mean exactly (no sum-then-divide rounding), so the
    within-group terms are exactly 0.
    """

    def __init__(self, P: np.ndarray, y: np.ndarray, grouping: str, n_bins: int | None):
        n, n_classes = P.shape
        if grouping == "distinct":
            self.mean_forecast, group = unique_rows(P)
        else:
            bin_ids = assign_bins(P.max(axis=1), n_bins, "uniform").bin_ids
            group = np.unique(bin_ids, return_inverse=True)[1].reshape(-1)
        n_groups = int(group.max()) + 1
        self.n = n
        self.group = group
        self.count = np.bincount(group, minlength=n_groups).astype(np.float64)
        self.label_counts = label_weights(group, y, np.ones(n), n_groups, n_classes)
        if grouping != "distinct":
            forecast_sums = np.zeros((n_groups, n_classes))
            np.add.at(forecast_sums, group, P)
            self.mean_forecast = forecast_sums / self.count[:, None]
        self.observed = self.label_counts / self.count[:, None]
        self.base_rate = self.label_counts.sum(axis=0) / n


def _settings(grouping: str, n_bins: int | None, n_groups: int) -> dict:
    return {"grouping": grouping, "n_bins": n_bins, "n_groups": int(n_groups)}


def brier_decomposition(P, y, grouping: str = "distinct", n_bins: int = DEFAULT_N_BINS) -> dict:
    """Murphy's partition of the multiclass Brier score (see the module docstring).

    Returns a JSON-ready dict: ``score``, ``reliability``, ``resolution``, ``uncertainty``,
    ``within_variance``, ``within_covariance``, ``grouping``, ``n_bins`` (``None`` for
    ``"distinct"``), ``n_groups``, ``n`` and ``identity`` (the formula, as text).
    """
    P, y = _check_inputs(P, y)
    n_bins = _check_grouping(grouping, n_bins)
    stats = _GroupStats(P, y, grouping, n_bins)
    n, w = stats.n, stats.count
    outcomes = np.zeros_like(P)
    outcomes[np.arange(n), y] = 1.0
    errors = P - outcomes
    reliability = w @ np.sum((stats.mean_forecast - stats.observed) ** 2, axis=1) / n
    resolution = w @ np.sum((stats.observed - stats.base_rate) ** 2, axis=1) / n
    forecast_spread = P - stats.mean_forecast[stats.group]
    outcome_spread = outcomes - stats.observed[stats.group]
    return {
        "score": float(np.einsum("ij,ij->", errors, errors) / n),
        "reliability": float(reliability),
        "resolution": float(resolution),
        "uncertainty": float(1.0 - stats.base_rate @ stats.base_rate),
        "within_variance": float(np.einsum("ij,ij->", forecast_spread, forecast_spread) / n),
        "within_covariance": float(np.einsum("ij,ij->", forecast_spread, outcome_spread) / n),
        **_settings(grouping, n_bins, w.size),
        "n": int(n),
        "identity": BRIER_IDENTITY,
    }


def log_score_decomposition(P, y, grouping: str = "distinct", n_bins: int = DEFAULT_N_BINS) -> dict:
    """The KL partition of the log score (see the module docstring).

    Returns a JSON-ready dict: ``score``, ``reliability``, ``resolution``, ``uncertainty``,
    ``remainder`` (0.0 for ``"distinct"``), ``note`` (why the terms are ``None``, else
    ``None``), ``grouping``, ``n_bins``, ``n_groups``, ``n`` and ``identity``.
    """
    P, y = _check_inputs(P, y)
    n_bins = _check_grouping(grouping, n_bins)
    stats = _GroupStats(P, y, grouping, n_bins)
    n, w = stats.n, stats.count
    result = {
        **_settings(grouping, n_bins, w.size),
        "n": int(n),
        "identity": LOG_IDENTITY,
    }
    true_class = P[np.arange(n), y]
    if np.any(true_class == 0):
        zero_rows = np.flatnonzero(true_class == 0)
        note = (
            f"undefined: {zero_rows.size} row(s) give probability 0 to their observed class "
            f"(first at index {int(zero_rows[0])}), so the log score is infinite"
        )
        terms = ("score", "reliability", "resolution", "uncertainty", "remainder")
        return dict.fromkeys(terms) | {"note": note} | result
    score = float(-np.log(true_class).sum() / n)
    reliability = float(w @ rel_entr(stats.observed, stats.mean_forecast).sum(axis=1) / n)
    resolution = float(w @ rel_entr(stats.observed, stats.base_rate).sum(axis=1) / n)
    uncertainty = float(-xlogy(stats.base_rate, stats.base_rate).sum())
    remainder = 0.0 if grouping == "distinct" else score - (reliability - resolution + uncertainty)
    return {
        "score": score,
        "reliability": reliability,
        "resolution": resolution,
        "uncertainty": uncertainty,
        "remainder": float(remainder),
        "note": None,
    } | result


def score_decompositions(P, y, grouping: str = "distinct", n_bins: int = DEFAULT_N_BINS) -> dict:
    """``{"brier": brier_decomposition(...), "log": log_score_decomposition(...)}``."""
    return {
        "brier": brier_decomposition(P, y, grouping, n_bins),
        "log": log_score_decomposition(P, y, grouping, n_bins),
    }


def optimal_aurc(n_correct: int, n: int) -> float:
    """AURC of the ideal ranking: ``(1/n) Σ_{i=m+1}^{n} (i − m)/i`` with ``m = n_correct``."""
    i = np.arange(n_correct + 1, n + 1, dtype=np.float64)
    return float(np.sum((i - n_correct) / i) / n)


def aurc(P, y) -> dict:
    """Area under the risk–coverage curve of top-label selective prediction (module docstring).

    Returns a JSON-ready dict: ``aurc``, ``optimal_aurc``, ``excess_aurc``, ``risk`` (the
    selective risk at full coverage, ``1 − accuracy``), ``n`` and ``n_thresholds``.
    """
    P, y = _check_inputs(P, y)
    confidence, correct = top_label(P, y)
    points = precision_recall_points(confidence, correct.astype(bool))
    # Decreasing thresholds: increasing coverage.
    support = points.support[::-1].astype(np.float64)
    risk = 1.0 - points.precision[::-1]
    n = P.shape[0]
    kept = np.diff(support, prepend=0.0)
    value = float(kept @ risk / n)
    optimum = optimal_aurc(int(correct.sum()), n)
    return {
        "aurc": value,
        "optimal_aurc": optimum,
        "excess_aurc": value - optimum,
        "risk": float(risk[-1]),
        "n": int(n),
        "n_thresholds": int(support.size),
    }
