"""The calibration report: raw vs calibrated metrics, reliability, CIs, operating points.

Everything returned is JSON-ready and finite: a value that would be NaN or infinite is replaced
by ``None`` with an entry in ``notes`` saying why, and a final recursive check guarantees that
``json.dumps(report, allow_nan=False)`` succeeds.
"""

from __future__ import annotations

import math

import numpy as np

from calibrators import metrics as _m
from calibrators._validation import ROW_SUM_TOLERANCE, check_labels, check_probabilities
from calibrators.binning import check_binning
from calibrators.bootstrap import bootstrap_cis_unchecked, check_bootstrap_params
from calibrators.thresholds import (
    DEFAULT_MAX_POINTS,
    DEFAULT_TARGET_PRECISIONS,
    DEFAULT_TARGET_RECALLS,
    check_max_points,
    check_targets,
    group_rows,
    operating_points_unchecked,
    selective_curve_unchecked,
)

# The metrics of every report section, in order; SUMMARY_METRICS are those a fit stores for
# each compared calibrator and pages show side by side; CI_METRICS get bootstrap intervals.
SECTION_METRICS = (
    "ece",
    "mce",
    "rmsce",
    "classwise_ece",
    "nll",
    "brier",
    "spherical",
    "accuracy",
    "mean_entropy",
    "entropy_gap",
)
SUMMARY_METRICS = ("ece", "mce", "nll", "brier", "spherical", "accuracy", "entropy_gap")
CI_METRICS = ("ece", "mce", "nll", "brier")
METRIC_TITLES = {
    "ece": "ECE",
    "mce": "MCE",
    "rmsce": "RMSCE",
    "classwise_ece": "Classwise ECE",
    "nll": "NLL",
    "brier": "Brier",
    "spherical": "Spherical",
    "accuracy": "Accuracy",
    "mean_entropy": "Mean entropy",
    "entropy_gap": "Entropy gap",
}
# Which direction is better: "lower", "higher", or "zero" (closest to 0).
METRIC_BETTER = {
    "ece": "lower",
    "mce": "lower",
    "rmsce": "lower",
    "classwise_ece": "lower",
    "nll": "lower",
    "brier": "lower",
    "spherical": "higher",
    "accuracy": "higher",
    "mean_entropy": "lower",
    "entropy_gap": "zero",
}

CONVENTIONS = {
    "inputs": "P (n, K) float64, rows renormalized to sum to 1; y int in 0..K-1",
    "row_sum_tolerance": ROW_SUM_TOLERANCE,
    "renormalization": "rows whose sum is within row_sum_tolerance of 1 are used as given "
    "(dividing by a float sum like 0.9999999999999999 would move grid values across bin "
    "edges); other rows are divided by their sum",
    "eps": "inverse-softmax eps is per fit: see calibrated.calibrator.eps",
    "n_bins": _m.DEFAULT_N_BINS,
    "binning": _m.DEFAULT_BINNING,
    "uniform_bin_edges": "e_j = j/M exactly; bins right-closed (e_{j-1}, e_j], c=0 in first bin",
    "quantile_bins": (
        "stable sort by confidence, np.array_split into M contiguous chunks, empty chunks "
        "dropped; lower/upper = min/max confidence in the bin"
    ),
    "top_label": "c = max_k q_k, correct = 1[argmax q = y], argmax ties to the lowest index",
    "ece": "sum_b (n_b/n)|acc_b - conf_b|; mce = max over non-empty bins; rmsce = sqrt of the "
    "n_b/n-weighted mean squared gap",
    "classwise_ece": "mean over k of the binary ECE of (q_k, 1[y=k]), bins on q_k",
    "gap": "accuracy - confidence (negative: overconfident)",
    "log_loss_clip": _m.LOG_LOSS_MIN_PROBABILITY,
    "nll": "-mean log(clip(q_y, 1e-15, 1)), natural log",
    "brier": "mean sum_k (q_k - 1[y=k])^2, in [0, 2]",
    "spherical": "mean q_y / ||q||_2, in [0, 1], higher is better",
    "entropy": "natural log, 0 log 0 = 0",
    "entropy_gap": "nll - mean entropy (> 0 overconfident, < 0 underconfident)",
    "bootstrap": {
        "method": "percentile",
        "resampling": "exact multinomial row counts as weights",
        "n_boot": 200,
        "seed": 0,
        "alpha": 0.05,
        "quantile": "numpy linear",
    },
    "operating_points": (
        "one-vs-rest per class, point = score >= t for each distinct t (scikit-learn); "
        "target precision: smallest t with precision >= target; target recall: largest t "
        "with recall >= target; expected_precision = mean score over rows with score >= t"
    ),
    "selective": "keep rows with top-label confidence >= t, for each distinct t",
}


def _finite_or_none(value, path: str, notes: list[str], reason: str):
    """``float(value)`` if finite, else ``None`` and a note ``path: reason``."""
    if value is None:
        return None
    value = float(value)
    if math.isfinite(value):
        return value
    notes.append(f"{path}: {reason}")
    return None


def sanitize(value, path: str, notes: list[str]):
    """Recursively replace non-finite floats by None (with a note) and numpy scalars by Python."""
    if isinstance(value, dict):
        return {str(k): sanitize(v, f"{path}.{k}", notes) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [sanitize(v, f"{path}[{i}]", notes) for i, v in enumerate(value)]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return _finite_or_none(value, path, notes, "not a finite number")
    return value


def _estimates_outside_their_interval(ci: dict, name: str) -> list[str]:
    """Notes for point estimates outside their percentile interval (finite values only).

    Binned ECE and MCE are biased upward on bootstrap resamples (repeated rows make bins
    noisier), so for a well calibrated forecast the whole interval can lie above the estimate.
    """
    notes = []
    for metric, entry in ci.items():
        values = (entry["estimate"], entry["lower"], entry["upper"])
        if all(np.isfinite(values)) and not values[1] <= values[0] <= values[2]:
            notes.append(
                f"{name}.ci.{metric}: the estimate lies outside its percentile bootstrap interval "
                "(the metric is biased on resamples): read the interval as its spread, not as "
                "bounds around the estimate"
            )
    return notes


def _section(P, y, n_bins, binning, n_boot, seed, alpha, notes: list[str], name: str) -> dict:
    confidence, correct = _m.top_label(P, y)
    sums = _m.bin_sums(confidence, correct, n_bins, binning)
    ece, mce, rmsce = _m.calibration_errors(sums.count, sums.confidence_sum, sums.correct_sum)
    nll_rows = _m.log_loss_rows(P, y, _m.LOG_LOSS_MIN_PROBABILITY)
    entropy_rows = _m.entropy_rows(P)
    brier_rows = _m.brier_rows(P, y)
    nll = float(np.mean(nll_rows))
    entropy = float(np.mean(entropy_rows))
    metrics = {
        "ece": ece,
        "mce": mce,
        "rmsce": rmsce,
        "classwise_ece": float(np.mean(_m.classwise_errors(P, y, n_bins, binning))),
        "nll": nll,
        "brier": float(np.mean(brier_rows)),
        "spherical": float(np.mean(_m.spherical_rows(P, y))),
        "accuracy": float(np.mean(correct)),
        "mean_entropy": entropy,
        "entropy_gap": float(np.mean(nll_rows - entropy_rows)),
    }
    ci = None
    if n_boot:
        # The bootstrap resamples the per-row quantities computed above.
        cis = bootstrap_cis_unchecked(
            CI_METRICS,
            P,
            y,
            n_boot,
            seed,
            alpha,
            {"n_bins": n_bins, "binning": binning},
            rows={"top_label": (confidence, correct), "nll": nll_rows, "brier": brier_rows},
        )
        ci = {
            metric: {key: cis[metric][key] for key in ("estimate", "lower", "upper")}
            for metric in CI_METRICS
        }
        notes.extend(_estimates_outside_their_interval(ci, name))
    if P.shape[0] == 1 and n_boot:
        notes.append(f"{name}.ci: a single row: every bootstrap replicate equals the estimate")
    return {
        "metrics": {
            k: _finite_or_none(v, f"{name}.metrics.{k}", notes, "undefined")
            for k, v in metrics.items()
        },
        "reliability": _m.reliability_rows(sums),
        "ci": ci,
    }


def calibration_report(
    P,
    y,
    labels,
    calibrator=None,
    n_bins: int = _m.DEFAULT_N_BINS,
    binning: str = _m.DEFAULT_BINNING,
    n_boot: int = 200,
    seed: int = 0,
    alpha: float = 0.05,
    target_precisions=DEFAULT_TARGET_PRECISIONS,
    target_recalls=DEFAULT_TARGET_RECALLS,
    max_points: int | None = DEFAULT_MAX_POINTS,
) -> dict:
    """Report raw (and calibrated) calibration of ``P`` against ``y``, JSON-ready.

    Keys: ``conventions`` (:data:`CONVENTIONS` with this call's n_bins, binning and bootstrap
    settings), ``n``, ``labels``, ``class_counts`` ({label: count}), ``raw`` and ``calibrated``
    (``{"metrics": {ece, mce, rmsce, classwise_ece, nll, brier, spherical, accuracy,
    mean_entropy, entropy_gap}, "reliability": [...], "ci": {ece, mce, nll, brier:
    {estimate, lower, upper}}}``; ``calibrated`` also has ``calibrator`` =
    ``calibrator.to_dict()``; it is ``None`` without a calibrator), ``operating_points``
    (on calibrated probabilities when a calibrator is given, else raw; see
    :func:`operating_points`), ``operating_points_on`` (``"calibrated"`` or ``"raw"``),
    ``selective`` (same probabilities; :func:`selective_curve`) and ``notes`` (why any value
    is ``None``).

    ``calibrator`` is any fitted object with ``transform(P) -> Q`` and ``to_dict()``.
    ``n_boot=0`` skips the bootstrap: both ``ci`` entries are ``None``.
    """
    P = check_probabilities(P)
    y = check_labels(y, P.shape[0], P.shape[1])
    labels = [str(label) for label in labels]
    if len(labels) != P.shape[1]:
        raise ValueError(f"labels must name the {P.shape[1]} columns of P; got {len(labels)}")
    n_bins = check_binning(n_bins, binning)
    if n_boot != 0:  # 0: no confidence intervals (``ci`` is null)
        check_bootstrap_params(n_boot, alpha)
    # Validated once here: the operating points and selective curve reuse P, y and these.
    target_precisions = check_targets(target_precisions, "target_precisions")
    target_recalls = check_targets(target_recalls, "target_recalls")
    max_points = check_max_points(max_points)
    notes: list[str] = []
    class_counts = np.bincount(y, minlength=P.shape[1])
    for label, count in zip(labels, class_counts, strict=True):
        if count == 0:
            notes.append(
                f"class {label!r} has no samples: its recall and recall targets are null; "
                "its classwise ECE term compares mean q_k with frequency 0"
            )
    settings = (n_bins, binning, n_boot, seed, alpha)
    raw = _section(P, y, *settings, notes, "raw")
    calibrated = None
    scored = P
    if calibrator is not None:
        scored = check_probabilities(calibrator.transform(P))
        if scored.shape != P.shape:
            raise ValueError(f"calibrator.transform changed the shape {P.shape} → {scored.shape}")
        calibrated = _section(scored, y, *settings, notes, "calibrated")
        calibrated["calibrator"] = calibrator.to_dict()
    grouped = group_rows(scored, y)
    conventions = CONVENTIONS | {"n_bins": n_bins, "binning": binning}
    conventions["bootstrap"] = CONVENTIONS["bootstrap"] | {
        "n_boot": n_boot,
        "seed": seed,
        "alpha": alpha,
    }
    report = {
        "conventions": conventions,
        "n": int(P.shape[0]),
        "labels": labels,
        "class_counts": dict(zip(labels, class_counts.tolist(), strict=True)),
        "raw": raw,
        "calibrated": calibrated,
        "operating_points": operating_points_unchecked(
            grouped, labels, target_precisions, target_recalls, max_points
        ),
        "operating_points_on": "raw" if calibrator is None else "calibrated",
        "selective": selective_curve_unchecked(grouped, max_points),
    }
    report = sanitize(report, "report", notes)
    report["notes"] = notes
    return report
