"""The report's extra sections and the prior in a real headless Chromium, against a live server.

Same browser and server set-up as test_browser.py (system Chromium; skipped without one unless
VERBCAL_REQUIRE_BROWSER=1). Data: imported overconfident distributions, live traffic sent with
an app key through the real API.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from app.config import Settings
from app.db import transaction
from app.main import create_app
from app.migrate import upgrade_to_head
from app.services import keys
from app.services import predictions as prediction_service
from app.services import tasks as task_service
from tests.app.dashboard.test_browser import (
    LAPTOP,
    LiveServer,
    _serve,
    browser,  # noqa: F401 (a fixture)
    shoot,
)
from tests.app.factories import LABELS, overconfident_items

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def live_server(tmp_path_factory) -> Iterator[LiveServer]:
    database_url = f"sqlite:///{tmp_path_factory.mktemp('browser-extras') / 'verbcal.db'}"
    upgrade_to_head(database_url)
    settings = Settings(
        database_url=database_url,
        embedded_worker=False,
        min_fit_examples=20,
        prior_min_requests=50,
        prior_refresh_s=0,
        log_json=False,
        log_level="WARNING",
    )
    app = create_app(settings, start_worker=False)
    with transaction(app.state.session_factory) as session:
        _, admin_key = keys.create_key(session, "admin", name="browser-admin")
        _, app_key = keys.create_key(session, "app", name="browser-app")
        task = task_service.create_task(session, {"name": "t", "labels": LABELS})
        prediction_service.import_predictions(session, task, overconfident_items(500), settings)
    for url in _serve(app):
        yield LiveServer(url, admin_key, app_key)


def test_fit_page_draws_smooth_curves_and_tables_and_monitoring_shows_prior(
    browser,  # noqa: F811 (the imported fixture)
    live_server,
):
    context = browser.new_context(viewport=LAPTOP)
    page = context.new_page()
    page.set_default_timeout(20_000)
    base = live_server.url
    page.goto(f"{base}/admin/login")
    page.fill("#api_key", live_server.admin_key)
    page.click("button:has-text('Log in')")
    page.goto(f"{base}/admin/tasks/t/fit")

    # Fit with APS class-conditional sets at two coverages, from the form.
    page.fill("#conformal_coverages", "0.8, 0.9")
    page.select_option("#conformal_score", "aps")
    page.check("input[name='conformal_class_conditional']")
    page.click("#fit-form button:has-text('Fit')")
    page.wait_for_selector("text=Fitted version 1 and activated")

    chart = page.locator("svg.chart.reliability")
    assert chart.locator("rect.bar").count() > 4
    for series in ("raw", "calibrated"):
        curve = chart.locator(f"polyline.smooth-curve.{series}")
        assert curve.count() >= 1
        assert 50 < len(curve.first.get_attribute("points").split()) <= 200
        assert chart.locator(f"polygon.smooth-band.{series}").count() == curve.count()
    # The curve is drawn inside the plot area (up to its stroke width), not collapsed.
    box = chart.locator("polyline.smooth-curve.calibrated").first.bounding_box()
    frame = chart.locator("rect.frame").bounding_box()
    assert box["width"] > 0.5 * frame["width"]
    assert frame["y"] - 4 <= box["y"]
    assert box["y"] + box["height"] <= frame["y"] + frame["height"] + 4

    rows = page.locator("#conformal-table tbody tr")
    assert rows.count() == 2
    assert rows.nth(1).locator("td").first.inner_text() == "0.9"
    coverage = float(rows.nth(1).locator("td").nth(1).inner_text())
    assert 0.8 <= coverage <= 1.0
    assert "APS score, class-conditional" in page.inner_text("#conformal")
    assert page.locator("#decomposition-distinct tbody tr").count() == 4
    assert page.locator("#smooth-ece tbody tr").count() == 2
    shoot(page, "20-fit-smooth-reliability-and-conformal")

    # Live traffic with another class mix; the task estimates its prior from it.
    # Every "a" row of a fresh sample and every fourth other row: "a" is over-represented.
    fresh = overconfident_items(400, seed=5)
    items = [
        {"probabilities": item["probabilities"]}
        for i, item in enumerate(fresh)
        if item["label"] == "a" or i % 4 == 0
    ]
    headers = {"Authorization": f"Bearer {live_server.app_key}"}
    admin = {"Authorization": f"Bearer {live_server.admin_key}"}
    with httpx.Client(base_url=base, timeout=30) as http:
        r = http.post("/calibrate/batch", json={"task": "t", "items": items}, headers=headers)
        assert r.status_code == 200 and r.json()["failed"] == 0
        assert http.patch("/tasks/t", json={"prior": "estimate"}, headers=admin).status_code == 200
        one = http.post(
            "/calibrate", json={"task": "t", **items[0], "coverage": 0.9}, headers=headers
        ).json()
    assert one["prior_shift"]["applied"] is True
    assert one["prediction_set"]["coverage"] == 0.9

    page.click("nav.tabs >> text=Monitoring")
    table = page.locator("#prior-table")
    assert table.locator("tbody tr").count() == len(LABELS)
    assert "correct to the live prior estimated from traffic" in page.inner_text("#prior")
    live_a = float(table.locator("tbody tr").first.locator("td").nth(2).inner_text().split()[0])
    training_a = float(table.locator("tbody tr").first.locator("td").nth(1).inner_text())
    assert live_a > training_a  # the traffic leans to "a"
    shoot(page, "21-monitoring-prior")
    context.close()
