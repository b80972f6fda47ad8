"""Conformal sets stored with a fit and served by /calibrate; the report's extra sections."""

import json

import numpy as np
import pytest

from calibrators import ConformalSets, inverse_softmax, softmax
from calibrators.splits import holdout_split
from tests.app.factories import LABELS, overconfident_items

N_ITEMS = 600


@pytest.fixture
def task(client):
    assert client.post("/tasks", json={"name": "t", "labels": LABELS}).status_code == 201
    r = client.post("/tasks/t/predictions", json={"items": overconfident_items(N_ITEMS)})
    assert r.status_code == 200, r.text
    return "t"


def strict_json(text: str):
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in JSON"))


def held_out_calibrated(fit):
    """The fit's held-out rows (examples are stored in import order), calibrated by hand."""
    items = overconfident_items(N_ITEMS)
    _, rows = holdout_split(N_ITEMS, fit["data"]["validation"]["holdout"], 0)
    P = np.array([[items[i]["probabilities"][k] for k in LABELS] for i in rows])
    y = np.array([LABELS.index(items[i]["label"]) for i in rows])
    return softmax(inverse_softmax(P, fit["eps"]) / fit["temperature"]), y


def test_fit_stores_conformal_sets_fitted_on_held_out_calibrated_probabilities(client, task):
    # Without refit the served temperature is the one that calibrated the held-out rows.
    r = client.post("/tasks/t/fit", json={"eps": 1e-3, "refit": False})
    assert r.status_code == 201, r.text
    fit = r.json()
    stored = fit["data"]["conformal"]
    assert stored["params"]["score"] == "lac"
    assert stored["params"]["class_conditional"] is False
    assert stored["fitted"]["coverages"] == [0.8, 0.9, 0.95]
    assert stored["fitted"]["n_samples"] == fit["data"]["n_eval"] == 180
    Q, y = held_out_calibrated(fit)
    expected = ConformalSets().fit(Q, y).to_dict()["fitted"]
    assert stored["fitted"]["ranks"] == expected["ranks"] == [[145], [163], [172]]
    np.testing.assert_allclose(stored["fitted"]["thresholds"], expected["thresholds"], rtol=1e-9)


def test_calibrate_returns_the_conformal_set_at_a_stored_coverage(client, app_client, task):
    fit = client.post("/tasks/t/fit", json={"eps": 1e-3}).json()
    thresholds = {
        c: t[0]
        for c, t in zip(
            fit["data"]["conformal"]["fitted"]["coverages"],
            fit["data"]["conformal"]["fitted"]["thresholds"],
            strict=True,
        )
    }
    for p in ({"a": 0.6, "b": 0.3, "c": 0.1}, {"a": 0.34, "b": 0.33, "c": 0.33}):
        for coverage in (0.8, 0.9, 0.95):
            r = app_client.post(
                "/calibrate", json={"task": "t", "probabilities": p, "coverage": coverage}
            )
            assert r.status_code == 200, r.text
            body = r.json()
            # LAC: every label whose calibrated probability is at least 1 - tau.
            expected = [k for k in LABELS if 1 - body["probabilities"][k] <= thresholds[coverage]]
            assert body["prediction_set"] == {
                "labels": expected,
                "coverage": coverage,
                "method": "lac",
                "class_conditional": False,
            }
    plain = app_client.post("/calibrate", json={"task": "t", "probabilities": p}).json()
    assert plain["prediction_set"] is None


def test_coverage_not_stored_is_a_422_naming_the_field(client, app_client, task):
    p = {"a": 0.6, "b": 0.3, "c": 0.1}
    none_yet = app_client.post(
        "/calibrate", json={"task": "t", "probabilities": p, "coverage": 0.9}
    )
    assert none_yet.status_code == 422
    assert none_yet.json()["error"]["details"][0]["field"] == "coverage"
    client.post("/tasks/t/fit", json={})
    r = app_client.post("/calibrate", json={"task": "t", "probabilities": p, "coverage": 0.85})
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["details"] == [{"field": "coverage", "message": "must be one of [0.8, 0.9, 0.95]"}]
    for bad in (1.0, 0, "0.9", True):
        r = app_client.post("/calibrate", json={"task": "t", "probabilities": p, "coverage": bad})
        assert r.status_code == 422, bad
        assert "coverage" in json.dumps(r.json()["error"]["details"])
    # Nothing was stored by the rejected requests.
    monitoring = client.get("/tasks/t/monitoring").json()
    assert monitoring["requests_total"] == 0


def test_batch_gives_per_item_sets_and_errors(client, app_client, task):
    client.post(
        "/tasks/t/fit",
        json={"conformal": {"coverages": [0.9], "score": "aps", "class_conditional": True}},
    )
    p = {"a": 0.6, "b": 0.3, "c": 0.1}
    r = app_client.post(
        "/calibrate/batch",
        json={
            "task": "t",
            "items": [
                {"probabilities": p, "coverage": 0.9},
                {"probabilities": p, "coverage": 0.8},
                {"probabilities": p},
            ],
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["succeeded"], body["failed"]) == (2, 1)
    first, second, third = body["results"]
    assert first["result"]["prediction_set"]["method"] == "aps"
    assert first["result"]["prediction_set"]["class_conditional"] is True
    assert first["result"]["prediction_set"]["labels"][0] == "a"
    assert second["error"]["code"] == "validation_error"
    assert second["error"]["details"] == [{"field": "coverage", "message": "must be one of [0.9]"}]
    assert third["result"]["prediction_set"] is None


@pytest.mark.parametrize(
    "conformal",
    [
        {"coverages": [1.2]},
        {"coverages": []},
        {"coverages": [0.9, 0.9]},
        {"score": "raps"},
        {"class_conditional": "yes"},
        {"unknown": 1},
    ],
)
def test_bad_conformal_spec_is_a_422(client, task, conformal):
    r = client.post("/tasks/t/fit", json={"conformal": conformal})
    assert r.status_code == 422
    assert "conformal" in json.dumps(r.json()["error"]["details"])


def test_fit_without_conformal_serves_no_sets(client, app_client, task):
    fit = client.post("/tasks/t/fit", json={"conformal": None}).json()
    assert fit["data"]["conformal"] is None
    report = client.get("/tasks/t/report", params={"n_boot": 0}).json()
    assert report["conformal"] is None
    r = app_client.post(
        "/calibrate",
        json={"task": "t", "probabilities": {"a": 1, "b": 0, "c": 0}, "coverage": 0.9},
    )
    assert r.status_code == 422


def test_report_has_smooth_ece_decompositions_aurc_and_conformal_coverage(client, task):
    client.post("/tasks/t/fit", json={"eps": 1e-3})
    r = client.get("/tasks/t/report", params={"n_boot": 20})
    assert r.status_code == 200, r.text
    report = strict_json(r.text)
    for side in ("raw", "calibrated"):
        smooth = report["smooth_ece"][side]
        assert 0 <= smooth["smooth_ece"] <= 1
        assert len(smooth["t"]) == len(smooth["accuracy"]) == len(smooth["lower"]) == 200
        binned = report["decompositions"]["top_label"][side]["brier"]
        assert (binned["grouping"], binned["n_bins"]) == ("top_label", 15)
        # The factory's answers are continuous: every held-out row is its own group.
        distinct = report["decompositions"]["distinct"][side]["log"]
        assert (distinct["grouping"], distinct["n_groups"]) == ("distinct", 180)
        assert 0 <= report["aurc"][side]["aurc"] <= 1
    # The verbalized answers are overconfident by T0 = 2.5: calibration shrinks the smooth ECE.
    assert (
        report["smooth_ece"]["calibrated"]["smooth_ece"] < report["smooth_ece"]["raw"]["smooth_ece"]
    )
    conformal = report["conformal"]
    assert conformal["n"] == report["n"] == 180
    assert [c["coverage"] for c in conformal["coverages"]] == [0.8, 0.9, 0.95]
    for entry in conformal["coverages"]:
        assert entry["empirical_coverage"] >= entry["coverage"] - 0.1
        assert 1 <= entry["mean_set_size"] <= 3
        assert [c["label"] for c in entry["per_class"]] == LABELS
        assert sum(c["n"] for c in entry["per_class"]) == 180
    assert conformal["fitted"]["coverages"] == [0.8, 0.9, 0.95]
    assert "conformal" in report["conventions"]["extras"]


def test_report_without_calibration_has_raw_extras_only(client, task):
    r = client.get("/tasks/t/report", params={"n_boot": 0})
    assert r.status_code == 200, r.text
    report = strict_json(r.text)
    assert report["smooth_ece"]["calibrated"] is None
    assert report["smooth_ece"]["raw"]["n"] == N_ITEMS
    assert report["aurc"]["raw"]["n"] == N_ITEMS
    assert report["conformal"] is None


def test_k_fold_fit_stores_sets_from_out_of_fold_probabilities(client, task):
    fit = client.post("/tasks/t/fit", json={"validation": {"folds": 5}}).json()
    assert fit["data"]["conformal"]["fitted"]["n_samples"] == N_ITEMS
    report = client.get("/tasks/t/report", params={"n_boot": 0}).json()
    assert report["conformal"]["n"] == N_ITEMS
