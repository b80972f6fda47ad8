"""Split conformal prediction sets on calibrated probabilities.

Given calibrated probabilities ``q`` (n, K) and labels ``y`` of a *calibration* set that the
probability model never saw (held-out, or out-of-fold), split conformal prediction returns for
a new row the label set ``C(x) = {k : s(x, k) <= τ}``, where ``s`` is a conformity score (large
means "unusual label") and ``τ`` is an order statistic of the calibration scores
``s_i = s(x_i, y_i)``. If calibration and test rows are exchangeable,
``P(y ∈ C(x)) >= 1 − α`` for the coverage ``1 − α`` (Vovk, Gammerman & Shafer 2005; Lei et
al. 2018; Angelopoulos & Bates 2023, "Conformal prediction: a gentle introduction").

Threshold
    ``τ`` is the ``⌈(n+1)(1−α)⌉/n`` empirical quantile of the n calibration scores, i.e. their
    ``k``-th smallest value with ``k = ⌈(n+1)(1−α)⌉`` (MAPIE: ``np.quantile(..., k/n,
    method="lower")``). ``k`` is computed in exact rational arithmetic on the shortest decimal
    form of the coverage (``0.9`` means 9/10), so ``(n+1)·0.9`` that is an integer is not pushed
    one rank up by binary rounding. When ``k > n`` (too few calibration rows for the coverage:
    ``n < 1/α − 1``) no finite threshold has the guarantee: ``τ = +inf`` and **every set is all
    labels** (stored as ``null`` in :meth:`ConformalSets.to_dict`).

Scores (``q`` a calibrated probability row, ``k`` a candidate label)
    ``"lac"`` (least ambiguous set-valued classifier, Sadinle, Lei & Wasserman 2019):
    ``s(x, k) = 1 − q_k``. The set is every label with ``q_k >= 1 − τ``; it may be empty.

    ``"aps"`` (adaptive prediction sets, Romano, Sesia & Candès 2020): the probability mass of
    the labels sorted by decreasing probability, up to and including ``k``. Labels tied with
    ``q_k`` count as ranked before ``k`` — ``s(x, k) = Σ_{j: q_j >= q_k} q_j`` — so tied labels
    (frequent in verbalized answers such as 0.05, 0.05, 0.05) enter or leave a set together and
    the score does not depend on an arbitrary tie order. The set is the labels of largest
    probability until their mass reaches ``τ``: it is never empty when ``τ >= max_k q_k``.

    ``randomized=True`` (APS only; off by default) uses
    ``s(x, k; u) = Σ_{j: q_j >= q_k} q_j − u·Σ_{j: q_j = q_k} q_j`` with one ``u ~ U(0, 1)`` per
    row, for calibration and prediction alike: the last label (tie group) of a set is kept with a
    probability that makes coverage exact in expectation instead of conservative, at the price of
    random and possibly empty sets. Without ties this is MAPIE's randomized APS
    (``cumsum − u·q_y``, ``include_last_label="randomized"``).

Variants
    Marginal (``class_conditional=False``): one ``τ`` from all calibration rows; the guarantee is
    averaged over classes. Class-conditional (Mondrian, by true class; Vovk et al. 2005):
    ``τ_k`` from the ``n_k`` calibration rows of class ``k`` and ``C(x) = {k : s(x, k) <= τ_k}``,
    which guarantees ``P(y ∈ C | y = k) >= 1 − α`` for every class. A class with
    ``⌈(n_k+1)(1−α)⌉ > n_k`` (in particular one absent from calibration) gets ``τ_k = +inf``: it is
    in every set.

Differences from MAPIE 1.x (``SplitConformalClassifier``, ``prefit=True``): MAPIE compares
``s − τ <= 1e-8`` where we compare ``s <= τ`` exactly; its APS calibration scores are always
randomized (``cumsum − u·q_y``) and its default deterministic sets (``include_last_label=True``)
add the label that crosses ``τ``, a superset of ours; ties are ordered by ``argsort``. On
tie-free probabilities our ``"lac"`` equals MAPIE's LAC, and ``"aps"`` with ``randomized=True``
and the same uniforms equals MAPIE's APS with ``include_last_label="randomized"``.
"""

from __future__ import annotations

import math
import numbers
from fractions import Fraction

import numpy as np

from calibrators._validation import check_labels, check_probabilities
from calibrators.base import check_fitted, check_n_classes, fitted_section

CONFORMAL_SCORES = ("lac", "aps")
DEFAULT_COVERAGES = (0.8, 0.9, 0.95)


# ----------------------------------------------------------------------------- thresholds


def conformal_rank(n_samples: int, coverage: float) -> int:
    """``k = ⌈(n+1)·coverage⌉``, exactly, with ``coverage`` read as its shortest decimal.

    ``k`` may exceed ``n`` (then no finite threshold has the guarantee).
    """
    return math.ceil((int(n_samples) + 1) * Fraction(repr(float(coverage))))


def conformal_threshold(scores, coverage: float) -> float:
    """The ``⌈(n+1)·coverage⌉``-th smallest of ``scores``, or ``+inf`` when that rank exceeds n.

    ``+inf`` (also for ``n = 0``) means every label is in every set.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    rank = conformal_rank(scores.size, coverage)
    if rank > scores.size:
        return math.inf
    return float(np.partition(scores, rank - 1)[rank - 1])


# ----------------------------------------------------------------------------- scores


def lac_scores(Q) -> np.ndarray:
    """LAC conformity score of every label, ``s(x, k) = 1 − q_k``, shape (n, K)."""
    return 1.0 - np.asarray(Q, dtype=np.float64)


def aps_scores(Q, uniforms=None) -> np.ndarray:
    """APS conformity score of every label, shape (n, K).

    ``s(x, k; u) = Σ_{j: q_j >= q_k} q_j − u·Σ_{j: q_j = q_k} q_j`` with ``u = uniforms[i]`` for
    row ``i`` (``None``: ``u = 0``, the non-randomized score). Sums run in decreasing order of
    probability (a cumulative sum of the sorted row), as MAPIE's.
    """
    Q = np.asarray(Q, dtype=np.float64)
    n, n_classes = Q.shape
    order = np.argsort(-Q, axis=1, kind="stable")
    q_sorted = np.take_along_axis(Q, order, axis=1)
    cumulative = np.cumsum(q_sorted, axis=1)
    # Last and first sorted position of each position's tie group.
    group_end = np.tile(np.arange(n_classes), (n, 1))
    group_start = group_end.copy()
    for p in range(n_classes - 2, -1, -1):
        tied = q_sorted[:, p] == q_sorted[:, p + 1]
        group_end[:, p] = np.where(tied, group_end[:, p + 1], p)
    for p in range(1, n_classes):
        tied = q_sorted[:, p] == q_sorted[:, p - 1]
        group_start[:, p] = np.where(tied, group_start[:, p - 1], p)
    score_sorted = np.take_along_axis(cumulative, group_end, axis=1)
    if uniforms is not None:
        tie_size = (group_end - group_start + 1).astype(np.float64)
        score_sorted = score_sorted - uniforms[:, None] * (q_sorted * tie_size)
    scores = np.empty_like(Q)
    np.put_along_axis(scores, order, score_sorted, axis=1)
    return scores


def _check_uniforms(uniforms, n_samples: int) -> np.ndarray:
    u = np.asarray(uniforms, dtype=np.float64)
    if u.shape != (n_samples,):
        raise ValueError(f"uniforms must have shape ({n_samples},); got {u.shape}")
    if not np.all((u >= 0.0) & (u <= 1.0)):
        raise ValueError("uniforms must lie in [0, 1]")
    return u


def check_coverages(coverages) -> tuple[float, ...]:
    """Validate a non-empty sequence of distinct coverages in the open interval (0, 1)."""
    if isinstance(coverages, numbers.Real):
        coverages = (coverages,)
    try:
        values = tuple(float(c) for c in coverages)
    except (TypeError, ValueError):
        raise ValueError(f"coverages must be numbers in (0, 1); got {coverages!r}") from None
    if not values:
        raise ValueError("coverages must not be empty")
    if not all(0.0 < c < 1.0 for c in values):
        raise ValueError(f"every coverage must lie in (0, 1); got {list(values)}")
    if len(set(values)) != len(values):
        raise ValueError(f"coverages must be distinct; got {list(values)}")
    return values


def _threshold_json(value: float) -> float | None:
    return None if math.isinf(value) else float(value)


def _rate(numerator: float, denominator: float) -> float | None:
    return float(numerator / denominator) if denominator > 0 else None


# ----------------------------------------------------------------------------- estimator


class ConformalSets:
    """Split conformal label sets at one or several coverages (see the module docstring).

    Parameters
    ----------
    score : {"lac", "aps"}, default="lac"
        Conformity score.
    class_conditional : bool, default=False
        Mondrian thresholds per true class instead of one marginal threshold.
    randomized : bool, default=False
        Randomized APS (one ``u ~ U(0, 1)`` per row, at fit and at prediction); ``"aps"`` only.
    coverages : sequence of float in (0, 1), default=(0.8, 0.9, 0.95)
        Target coverages ``1 − α`` fitted together; :meth:`predict_sets` serves only these.
    random_state : int or None, default=0
        Seed of ``numpy.random.default_rng`` drawing the uniforms when ``randomized`` and none
        are passed (each call starts a new generator: row ``i`` of a batch always gets the
        ``i``-th draw).

    Attributes
    ----------
    thresholds_ : ndarray of float64, shape (n_coverages, n_groups)
        ``τ`` per coverage; one group (marginal) or ``K`` (per class). ``+inf``: all labels.
    ranks_ : ndarray of int64, shape (n_coverages, n_groups)
        ``k = ⌈(n_g+1)·coverage⌉`` of each threshold.
    class_counts_ : ndarray of int64, shape (K,)
        Calibration rows per true class.
    n_samples_, n_classes_ : int
    """

    method = "conformal"

    def __init__(
        self,
        score="lac",
        class_conditional=False,
        randomized=False,
        coverages=DEFAULT_COVERAGES,
        random_state=0,
    ):
        self.score = score
        self.class_conditional = class_conditional
        self.randomized = randomized
        self.coverages = coverages
        self.random_state = random_state

    def _validated_params(self) -> tuple[float, ...]:
        if self.score not in CONFORMAL_SCORES:
            raise ValueError(f"score must be one of {CONFORMAL_SCORES}; got {self.score!r}")
        if not isinstance(self.class_conditional, bool):
            raise ValueError(f"class_conditional must be a bool; got {self.class_conditional!r}")
        if not isinstance(self.randomized, bool):
            raise ValueError(f"randomized must be a bool; got {self.randomized!r}")
        if self.randomized and self.score != "aps":
            raise ValueError("randomized=True is defined for score='aps' only")
        rs = self.random_state
        if rs is not None and (isinstance(rs, bool) or not isinstance(rs, numbers.Integral)):
            raise ValueError(f"random_state must be an integer or None; got {rs!r}")
        return check_coverages(self.coverages)

    def _uniforms(self, uniforms, n_samples: int) -> np.ndarray | None:
        if not self.randomized:
            if uniforms is not None:
                raise ValueError("uniforms are only used with randomized=True")
            return None
        if uniforms is None:
            return np.random.default_rng(self.random_state).uniform(size=n_samples)
        return _check_uniforms(uniforms, n_samples)

    def _all_scores(self, Q: np.ndarray, uniforms) -> np.ndarray:
        return lac_scores(Q) if self.score == "lac" else aps_scores(Q, uniforms)

    def fit(self, Q, y, uniforms=None):
        """Fit the thresholds on calibration probabilities ``Q`` (n, K) and labels ``y``.

        ``Q`` must come from rows the probability model was not fitted on (held-out or
        out-of-fold), otherwise the coverage guarantee does not hold. ``uniforms`` (n,) in
        [0, 1]: the randomized-APS draws (default: from ``random_state``).
        """
        coverages = self._validated_params()
        Q = check_probabilities(Q)
        n_samples, n_classes = Q.shape
        y = check_labels(y, n_samples, n_classes)
        u = self._uniforms(uniforms, n_samples)
        true_scores = self._all_scores(Q, u)[np.arange(n_samples), y]
        groups = (
            [true_scores[y == k] for k in range(n_classes)]
            if self.class_conditional
            else [true_scores]
        )
        self.thresholds_ = np.array(
            [[conformal_threshold(g, c) for g in groups] for c in coverages], dtype=np.float64
        )
        self.ranks_ = np.array(
            [[conformal_rank(g.size, c) for g in groups] for c in coverages], dtype=np.int64
        )
        self.coverages_ = coverages
        self.class_counts_ = np.bincount(y, minlength=n_classes).astype(np.int64)
        self.n_samples_ = int(n_samples)
        self.n_classes_ = int(n_classes)
        return self

    def _check_fitted(self):
        check_fitted(self, "thresholds_", "call fit(Q, y) first")

    def _coverage_index(self, coverage) -> int:
        try:
            value = float(coverage)
        except (TypeError, ValueError):
            value = math.nan
        if value not in self.coverages_:
            raise ValueError(
                f"coverage {coverage!r} was not fitted; available: {list(self.coverages_)}"
            )
        return self.coverages_.index(value)

    def _check_Q(self, Q) -> np.ndarray:
        Q = check_probabilities(Q)
        if Q.shape[1] != self.n_classes_:
            raise ValueError(f"Q has {Q.shape[1]} columns; the fit had {self.n_classes_} classes")
        return Q

    def _sets(self, Q: np.ndarray, u, index: int) -> np.ndarray:
        # (1, groups) broadcasts over rows: one marginal threshold or one per label column.
        return self._all_scores(Q, u) <= self.thresholds_[index][None, :]

    def predict_sets(self, Q, coverage, uniforms=None) -> np.ndarray:
        """Boolean masks (n, K): ``mask[i, k]`` is True when label ``k`` is in row ``i``'s set.

        ``coverage`` must be one of the fitted ``coverages`` (exact float match).
        ``uniforms`` (n,): randomized-APS draws (default: from ``random_state``).
        """
        self._check_fitted()
        index = self._coverage_index(coverage)
        Q = self._check_Q(Q)
        return self._sets(Q, self._uniforms(uniforms, Q.shape[0]), index)

    def coverage_report(self, Q, y, labels=None, uniforms=None) -> dict:
        """Empirical coverage and set sizes of held-out ``Q``, ``y`` at every fitted coverage.

        Returns a JSON-ready dict (no NaN/inf; ``None`` where undefined)::

            {"score", "class_conditional", "randomized", "n",
             "coverages": [{"coverage", "empirical_coverage", "mean_set_size",
                            "empty_set_rate", "set_size_counts" (sizes 0..K),
                            "thresholds" (one, or one per class; None = all labels),
                            "per_class": [{"label", "n", "empirical_coverage",
                                           "mean_set_size"}]}]}

        ``per_class`` groups rows by their *true* class; a class without rows has ``None``
        coverage and set size. Coverage is ``#{y_i ∈ C(x_i)} / n``. ``uniforms`` as in
        :meth:`predict_sets` (the same draws serve every coverage).
        """
        self._check_fitted()
        Q = self._check_Q(Q)
        n_samples = Q.shape[0]
        y = check_labels(y, n_samples, self.n_classes_)
        labels = _label_names(labels, self.n_classes_)
        u = self._uniforms(uniforms, n_samples)
        counts = np.bincount(y, minlength=self.n_classes_)
        entries = []
        for index, coverage in enumerate(self.coverages_):
            sets = self._sets(Q, u, index)
            covered = sets[np.arange(n_samples), y].astype(np.float64)
            size = sets.sum(axis=1)
            covered_per_class = np.bincount(y, weights=covered, minlength=self.n_classes_)
            size_per_class = np.bincount(y, weights=size, minlength=self.n_classes_)
            entries.append(
                {
                    "coverage": float(coverage),
                    "empirical_coverage": float(covered.mean()),
                    "mean_set_size": float(size.mean()),
                    "empty_set_rate": float(np.mean(size == 0)),
                    "set_size_counts": np.bincount(size, minlength=self.n_classes_ + 1).tolist(),
                    "thresholds": [_threshold_json(t) for t in self.thresholds_[index]],
                    "per_class": [
                        {
                            "label": labels[k],
                            "n": int(counts[k]),
                            "empirical_coverage": _rate(covered_per_class[k], counts[k]),
                            "mean_set_size": _rate(size_per_class[k], counts[k]),
                        }
                        for k in range(self.n_classes_)
                    ],
                }
            )
        return {
            "score": self.score,
            "class_conditional": bool(self.class_conditional),
            "randomized": bool(self.randomized),
            "n": int(n_samples),
            "coverages": entries,
        }

    def get_params(self) -> dict:
        """Constructor parameters, JSON-safe."""
        return {
            "score": self.score,
            "class_conditional": bool(self.class_conditional),
            "randomized": bool(self.randomized),
            "coverages": [float(c) for c in self.coverages],
            "random_state": None if self.random_state is None else int(self.random_state),
        }

    def to_dict(self) -> dict:
        """JSON-safe ``{"method": "conformal", "params": {...}, "fitted": {...}}``.

        ``fitted``: ``coverages``, ``thresholds`` (per coverage a list over groups — one, or
        one per class; ``None`` stands for ``+inf``, all labels), ``ranks``, ``class_counts``,
        ``n_samples``, ``n_classes``. Floats round-trip exactly through JSON, so
        :meth:`from_dict` predicts the same sets without refitting.
        """
        self._check_fitted()
        return {
            "method": self.method,
            "params": self.get_params(),
            "fitted": {
                "coverages": [float(c) for c in self.coverages_],
                "thresholds": [[_threshold_json(t) for t in row] for row in self.thresholds_],
                "ranks": self.ranks_.tolist(),
                "class_counts": self.class_counts_.tolist(),
                "n_samples": int(self.n_samples_),
                "n_classes": int(self.n_classes_),
            },
        }

    @classmethod
    def from_dict(cls, data: dict) -> ConformalSets:
        """Rebuild a fitted instance from :meth:`to_dict` output (no refit)."""
        fitted = fitted_section(data, cls.method)
        params = data.get("params", {})
        if not isinstance(params, dict):
            raise ValueError("a conformal dict needs a 'params' mapping")
        model = cls(**params)
        model._validated_params()
        n_classes = check_n_classes(fitted.get("n_classes"))
        coverages = check_coverages(fitted.get("coverages", ()))
        n_groups = n_classes if model.class_conditional else 1
        thresholds = fitted.get("thresholds")
        ranks = fitted.get("ranks")
        counts = fitted.get("class_counts")
        shape_ok = (
            isinstance(thresholds, list)
            and isinstance(ranks, list)
            and len(thresholds) == len(ranks) == len(coverages)
            and all(isinstance(r, list) and len(r) == n_groups for r in thresholds)
            and all(isinstance(r, list) and len(r) == n_groups for r in ranks)
        )
        if not shape_ok:
            raise ValueError(
                f"thresholds and ranks must hold {len(coverages)} lists of {n_groups} values"
            )
        values = [[math.inf if t is None else t for t in row] for row in thresholds]
        if any(isinstance(t, bool) or not isinstance(t, numbers.Real) for r in values for t in r):
            raise ValueError("thresholds must be numbers or null")
        model.thresholds_ = np.array(values, dtype=np.float64)
        if np.any(np.isnan(model.thresholds_)):
            raise ValueError("thresholds must not be NaN")
        model.ranks_ = np.array(ranks, dtype=np.int64)
        if not (isinstance(counts, list) and len(counts) == n_classes):
            raise ValueError(f"class_counts must hold {n_classes} integers")
        model.class_counts_ = np.array(counts, dtype=np.int64)
        model.coverages_ = coverages
        model.n_samples_ = int(fitted.get("n_samples", int(model.class_counts_.sum())))
        model.n_classes_ = n_classes
        return model


def _label_names(labels, n_classes: int) -> list[str]:
    if labels is None:
        return [str(k) for k in range(n_classes)]
    names = [str(label) for label in labels]
    if len(names) != n_classes:
        raise ValueError(f"labels must name the {n_classes} columns; got {len(names)}")
    return names


def prediction_set_labels(sets, labels) -> list[list[str]]:
    """Label names of each row's set, in column order, from :meth:`ConformalSets.predict_sets`."""
    sets = np.asarray(sets, dtype=bool)
    if sets.ndim != 2:
        raise ValueError(f"sets must be a 2-D boolean array; got shape {sets.shape}")
    names = _label_names(labels, sets.shape[1])
    return [[names[k] for k in np.flatnonzero(row)] for row in sets]
