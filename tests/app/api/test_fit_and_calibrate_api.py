"""Fitting on imported distributions, versions, reports, /calibrate, feedback, monitoring."""

import json

import numpy as np
import pytest

from calibrators.resoftmax import ResoftmaxScaling
from calibrators.splits import holdout_split
from calibrators.temperature import TemperatureScaling
from tests.app.factories import LABELS, T0, overconfident_items

INVALID = "validation_error"


@pytest.fixture
def task(client):
    assert client.post("/tasks", json={"name": "t", "labels": LABELS}).status_code == 201
    r = client.post("/tasks/t/predictions", json={"items": overconfident_items(1500)})
    assert r.status_code == 200, r.text
    return "t"


def expected_calibrated(p, temperature, eps):
    p = np.asarray(p, dtype=np.float64)
    p = p / p.sum()
    z = np.log((p + eps) / (1 + len(p) * eps))
    q = np.exp((z - z.max()) / temperature)
    return q / q.sum()


def test_fit_recovers_temperature_and_improves_held_out_ece(client, task):
    r = client.post("/tasks/t/fit", json={"eps": 0.0, "validation": {"holdout": 0.3, "seed": 1}})
    assert r.status_code == 201, r.text
    fit = r.json()
    assert fit["version"] == 1
    assert fit["is_active"] is True
    assert fit["temperature"] == pytest.approx(T0, rel=0.12)
    assert fit["data"]["n_eval"] == 450
    assert fit["data"]["n_fit"] == 1050
    assert fit["data"]["source"] == "imported"
    assert fit["metrics"]["after"]["ece"] < fit["metrics"]["before"]["ece"]
    assert fit["metrics"]["after"]["nll"] < fit["metrics"]["before"]["nll"]
    assert set(fit["metrics"]["comparison"]) == {"vector", "isotonic", "resoftmax"}
    assert fit["metrics"]["comparison"]["resoftmax"]["baseline"] is True
    assert fit["metrics"]["estimate"] == "held_out"
    assert fit["conventions"]["n_bins"] == 15
    summary = client.get("/tasks/t").json()["active_calibration"]
    assert summary["version"] == 1
    assert summary["temperature"] == fit["temperature"]


def test_calibrate_with_probabilities_applies_active_temperature(client, app_client, task):
    # Without a calibration: the raw distribution, calibration null.
    p = {"a": 0.9, "b": 0.05, "c": 0.05}
    raw = app_client.post("/calibrate", json={"task": "t", "probabilities": p})
    assert raw.status_code == 200, raw.text
    body = raw.json()
    assert body["calibration"] is None
    assert body["probabilities"] == pytest.approx(p)
    assert body["decision"] == {
        "label": "a",
        "abstained": False,
        "threshold": None,
        "target_precision": None,
        "reason": None,
    }
    fit = client.post("/tasks/t/fit", json={"eps": 1e-3}).json()
    r = app_client.post("/calibrate", json={"task": "t", "probabilities": p}).json()
    expected = expected_calibrated([0.9, 0.05, 0.05], fit["temperature"], fit["eps"])
    assert [r["probabilities"][k] for k in LABELS] == pytest.approx(expected, rel=1e-9)
    assert r["calibration"] == {"id": fit["id"], "version": 1, "temperature": fit["temperature"]}
    assert r["label"] == "a"
    assert r["confidence"] == pytest.approx(expected[0], rel=1e-9)
    assert r["raw_probabilities"] == pytest.approx(p)
    assert r["llm"] is None


def test_target_precision_decides_or_abstains(client, app_client, task):
    client.post("/tasks/t/fit", json={})
    sure = app_client.post(
        "/calibrate",
        json={"task": "t", "probabilities": {"a": 1, "b": 0, "c": 0}, "target_precision": 0.6},
    ).json()
    assert sure["decision"]["abstained"] is False
    assert sure["decision"]["label"] == "a"
    assert 0 < sure["decision"]["threshold"] <= sure["confidence"]
    unsure = app_client.post(
        "/calibrate",
        json={
            "task": "t",
            "probabilities": {"a": 0.4, "b": 0.35, "c": 0.25},
            "target_precision": 0.95,
        },
    ).json()
    assert unsure["decision"]["abstained"] is True
    assert unsure["decision"]["label"] is None


def test_versions_and_rollback(client, task):
    first = client.post("/tasks/t/fit", json={"objective": "nll"}).json()
    second = client.post("/tasks/t/fit", json={"objective": "brier"}).json()
    versions = client.get("/tasks/t/calibrations").json()
    assert [v["version"] for v in versions] == [2, 1]
    assert [v["is_active"] for v in versions] == [True, False]
    r = client.post(f"/tasks/t/calibrations/{first['id']}/activate")
    assert r.status_code == 200
    assert r.json()["is_active"] is True
    versions = client.get("/tasks/t/calibrations").json()
    assert [v["is_active"] for v in versions] == [False, True]
    assert client.get(f"/tasks/t/calibrations/{second['id']}").json()["objective"] == "brier"
    assert client.post("/tasks/t/calibrations/999999/activate").status_code == 404


def test_fit_not_activated_keeps_previous(client, task):
    first = client.post("/tasks/t/fit", json={}).json()
    client.post("/tasks/t/fit", json={"activate": False})
    assert client.get("/tasks/t").json()["active_calibration"]["id"] == first["id"]


def test_k_fold_fit_and_report(client, task):
    r = client.post("/tasks/t/fit", json={"validation": {"folds": 5, "seed": 0}})
    assert r.status_code == 201, r.text
    assert r.json()["data"]["n_eval"] == 1500
    report = client.get("/tasks/t/report").json()
    assert report["data"]["n_eval"] == 1500
    assert report["calibrated"]["metrics"]["ece"] == pytest.approx(
        r.json()["metrics"]["after"]["ece"], rel=1e-9
    )


def test_report_reproduces_fit_metrics(client, task):
    fit = client.post("/tasks/t/fit", json={}).json()
    r = client.get("/tasks/t/report")
    assert r.status_code == 200
    report = json.loads(r.text, parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert report["calibration"]["id"] == fit["id"]
    assert report["raw"]["metrics"]["ece"] == pytest.approx(fit["metrics"]["before"]["ece"])
    assert report["calibrated"]["metrics"]["ece"] == pytest.approx(fit["metrics"]["after"]["ece"])
    assert set(report["operating_points"]) == set(LABELS)
    quantile = client.get("/tasks/t/report", params={"binning": "quantile", "n_bins": 10}).json()
    assert quantile["conventions"]["binning"] == "quantile"


def test_fit_needs_enough_data(client):
    client.post("/tasks", json={"name": "small", "labels": LABELS})
    client.post("/tasks/small/predictions", json={"items": overconfident_items(5)})
    r = client.post("/tasks/small/fit", json={})
    assert r.status_code == 409
    error = r.json()["error"]
    assert error["code"] == "task_not_ready"
    assert error["details"]["available"] == 5
    assert error["details"]["needed"] == 20
    assert "at least 20" in error["message"]
    assert client.get("/tasks/small/calibrations").json() == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"method": "magic"}, "method"),
        ({"eps": -1.0}, "eps"),
        ({"validation": {"holdout": 1.5}}, "validation.holdout"),
        ({"objective": "hinge"}, "objective"),
    ],
)
def test_fit_request_validation(client, task, body, field):
    r = client.post("/tasks/t/fit", json=body)
    assert r.status_code == 422
    assert any(d["field"] == field for d in r.json()["error"]["details"]), r.json()


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"task": "t", "probabilities": {"a": 1, "b": 0}}, 422, INVALID),
        ({"task": "t", "probabilities": {"a": 0, "b": 0, "c": 0}}, 422, INVALID),
        ({"task": "t", "probabilities": {"a": 1, "b": 0, "c": -1}}, 422, INVALID),
        ({"task": "t", "probabilities": {"a": 1, "b": 0, "c": 0, "d": 0}}, 422, INVALID),
        ({"task": "t"}, 422, INVALID),
        (
            {"task": "t", "text": "x", "probabilities": {"a": 1, "b": 0, "c": 0}},
            422,
            "validation_error",
        ),
        ({"task": "t", "text": "no llm configured"}, 409, "task_not_ready"),
        ({"task": "t", "text": ""}, 422, INVALID),
        ({"task": "missing", "probabilities": {"a": 1, "b": 0, "c": 0}}, 404, "not_found"),
        (
            {"task": "t", "probabilities": {"a": 1, "b": 0, "c": 0}, "target_precision": 2},
            422,
            "validation_error",
        ),
    ],
)
def test_calibrate_validation_writes_nothing(client, app_client, task, body, status, code):
    r = app_client.post("/calibrate", json=body)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    assert client.get("/tasks/t/monitoring").json()["requests_total"] == 0


def test_batch_per_item_errors(client, app_client, task, settings):
    client.post("/tasks/t/fit", json={})
    items = [
        {"probabilities": {"a": 0.2, "b": 0.7, "c": 0.1}},
        {"probabilities": {"a": 1, "b": 0}},
        {"text": "needs an llm"},
    ]
    r = app_client.post("/calibrate/batch", json={"task": "t", "items": items})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["succeeded"], body["failed"]) == (1, 2)
    assert body["results"][0]["result"]["label"] == "b"
    assert body["results"][1]["error"]["code"] == "validation_error"
    assert body["results"][2]["error"]["code"] == "task_not_ready"
    settings.max_batch_size = 2
    r = app_client.post("/calibrate/batch", json={"task": "t", "items": items})
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "items"


def test_feedback_and_monitoring(client, app_client, task):
    client.post("/tasks/t/fit", json={})
    items = overconfident_items(60, seed=7)
    ids = []
    for item in items:
        r = app_client.post(
            "/calibrate", json={"task": "t", "probabilities": item["probabilities"]}
        )
        ids.append(r.json()["id"])
    for request_id, item in zip(ids, items, strict=False):
        fb = app_client.post("/feedback", json={"id": request_id, "label": item["label"]})
        assert fb.status_code == 200, fb.text
    assert app_client.post("/feedback", json={"id": "nope", "label": "a"}).status_code == 404
    assert app_client.post("/feedback", json={"id": ids[0], "label": "zzz"}).status_code == 422
    m = app_client.get("/tasks/t/monitoring").json()
    assert m["labelled"] == 60
    assert m["requests_total"] == 60
    assert m["drift"] in (True, False)
    assert m["live"]["ece"] < m["live_raw"]["ece"]
    assert m["fit_time"]["version"] == 1
    assert app_client.get("/tasks/t/monitoring", params={"window": 10}).json()["labelled"] == 10


def test_active_calibration_survives_restart(settings, admin_key, task, client):
    from fastapi.testclient import TestClient

    from app.main import create_app

    fit = client.post("/tasks/t/fit", json={}).json()
    with TestClient(
        create_app(settings, start_worker=False), headers={"Authorization": f"Bearer {admin_key}"}
    ) as fresh:
        active = fresh.get("/tasks/t").json()["active_calibration"]
        assert active["id"] == fit["id"]
        assert active["temperature"] == fit["temperature"]


def test_database_allows_one_active_calibration_per_task(client, task, session_factory):
    import sqlalchemy.exc

    from app.models import Calibration

    client.post("/tasks/t/fit", json={})
    second = client.post("/tasks/t/fit", json={"activate": False}).json()
    session = session_factory()
    try:
        row = session.get(Calibration, second["id"])
        row.is_active = True
        with pytest.raises(sqlalchemy.exc.IntegrityError):
            session.flush()
    finally:
        session.rollback()
        session.close()


@pytest.mark.parametrize("bad_id", ["0", "99999999999999999999999", "abc"])
def test_out_of_range_calibration_ids_are_422(client, task, bad_id):
    for method, path in (
        ("get", f"/tasks/t/calibrations/{bad_id}"),
        ("post", f"/tasks/t/calibrations/{bad_id}/activate"),
        ("get", f"/tasks/t/report?calibration_id={bad_id}"),
    ):
        r = getattr(client, method)(path)
        assert r.status_code == 422, (path, r.text)
        assert r.json()["error"]["code"] == "validation_error"


def _imported_arrays(n=1500):
    items = overconfident_items(n)
    P = np.array([[item["probabilities"][k] for k in LABELS] for item in items])
    return P, np.array([LABELS.index(item["label"]) for item in items])


def test_refit_serves_the_calibrator_fitted_on_every_row(client, app_client, task):
    body = {"eps": 1e-3, "validation": {"holdout": 0.3, "seed": 1}}
    kept = client.post("/tasks/t/fit", json=body | {"refit": False}).json()
    refit = client.post("/tasks/t/fit", json=body).json()
    P, y = _imported_arrays()
    everything = TemperatureScaling(eps=1e-3, random_state=1).fit(P, y)
    fit_rows, _ = holdout_split(1500, 0.3, 1)
    part = TemperatureScaling(eps=1e-3, random_state=1).fit(P[fit_rows], y[fit_rows])
    assert refit["temperature"] == pytest.approx(everything.temperature_, rel=1e-12)
    assert kept["temperature"] == pytest.approx(part.temperature_, rel=1e-12)
    assert refit["temperature"] != kept["temperature"]
    assert (refit["data"]["refit"], refit["data"]["n_served_fit"]) == (True, 1500)
    assert (kept["data"]["refit"], kept["data"]["n_served_fit"]) == (False, 1050)
    assert "validation_calibrator" not in refit["data"]
    # /calibrate applies the refitted (active) calibrator.
    served = app_client.post(
        "/calibrate", json={"task": "t", "probabilities": {"a": 0.8, "b": 0.1, "c": 0.1}}
    ).json()
    expected = everything.transform([[0.8, 0.1, 0.1]])[0]
    assert [served["probabilities"][k] for k in LABELS] == pytest.approx(expected, rel=1e-9)


def test_refitting_leaves_the_held_out_metrics_unchanged(client, task):
    body = {"validation": {"holdout": 0.3, "seed": 2}}
    kept = client.post("/tasks/t/fit", json=body | {"refit": False}).json()
    refit = client.post("/tasks/t/fit", json=body).json()
    for key in ("estimate", "before", "after", "ci_before", "ci_after", "comparison"):
        assert refit["metrics"][key] == kept["metrics"][key], key
    assert refit["metrics"]["estimate"] == "held_out"
    reports = [
        client.get("/tasks/t/report", params={"calibration_id": fit["id"]}).json()
        for fit in (kept, refit)
    ]
    for report, fit in zip(reports, (kept, refit), strict=True):
        assert report["calibrated"]["metrics"] == pytest.approx(fit["metrics"]["after"], rel=1e-12)
        assert report["data"]["estimate"] == "held_out"
        assert report["data"]["refit"] is fit["data"]["refit"]
    assert reports[0]["operating_points"] == reports[1]["operating_points"]


def test_k_fold_fits_are_out_of_fold_estimates_and_always_refit(client, task):
    fit = client.post("/tasks/t/fit", json={"validation": {"folds": 3}, "refit": False}).json()
    assert fit["metrics"]["estimate"] == "out_of_fold"
    assert (fit["data"]["refit"], fit["data"]["n_served_fit"]) == (True, 1500)
    report = client.get("/tasks/t/report").json()
    assert report["data"]["estimate"] == "out_of_fold"


def test_resoftmax_baseline_can_be_fitted_and_served(client, app_client, task):
    r = client.post("/tasks/t/fit", json={"method": "resoftmax"})
    assert r.status_code == 201, r.text
    fit = r.json()
    assert fit["method"] == "resoftmax"
    assert fit["eps"] is None
    assert set(fit["metrics"]["comparison"]) == {"temperature", "vector", "isotonic"}
    P, y = _imported_arrays()
    everything = ResoftmaxScaling().fit(P, y)
    assert fit["temperature"] == pytest.approx(everything.temperature_, rel=1e-12)
    served = app_client.post(
        "/calibrate", json={"task": "t", "probabilities": {"a": 0.8, "b": 0.1, "c": 0.1}}
    ).json()
    expected = everything.transform([[0.8, 0.1, 0.1]])[0]
    assert [served["probabilities"][k] for k in LABELS] == pytest.approx(expected, rel=1e-9)
