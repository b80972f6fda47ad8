"""The SVG charts' geometry matches the data: bar heights are bin accuracies, axes span 0–1."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from app.dashboard import charts
from calibrators import calibration_report, operating_points, reliability_table

SVG = "{http://www.w3.org/2000/svg}"


def rows(*bins):
    return [
        {"lower": lo, "upper": hi, "count": n, "confidence": c, "accuracy": a, "gap": None}
        for lo, hi, n, c, a in bins
    ]


RAW = rows((0.0, 0.5, 0, None, None), (0.5, 0.75, 10, 0.6, 0.4), (0.75, 1.0, 30, 0.9, 0.7))
CALIBRATED = rows((0.0, 0.5, 5, 0.45, 0.4), (0.5, 0.75, 20, 0.62, 0.6), (0.75, 1.0, 15, 0.85, 0.9))


def test_bar_heights_equal_bin_accuracies():
    chart = charts.reliability_geometry(RAW, CALIBRATED)
    frame = chart.frame
    raw, calibrated = chart.series
    assert [b.count for b in raw.bars] == [10, 30]  # the empty bin has no bar
    for series, table in ((raw, RAW), (calibrated, CALIBRATED)):
        by_bin = {(r["lower"], r["upper"]): r for r in table if r["count"]}
        for bar in series.bars:
            row = by_bin[(bar.lower, bar.upper)]
            assert bar.height / frame.plot_height == pytest.approx(row["accuracy"])
            assert bar.y + bar.height == pytest.approx(frame.y(0.0))  # bars stand on y = 0
            assert bar.count == row["count"]


def test_bars_span_their_bins_side_by_side():
    chart = charts.reliability_geometry(RAW, CALIBRATED)
    frame = chart.frame
    raw_bar, calibrated_bar = chart.series[0].bars[0], chart.series[1].bars[1]
    assert (raw_bar.lower, calibrated_bar.lower) == (0.5, 0.5)
    assert raw_bar.x == pytest.approx(frame.x(0.5))
    assert raw_bar.x + raw_bar.width == pytest.approx(frame.x(0.625))
    assert calibrated_bar.x == pytest.approx(frame.x(0.625))
    assert calibrated_bar.x + calibrated_bar.width == pytest.approx(frame.x(0.75))
    alone = charts.reliability_geometry(RAW).series[0].bars[0]
    assert alone.x + alone.width == pytest.approx(frame.x(0.75))


def test_axes_run_from_zero_to_one_and_the_diagonal_is_y_equals_x():
    chart = charts.reliability_geometry(RAW, CALIBRATED)
    frame = chart.frame
    assert chart.axes.x_range == chart.axes.y_range == (0.0, 1.0)
    assert [t.value for t in chart.axes.x_ticks] == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert [t.label for t in chart.axes.y_ticks] == ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]
    assert chart.axes.x_ticks[0].position == frame.left
    assert chart.axes.x_ticks[-1].position == frame.left + frame.plot_width
    assert chart.axes.y_ticks[0].position == frame.top + frame.plot_height
    assert chart.axes.y_ticks[-1].position == frame.top
    (x0, y0), (x1, y1) = chart.diagonal
    assert (x0, y0) == (frame.x(0), frame.y(0))
    assert (x1, y1) == (frame.x(1), frame.y(1))


def test_rendered_svg_carries_the_geometry():
    svg = charts.reliability_diagram_svg(RAW, CALIBRATED)
    root = ET.fromstring(svg)
    frame = charts.Frame()
    bars = root.findall(f".//{SVG}rect[@class='bar']")
    assert len(bars) == 5
    for bar in bars:
        height = float(bar.get("height"))
        assert height / frame.plot_height == pytest.approx(
            float(bar.get("data-accuracy")), abs=1e-5
        )
    counts = [t.text for t in root.findall(f".//{SVG}text") if "bin-count" in t.get("class", "")]
    assert counts == ["10", "30", "5", "20", "15"]
    diagonal = root.find(f".//{SVG}line[@class='diagonal']")
    assert float(diagonal.get("x1")) == frame.x(0) and float(diagonal.get("y1")) == frame.y(0)
    assert float(diagonal.get("x2")) == frame.x(1) and float(diagonal.get("y2")) == frame.y(1)
    ticks = [t.text for t in root.findall(f".//{SVG}text[@class='tick x-tick']")]
    assert ticks[0] == "0.0" and ticks[-1] == "1.0"


def test_geometry_of_a_real_report():
    rng = np.random.default_rng(0)
    P = rng.dirichlet(np.ones(3) * 0.5, size=500)
    y = np.array([rng.choice(3, p=p) for p in P])
    table = reliability_table(P, y)
    chart = charts.reliability_geometry(table)
    non_empty = [r for r in table if r["count"]]
    assert len(chart.series[0].bars) == len(non_empty)
    for bar, row in zip(chart.series[0].bars, non_empty, strict=True):
        assert bar.height / chart.frame.plot_height == pytest.approx(row["accuracy"])
    report = calibration_report(P, y, ["a", "b", "c"], n_boot=1)
    assert "<svg" in charts.reliability_diagram_svg(report["raw"]["reliability"])


def test_text_is_escaped():
    svg = charts.precision_recall_svg(
        {"thresholds": [], "precision": [], "recall": []}, title="<x&y>"
    )
    assert "<x&y>" not in svg
    ET.fromstring(svg)


def test_precision_recall_points_match_the_curve():
    rng = np.random.default_rng(1)
    P = rng.dirichlet(np.ones(3), size=300)
    y = np.array([rng.choice(3, p=p) for p in P])
    points = operating_points(P, y, ["a", "b", "c"])["b"]
    chart = charts.precision_recall_geometry(points["curve"], points["precision_targets"])
    frame = chart.frame
    curve = points["curve"]
    assert len(chart.points) == len(curve["thresholds"])
    for point, p, r in zip(chart.points, curve["precision"], curve["recall"], strict=True):
        assert point.x == pytest.approx(frame.x(r))
        assert point.y == pytest.approx(frame.y(p))
    reached = [t for t in points["precision_targets"] if t["threshold"] is not None]
    assert len(chart.markers) == len({t["threshold"] for t in reached})
    by_threshold = {m.point.threshold: m for m in chart.markers}
    for target in reached:
        marker = by_threshold[target["threshold"]]
        assert f"{target['target']:g}" in marker.label
        assert marker.point.precision == pytest.approx(target["precision"])
        assert marker.point.recall == pytest.approx(target["recall"])
    root = ET.fromstring(charts.render_precision_recall_svg(chart, "b"))
    polyline = root.find(f".//{SVG}polyline")
    assert len(polyline.get("points").split()) == len(chart.points)


def test_precision_recall_without_positives():
    chart = charts.precision_recall_geometry(
        {"thresholds": [0.1, 0.5], "precision": [0.0, 0.0], "recall": None}
    )
    assert chart.points == []
    assert "no positive examples" in chart.message
    assert "no positive examples" in charts.render_precision_recall_svg(chart, "x")


def test_targets_at_one_threshold_share_a_marker():
    curve = {"thresholds": [0.2, 0.6], "precision": [0.5, 1.0], "recall": [1.0, 0.4]}
    same = {"threshold": 0.6, "precision": 1.0, "recall": 0.4}
    targets = [{"target": 0.95} | same, {"target": 0.99} | same]
    (marker,) = charts.precision_recall_geometry(curve, targets).markers
    assert marker.label == "P≥0.95, 0.99"
