"""Report sections beyond binned ECE: smooth ECE, score decompositions, AURC, conformal coverage.

:func:`report_extras` computes, on the same held-out rows as :func:`calibration_report`, raw
(``P``) vs calibrated (``Q``) side by side:

- ``smooth_ece``: :func:`calibrators.smooth_ece.smooth_reliability_diagram` (smooth ECE, its
  bandwidth, the kernel reliability curve and its bootstrap band; Błasiok & Nakkiran 2023);
- ``decompositions``: :func:`calibrators.decomposition.score_decompositions` under both
  groupings: ``"distinct"`` (one group per distinct forecast row: exact, and an injective map
  such as temperature scaling keeps the groups, so raw and calibrated share their resolution
  and only reliability changes; uninformative when nearly every forecast is distinct, e.g.
  averages of many samples) and ``"top_label"`` (uniform bins of the top-label confidence, the
  report's ``n_bins``, with within-bin terms): Brier = reliability − resolution + uncertainty
  (Murphy 1973) and the same partition of the log score (Weijs et al. 2010), ``None`` terms
  where undefined;
- ``aurc``: :func:`calibrators.decomposition.aurc` (Geifman et al. 2019);
- ``conformal``: :func:`conformal_coverage`, the coverage and set sizes of a stored
  :class:`calibrators.conformal.ConformalSets` procedure, cross-fitted on the held-out rows.

Everything is JSON-ready: non-finite floats become ``None`` with a note (the report's rule).
"""

from __future__ import annotations

import numpy as np

from calibrators._validation import check_labels, check_probabilities
from calibrators.conformal import ConformalSets
from calibrators.decomposition import DEFAULT_N_BINS, aurc, score_decompositions
from calibrators.report import sanitize
from calibrators.smooth_ece import DEFAULT_N_BOOT, smooth_reliability_diagram
from calibrators.splits import fold_assignment

DEFAULT_CONFORMAL_FOLDS = 10
# The smooth band's bootstrap costs O(resamples × rows) time and memory (the resample counts
# are a dense matrix): beyond this many cells the resamples are reduced, to no fewer than
# MIN_BAND_RESAMPLES.
MAX_BAND_CELLS = 2_000_000
MIN_BAND_RESAMPLES = 20
DECOMPOSITION_GROUPINGS = ("distinct", "top_label")
CONVENTIONS = {
    "smooth_ece": "top-label smooth ECE at the fixed-point bandwidth (relplot 1.0.3); band: "
    "percentile bootstrap of the curve (see smooth_ece.conventions)",
    "decompositions": "grouping distinct: one group per distinct forecast row (exact); "
    "top_label: uniform right-closed bins of max_k q_k; brier: "
    "score = reliability - resolution + uncertainty + within_variance - 2 within_covariance "
    "(Murphy 1973; Stephenson et al. 2008); log (natural): score = reliability - resolution "
    "+ uncertainty + remainder (Weijs et al. 2010), null where a row gives its class 0",
    "aurc": "area under the selective risk-coverage curve, rows tied in confidence kept "
    "together; excess_aurc = aurc - optimal_aurc (Geifman et al. 2019)",
    "conformal": "split conformal sets on calibrated probabilities; coverage estimated by "
    "cross-conformal: held-out rows cut into seeded folds, thresholds fitted on the other "
    "folds, sets scored on each fold; threshold rank ceil((n+1)(1-alpha))",
}


def _weighted(entries: list[tuple[int, float | None]]) -> float | None:
    total = sum(n for n, value in entries if value is not None)
    if total == 0:
        return None
    return float(sum(n * value for n, value in entries if value is not None) / total)


def _combine(fold_reports: list[dict], labels: list[str]) -> list[dict]:
    """Pool per-fold :meth:`ConformalSets.coverage_report` entries by row counts."""
    combined = []
    for index, coverage in enumerate(fold_reports[0]["coverages"]):
        entries = [(r["n"], r["coverages"][index]) for r in fold_reports]
        per_class = []
        for k, label in enumerate(labels):
            rows = [(e["per_class"][k]["n"], e["per_class"][k]) for _, e in entries]
            per_class.append(
                {
                    "label": label,
                    "n": int(sum(n for n, _ in rows)),
                    "empirical_coverage": _weighted(
                        [(n, c["empirical_coverage"]) for n, c in rows]
                    ),
                    "mean_set_size": _weighted([(n, c["mean_set_size"]) for n, c in rows]),
                }
            )
        combined.append(
            {
                "coverage": coverage["coverage"],
                "empirical_coverage": _weighted([(n, e["empirical_coverage"]) for n, e in entries]),
                "mean_set_size": _weighted([(n, e["mean_set_size"]) for n, e in entries]),
                "empty_set_rate": _weighted([(n, e["empty_set_rate"]) for n, e in entries]),
                "set_size_counts": np.sum(
                    [e["set_size_counts"] for _, e in entries], axis=0
                ).tolist(),
                "per_class": per_class,
            }
        )
    return combined


def band_resamples(n_boot: int, n_rows: int) -> int:
    """Resamples of the smooth band: ``n_boot``, reduced so that resamples × rows stays within
    ``MAX_BAND_CELLS`` (but not below ``MIN_BAND_RESAMPLES``, nor above ``n_boot``)."""
    if n_boot == 0:
        return 0
    return min(n_boot, max(MIN_BAND_RESAMPLES, MAX_BAND_CELLS // max(n_rows, 1)))


def conformal_coverage(
    params: dict, Q, y, labels, folds: int = DEFAULT_CONFORMAL_FOLDS, seed: int = 0
) -> dict:
    """Cross-conformal estimate of the coverage of the conformal procedure ``params``.

    ``params`` are :class:`ConformalSets` constructor parameters (``get_params()``). The rows
    of ``Q`` (calibrated, held-out) and ``y`` are cut into ``min(folds, n)`` seeded folds; for
    each fold, thresholds are fitted on the other rows and the fold's sets are scored
    (:meth:`ConformalSets.coverage_report`); the fold results are pooled by row counts. So
    every row is scored by thresholds that never saw it, as a served set is. Scoring the
    thresholds on the rows they were fitted on would overstate coverage.

    Returns ``{"score", "class_conditional", "randomized", "n", "folds", "seed", "estimate",
    "coverages": [{"coverage", "empirical_coverage", "mean_set_size", "empty_set_rate",
    "set_size_counts", "per_class": [{"label", "n", "empirical_coverage",
    "mean_set_size"}]}]}``; per-class values are ``None`` for a class without rows.
    """
    Q = check_probabilities(Q)
    y = check_labels(y, Q.shape[0], Q.shape[1])
    labels = [str(label) for label in labels]
    n = Q.shape[0]
    if n < 2:
        raise ValueError(f"cross-conformal coverage needs at least 2 rows; got {n}")
    n_folds = min(int(folds), n)
    fold_of = fold_assignment(n, n_folds, seed)
    reports = []
    for fold in range(n_folds):
        test = fold_of == fold
        model = ConformalSets(**params).fit(Q[~test], y[~test])
        reports.append(model.coverage_report(Q[test], y[test], labels))
    return {
        "score": reports[0]["score"],
        "class_conditional": reports[0]["class_conditional"],
        "randomized": reports[0]["randomized"],
        "n": int(n),
        "folds": n_folds,
        "seed": int(seed),
        "estimate": "cross-conformal over the held-out rows",
        "coverages": _combine(reports, labels),
    }


def report_extras(
    P,
    y,
    labels,
    Q=None,
    conformal: dict | None = None,
    n_bins: int = DEFAULT_N_BINS,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
) -> dict:
    """Smooth ECE, decompositions and AURC of raw ``P`` and calibrated ``Q``; conformal coverage.

    ``Q`` (held-out calibrated probabilities) may be ``None`` (raw only: every ``calibrated``
    entry and ``conformal`` are ``None``). ``conformal``: :class:`ConformalSets` parameters
    (``get_params()``) whose coverage is estimated on ``Q`` by :func:`conformal_coverage`.
    ``n_boot`` bootstrap resamples give the smooth reliability band (0: no band), reduced for
    many rows by :func:`band_resamples` (with a note; ``smooth_ece.*.n_boot`` is the count used).

    Returns ``{"smooth_ece": {"raw", "calibrated"}, "decompositions": {"distinct": {"raw",
    "calibrated"}, "top_label": {"raw", "calibrated"}}, "aurc": {"raw", "calibrated"},
    "conformal", "extras_conventions", "notes"}``; each decomposition is ``{"brier", "log"}``.
    """
    P = check_probabilities(P)
    y = check_labels(y, P.shape[0], P.shape[1])
    if Q is not None:
        Q = check_probabilities(Q)
        if Q.shape != P.shape:
            raise ValueError(f"Q must have the shape of P {P.shape}; got {Q.shape}")

    notes: list[str] = []
    resamples = band_resamples(n_boot, P.shape[0])
    if resamples < n_boot:
        notes.append(
            f"smooth_ece: the band uses {resamples} bootstrap resamples instead of {n_boot} "
            f"for {P.shape[0]} rows (at most {MAX_BAND_CELLS} resampled rows)"
        )

    def both(compute) -> dict:
        return {"raw": compute(P), "calibrated": None if Q is None else compute(Q)}

    extras = {
        "smooth_ece": both(lambda X: smooth_reliability_diagram(X, y, n_boot=resamples, seed=seed)),
        "decompositions": {
            grouping: both(lambda X, g=grouping: score_decompositions(X, y, g, n_bins))
            for grouping in DECOMPOSITION_GROUPINGS
        },
        "aurc": both(lambda X: aurc(X, y)),
        "conformal": None,
        "extras_conventions": dict(CONVENTIONS),
    }
    if Q is not None and conformal is not None and P.shape[0] >= 2:
        extras["conformal"] = conformal_coverage(conformal, Q, y, labels, seed=seed)
    extras = sanitize(extras, "report", notes)
    extras["notes"] = notes
    return extras


def add_report_extras(report: dict, P, y, Q=None, **options) -> dict:
    """Add :func:`report_extras` of the same rows (``options``: its keyword parameters) to a
    :func:`calibration_report` ``report``, in place (and return it): its sections at the top
    level, its conventions under ``conventions["extras"]``, its notes appended to ``notes``.
    """
    extras = report_extras(P, y, report["labels"], Q, **options)
    report.setdefault("notes", []).extend(extras.pop("notes"))
    report["conventions"]["extras"] = extras.pop("extras_conventions")
    report.update(extras)
    return report
