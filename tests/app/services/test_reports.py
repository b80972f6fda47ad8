"""Reports of a stored calibration are computed once per (calibration, options, data)."""

from __future__ import annotations

import pytest

from app.services import reports
from tests.app.factories import LABELS, overconfident_items


@pytest.fixture
def counted(monkeypatch):
    """Counts of k-fold refits and of report computations, by wrapping the real functions."""
    reports.REPORT_CACHE.clear()
    counts = {"evaluate": 0, "calibration_report": 0}

    def counting(name):
        real = getattr(reports, name)

        def wrapper(*args, **kwargs):
            counts[name] += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(reports, name, wrapper)

    counting("evaluate")
    counting("calibration_report")
    yield counts
    reports.REPORT_CACHE.clear()


@pytest.fixture
def k_fold_task(client):
    assert client.post("/tasks", json={"name": "t", "labels": LABELS}).status_code == 201
    r = client.post("/tasks/t/predictions", json={"items": overconfident_items(300)})
    assert r.status_code == 200, r.text
    r = client.post("/tasks/t/fit", json={"validation": {"folds": 3, "seed": 0}})
    assert r.status_code == 201, r.text
    return r.json()


def test_a_second_report_does_not_refit_and_gives_the_same_json(client, k_fold_task, counted):
    params = {"n_boot": 20}
    first = client.get("/tasks/t/report", params=params)
    assert first.status_code == 200, first.text
    assert counted == {"evaluate": 1, "calibration_report": 1}
    second = client.get("/tasks/t/report", params=params)
    assert counted == {"evaluate": 1, "calibration_report": 1}
    assert second.text == first.text
    assert second.json()["data"]["estimate"] == "out_of_fold"


def test_other_options_or_changed_data_compute_a_new_report(client, k_fold_task, counted):
    client.get("/tasks/t/report", params={"n_boot": 0})
    client.get("/tasks/t/report", params={"n_boot": 0, "n_bins": 10})
    assert counted == {"evaluate": 2, "calibration_report": 2}
    before = client.get("/tasks/t/report", params={"n_boot": 0}).json()
    assert counted["evaluate"] == 2
    # A relabelled held-out example changes the data the report is computed on.
    item = overconfident_items(300)[0]
    wrong = next(label for label in LABELS if label != item["label"])
    r = client.post("/tasks/t/predictions", json={"items": [item | {"label": wrong}]})
    assert r.status_code == 200, r.text
    after = client.get("/tasks/t/report", params={"n_boot": 0}).json()
    assert counted["evaluate"] == 3
    assert after["class_counts"] != before["class_counts"]


def test_the_cache_is_bounded(client, k_fold_task, counted):
    for n_bins in range(2, 2 + reports.REPORT_CACHE_SIZE + 3):
        client.get("/tasks/t/report", params={"n_boot": 0, "n_bins": n_bins})
    assert len(reports.REPORT_CACHE) == reports.REPORT_CACHE_SIZE
