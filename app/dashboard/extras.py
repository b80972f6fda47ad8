"""Dashboard views of the report's extra sections and the fit form's conformal fields.

- the smooth reliability curve and its bootstrap band, drawn over the binned bars
  (:func:`smooth_geometry` gives the geometry tests check, :func:`reliability_with_smooth_svg`
  the SVG);
- tables of the score decompositions, AURC and conformal coverage (:func:`extras_view`);
- the fit form's conformal fields (:data:`CONFORMAL_DEFAULTS`, :func:`conformal_values`,
  :func:`conformal_payload`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from app.dashboard.charts import Frame, reliability_geometry, render_reliability_svg
from calibrators.conformal import DEFAULT_COVERAGES

SMOOTH_COLOURS = {"raw": "#52606d", "calibrated": "#0b3d91"}
DECOMPOSITION_TERMS = (
    ("score", "score"),
    ("reliability", "reliability (lower is better)"),
    ("resolution", "resolution (higher is better)"),
    ("uncertainty", "uncertainty"),
)
CONFORMAL_DEFAULTS = {
    "conformal_coverages": ", ".join(str(c) for c in DEFAULT_COVERAGES),
    "conformal_score": "lac",
    "conformal_class_conditional": False,
}


# --- smooth reliability curve ----------------------------------------------------------------


# Where the confidences' density (which integrates to 1 on [0, 1]) is below this, the smoothed
# accuracy is an extrapolation of far-away rows: the curve and band are not drawn there.
MIN_DENSITY = 0.05


@dataclass(frozen=True)
class SmoothCurve:
    """One series' smooth curve and band, as runs of SVG points where the density is shown.

    ``runs``: contiguous stretches of the curve; ``bands``: for each run, the band polygon
    (upper edge left to right, then the lower edge back), empty without a band.
    """

    series: str
    smooth_ece: float | None
    runs: list[list[tuple[float, float]]]
    bands: list[list[tuple[float, float]]]


def _clip01(value: float) -> float:
    return min(1.0, max(0.0, float(value)))


def _runs(shown: Sequence[bool]) -> list[list[int]]:
    runs: list[list[int]] = []
    for i, keep in enumerate(shown):
        if not keep:
            continue
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


def smooth_geometry(series: str, smooth: Mapping[str, Any], frame: Frame) -> SmoothCurve:
    """SVG points of ``smooth["accuracy"]`` at ``smooth["t"]``, and of its band (if any), where
    ``smooth["density"] >= MIN_DENSITY`` (every point without a density)."""
    t, accuracy = smooth["t"], smooth["accuracy"]
    density = smooth.get("density") or [None] * len(t)
    shown = [
        a is not None and (d is None or d >= MIN_DENSITY)
        for a, d in zip(accuracy, density, strict=True)
    ]

    def point(i: int, values: Sequence[float]) -> tuple[float, float]:
        return frame.x(t[i]), frame.y(_clip01(values[i]))

    runs, bands = [], []
    has_band = smooth.get("lower") is not None and smooth.get("upper") is not None
    for run in _runs(shown):
        runs.append([point(i, accuracy) for i in run])
        if has_band:
            upper = [point(i, smooth["upper"]) for i in run]
            lower = [point(i, smooth["lower"]) for i in run]
            bands.append(upper + lower[::-1])
    return SmoothCurve(series, smooth.get("smooth_ece"), runs, bands)


def _points(points: Sequence[tuple[float, float]]) -> str:
    return " ".join(f"{x:.2f},{y:.2f}" for x, y in points)


def _smooth_svg(curves: Sequence[SmoothCurve], frame: Frame) -> str:
    parts = ['<g class="smooth">']
    for curve in curves:
        colour = SMOOTH_COLOURS[curve.series]
        for band in curve.bands:
            parts.append(
                f'<polygon class="smooth-band {curve.series}" points="{_points(band)}" '
                f'fill="{colour}" fill-opacity="0.18" stroke="none"/>'
            )
        dash = ' stroke-dasharray="6 3"' if curve.series == "raw" else ""
        for run in curve.runs:
            parts.append(
                f'<polyline class="smooth-curve {curve.series}" points="{_points(run)}" '
                f'fill="none" stroke="{colour}" stroke-width="2"{dash}>'
                f"<title>smooth reliability, {curve.series}</title></polyline>"
            )
    x = frame.left + 6
    for i, curve in enumerate(curves):
        y = frame.height - 40 + i * 15
        value = "—" if curve.smooth_ece is None else f"{curve.smooth_ece:.3f}"
        parts.append(
            f'<line x1="{x:.0f}" y1="{y - 4:.0f}" x2="{x + 14:.0f}" y2="{y - 4:.0f}" '
            f'stroke="{SMOOTH_COLOURS[curve.series]}" stroke-width="2"/>'
            f'<text class="legend" x="{x + 18:.0f}" y="{y:.0f}">'
            f"{escape(curve.series)} smooth, smECE {value}</text>"
        )
    parts.append("</g>")
    return "".join(parts)


def reliability_with_smooth_svg(
    raw: Sequence[Mapping[str, Any]],
    calibrated: Sequence[Mapping[str, Any]] | None,
    smooth: Mapping[str, Any] | None,
) -> str:
    """The binned reliability diagram with the smooth curves and bands of ``smooth`` on top.

    ``smooth`` is the report's ``smooth_ece`` section ({raw, calibrated}); without it, the
    plain binned diagram.
    """
    frame = Frame(height=450.0, bottom=76.0)
    chart = reliability_geometry(raw, calibrated, frame)
    svg = render_reliability_svg(chart)
    if not smooth:
        return svg
    curves = [
        smooth_geometry(series, smooth[series], frame)
        for series in ("raw", "calibrated")
        if smooth.get(series)
    ]
    return svg.removesuffix("</svg>") + _smooth_svg(curves, frame) + "</svg>"


# --- tables ----------------------------------------------------------------------------------


def _decomposition_rows(section: Mapping[str, Any], score: str) -> list[dict[str, Any]]:
    raw, calibrated = section.get("raw") or {}, section.get("calibrated") or {}
    raw, calibrated = raw.get(score) or {}, calibrated.get(score) or {}
    return [
        {"name": name, "raw": raw.get(key), "calibrated": calibrated.get(key)}
        for key, name in DECOMPOSITION_TERMS
    ]


def extras_view(report: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """What the fit page shows of the report's extra sections (None without a report)."""
    if not report or "smooth_ece" not in report:
        return None
    smooth = report["smooth_ece"]
    decompositions = report["decompositions"]
    notes = {}
    for grouping, section in decompositions.items():
        for side in ("raw", "calibrated"):
            note = ((section.get(side) or {}).get("log") or {}).get("note")
            if note:
                notes[f"{grouping}, {side}"] = note
    return {
        "smooth": {
            side: None
            if smooth.get(side) is None
            else {
                "value": smooth[side]["smooth_ece"],
                "bandwidth": smooth[side]["bandwidth"],
                "interval": smooth[side]["smooth_ece_interval"],
            }
            for side in ("raw", "calibrated")
        },
        "decompositions": [
            {
                "grouping": grouping,
                "n_groups": ((section.get("raw") or {}).get("brier") or {}).get("n_groups"),
                "brier": _decomposition_rows(section, "brier"),
                "log": _decomposition_rows(section, "log"),
            }
            for grouping, section in decompositions.items()
        ],
        "log_notes": notes,
        "min_density": MIN_DENSITY,
        "aurc": report["aurc"],
        "conformal": report.get("conformal"),
    }


# --- fit form --------------------------------------------------------------------------------


def conformal_values(form: Mapping[str, Any]) -> dict[str, Any]:
    """The conformal fields of a submitted fit form, as strings/bools for redisplay."""
    coverages = form.get("conformal_coverages")
    score = form.get("conformal_score")
    return {
        "conformal_coverages": coverages.strip()
        if isinstance(coverages, str)
        else CONFORMAL_DEFAULTS["conformal_coverages"],
        "conformal_score": score if isinstance(score, str) else "lac",
        "conformal_class_conditional": form.get("conformal_class_conditional") is not None,
    }


def conformal_payload(values: Mapping[str, Any]) -> tuple[dict[str, Any] | None, list[str]]:
    """FitRequest.conformal from the form: None when the coverages field is empty."""
    text = values["conformal_coverages"]
    if not text:
        return None, []
    try:
        coverages = [float(part) for part in text.replace(";", ",").split(",") if part.strip()]
    except ValueError:
        return None, ["conformal coverages: numbers in (0, 1) separated by commas"]
    return {
        "coverages": coverages,
        "score": values["conformal_score"],
        "class_conditional": values["conformal_class_conditional"],
    }, []
