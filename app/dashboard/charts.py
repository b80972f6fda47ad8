"""Server-drawn SVG charts: reliability diagrams and precision-recall curves.

Each chart is computed as plain geometry first (``*_geometry`` functions returning dataclasses
in SVG user units), then rendered to an SVG string. Tests check the geometry against the data;
the page embeds the string. Both axes always span 0–1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

TICKS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


@dataclass(frozen=True)
class Frame:
    """The plot area inside the SVG: data (x, y) in [0, 1]² maps onto it, y pointing up."""

    width: float = 420.0
    height: float = 420.0
    left: float = 50.0
    right: float = 14.0
    top: float = 28.0
    bottom: float = 46.0

    @property
    def plot_width(self) -> float:
        return self.width - self.left - self.right

    @property
    def plot_height(self) -> float:
        return self.height - self.top - self.bottom

    def x(self, value: float) -> float:
        return self.left + value * self.plot_width

    def y(self, value: float) -> float:
        return self.top + (1.0 - value) * self.plot_height


@dataclass(frozen=True)
class Tick:
    value: float
    position: float
    label: str


@dataclass(frozen=True)
class Axes:
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    x_range: tuple[float, float] = (0.0, 1.0)
    y_range: tuple[float, float] = (0.0, 1.0)


@dataclass(frozen=True)
class Bar:
    """One reliability bin of one series: height is the bin's accuracy."""

    series: str
    lower: float
    upper: float
    accuracy: float
    confidence: float | None
    count: int
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Series:
    name: str
    css_class: str
    bars: list[Bar]


@dataclass(frozen=True)
class ReliabilityChart:
    frame: Frame
    axes: Axes
    series: list[Series]
    diagonal: tuple[tuple[float, float], tuple[float, float]]


@dataclass(frozen=True)
class CurvePoint:
    recall: float
    precision: float
    threshold: float
    x: float
    y: float


@dataclass(frozen=True)
class Marker:
    label: str
    point: CurvePoint


@dataclass(frozen=True)
class PrecisionRecallChart:
    frame: Frame
    axes: Axes
    points: list[CurvePoint]
    markers: list[Marker] = field(default_factory=list)
    message: str | None = None


def _axes(frame: Frame) -> Axes:
    return Axes(
        x_ticks=[Tick(v, frame.x(v), f"{v:.1f}") for v in TICKS],
        y_ticks=[Tick(v, frame.y(v), f"{v:.1f}") for v in TICKS],
    )


def _clip01(value: float) -> float:
    return min(1.0, max(0.0, float(value)))


# --- reliability diagram -------------------------------------------------------------------


def reliability_geometry(
    raw: Sequence[Mapping[str, Any]],
    calibrated: Sequence[Mapping[str, Any]] | None = None,
    frame: Frame | None = None,
) -> ReliabilityChart:
    """Bars (one per non-empty bin, height = bin accuracy) for raw and calibrated tables.

    Tables are the report's ``reliability`` rows (``lower, upper, count, confidence, accuracy``).
    With two series each bin's width is split: raw on the left half, calibrated on the right.
    """
    frame = frame or Frame()
    tables = [("raw", "raw", raw)]
    if calibrated is not None:
        tables.append(("calibrated", "calibrated", calibrated))
    series = []
    for slot, (name, css_class, rows) in enumerate(tables):
        bars = []
        for row in rows:
            if not row.get("count") or row.get("accuracy") is None:
                continue
            lower, upper = _clip01(row["lower"]), _clip01(row["upper"])
            accuracy = _clip01(row["accuracy"])
            slot_width = (upper - lower) / len(tables)
            start = lower + slot * slot_width
            x = frame.x(start)
            width = max(frame.x(start + slot_width) - x, 1.0)
            top = frame.y(accuracy)
            bars.append(
                Bar(
                    series=name,
                    lower=lower,
                    upper=upper,
                    accuracy=accuracy,
                    confidence=row.get("confidence"),
                    count=int(row["count"]),
                    x=x,
                    y=top,
                    width=width,
                    height=frame.y(0.0) - top,
                )
            )
        series.append(Series(name=name, css_class=css_class, bars=bars))
    diagonal = ((frame.x(0.0), frame.y(0.0)), (frame.x(1.0), frame.y(1.0)))
    return ReliabilityChart(frame=frame, axes=_axes(frame), series=series, diagonal=diagonal)


def _num(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") if value != int(value) else str(int(value))


def _axes_svg(frame: Frame, axes: Axes, x_title: str, y_title: str) -> list[str]:
    parts = ['<g class="axes">']
    for tick in axes.x_ticks:
        parts.append(
            f'<line class="grid" x1="{_num(tick.position)}" y1="{_num(frame.y(0))}" '
            f'x2="{_num(tick.position)}" y2="{_num(frame.y(1))}"/>'
            f'<text class="tick x-tick" x="{_num(tick.position)}" y="{_num(frame.y(0) + 16)}" '
            f'text-anchor="middle">{tick.label}</text>'
        )
    for tick in axes.y_ticks:
        parts.append(
            f'<line class="grid" x1="{_num(frame.x(0))}" y1="{_num(tick.position)}" '
            f'x2="{_num(frame.x(1))}" y2="{_num(tick.position)}"/>'
            f'<text class="tick y-tick" x="{_num(frame.x(0) - 6)}" y="{_num(tick.position + 4)}" '
            f'text-anchor="end">{tick.label}</text>'
        )
    parts.append(
        f'<rect class="frame" x="{_num(frame.left)}" y="{_num(frame.top)}" '
        f'width="{_num(frame.plot_width)}" height="{_num(frame.plot_height)}" fill="none"/>'
        f'<text class="axis-title" x="{_num(frame.x(0.5))}" y="{_num(frame.height - 8)}" '
        f'text-anchor="middle">{escape(x_title)}</text>'
        f'<text class="axis-title" x="14" y="{_num(frame.y(0.5))}" text-anchor="middle" '
        f'transform="rotate(-90 14 {_num(frame.y(0.5))})">{escape(y_title)}</text>'
    )
    parts.append("</g>")
    return parts


_SERIES_COLOURS = {"raw": "#9aa5b1", "calibrated": "#2f6fdb"}


def render_reliability_svg(chart: ReliabilityChart, title: str = "Reliability diagram") -> str:
    frame = chart.frame
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart reliability" role="img" '
        f'viewBox="0 0 {_num(frame.width)} {_num(frame.height)}" '
        f'aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        *_axes_svg(frame, chart.axes, "confidence", "accuracy"),
    ]
    for series in chart.series:
        colour = _SERIES_COLOURS.get(series.css_class, "#555")
        parts.append(f'<g class="series {series.css_class}" fill="{colour}">')
        for bar in series.bars:
            confidence = "—" if bar.confidence is None else f"{bar.confidence:.3f}"
            parts.append(
                f'<rect class="bar" x="{bar.x:.3f}" y="{bar.y:.3f}" width="{bar.width:.3f}" '
                f'height="{bar.height:.3f}" data-accuracy="{bar.accuracy:.6f}" '
                f'data-count="{bar.count}"><title>{series.name}, bin ({bar.lower:.2f}, '
                f"{bar.upper:.2f}]: accuracy {bar.accuracy:.3f}, confidence {confidence}, "
                f"n = {bar.count}</title></rect>"
            )
        parts.append("</g>")
    for series in chart.series:
        parts.append(f'<g class="counts {series.css_class}">')
        for bar in series.bars:
            cx = bar.x + bar.width / 2
            # A bar reaching the top edge gets its count inside, in white, to stay legible.
            inside = bar.y - frame.top < 12 and bar.height > 14
            cy = bar.y + 9 if inside else bar.y - 3
            css = "bin-count inside" if inside else "bin-count"
            parts.append(
                f'<text class="{css}" x="{cx:.2f}" y="{cy:.2f}" text-anchor="middle">'
                f"{bar.count}</text>"
            )
        parts.append("</g>")
    (x0, y0), (x1, y1) = chart.diagonal
    parts.append(
        f'<line class="diagonal" x1="{_num(x0)}" y1="{_num(y0)}" x2="{_num(x1)}" '
        f'y2="{_num(y1)}" stroke="#222" stroke-dasharray="5 4"/>'
    )
    legend_x = frame.left + 6
    for i, series in enumerate(chart.series):
        colour = _SERIES_COLOURS.get(series.css_class, "#555")
        x = legend_x + i * 110
        parts.append(
            f'<rect class="legend-swatch" x="{_num(x)}" y="8" width="12" height="12" '
            f'fill="{colour}"/><text class="legend" x="{_num(x + 16)}" y="18">'
            f"{escape(series.name)}</text>"
        )
    x = legend_x + len(chart.series) * 110
    parts.append(
        f'<line x1="{_num(x)}" y1="14" x2="{_num(x + 14)}" y2="14" stroke="#222" '
        f'stroke-dasharray="4 3"/><text class="legend" x="{_num(x + 18)}" y="18">'
        "perfect calibration</text>"
    )
    parts.append("</svg>")
    return "".join(parts)


def reliability_diagram_svg(
    raw: Sequence[Mapping[str, Any]], calibrated: Sequence[Mapping[str, Any]] | None = None
) -> str:
    return render_reliability_svg(reliability_geometry(raw, calibrated))


# --- precision-recall curve ----------------------------------------------------------------


def precision_recall_geometry(
    curve: Mapping[str, Any],
    targets: Sequence[Mapping[str, Any]] = (),
    frame: Frame | None = None,
) -> PrecisionRecallChart:
    """Points (recall on x, precision on y) of a report's ``operating_points[label]["curve"]``.

    Points come in the curve's order (increasing threshold, so decreasing recall). ``targets``
    are the report's ``precision_targets`` entries; reached ones become labelled markers.
    """
    frame = frame or Frame()
    axes = _axes(frame)
    recall = curve.get("recall")
    if recall is None:
        return PrecisionRecallChart(
            frame, axes, [], message="no positive examples: recall is undefined"
        )
    points = [
        CurvePoint(_clip01(r), _clip01(p), float(t), frame.x(_clip01(r)), frame.y(_clip01(p)))
        for t, p, r in zip(curve["thresholds"], curve["precision"], recall, strict=True)
        if p is not None and r is not None
    ]
    # Targets reached at the same threshold share one marker (labelled with all of them).
    grouped: dict[float, list[Mapping[str, Any]]] = {}
    for target in targets:
        if target.get("threshold") is None or target.get("recall") is None:
            continue
        grouped.setdefault(float(target["threshold"]), []).append(target)
    markers = []
    for threshold, same in grouped.items():
        r, p = _clip01(same[0]["recall"]), _clip01(same[0]["precision"])
        point = CurvePoint(r, p, threshold, frame.x(r), frame.y(p))
        label = "P≥" + ", ".join(f"{t['target']:g}" for t in same)
        markers.append(Marker(label, point))
    message = None if points else "no operating points"
    return PrecisionRecallChart(frame, axes, points, markers, message)


def render_precision_recall_svg(chart: PrecisionRecallChart, title: str) -> str:
    frame = chart.frame
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart precision-recall" role="img" '
        f'viewBox="0 0 {_num(frame.width)} {_num(frame.height)}" '
        f'aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        *_axes_svg(frame, chart.axes, "recall", "precision"),
    ]
    if chart.points:
        coordinates = " ".join(f"{p.x:.2f},{p.y:.2f}" for p in chart.points)
        parts.append(
            f'<polyline class="curve" points="{coordinates}" fill="none" stroke="#2f6fdb" '
            f'stroke-width="2" stroke-linejoin="round"/>'
        )
    for marker in chart.markers:
        p = marker.point
        parts.append(
            f'<g class="marker"><circle cx="{p.x:.2f}" cy="{p.y:.2f}" r="4" fill="#d9480f">'
            f"<title>{escape(marker.label)}: threshold {p.threshold:.4f}, precision "
            f"{p.precision:.3f}, recall {p.recall:.3f}</title></circle>"
            f'<text class="marker-label" x="{p.x - 6:.2f}" y="{p.y + 14:.2f}" '
            f'text-anchor="end">{escape(marker.label)}</text></g>'
        )
    if chart.message:
        parts.append(
            f'<text class="chart-message" x="{_num(frame.x(0.5))}" y="{_num(frame.y(0.5))}" '
            f'text-anchor="middle">{escape(chart.message)}</text>'
        )
    parts.append(
        f'<text class="legend" x="{_num(frame.left + 6)}" y="18">{escape(title)}</text></svg>'
    )
    return "".join(parts)


def precision_recall_svg(
    curve: Mapping[str, Any], targets: Sequence[Mapping[str, Any]] = (), title: str = ""
) -> str:
    return render_precision_recall_svg(
        precision_recall_geometry(curve, targets), title or "Precision-recall curve"
    )
