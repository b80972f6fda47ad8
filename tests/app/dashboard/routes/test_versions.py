"""Dashboard operating points, versions (activation, rollback) and monitoring pages."""

from __future__ import annotations

from sqlalchemy import select

from app.db import transaction
from app.models import Calibration
from tests.app.dashboard.conftest import csrf_of, fit, page_csrf
from tests.app.factories import LABELS


def test_operating_points_per_class(admin_client, task):
    fit(admin_client)
    page = admin_client.get("/admin/tasks/t/operating-points?label=b").text
    assert '<option value="b" selected>' in page
    assert 'class="chart precision-recall"' in page
    assert "<polyline" in page
    assert "Thresholds for target precisions" in page
    for target in ("0.80", "0.90", "0.95", "0.99"):
        assert f'<td class="num">{target}</td>' in page
    fallback = admin_client.get("/admin/tasks/t/operating-points?label=zzz").text
    assert '<option value="a" selected>' in fallback


def test_operating_points_without_data(admin_client, app):
    from app.services import tasks as task_service

    with transaction(app.state.session_factory) as session:
        task_service.create_task(session, {"name": "t", "labels": LABELS})
    page = admin_client.get("/admin/tasks/t/operating-points")
    assert page.status_code == 200
    assert "no labelled distributions" in page.text


# --- versions ------------------------------------------------------------------------------


def active_version(app) -> int:
    with transaction(app.state.session_factory) as session:
        return session.scalar(select(Calibration.version).where(Calibration.is_active))


def test_versions_and_rollback(admin_client, task, app):
    fit(admin_client)
    fit(admin_client, seed="2")
    assert active_version(app) == 2
    page = admin_client.get("/admin/tasks/t/versions").text
    assert 'id="version-1"' in page
    assert 'id="version-2" class="active-row"' in page
    with transaction(app.state.session_factory) as session:
        v1 = session.scalar(select(Calibration.id).where(Calibration.version == 1))
    token = csrf_of(page)
    response = admin_client.post(
        f"/admin/tasks/t/calibrations/{v1}/activate",
        data={"csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/tasks/t/versions"
    assert active_version(app) == 1
    assert "Version 1 is now active" in admin_client.get("/admin/tasks/t/versions").text


def test_activate_without_csrf_is_rejected(admin_client, task, app):
    fit(admin_client)
    fit(admin_client, seed="2")
    with transaction(app.state.session_factory) as session:
        v1 = session.scalar(select(Calibration.id).where(Calibration.version == 1))
    response = admin_client.post(
        f"/admin/tasks/t/calibrations/{v1}/activate", data={}, follow_redirects=False
    )
    assert response.status_code == 403
    assert active_version(app) == 2


def test_activate_unknown_calibration(admin_client, task):
    token = page_csrf(admin_client, "/admin/tasks/t/versions")
    response = admin_client.post(
        "/admin/tasks/t/calibrations/999/activate", data={"csrf_token": token}
    )
    assert response.status_code == 404


# --- monitoring ----------------------------------------------------------------------------


def test_monitoring_page(admin_client, task, app_client):
    fit(admin_client)
    page = admin_client.get("/admin/tasks/t/monitoring").text
    assert "no feedback yet" in page
    for i in range(3):
        r = app_client.post(
            "/calibrate", json={"task": "t", "probabilities": {"a": 0.8, "b": 0.1, "c": 0.1}}
        )
        assert r.status_code == 200, r.text
        app_client.post("/feedback", json={"id": r.json()["id"], "label": LABELS[i]})
    page = admin_client.get("/admin/tasks/t/monitoring").text
    assert "3 with feedback" in page
    assert "at least 30 needed" in page
