"""The dashboard fit page and fit form."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from app.db import transaction
from app.models import Calibration
from tests.app.dashboard.conftest import fit, page_csrf
from tests.app.factories import LABELS, T0


def test_fit_shows_result_diagram_and_comparison(admin_client, task):
    location = fit(admin_client)
    assert re.fullmatch(r"/admin/tasks/t/fit\?calibration=\d+", location)
    page = admin_client.get(location).text
    assert "Fitted version 1 and activated" in page
    temperature = float(re.search(r'<dd class="big" id="temperature">([\d.]+)</dd>', page)[1])
    assert temperature == pytest.approx(T0, rel=0.2)
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="chart reliability"' in page
    assert 'class="series calibrated"' in page
    assert 'class="diagonal"' in page
    assert "Calibrators compared" in page
    for column in ("raw", "temperature", "vector", "isotonic"):
        assert f">{column}" in page
    assert 'class="ci"' in page  # bootstrap intervals next to the metrics
    quantile = admin_client.get(location + "&binning=quantile&n_bins=5")
    assert quantile.status_code == 200
    assert quantile.text.count('class="bar"') == 10


def test_fit_with_auto_eps_and_without_activation(admin_client, task):
    fit(admin_client)
    location = fit(admin_client, eps_mode="auto", objective="brier", activate=None)
    page = admin_client.get(location).text
    assert "Fitted version 2 (not activated)" in page
    assert "(auto)" in page
    assert "Activate version 2" in page


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"holdout": "1.5"}, "validation.holdout"),
        ({"holdout": "abc"}, "holdout: not a valid number"),
        ({"seed": "1.5"}, "seed: not a valid integer"),
        ({"eps": "0.9"}, "eps must lie in [0, 0.5]"),
        ({"objective": "hinge"}, "objective"),
    ],
)
def test_fit_form_errors(admin_client, task, fields, message):
    token = page_csrf(admin_client, "/admin/tasks/t/fit")
    form = {"objective": "nll", "eps_mode": "value", "eps": "0", "holdout": "0.3", "seed": "0"}
    form |= {"csrf_token": token} | fields
    response = admin_client.post("/admin/tasks/t/fit", data=form, follow_redirects=False)
    assert response.status_code == 422
    assert message in response.text
    assert 'value="{}"'.format(fields.get("holdout", "0.3")) in response.text


def test_fit_without_enough_data(admin_client, app):
    from app.services import tasks as task_service

    with transaction(app.state.session_factory) as session:
        task_service.create_task(session, {"name": "t", "labels": LABELS})
    token = page_csrf(admin_client, "/admin/tasks/t/fit")
    response = admin_client.post(
        "/admin/tasks/t/fit",
        data={"csrf_token": token, "eps_mode": "auto", "holdout": "0.3", "seed": "0"},
        follow_redirects=False,
    )
    assert response.status_code == 409
    assert "not enough labelled distributions" in response.text


def test_fit_without_csrf_is_rejected(admin_client, task, app):
    response = admin_client.post(
        "/admin/tasks/t/fit", data={"holdout": "0.3", "seed": "0"}, follow_redirects=False
    )
    assert response.status_code == 403
    with transaction(app.state.session_factory) as session:
        assert session.scalar(select(func.count()).select_from(Calibration)) == 0


def test_fit_page_before_any_fit_shows_the_raw_diagram(admin_client, task):
    page = admin_client.get("/admin/tasks/t/fit").text
    assert "No calibration yet" in page
    assert 'class="series raw"' in page
    assert 'class="series calibrated"' not in page


def test_unknown_calibration_is_a_404(admin_client, task):
    assert admin_client.get("/admin/tasks/t/fit?calibration=999").status_code == 404
    assert admin_client.get("/admin/tasks/t/fit?calibration=abc").status_code == 422


def test_fit_form_refits_by_default_and_labels_the_estimate(admin_client, task):
    form = admin_client.get("/admin/tasks/t/fit").text
    assert re.search(r'<input type="checkbox" name="refit" value="on"\s+checked>', form)
    page = admin_client.get(fit(admin_client, refit="on")).text
    assert re.search(r'id="served-fit">refitted on all \d+ labelled rows<', page)
    assert "Held-out metrics: raw → calibrated" in page
    assert ">resoftmax (baseline)" in page
    kept = admin_client.get(fit(admin_client)).text
    assert "(no refit)" in kept
