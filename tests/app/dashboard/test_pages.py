"""Server-side tests of every dashboard page and form: auth, CSRF, uploads, fit, versions."""

from __future__ import annotations

import json
import re

import pytest
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import func, select

from app.db import transaction
from app.models import Calibration, Example, Job
from tests.app.dashboard.conftest import csrf_of, log_in
from tests.app.factories import LABELS, T0

TASK_PAGES = ["", "/fit", "/operating-points", "/versions", "/monitoring"]


def page_csrf(client, url: str = "/admin") -> str:
    return csrf_of(client.get(url).text)


def example_count(app) -> int:
    with transaction(app.state.session_factory) as session:
        return session.scalar(select(func.count()).select_from(Example))


def fit(client, **fields) -> str:
    token = page_csrf(client, "/admin/tasks/t/fit")
    form = {"objective": "nll", "eps_mode": "value", "eps": "0", "holdout": "0.3", "seed": "1"}
    form |= {"activate": "on", "source": "auto", "csrf_token": token} | fields
    form = {name: value for name, value in form.items() if value is not None}
    response = client.post("/admin/tasks/t/fit", data=form, follow_redirects=False)
    assert response.status_code == 303, response.text
    return response.headers["location"]


# --- login, logout, redirects --------------------------------------------------------------


@pytest.mark.parametrize("path", ["/admin", *[f"/admin/tasks/t{page}" for page in TASK_PAGES]])
def test_every_page_redirects_to_login_without_a_session(browser_client, path):
    response = browser_client.get(path, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/admin/login")


@pytest.mark.parametrize(
    "path",
    [
        "/admin/tasks/t/examples",
        "/admin/tasks/t/elicitations",
        "/admin/tasks/t/fit",
        "/admin/tasks/t/calibrations/1/activate",
        "/admin/jobs/x/cancel",
        "/admin/logout",
    ],
)
def test_every_form_redirects_to_login_without_a_session(browser_client, path):
    token = page_csrf(browser_client, "/admin/login")
    response = browser_client.post(path, data={"csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/login"


def test_login_redirect_keeps_the_page_and_rejects_foreign_next(browser_client, admin_key):
    response = browser_client.get("/admin/tasks/t/versions", follow_redirects=False)
    assert response.headers["location"] == "/admin/login?next=/admin/tasks/t/versions"
    token = page_csrf(browser_client, "/admin/login")
    evil = browser_client.post(
        "/admin/login",
        data={"api_key": admin_key, "csrf_token": token, "next": "https://evil.example/"},
        follow_redirects=False,
    )
    assert evil.status_code == 303
    assert evil.headers["location"] == "/admin"


def test_login_sets_a_signed_http_only_cookie_without_the_key(browser_client, admin_key, app):
    log_in(browser_client, admin_key)
    response = browser_client.get("/admin")
    assert response.status_code == 200
    assert "Tasks" in response.text
    cookie = browser_client.cookies.get("verbcal_admin")
    assert admin_key not in cookie
    payload = URLSafeTimedSerializer("test-secret", salt="verbcal-dashboard-session").loads(cookie)
    assert set(payload) == {"sid", "key_id", "flashes"}
    assert admin_key not in json.dumps(payload)


def test_login_cookie_attributes(browser_client, admin_key):
    token = page_csrf(browser_client, "/admin/login")
    response = browser_client.post(
        "/admin/login", data={"api_key": admin_key, "csrf_token": token}, follow_redirects=False
    )
    set_cookie = response.headers["set-cookie"].lower()
    assert "httponly" in set_cookie
    assert "samesite=lax" in set_cookie
    assert "path=/admin" in set_cookie
    assert "secure" not in set_cookie  # plain http here; https requests get Secure


def test_secure_cookie_over_https(app, admin_key):
    from fastapi.testclient import TestClient

    with TestClient(app, base_url="https://testserver") as client:
        response = client.get("/admin/login")
        assert "secure" in response.headers["set-cookie"].lower()


def test_app_key_cannot_log_in(browser_client, app_key):
    token = page_csrf(browser_client, "/admin/login")
    response = browser_client.post(
        "/admin/login", data={"api_key": app_key, "csrf_token": token}, follow_redirects=False
    )
    assert response.status_code == 401
    assert "admin key" in response.text
    assert browser_client.get("/admin", follow_redirects=False).status_code == 303


def test_unknown_key_cannot_log_in(browser_client):
    token = page_csrf(browser_client, "/admin/login")
    response = browser_client.post(
        "/admin/login", data={"api_key": "vc_nope", "csrf_token": token}, follow_redirects=False
    )
    assert response.status_code == 401
    assert "Unknown or revoked" in response.text


def test_login_without_or_with_a_foreign_csrf_token_is_rejected(app, admin_key):
    from fastapi.testclient import TestClient

    with TestClient(app) as first, TestClient(app) as second:
        foreign = page_csrf(first, "/admin/login")
        page_csrf(second, "/admin/login")
        for data in ({"api_key": admin_key}, {"api_key": admin_key, "csrf_token": foreign}):
            response = second.post("/admin/login", data=data, follow_redirects=False)
            assert response.status_code == 403
        assert second.get("/admin", follow_redirects=False).status_code == 303


def test_login_rotates_the_session_id(browser_client, admin_key):
    before = page_csrf(browser_client, "/admin/login")
    log_in(browser_client, admin_key)
    assert page_csrf(browser_client) != before


def test_logout(admin_client):
    token = page_csrf(admin_client)
    assert admin_client.post("/admin/logout", data={}, follow_redirects=False).status_code == 403
    response = admin_client.post(
        "/admin/logout", data={"csrf_token": token}, follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/login"
    assert admin_client.get("/admin", follow_redirects=False).status_code == 303
    assert "Logged out" in admin_client.get("/admin/login").text


def test_revoked_key_loses_its_session(admin_client, app):
    from app.models import ApiKey, utcnow

    assert admin_client.get("/admin", follow_redirects=False).status_code == 200
    with transaction(app.state.session_factory) as session:
        for key in session.scalars(select(ApiKey)):
            key.revoked_at = utcnow()
    assert admin_client.get("/admin", follow_redirects=False).status_code == 303


def test_a_tampered_cookie_is_no_session(admin_client):
    cookie = admin_client.cookies.get("verbcal_admin")
    tampered = cookie[:-4] + ("AAAA" if not cookie.endswith("AAAA") else "BBBB")
    admin_client.cookies.clear()
    admin_client.cookies.set("verbcal_admin", tampered)
    assert admin_client.get("/admin", follow_redirects=False).status_code == 303


def test_security_headers(admin_client):
    response = admin_client.get("/admin")
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"


def test_static_files_are_served(browser_client):
    css = browser_client.get("/admin/static/dashboard.css")
    assert css.status_code == 200
    assert "text/css" in css.headers["content-type"]
    js = browser_client.get("/admin/static/progress.js")
    assert js.status_code == 200
    assert "fetch(" in js.text


# --- tasks list and task page --------------------------------------------------------------


def test_tasks_list(admin_client, task):
    page = admin_client.get("/admin")
    assert page.status_code == 200
    assert 'href="/admin/tasks/t"' in page.text
    assert "a, b, c" in page.text
    assert "400 / 0 / " in page.text  # imported / elicited / failed
    assert "none" in page.text  # no active calibration yet
    fit(admin_client)
    page = admin_client.get("/admin").text
    assert re.search(r"v1 · T = \d\.\d{3}", page)
    assert "→" in page


def test_empty_tasks_list(admin_client):
    assert "No tasks yet" in admin_client.get("/admin").text


@pytest.mark.parametrize("page", TASK_PAGES)
def test_task_pages_render(admin_client, task, page):
    response = admin_client.get(f"/admin/tasks/t{page}")
    assert response.status_code == 200, response.text
    assert '<nav class="tabs"' in response.text


@pytest.mark.parametrize("page", TASK_PAGES)
def test_unknown_task_is_a_404_page(admin_client, page):
    response = admin_client.get(f"/admin/tasks/nope{page}")
    assert response.status_code == 404
    assert "text/html" in response.headers["content-type"]
    assert "no task named" in response.text


def test_task_page_counts_per_label(admin_client, task):
    page = admin_client.get("/admin/tasks/t").text
    assert "400 examples, 400 labelled." in page
    for label in LABELS:
        assert f"<td>{label}</td>" in page


# --- uploads -------------------------------------------------------------------------------


def upload(client, content: str, filename: str = "examples.csv", csrf: str | None = None):
    token = page_csrf(client, "/admin/tasks/t") if csrf is None else csrf
    content_type = {".csv": "text/csv", ".jsonl": "application/x-ndjson"}.get(
        filename[filename.rfind(".") :], "text/plain"
    )
    return client.post(
        "/admin/tasks/t/examples",
        data={"csrf_token": token},
        files={"file": (filename, content.encode(), content_type)},
        follow_redirects=False,
    )


def test_upload_csv(admin_client, task, app):
    before = example_count(app)
    response = upload(admin_client, "id,text,label\nn1,new one,a\nn2,new two,b\n")
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/tasks/t"
    page = admin_client.get("/admin/tasks/t").text
    assert "Imported examples.csv: 2 rows, 2 new, 0 updated, 0 unchanged." in page
    assert example_count(app) == before + 2
    # the flash is shown once
    assert "Imported examples.csv" not in admin_client.get("/admin/tasks/t").text


def test_upload_jsonl(admin_client, task, app):
    before = example_count(app)
    rows = [{"text": "json one", "label": "c"}, {"id": "j2", "text": "json two", "label": "a"}]
    response = upload(admin_client, "\n".join(json.dumps(r) for r in rows), "x.jsonl")
    assert response.status_code == 303
    assert example_count(app) == before + 2


def test_upload_errors_are_shown_per_row_and_nothing_is_imported(admin_client, task, app):
    before = example_count(app)
    content = "id,text,label\nok1,fine,a\nbad1,oops,zebra\nok2,also fine,b\nbad2,,c\n"
    response = upload(admin_client, content)
    assert response.status_code == 422
    rows = re.findall(
        r'<tr class="row-error"><td class="num">(\d+)</td><td><code>(\w+)</code>', response.text
    )
    assert rows == [("2", "label"), ("4", "text")]
    assert "unknown label &#39;zebra&#39;" in response.text
    assert "nothing was imported" in response.text
    assert example_count(app) == before


def test_upload_rejected_late_leaves_nothing_half_imported(admin_client, task, app):
    # Rows valid one by one, but two carry the same text: found while writing, all rolled back.
    before = example_count(app)
    response = upload(admin_client, "text,label\nbrand new,a\nsame text,a\nsame text,b\n")
    assert response.status_code == 422
    assert "same text as row 1" in response.text
    assert example_count(app) == before


def test_upload_of_an_unsupported_file(admin_client, task):
    response = upload(admin_client, "whatever", "notes.txt")
    assert response.status_code == 422
    assert "unsupported upload type" in response.text


def test_upload_without_a_file(admin_client, task):
    token = page_csrf(admin_client, "/admin/tasks/t")
    response = admin_client.post(
        "/admin/tasks/t/examples", data={"csrf_token": token}, follow_redirects=False
    )
    assert response.status_code == 422
    assert "Choose a CSV or JSONL file" in response.text


def test_upload_without_csrf_is_rejected(admin_client, task, app):
    before = example_count(app)
    response = upload(admin_client, "text,label\nx,a\n", csrf="forged")
    assert response.status_code == 403
    assert example_count(app) == before


# --- fit -----------------------------------------------------------------------------------


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
    assert response.status_code == 422
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


# --- operating points ----------------------------------------------------------------------


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


# --- elicitation jobs ----------------------------------------------------------------------


def test_start_elicitation_without_llm_config(admin_client, task, app):
    token = page_csrf(admin_client, "/admin/tasks/t")
    response = admin_client.post(
        "/admin/tasks/t/elicitations", data={"csrf_token": token}, follow_redirects=False
    )
    assert response.status_code == 303
    assert "has no LLM config" in admin_client.get("/admin/tasks/t").text
    with transaction(app.state.session_factory) as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 0


def test_progress_needs_a_session(browser_client):
    response = browser_client.get("/admin/jobs/x/progress", follow_redirects=False)
    assert response.status_code == 401


def test_progress_of_an_unknown_job(admin_client):
    assert admin_client.get("/admin/jobs/nope/progress").status_code == 404


def ticket_task(app, settings, base_url: str, n: int = 12, **llm_options) -> None:
    from app.llm.synthetic import TICKET_LABELS, generate_examples
    from app.services import examples as example_service
    from app.services import tasks as task_service

    llm = {"base_url": base_url, "model": "verbcal-simulated-llm", "max_retries": 0}
    llm |= llm_options
    with transaction(app.state.session_factory) as session:
        task = task_service.create_task(
            session, {"name": "tickets", "labels": list(TICKET_LABELS), "llm": llm}
        )
        rows = [{"text": e.text, "label": e.label} for e in generate_examples(n, seed=3)]
        # One text the simulator answers with a cut-off JSON: the job records the raw answer.
        rows.append({"text": "printer on fire [sim-fault:malformed]", "label": "other"})
        example_service.import_examples(session, task, rows, settings)


def start_job(client, expected: int = 13) -> str:
    token = page_csrf(client, "/admin/tasks/tickets")
    response = client.post(
        "/admin/tasks/tickets/elicitations", data={"csrf_token": token}, follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/tasks/tickets#elicitation"
    page = client.get("/admin/tasks/tickets").text
    assert f"Elicitation job started: {expected} examples to ask about." in page
    assert '<script src="/admin/static/progress.js" defer></script>' in page
    return re.search(r'data-progress-url="/admin/jobs/(\w+)/progress"', page)[1]


def test_elicitation_job_progress_and_errors(admin_client, app, settings):
    from app.jobs.worker import Worker
    from app.llm.simulator import running_simulator

    with running_simulator() as base_url:
        ticket_task(app, settings, base_url)
        job_id = start_job(admin_client)
        progress = admin_client.get(f"/admin/jobs/{job_id}/progress").json()
        assert progress | {"errors": []} == {
            "id": job_id,
            "status": "queued",
            "total": 13,
            "done": 0,
            "failed": 0,
            "succeeded": 0,
            "percent": 0.0,
            "finished": False,
            "cancel_requested": False,
            "errors": [],
        }
        # A second start while one job is queued is refused with a message, not an error page.
        token = page_csrf(admin_client, "/admin/tasks/tickets")
        admin_client.post(
            "/admin/tasks/tickets/elicitations",
            data={"csrf_token": token},
            follow_redirects=False,
        )
        assert (
            "already has a queued elicitation job" in admin_client.get("/admin/tasks/tickets").text
        )
        Worker(app.state.session_factory, settings).run_until_idle()
    progress = admin_client.get(f"/admin/jobs/{job_id}/progress").json()
    assert progress["status"] == "succeeded"
    assert (progress["done"], progress["failed"], progress["total"]) == (13, 1, 13)
    assert progress["finished"] is True
    assert progress["errors"][0]["raw_excerpt"]
    page = admin_client.get("/admin/tasks/tickets").text
    assert "First errors" in page
    assert 'class="excerpt"' in page
    assert "progress.js" not in page  # nothing left to poll
    assert "12 elicited" in page


def test_cancel_a_queued_job(admin_client, app, settings):
    ticket_task(app, settings, "http://llm.invalid/v1")
    job_id = start_job(admin_client)
    token = page_csrf(admin_client, "/admin/tasks/tickets")
    forged = admin_client.post(f"/admin/jobs/{job_id}/cancel", data={}, follow_redirects=False)
    assert forged.status_code == 403
    response = admin_client.post(
        f"/admin/jobs/{job_id}/cancel", data={"csrf_token": token}, follow_redirects=False
    )
    assert response.status_code == 303
    assert "Job cancelled." in admin_client.get("/admin/tasks/tickets").text
    assert admin_client.get(f"/admin/jobs/{job_id}/progress").json()["status"] == "cancelled"
    again = admin_client.post(
        f"/admin/jobs/{job_id}/cancel", data={"csrf_token": token}, follow_redirects=False
    )
    assert again.status_code == 303
    assert "has already cancelled" in admin_client.get("/admin/tasks/tickets").text


def test_llm_check_button_shows_the_probes_and_a_recommendation(admin_client, app, settings):
    from app.llm.simulator import SimulatorSettings, running_simulator

    with running_simulator(SimulatorSettings(reject_json_schema=True)) as base_url:
        ticket_task(app, settings, base_url)
        page = admin_client.get("/admin/tasks/tickets").text
        assert 'action="/admin/tasks/tickets/llm/check"' in page
        forged = admin_client.post("/admin/tasks/tickets/llm/check", data={})
        assert forged.status_code == 403
        token = csrf_of(page)
        checked = admin_client.post("/admin/tasks/tickets/llm/check", data={"csrf_token": token})
    assert checked.status_code == 200
    html = checked.text
    for probe in ("json_schema", "json_object", "none", "seed", "n"):
        assert f'data-probe="{probe}"' in html
    assert "no (HTTP 500)" in html
    assert "Recommendation:</strong> set structured_output=&#39;json_object&#39;" in html


def test_latest_answers_show_reasoning_and_agreement(admin_client, app, settings):
    from app.jobs.worker import Worker
    from app.llm.simulator import SimulatorSettings, running_simulator

    with running_simulator(SimulatorSettings(style="reasoning_answer")) as base_url:
        ticket_task(app, settings, base_url, n=3, structured_output="none")
        start_job(admin_client, expected=4)
        Worker(app.state.session_factory, settings).run_until_idle()
    page = admin_client.get("/admin/tasks/tickets").text
    assert "Latest answers" in page
    assert page.count('<details class="reasoning">') == 3
    assert "The text reads most like" in page
    assert page.count('<span class="good">agrees</span>') == 3
    assert "ignored keys" in page
    assert "raw answer" in page  # the malformed one is shown as it came
