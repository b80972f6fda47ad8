"""Dashboard elicitation jobs: start, progress, cancel, LLM check, latest answers."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from app.db import transaction
from app.models import Job
from tests.app.dashboard.conftest import csrf_of, page_csrf


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
    assert '<p class="good" data-field="recommendation">' in html


def test_llm_check_of_a_model_whose_answers_do_not_parse_is_not_shown_as_good(
    admin_client, app, settings
):
    from app.llm.simulator import SimulatorSettings, running_simulator

    with running_simulator(SimulatorSettings(rate_prose=1.0)) as base_url:
        ticket_task(app, settings, base_url)
        token = page_csrf(admin_client, "/admin/tasks/tickets")
        checked = admin_client.post("/admin/tasks/tickets/llm/check", data={"csrf_token": token})
    assert checked.status_code == 200
    assert '<p class="bad" data-field="recommendation">' in checked.text
    assert "the model&#39;s answers, not the server, are the problem" in checked.text


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
