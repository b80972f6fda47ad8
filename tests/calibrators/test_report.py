"""calibration_report: structure, calibrator use, and strict JSON on degenerate inputs."""

import json

import numpy as np
import pytest

from calibrators.metrics import expected_calibration_error
from calibrators.report import CONVENTIONS, calibration_report


class SharpeningCalibrator:
    """Tiny stand-in: q ∝ p², records that transform was called."""

    def __init__(self):
        self.calls = 0

    def transform(self, P):
        self.calls += 1
        Q = np.asarray(P) ** 2
        return Q / Q.sum(axis=1, keepdims=True)

    def to_dict(self):
        return {"method": "square"}


def _data(n=500, k=3, seed=0):
    rng = np.random.default_rng(seed)
    P = np.round(rng.dirichlet(np.ones(k), size=n) * 20) / 20
    P[P.sum(axis=1) == 0, 0] = 1.0
    return P, rng.integers(0, k, n)


def test_structure_and_calibrated_section():
    P, y = _data()
    cal = SharpeningCalibrator()
    report = calibration_report(P, y, ["a", "b", "c"], calibrator=cal, n_boot=50)
    json.dumps(report, allow_nan=False)
    assert cal.calls == 1
    assert set(report) >= {
        "conventions",
        "n",
        "labels",
        "class_counts",
        "raw",
        "calibrated",
        "operating_points",
        "selective",
        "notes",
    }
    assert set(report["raw"]["metrics"]) == {
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
    }
    assert set(report["raw"]["ci"]) == {"ece", "mce", "nll", "brier"}
    assert report["calibrated"]["calibrator"] == {"method": "square"}
    assert report["calibrated"]["metrics"]["ece"] == pytest.approx(
        expected_calibration_error(cal.transform(P), y)
    )
    assert report["operating_points_on"] == "calibrated"
    assert report["conventions"]["bootstrap"]["n_boot"] == 50
    assert len(report["raw"]["reliability"]) == CONVENTIONS["n_bins"]


@pytest.mark.parametrize(
    ("P", "y"),
    [
        (np.array([[0.3, 0.7]]), np.array([1])),  # n = 1
        (np.array([[0.9, 0.1], [0.7, 0.3], [1.0, 0.0]]), np.array([0, 0, 0])),  # one class
        (np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([1, 0])),  # certain and wrong: clipped NLL
    ],
)
@pytest.mark.parametrize("binning", ["uniform", "quantile"])
def test_degenerate_inputs_give_strict_json(P, y, binning):
    report = calibration_report(
        P, y, ["neg", "pos"], calibrator=SharpeningCalibrator(), binning=binning, n_boot=20
    )
    text = json.dumps(report, allow_nan=False)
    assert "NaN" not in text and "Infinity" not in text
    if (y == 0).all():
        assert report["operating_points"]["pos"]["n_positive"] == 0
        assert any("no samples" in note for note in report["notes"])


def test_labels_must_match_columns():
    P, y = _data()
    with pytest.raises(ValueError, match="labels"):
        calibration_report(P, y, ["a", "b"])


def test_sanitize_replaces_non_finite_with_none_and_a_note():
    from calibrators.report import sanitize

    notes = []
    clean = sanitize(
        {"a": [1.0, float("nan")], "b": np.float64("inf"), "c": np.int64(2)}, "r", notes
    )
    assert clean == {"a": [1.0, None], "b": None, "c": 2}
    assert notes == ["r.a[1]: not a finite number", "r.b: not a finite number"]


def test_n_boot_zero_skips_confidence_intervals():
    import json

    from calibrators import TemperatureScaling, calibration_report

    rng = np.random.default_rng(5)
    P = rng.dirichlet(np.ones(3), size=200)
    y = rng.integers(0, 3, size=200)
    model = TemperatureScaling(eps=1e-3).fit(P, y)
    report = calibration_report(P, y, ["a", "b", "c"], calibrator=model, n_boot=0)
    assert report["raw"]["ci"] is None
    assert report["calibrated"]["ci"] is None
    assert report["conventions"]["bootstrap"]["n_boot"] == 0
    with_ci = calibration_report(P, y, ["a", "b", "c"], calibrator=model, n_boot=20)
    assert report["calibrated"]["metrics"] == with_ci["calibrated"]["metrics"]
    json.dumps(report, allow_nan=False)


def test_metric_names_have_one_owner():
    from calibrators.report import (
        CI_METRICS,
        METRIC_BETTER,
        METRIC_TITLES,
        SECTION_METRICS,
        SUMMARY_METRICS,
    )

    P, y = _data()
    report = calibration_report(P, y, ["a", "b", "c"], n_boot=10)
    assert tuple(report["raw"]["metrics"]) == SECTION_METRICS
    assert tuple(report["raw"]["ci"]) == CI_METRICS
    assert set(SUMMARY_METRICS) <= set(SECTION_METRICS)
    assert tuple(METRIC_TITLES) == tuple(METRIC_BETTER) == SECTION_METRICS


@pytest.mark.parametrize("seed", range(6))
def test_a_note_says_when_an_estimate_lies_outside_its_interval(seed):
    # Well calibrated forecasts (labels drawn from P): binned ECE is small, and its resamples,
    # biased upward, often put the whole interval above it.
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.ones(3), size=300)
    y = np.array([rng.choice(3, p=p) for p in P])
    report = calibration_report(P, y, ["a", "b", "c"], n_boot=200, seed=seed)
    for metric, entry in report["raw"]["ci"].items():
        outside = not entry["lower"] <= entry["estimate"] <= entry["upper"]
        noted = any(
            note.startswith(f"raw.ci.{metric}: the estimate lies outside")
            for note in report["notes"]
        )
        assert noted is outside, (metric, entry)


def test_the_outside_interval_note_is_written_for_a_hand_made_interval():
    from calibrators.report import _estimates_outside_their_interval

    ci = {
        "ece": {"estimate": 0.02, "lower": 0.03, "upper": 0.09},
        "nll": {"estimate": 0.8, "lower": 0.7, "upper": 0.9},
        "mce": {"estimate": float("nan"), "lower": 0.1, "upper": 0.2},
    }
    notes = _estimates_outside_their_interval(ci, "calibrated")
    assert len(notes) == 1 and notes[0].startswith("calibrated.ci.ece: the estimate lies outside")
