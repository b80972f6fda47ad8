"""A task's target class prior: given or estimated from traffic, served by /calibrate."""

import json

import numpy as np
import pytest

from app.config import Settings
from app.llm import synthetic
from app.services.prior import EstimateCache
from calibrators import adjust_to_prior, log_loss
from tests.app.factories import LABELS, overconfident_items
from tests.calibrators.simulated import draw_tickets, stated

TICKETS = list(synthetic.TICKET_LABELS)
SHIFTED = np.array([0.1, 0.2, 0.3, 0.4])  # the generator's own mix is (0.35, 0.30, 0.20, 0.15)


@pytest.fixture
def settings(settings) -> Settings:
    """The API tests' settings with a wider prior window and a lower minimum."""
    return settings.model_copy(update={"prior_window": 5_000, "prior_min_requests": 50})


def probabilities(row, labels=TICKETS):
    return dict(zip(labels, [float(v) for v in row], strict=True))


@pytest.fixture
def task(client):
    assert client.post("/tasks", json={"name": "t", "labels": LABELS}).status_code == 201
    r = client.post("/tasks/t/predictions", json={"items": overconfident_items(300)})
    assert r.status_code == 200, r.text
    return "t"


@pytest.mark.parametrize(
    ("prior", "message"),
    [
        ({"a": 0.5, "b": 0.5}, "missing ['c']"),
        ({"a": 0.5, "b": 0.3, "c": 0.1, "d": 0.1}, "unknown ['d']"),
        ({"a": 0.5, "b": 0.3, "c": 0.3}, "sum to 1"),
        ({"a": 0.7, "b": 0.3, "c": 0.0}, "> 0"),
        ("guess", None),
        ({"a": "0.5", "b": 0.3, "c": 0.2}, None),
    ],
)
def test_bad_prior_is_a_422_naming_the_field(client, prior, message):
    r = client.post("/tasks", json={"name": "t", "labels": LABELS, "prior": prior})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["details"][0]["field"].startswith("prior")
    if message:
        assert message in error["message"]
    assert client.get("/tasks/t").status_code == 404


def test_prior_is_stored_normalized_and_can_change(client, task):
    assert client.get("/tasks/t").json()["prior"] is None
    r = client.patch("/tasks/t", json={"prior": {"c": 0.2, "a": 0.5, "b": 0.3}})
    assert r.status_code == 200, r.text
    assert r.json()["prior"] == {"a": 0.5, "b": 0.3, "c": 0.2}
    assert client.patch("/tasks/t", json={"prior": "estimate"}).json()["prior"] == "estimate"
    r = client.patch("/tasks/t", json={"prior": {"a": 1.0, "b": 0.5, "c": 0.5}})
    assert r.status_code == 422
    assert client.get("/tasks/t").json()["prior"] == "estimate"
    assert client.patch("/tasks/t", json={"prior": None}).json()["prior"] is None


def test_given_prior_corrects_calibrated_probabilities(client, app_client, task):
    p = {"a": 0.6, "b": 0.3, "c": 0.1}
    client.post("/tasks/t/fit", json={"eps": 1e-3})
    plain = app_client.post("/calibrate", json={"task": "t", "probabilities": p}).json()
    assert plain["prior_shift"] is None
    target = {"a": 0.2, "b": 0.2, "c": 0.6}
    client.patch("/tasks/t", json={"prior": target})
    r = app_client.post("/calibrate", json={"task": "t", "probabilities": p})
    assert r.status_code == 200, r.text
    body = r.json()
    # The training prior is the class frequencies of the 300 labelled rows.
    items = overconfident_items(300)
    counts = np.array([sum(i["label"] == k for i in items) for k in LABELS])
    training = counts / counts.sum()
    shift = body["prior_shift"]
    assert shift["mode"] == "given" and shift["applied"] is True
    assert shift["prior"] == pytest.approx(target, rel=1e-12)
    assert [shift["training_prior"][k] for k in LABELS] == pytest.approx(training, rel=1e-12)
    # q'_k ∝ (π'_k / π_k) q_k, by hand.
    q = np.array([plain["probabilities"][k] for k in LABELS])
    weighted = q * np.array([target[k] for k in LABELS]) / training
    expected = weighted / weighted.sum()
    assert [body["probabilities"][k] for k in LABELS] == pytest.approx(expected, rel=1e-12)
    assert body["label"] == LABELS[int(np.argmax(expected))]
    assert body["confidence"] == pytest.approx(expected.max(), rel=1e-12)


def test_prior_without_calibration_or_traffic_is_not_applied(client, app_client, task):
    client.patch("/tasks/t", json={"prior": "estimate"})
    p = {"a": 0.6, "b": 0.3, "c": 0.1}
    body = app_client.post("/calibrate", json={"task": "t", "probabilities": p}).json()
    assert body["prior_shift"]["applied"] is False
    assert "no active calibration" in body["prior_shift"]["reason"]
    assert body["probabilities"] == pytest.approx(p)
    client.post("/tasks/t/fit", json={})
    body = app_client.post("/calibrate", json={"task": "t", "probabilities": p}).json()
    shift = body["prior_shift"]
    assert (shift["applied"], shift["n"], shift["prior"]) == (False, 1, None)
    assert "at least 50" in shift["reason"]
    monitoring = client.get("/tasks/t/monitoring").json()["prior"]
    assert monitoring["setting"] == "estimate"
    assert monitoring["live_prior"] is None and monitoring["n"] == 2


def test_estimated_prior_from_shifted_simulator_traffic(client, app_client):
    # Labelled rows from the simulator's generative model with its own class mix; live traffic
    # drawn with another mix. The stated answers are posterior**2 at 4 decimals (no grid
    # rounding), so temperature scaling calibrates them and EM sees calibrated posteriors.
    rng = np.random.default_rng(2026)
    posterior, y, _ = draw_tickets(2000, rng)
    answers = stated(posterior, rounding=1e-4)
    items = [
        {"text": f"labelled {i}", "label": TICKETS[y[i]], "probabilities": probabilities(row)}
        for i, row in enumerate(answers)
    ]
    assert client.post("/tasks", json={"name": "tickets", "labels": TICKETS}).status_code == 201
    assert client.post("/tasks/tickets/predictions", json={"items": items}).status_code == 200
    assert client.post("/tasks/tickets/fit", json={"eps": 1e-4}).status_code == 201
    traffic_posterior, traffic_y, _ = draw_tickets(3000, rng, class_prior=SHIFTED)
    traffic = stated(traffic_posterior, rounding=1e-4)
    uncorrected = []
    for start in range(0, 3000, 1000):
        batch = [{"probabilities": probabilities(row)} for row in traffic[start : start + 1000]]
        r = app_client.post("/calibrate/batch", json={"task": "tickets", "items": batch})
        assert r.status_code == 200 and r.json()["failed"] == 0
        for item in r.json()["results"]:
            assert item["result"]["prior_shift"] is None
            uncorrected.append([item["result"]["probabilities"][k] for k in TICKETS])
    uncorrected = np.array(uncorrected)

    prior = client.get("/tasks/tickets/monitoring").json()["prior"]
    assert prior["setting"] is None and prior["n"] == 3000
    training = np.bincount(y, minlength=4) / 2000
    assert [prior["training_prior"][k] for k in TICKETS] == pytest.approx(training, rel=1e-12)
    estimate = np.array([prior["live_prior"][k] for k in TICKETS])
    error = np.array([prior["standard_error"][k] for k in TICKETS])
    realized = np.bincount(traffic_y, minlength=4) / 3000
    print(f"true {SHIFTED.tolist()} realized {realized.tolist()}")
    print(f"estimated {np.round(estimate, 4).tolist()} +- {np.round(error, 4).tolist()}")
    # Within sampling tolerance: 4 standard errors of the EM estimate, per class.
    assert np.all(np.abs(estimate - SHIFTED) <= 4 * error)
    assert np.all(error < 0.03)

    client.patch("/tasks/tickets", json={"prior": "estimate"})
    batch = [{"probabilities": probabilities(row)} for row in traffic[:1000]]
    r = app_client.post("/calibrate/batch", json={"task": "tickets", "items": batch})
    results = [item["result"] for item in r.json()["results"]]
    shift = results[0]["prior_shift"]
    assert shift["mode"] == "estimate" and shift["applied"] is True and shift["n"] == 3000
    assert shift["prior"] == pytest.approx(prior["live_prior"], rel=1e-9)
    corrected = np.array([[res["probabilities"][k] for k in TICKETS] for res in results])
    np.testing.assert_allclose(
        corrected, adjust_to_prior(uncorrected[:1000], training, estimate), rtol=1e-9
    )
    before, after = (
        log_loss(uncorrected[:1000], traffic_y[:1000]),
        log_loss(corrected, traffic_y[:1000]),
    )
    print(f"NLL on shifted traffic: uncorrected {before:.4f}, prior-corrected {after:.4f}")
    assert after < before
    json.dumps(r.json(), allow_nan=False)


def send_traffic(app_client, n: int, seed: int) -> None:
    items = [{"probabilities": i["probabilities"]} for i in overconfident_items(n, seed=seed)]
    r = app_client.post("/calibrate/batch", json={"task": "t", "items": items})
    assert r.status_code == 200 and r.json()["failed"] == 0


def estimate_n(app_client) -> int:
    p = {"a": 0.6, "b": 0.3, "c": 0.1}
    return app_client.post("/calibrate", json={"task": "t", "probabilities": p}).json()[
        "prior_shift"
    ]["n"]


def test_estimate_is_reused_for_the_refresh_interval(client, app_client, task):
    client.post("/tasks/t/fit", json={})
    client.patch("/tasks/t", json={"prior": "estimate"})
    send_traffic(app_client, 60, seed=1)
    assert estimate_n(app_client) == 60  # estimated now, from the 60 requests before it
    send_traffic(app_client, 60, seed=2)
    assert estimate_n(app_client) == 60  # within VERBCAL_PRIOR_REFRESH_S (60 s): reused
    # Monitoring always estimates afresh: 60 + 1 + 60 + 1 requests so far.
    assert client.get("/tasks/t/monitoring").json()["prior"]["n"] == 122


def test_estimate_cache_with_zero_refresh_never_reuses():
    cache = EstimateCache()
    cache.put(("task", 1), {"prior": [0.5, 0.5]}, 10)
    assert cache.get(("task", 1), 3600.0) == ({"prior": [0.5, 0.5]}, 10)
    assert cache.get(("task", 1), 0.0) is None
    assert cache.get(("task", 2), 3600.0) is None
