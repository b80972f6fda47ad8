"""Dashboard: smooth reliability curve over the bars, decompositions, AURC, conformal table,
conformal fields in the fit form, and the prior in monitoring."""

from __future__ import annotations

import re

import numpy as np
import pytest

from app.dashboard.charts import Frame
from app.dashboard.extras import (
    conformal_payload,
    conformal_values,
    reliability_with_smooth_svg,
    smooth_geometry,
)
from app.db import transaction
from app.models import Calibration
from calibrators import smooth_reliability_diagram
from tests.app.dashboard.conftest import fit
from tests.app.factories import LABELS


def test_smooth_geometry_maps_the_curve_and_band_onto_the_frame():
    frame = Frame()
    smooth = {
        "smooth_ece": 0.1,
        "t": [0.0, 0.5, 1.0],
        "accuracy": [0.2, 0.5, 1.2],  # out-of-range values are clipped to the frame
        "density": [0.5, 1.0, 1.5],
        "lower": [0.1, 0.4, 0.8],
        "upper": [0.3, 0.6, 1.0],
    }
    curve = smooth_geometry("calibrated", smooth, frame)
    assert curve.runs == [
        [(frame.left, frame.y(0.2)), (frame.x(0.5), frame.y(0.5)), (frame.x(1.0), frame.top)]
    ]
    # The band runs along the upper edge, then back along the lower one.
    assert curve.bands == [
        [
            (frame.x(0.0), frame.y(0.3)),
            (frame.x(0.5), frame.y(0.6)),
            (frame.x(1.0), frame.y(1.0)),
            (frame.x(1.0), frame.y(0.8)),
            (frame.x(0.5), frame.y(0.4)),
            (frame.x(0.0), frame.y(0.1)),
        ]
    ]
    assert smooth_geometry("raw", smooth | {"lower": None}, frame).bands == []


def test_smooth_curve_is_not_drawn_where_there_are_no_confidences():
    frame = Frame()
    t = [i / 4 for i in range(5)]
    smooth = {"t": t, "accuracy": [0.1, 0.2, 0.3, 0.4, 0.5], "lower": t, "upper": t}
    smooth["density"] = [0.01, 1.0, 0.049, 0.05, 2.0]  # shown where >= MIN_DENSITY (0.05)
    curve = smooth_geometry("raw", smooth, frame)
    assert curve.runs == [
        [(frame.x(0.25), frame.y(0.2))],
        [(frame.x(0.75), frame.y(0.4)), (frame.x(1.0), frame.y(0.5))],
    ]
    assert [len(band) for band in curve.bands] == [2, 4]


def test_reliability_svg_draws_smooth_curves_and_bands_over_the_bars():
    rng = np.random.default_rng(0)
    c = rng.uniform(0.7, 1.0, size=200)
    P = np.column_stack([c, (1 - c) / 2, (1 - c) / 2])
    y = rng.integers(0, 3, size=200)
    smooth = smooth_reliability_diagram(P, y, n_points=50, n_boot=10)
    bins = [{"lower": 0.3, "upper": 0.6, "count": 120, "confidence": 0.5, "accuracy": 0.4}]
    svg = reliability_with_smooth_svg(bins, bins, {"raw": smooth, "calibrated": smooth})
    assert svg.count('class="bar"') == 2
    shown = sum(d >= 0.05 for d in smooth["density"])
    assert 0 < shown < 50  # no confidence below 0.7: the curve starts near it
    assert svg.count('<polyline class="smooth-curve raw"') == 1
    assert svg.count('<polygon class="smooth-band calibrated"') == 1
    # Bars first, curves after (drawn on top), one SVG document.
    assert svg.index('class="bar"') < svg.index("smooth-curve") < svg.rindex("</svg>")
    assert svg.count("</svg>") == 1
    points = re.search(r'smooth-curve raw" points="([^"]+)"', svg)[1].split()
    assert len(points) == shown
    assert f"smECE {smooth['smooth_ece']:.3f}" in svg
    assert reliability_with_smooth_svg(bins, None, None).count("smooth") == 0


@pytest.mark.parametrize(
    ("form", "payload", "errors"),
    [
        ({}, {"coverages": [0.8, 0.9, 0.95], "score": "lac", "class_conditional": False}, []),
        (
            {"conformal_coverages": "0.9; 0.5", "conformal_score": "aps"},
            {"coverages": [0.9, 0.5], "score": "aps", "class_conditional": False},
            [],
        ),
        (
            {"conformal_coverages": " ", "conformal_class_conditional": "on"},
            None,
            [],
        ),
        ({"conformal_coverages": "0.9, ninety"}, None, ["conformal coverages: numbers"]),
    ],
)
def test_conformal_form_fields(form, payload, errors):
    result, found = conformal_payload(conformal_values(form))
    assert result == payload
    assert [e[: len(x)] for e, x in zip(found, errors, strict=True)] == errors


def test_fit_page_shows_smooth_ece_decompositions_aurc_and_conformal_table(admin_client, task):
    location = fit(
        admin_client,
        conformal_coverages="0.8, 0.9",
        conformal_score="aps",
        conformal_class_conditional="on",
    )
    page = admin_client.get(location).text
    assert page.count('<polyline class="smooth-curve raw') >= 1
    assert page.count('<polygon class="smooth-band calibrated') >= 1
    assert 'id="smooth-ece"' in page
    assert 'id="decomposition-distinct"' in page and 'id="decomposition-top_label"' in page
    table = re.search(r'<table class="data compact" id="conformal-table">(.*?)</table>', page, re.S)
    rows = re.findall(r"<tr><td>([\d.]+)</td>", table[1])
    assert rows == ["0.8", "0.9"]
    for label in LABELS:
        assert f'<th class="num">{label} <small>' in table[1]
    assert "APS score, class-conditional" in page
    # The form redisplays what was fitted with? No: it shows the defaults for the next fit.
    assert 'name="conformal_coverages" value="0.8, 0.9, 0.95"' in page


def test_fit_form_rejects_bad_coverages_and_fits_without_sets(admin_client, task, app):
    from tests.app.dashboard.conftest import page_csrf

    token = page_csrf(admin_client, "/admin/tasks/t/fit")
    form = {"objective": "nll", "eps_mode": "auto", "holdout": "0.3", "seed": "0"}
    form |= {"source": "auto", "csrf_token": token, "activate": "on"}
    bad = admin_client.post("/admin/tasks/t/fit", data=form | {"conformal_coverages": "0.9, 1.5"})
    assert bad.status_code == 422
    assert "conformal.coverages" in bad.text
    assert 'value="0.9, 1.5"' in bad.text  # the form keeps what was typed
    location = fit(admin_client, conformal_coverages="")
    assert "has no conformal sets" in admin_client.get(location).text
    with transaction(app.state.session_factory) as session:
        stored = session.query(Calibration).one()
        assert stored.data["conformal"] is None


def test_monitoring_shows_training_and_live_prior(admin_client, task, app, settings, client):
    fit(admin_client)
    page = admin_client.get("/admin/tasks/t/monitoring").text
    assert 'id="prior-table"' in page
    assert "the estimate needs at least 100" in page.replace("&#39;", "'")
    client.patch("/tasks/t", json={"prior": {"a": 0.5, "b": 0.25, "c": 0.25}})
    page = admin_client.get("/admin/tasks/t/monitoring").text
    assert "correct to a given prior" in page
    assert '<th class="num">Given prior</th>' in page
    row = re.search(r"<tr><td>a</td>(.*?)</tr>", page, re.S)[1]
    assert "0.500" in row
