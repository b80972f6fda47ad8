"""The dashboard in a real headless Chromium, against a live server, worker and simulated LLM.

Uses the system Chromium (never a downloaded browser). Without one these tests skip, except when
VERBCAL_REQUIRE_BROWSER=1 (set by .ci/run), where they fail. Screenshots of the main pages, at
laptop (1366 px) and phone (390 px) widths, go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import csv
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn

from app.config import Settings
from app.db import transaction
from app.llm.simulator import SimulatorSettings, running_simulator
from app.llm.synthetic import TICKET_LABELS, generate_examples
from app.main import create_app
from app.migrate import upgrade_to_head
from app.services import keys
from app.services import tasks as task_service

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = os.environ.get("VERBCAL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "screenshots"
LAPTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
EXAMPLES = 80


def _browser_unavailable(reason: str) -> None:
    if os.environ.get("VERBCAL_REQUIRE_BROWSER") == "1":
        pytest.fail(f"a browser is required here but unavailable: {reason}")
    pytest.skip(f"no browser: {reason}")


@pytest.fixture(scope="module")
def browser():
    executable = shutil.which(CHROMIUM) or (CHROMIUM if os.access(CHROMIUM, os.X_OK) else None)
    if executable is None:
        _browser_unavailable(f"{CHROMIUM} not found")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        _browser_unavailable(f"playwright is not installed ({exc})")
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(
                executable_path=executable, headless=True, args=CHROMIUM_ARGS
            )
        except Exception as exc:  # any launch failure means "no usable browser"
            _browser_unavailable(f"Chromium did not start: {exc}")
        yield browser
        browser.close()


@dataclass
class LiveServer:
    url: str
    admin_key: str
    app_key: str


def _serve(app) -> Iterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=2)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the verbcal server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


@pytest.fixture(scope="module")
def live_server(tmp_path_factory) -> Iterator[LiveServer]:
    """verbcal (API + dashboard + embedded worker) on a migrated SQLite file, and the simulator."""
    database_url = f"sqlite:///{tmp_path_factory.mktemp('browser') / 'verbcal.db'}"
    upgrade_to_head(database_url)
    settings = Settings(
        database_url=database_url,
        embedded_worker=True,
        worker_poll_s=0.2,
        job_batch_size=4,
        min_fit_examples=20,
        log_json=False,
        log_level="WARNING",
    )
    # A small delay per answer so that the progress bar has something to show.
    simulator = SimulatorSettings(t0=2.0, rounding=0.0, delay_s=0.15)
    with running_simulator(simulator) as llm_url:
        app = create_app(settings, start_worker=True)
        with transaction(app.state.session_factory) as session:
            _, admin_key = keys.create_key(session, "admin", name="browser-admin")
            _, app_key = keys.create_key(session, "app", name="browser-app")
            llm = {
                "base_url": llm_url,
                "model": "verbcal-simulated-llm",
                "concurrency": 4,
                "max_retries": 0,
            }
            task_service.create_task(
                session,
                {
                    "name": "tickets",
                    "labels": list(TICKET_LABELS),
                    "description": "Support tickets, answered by the simulated LLM.",
                    "llm": llm,
                },
            )
        for url in _serve(app):
            yield LiveServer(url, admin_key, app_key)


@pytest.fixture(scope="module")
def examples_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("upload") / "tickets.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "text", "label"])
        for example in generate_examples(EXAMPLES, seed=11):
            writer.writerow([example.id, example.text, example.label])
    return path


@pytest.fixture(scope="module")
def bad_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bad") / "bad.csv"
    path.write_text("id,text,label\nb1,fine text,billing\nb2,wrong label,shipping\nb3,,other\n")
    return path


def shoot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_full_workflow_in_the_browser(browser, live_server, examples_csv, bad_csv):
    context = browser.new_context(viewport=LAPTOP)
    page = context.new_page()
    page.set_default_timeout(20_000)
    base = live_server.url

    # Every page leads to the login page without a session; an app key cannot log in.
    page.goto(f"{base}/admin/tasks/tickets")
    assert "/admin/login" in page.url
    shoot(page, "01-login")
    page.fill("#api_key", live_server.app_key)
    page.click("button:has-text('Log in')")
    assert "needs an admin key" in page.content()
    page.fill("#api_key", live_server.admin_key)
    page.click("button:has-text('Log in')")
    page.wait_for_url(f"{base}/admin/tasks/tickets")
    cookie = next(c for c in context.cookies() if c["name"] == "verbcal_admin")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"

    # Upload: a bad file shows its rows' errors and imports nothing; a good one imports.
    page.set_input_files("#file", str(bad_csv))
    page.click("button:has-text('Upload examples')")
    assert page.locator("tr.row-error").count() == 2
    assert "0 examples, 0 labelled." in page.content()
    shoot(page, "02-upload-errors")
    page.set_input_files("#file", str(examples_csv))
    page.click("button:has-text('Upload examples')")
    page.wait_for_selector(".flash-success")
    assert f"{EXAMPLES} new" in page.inner_text(".flash-success")
    assert f"{EXAMPLES} examples, {EXAMPLES} labelled." in page.content()

    # Elicitation: the progress bar reaches the end without a page reload.
    page.click("button:has-text('Start elicitation')")
    page.wait_for_selector("#job progress")
    page.evaluate("window.__sameDocument = true")
    page.wait_for_function(
        "() => { const p = document.querySelector('#job progress'); "
        "return p && p.value > 0 && p.value < p.max; }",
        timeout=30_000,
    )
    shoot(page, "03-elicitation-running")
    page.wait_for_selector("#job[data-finished='true']", timeout=60_000)
    assert page.evaluate("window.__sameDocument") is True  # updated in place, not reloaded
    progress = page.locator("#job progress")
    assert progress.get_attribute("value") == progress.get_attribute("max") == str(EXAMPLES)
    assert page.inner_text("[data-field='status']") == "succeeded"
    assert page.inner_text("[data-field='done']") == str(EXAMPLES)
    assert page.inner_text("[data-field='percent']") == "100"
    assert page.locator("form[action$='/cancel']").is_hidden()
    page.reload()
    assert f"{EXAMPLES} elicited" in page.content()
    shoot(page, "04-task-data")

    # Fit twice (v1, then v2 with another seed) and look at the result.
    page.click("nav.tabs >> text=Fit")
    page.click("button:has-text('Fit')")
    page.wait_for_selector("svg.chart.reliability")
    assert "Fitted version 1 and activated" in page.inner_text(".flash-success")
    temperature = float(page.inner_text("#temperature"))
    assert 0.5 < temperature < 8.0, temperature
    assert page.locator("svg.reliability rect.bar").count() > 4
    assert page.locator("svg.reliability .series.calibrated rect.bar").count() > 1
    assert page.locator("svg.reliability line.diagonal").count() == 1
    assert page.locator("#comparison th", has_text="isotonic").count() == 1
    shoot(page, "05-fit-result")
    page.fill("#seed", "7")
    page.click("button:has-text('Fit')")
    page.wait_for_selector("text=Fitted version 2 and activated")

    # Operating points for another class.
    page.click("nav.tabs >> text=Operating points")
    page.select_option("#label", "technical")
    page.click("button:has-text('Show')")
    page.wait_for_selector("svg.precision-recall polyline")
    assert "technical" in page.inner_text("h3")
    shoot(page, "06-operating-points")

    # Versions: roll back to v1.
    page.click("nav.tabs >> text=Versions")
    assert "active" in page.inner_text("#version-2")
    page.click("#version-1 button:has-text('Activate')")
    page.wait_for_selector("text=Version 1 is now active")
    assert page.locator("#version-1 .badge-good").count() == 1
    assert page.locator("#version-2 button:has-text('Activate')").count() == 1
    shoot(page, "07-versions")

    page.click("nav.tabs >> text=Monitoring")
    assert "no feedback yet" in page.content()
    shoot(page, "08-monitoring")

    page.click("text=Tasks")
    assert page.locator("table.tasks tbody tr").count() == 1
    assert "v1 · T =" in page.inner_text("table.tasks")
    shoot(page, "09-tasks")

    # Phone width: the same pages stay readable (tables scroll inside their box).
    page.set_viewport_size(PHONE)
    for name, path in [
        ("10-phone-tasks", "/admin"),
        ("11-phone-task-data", "/admin/tasks/tickets"),
        ("12-phone-fit", "/admin/tasks/tickets/fit"),
        ("13-phone-operating-points", "/admin/tasks/tickets/operating-points"),
        ("14-phone-versions", "/admin/tasks/tickets/versions"),
    ]:
        page.goto(base + path)
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 1, f"{path} scrolls sideways on a phone ({overflow}px)"
        shoot(page, name)

    # Logging out ends the session.
    page.click("button:has-text('Log out')")
    page.wait_for_url(f"{base}/admin/login")
    page.goto(f"{base}/admin")
    assert "/admin/login" in page.url
    context.close()
