"""Operating points per class and the selective-prediction curve (DESIGN.md).

One-vs-rest per class ``k`` with score ``s_i = q_ik`` and positives ``y_i = k``. An operating
point is the decision ``s >= t`` for a distinct score value ``t`` (scikit-learn
``precision_recall_curve`` semantics, ``drop_intermediate=False``). At ``t``: ``support`` =
rows with ``s >= t`` (predicted positive), ``precision = TP / support``,
``recall = TP / n_positive``, ``expected_precision`` = mean ``s`` over those rows (what a
calibrated model promises).

- Target precision ``P*``: the smallest ``t`` with ``precision >= P*`` (the highest recall among
  points reaching ``P*``); ``None`` when no point reaches it.
- Target recall ``R*``: the largest ``t`` with ``recall >= R*`` (the strictest threshold, i.e.
  the fewest predicted positives, that still reaches ``R*``); ``None`` when the class has no
  positives (recall undefined). With positives, ``R* <= 1`` is always reached at the lowest t.

Recall is non-increasing in ``t``; precision need not be monotone. Each class costs one sort of
the scores (values only, no argsort) and a few cumulative sums: O(n log n).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from calibrators._dedup import unique_rows
from calibrators._validation import check_labels, check_probabilities

DEFAULT_TARGET_PRECISIONS = (0.8, 0.9, 0.95, 0.99)
DEFAULT_TARGET_RECALLS = (0.5, 0.8, 0.9, 0.95, 0.99)
DEFAULT_MAX_POINTS = 200
# Decision curves are stored with a fit and read by /calibrate: finer than report curves.
MAX_DECISION_POINTS = 2_000


@dataclass(frozen=True)
class PrecisionRecallPoints:
    """Every operating point ``s >= t``, thresholds in increasing order (as scikit-learn).

    ``recall`` is ``None`` when there are no positives (it would be 0/0).
    """

    thresholds: np.ndarray
    precision: np.ndarray
    recall: np.ndarray | None
    support: np.ndarray
    expected_precision: np.ndarray
    n_positive: int


def precision_recall_points(scores, is_positive, counts=None) -> PrecisionRecallPoints:
    """All operating points ``score >= t`` for each distinct score ``t`` (O(n log n)).

    Only values are sorted (``np.sort``, several times cheaper than ``np.argsort`` of n
    floats): the descending run of scores gives the thresholds, support and score sums (equal
    scores are interchangeable, so the sums are those of any descending order), and the true
    positives at ``t`` count the sorted positive scores ``>= t`` by binary search.

    With ``counts``, the inputs are groups of rows: ``scores[g]`` is the score of
    ``counts[g]`` rows of which ``is_positive[g]`` (an integer) are positive. The points are
    those of the ungrouped rows, at the cost of sorting the groups only.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if counts is not None:
        return _grouped_points(scores, np.asarray(is_positive), np.asarray(counts))
    positive = np.asarray(is_positive, dtype=bool)
    s_desc = np.sort(scores)[::-1]
    # Last index of each run of equal scores: the point s >= t includes the whole run.
    run_ends = np.flatnonzero(np.diff(s_desc, append=-np.inf))
    thresholds_desc = s_desc[run_ends]
    positive_scores = np.sort(scores[positive])
    n_positive = int(positive_scores.size)
    true_pos = n_positive - np.searchsorted(positive_scores, thresholds_desc, side="left")
    score_sums = np.cumsum(s_desc)[run_ends]
    return _points(thresholds_desc, true_pos, run_ends + 1, score_sums, n_positive)


def _grouped_points(scores, positives, counts) -> PrecisionRecallPoints:
    order = np.argsort(scores)[::-1]
    s_desc = scores[order]
    run_ends = np.flatnonzero(np.diff(s_desc, append=-np.inf))
    counts_desc = counts[order]
    true_pos = np.cumsum(positives[order])[run_ends]
    support = np.cumsum(counts_desc)[run_ends]
    score_sums = np.cumsum(s_desc * counts_desc)[run_ends]
    n_positive = int(positives.sum())
    return _points(s_desc[run_ends], true_pos, support, score_sums, n_positive)


def _points(thresholds_desc, true_pos, support, score_sums, n_positive) -> PrecisionRecallPoints:
    """Points from descending thresholds and the cumulative counts and sums at each."""
    true_pos = true_pos.astype(np.int64)
    support = support.astype(np.int64)
    recall = true_pos[::-1] / n_positive if n_positive else None
    return PrecisionRecallPoints(
        thresholds=thresholds_desc[::-1],
        precision=(true_pos / support)[::-1],
        recall=recall,
        support=support[::-1],
        expected_precision=np.minimum(score_sums / support, 1.0)[::-1],
        n_positive=n_positive,
    )


@dataclass(frozen=True)
class GroupedRows:
    """Distinct probability rows and, per row and class, how many rows have it with that label.

    Operating points, decision curves and the selective curve sort these rows, not all n:
    verbalized (and calibrated) distributions repeat massively.
    """

    unique: np.ndarray  # (U, K)
    label_counts: np.ndarray  # (U, K) int64

    @property
    def counts(self) -> np.ndarray:
        return self.label_counts.sum(axis=1)


def group_rows(P: np.ndarray, y: np.ndarray) -> GroupedRows:
    """:class:`GroupedRows` of validated ``P`` and ``y`` (rows compared bitwise)."""
    unique, inverse = unique_rows(P)
    n_unique, n_classes = unique.shape
    flat = np.bincount(inverse * n_classes + y, minlength=n_unique * n_classes)
    return GroupedRows(unique, flat.reshape(n_unique, n_classes).astype(np.int64))


def _point(points: PrecisionRecallPoints, index: int, target: float) -> dict:
    return {
        "target": float(target),
        "threshold": float(points.thresholds[index]),
        "precision": float(points.precision[index]),
        "recall": None if points.recall is None else float(points.recall[index]),
        "support": int(points.support[index]),
        "expected_precision": float(points.expected_precision[index]),
    }


def _missing(target: float) -> dict:
    fields = ("threshold", "precision", "recall", "support", "expected_precision")
    return {"target": float(target)} | dict.fromkeys(fields)


def _first_reaching(precision, target: float) -> int | None:
    """Index of the first (smallest-threshold) precision ``>= target``, or None."""
    reached = np.flatnonzero(np.asarray(precision, dtype=np.float64) >= target)
    return int(reached[0]) if reached.size else None


def precision_target_index(points: PrecisionRecallPoints, target: float) -> int | None:
    """Index (into increasing thresholds) of the smallest ``t`` with precision >= target."""
    return _first_reaching(points.precision, target)


def threshold_for_precision(curve: Mapping, target: float) -> float | None:
    """Smallest threshold of a stored decision curve whose precision reaches ``target``.

    ``curve`` is one class's entry of :func:`decision_curves` (``thresholds`` increasing,
    ``precision`` at each); the rule is the target-precision rule of the module docstring.
    None when no point reaches ``target`` (or the curve is empty).
    """
    index = _first_reaching(curve.get("precision", []), target)
    return None if index is None else float(curve["thresholds"][index])


def recall_target_index(points: PrecisionRecallPoints, target: float) -> int | None:
    """Index of the largest ``t`` with recall >= target; None without positives or if unreached."""
    if points.recall is None:
        return None
    reached = np.flatnonzero(points.recall >= target)
    return int(reached[-1]) if reached.size else None


def check_targets(targets, name: str) -> tuple[float, ...]:
    values = tuple(float(t) for t in targets)
    if any(not 0.0 <= t <= 1.0 for t in values):
        raise ValueError(f"{name} must lie in [0, 1]; got {values}")
    return values


def check_max_points(max_points) -> int | None:
    if max_points is not None and (isinstance(max_points, bool) or int(max_points) < 2):
        raise ValueError(f"max_points must be an integer >= 2 or None; got {max_points!r}")
    return None if max_points is None else int(max_points)


def downsample_indices(length: int, max_points: int | None) -> np.ndarray:
    """At most ``max_points`` evenly spaced indices of ``0..length-1``, first and last kept."""
    if max_points is None or length <= max_points:
        return np.arange(length)
    return np.unique(np.round(np.linspace(0, length - 1, max_points)).astype(np.int64))


def _curve(points: PrecisionRecallPoints, max_points: int | None, recall: bool = True) -> dict:
    keep = downsample_indices(points.thresholds.shape[0], max_points)
    curve = {
        "thresholds": points.thresholds[keep].tolist(),
        "precision": points.precision[keep].tolist(),
    }
    if recall:
        curve["recall"] = None if points.recall is None else points.recall[keep].tolist()
    return curve


def decision_curves(P, y, labels, max_points: int | None = MAX_DECISION_POINTS) -> dict:
    """Per class, the one-vs-rest precision at every distinct threshold (``score >= t``).

    Returns ``{label: {"thresholds": [...], "precision": [...]}}``, thresholds increasing and
    evenly downsampled like every curve here (:func:`downsample_indices`, lowest and highest
    kept). A fit stores these for its held-out (or out-of-fold) calibrated probabilities, and
    ``/calibrate`` reads the threshold for a target precision from them with
    :func:`threshold_for_precision`.
    """
    P = check_probabilities(P)
    y = check_labels(y, P.shape[0], P.shape[1])
    labels = [str(label) for label in labels]
    if len(labels) != P.shape[1]:
        raise ValueError(f"labels must name the {P.shape[1]} columns of P; got {len(labels)}")
    max_points = check_max_points(max_points)
    grouped = group_rows(P, y)
    return {
        label: _curve(_class_points(grouped, k), max_points, recall=False)
        for k, label in enumerate(labels)
    }


def _class_points(grouped: GroupedRows, k: int) -> PrecisionRecallPoints:
    """One-vs-rest points of class ``k``: score ``q_k``, positives ``y = k``."""
    return precision_recall_points(grouped.unique[:, k], grouped.label_counts[:, k], grouped.counts)


def operating_points(
    P,
    y,
    labels,
    target_precisions=DEFAULT_TARGET_PRECISIONS,
    target_recalls=DEFAULT_TARGET_RECALLS,
    max_points: int | None = DEFAULT_MAX_POINTS,
) -> dict:
    """Per-class operating points at target precisions and recalls, JSON-ready.

    Returns ``{label: {"n_positive", "precision_targets": [...], "recall_targets": [...],
    "curve": {"thresholds", "precision", "recall"}}}``. Each target entry has ``target``,
    ``threshold``, ``precision``, ``recall``, ``support`` and ``expected_precision``; all but
    ``target`` are ``None`` when the target is not reached (and ``recall`` is ``None`` for a
    class without positives). The curve lists points by increasing threshold, evenly
    downsampled to at most ``max_points`` (``None``: all points); it omits scikit-learn's final
    (precision 1, recall 0) sentinel, which has no threshold.
    """
    P = check_probabilities(P)
    y = check_labels(y, P.shape[0], P.shape[1])
    labels = [str(label) for label in labels]
    if len(labels) != P.shape[1]:
        raise ValueError(f"labels must name the {P.shape[1]} columns of P; got {len(labels)}")
    target_precisions = check_targets(target_precisions, "target_precisions")
    target_recalls = check_targets(target_recalls, "target_recalls")
    max_points = check_max_points(max_points)
    return operating_points_unchecked(
        group_rows(P, y), labels, target_precisions, target_recalls, max_points
    )


def operating_points_unchecked(
    grouped: GroupedRows, labels, target_precisions, target_recalls, max_points
) -> dict:
    """:func:`operating_points` on validated, grouped rows, labels and parameters."""
    result = {}
    for k, label in enumerate(labels):
        points = _class_points(grouped, k)
        at_precision = [(t, precision_target_index(points, t)) for t in target_precisions]
        at_recall = [(t, recall_target_index(points, t)) for t in target_recalls]
        result[label] = {
            "n_positive": points.n_positive,
            "precision_targets": [
                _missing(t) if i is None else _point(points, i, t) for t, i in at_precision
            ],
            "recall_targets": [
                _missing(t) if i is None else _point(points, i, t) for t, i in at_recall
            ],
            "curve": _curve(points, max_points),
        }
    return result


def selective_curve(P, y, max_points: int | None = DEFAULT_MAX_POINTS) -> dict:
    """Accuracy vs coverage when keeping rows whose top-label confidence is ``>= t``.

    One point per distinct confidence ``t``, by decreasing ``t`` (increasing coverage):
    ``coverage = #{c >= t} / n`` and ``accuracy`` = fraction of kept rows with
    ``argmax q = y`` (ties to the lowest index). Evenly downsampled to at most ``max_points``
    points (first and last kept; ``None``: all points). Returns JSON-ready lists
    ``threshold``, ``coverage``, ``accuracy`` and ``n``.
    """
    P = check_probabilities(P)
    y = check_labels(y, P.shape[0], P.shape[1])
    max_points = check_max_points(max_points)
    return selective_curve_unchecked(group_rows(P, y), max_points)


def selective_curve_unchecked(grouped: GroupedRows, max_points) -> dict:
    """:func:`selective_curve` on validated, grouped rows and ``max_points``."""
    rows = np.arange(grouped.unique.shape[0])
    predicted = np.argmax(grouped.unique, axis=1)
    counts = grouped.counts
    points = precision_recall_points(
        grouped.unique[rows, predicted], grouped.label_counts[rows, predicted], counts
    )
    keep = downsample_indices(points.thresholds.shape[0], max_points)[::-1]
    n = int(counts.sum())
    return {
        "threshold": points.thresholds[keep].tolist(),
        "coverage": (points.support[keep] / n).tolist(),
        "accuracy": points.precision[keep].tolist(),
        "n": n,
    }
