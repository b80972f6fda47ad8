"""The dashboard task list, task pages and the examples upload."""

from __future__ import annotations

import json
import re

import pytest

from app.api.limits import body_limit
from tests.app.dashboard.conftest import TASK_PAGES, example_count, fit, page_csrf
from tests.app.factories import LABELS


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


@pytest.mark.parametrize(
    ("setting", "content", "message"),
    [
        ("max_upload_rows", "text,label\none,a\ntwo,b\nthree,c\n", "too many rows: more than 2"),
        (
            "max_text_length",
            f"text,label\nok,a\n{'x' * 3},b\n",
            "row 1: cell &#39;text&#39; longer than 2 characters",
        ),
    ],
)
def test_upload_has_the_apis_row_and_cell_limits(
    admin_client, task, app, settings, setting, content, message
):
    setattr(settings, setting, 2)
    before = example_count(app)
    response = upload(admin_client, content)
    assert response.status_code == 422
    assert message in response.text
    assert example_count(app) == before


def test_dashboard_upload_is_in_the_upload_size_family(settings):
    settings.max_upload_bytes, settings.max_body_bytes = 1000, 10
    assert body_limit(settings, "POST", "/admin/tasks/t/examples") == 1000
    assert body_limit(settings, "POST", "/tasks/t/examples") == 1000
    assert body_limit(settings, "POST", "/admin/tasks/t/fit") == 10


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
