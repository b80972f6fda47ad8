"""Prior shift and conformal sets end to end with the simulated LLM (a real server on loopback,
real openai client).

Prior: labelled tickets drawn with the generator's class mix are elicited and fitted; live
traffic is texts drawn with another mix (generated tickets kept with probability ∝ target /
source share) and sent as text to /calibrate/batch, so the LLM answers them. The EM estimate of
the live prior must land within sampling tolerance of the traffic's true mix, and the
prior-corrected probabilities must have a lower NLL on that traffic than the uncorrected ones.

Conformal: sets stored with a fit cover fresh texts at their target within sampling tolerance.
"""

import numpy as np
import pytest

from app.jobs.worker import Worker
from app.llm import synthetic
from app.llm.simulator import SimulatorSettings, running_simulator
from calibrators import log_loss

pytestmark = pytest.mark.slow

LABELS = list(synthetic.TICKET_LABELS)
SOURCE = np.asarray(synthetic.CLASS_PRIOR)
TARGET = np.array([0.1, 0.2, 0.3, 0.4])


@pytest.fixture(scope="module")
def simulator_url():
    # T0 = 2 (overconfident), answers not rounded to a grid: temperature scaling can recover
    # the posterior, which EM needs.
    with running_simulator(SimulatorSettings(t0=2.0, rounding=0.0)) as base_url:
        yield base_url


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"prior_window": 5_000, "prior_min_requests": 100})


def shifted_traffic(n_drawn: int, seed: int) -> list[synthetic.SyntheticExample]:
    """Generated tickets kept with probability (target / source share), scaled to max 1."""
    accept = (TARGET / SOURCE) / (TARGET / SOURCE).max()
    rng = np.random.default_rng(seed)
    examples = synthetic.generate_examples(n_drawn, seed=seed)
    return [e for e in examples if rng.random() < accept[LABELS.index(e.label)]]


def calibrate_texts(app_client, examples) -> np.ndarray:
    rows = []
    for start in range(0, len(examples), 500):
        items = [{"text": e.text} for e in examples[start : start + 500]]
        r = app_client.post("/calibrate/batch", json={"task": "tickets", "items": items})
        assert r.status_code == 200 and r.json()["failed"] == 0, r.text[:500]
        rows += [[x["result"]["probabilities"][k] for k in LABELS] for x in r.json()["results"]]
    return np.array(rows)


def elicited_task(client, session_factory, settings, simulator_url, seed: int) -> None:
    """Task "tickets" on the simulator with 800 generated labelled tickets, all elicited."""
    llm = {"base_url": simulator_url, "model": "verbcal-simulated-llm", "concurrency": 16}
    assert client.post("/tasks", json={"name": "tickets", "labels": LABELS, "llm": llm}).is_success
    labelled = synthetic.generate_examples(800, seed=seed)
    examples = [{"id": e.id, "text": e.text, "label": e.label} for e in labelled]
    assert client.post("/tasks/tickets/examples", json={"examples": examples}).is_success
    assert client.post("/tasks/tickets/elicitations").status_code == 202
    Worker(session_factory, settings).run_until_idle()


def test_live_prior_estimated_from_llm_traffic(
    client, app_client, session_factory, settings, simulator_url
):
    elicited_task(client, session_factory, settings, simulator_url, seed=21)
    assert client.post("/tasks/tickets/fit", json={}).status_code == 201

    traffic = shifted_traffic(3000, seed=22)
    y = np.array([LABELS.index(e.label) for e in traffic])
    realized = np.bincount(y, minlength=4) / len(y)
    uncorrected = calibrate_texts(app_client, traffic)

    prior = client.get("/tasks/tickets/monitoring").json()["prior"]
    estimate = np.array([prior["live_prior"][k] for k in LABELS])
    error = np.array([prior["standard_error"][k] for k in LABELS])
    training = np.array([prior["training_prior"][k] for k in LABELS])
    print(
        f"\n{len(traffic)} texts; true mix {TARGET.tolist()} (realized "
        f"{np.round(realized, 3).tolist()}), training {np.round(training, 3).tolist()}, "
        f"estimated {np.round(estimate, 3).tolist()} ± {np.round(error, 3).tolist()}"
    )
    assert prior["n"] == len(traffic)
    # Within sampling tolerance: 4 standard errors of the EM estimate per class.
    assert np.all(np.abs(estimate - TARGET) <= 4 * error)

    client.patch("/tasks/tickets", json={"prior": "estimate"})
    corrected = calibrate_texts(app_client, traffic[:500])
    before, after = log_loss(uncorrected[:500], y[:500]), log_loss(corrected, y[:500])
    print(f"NLL on the shifted traffic: uncorrected {before:.4f}, prior-corrected {after:.4f}")
    assert after < before


def test_served_conformal_sets_cover_fresh_llm_traffic(
    client, app_client, session_factory, settings, simulator_url
):
    # Sets fitted on 400 held-out elicited answers, served for 1,000 fresh texts (same mix).
    # The coverage of split conformal sets, given the calibration rows, is Beta-distributed
    # around >= 1 - alpha with sd sqrt(a(1-a)/n_cal); with the test rows' own binomial sd the
    # tolerance is 3 times both combined.
    elicited_task(client, session_factory, settings, simulator_url, seed=31)
    fit = client.post("/tasks/tickets/fit", json={"validation": {"holdout": 0.5, "seed": 0}})
    assert fit.status_code == 201
    fresh = synthetic.generate_examples(1000, seed=32)
    for coverage in (0.8, 0.9):
        covered, sizes = [], []
        for start in range(0, len(fresh), 500):
            chunk = fresh[start : start + 500]
            items = [{"text": e.text, "coverage": coverage} for e in chunk]
            r = app_client.post("/calibrate/batch", json={"task": "tickets", "items": items})
            assert r.status_code == 200 and r.json()["failed"] == 0
            for e, item in zip(chunk, r.json()["results"], strict=True):
                labels = item["result"]["prediction_set"]["labels"]
                covered.append(e.label in labels)
                sizes.append(len(labels))
        rate = float(np.mean(covered))
        tolerance = 3 * np.sqrt(coverage * (1 - coverage) * (1 / 400 + 1 / len(fresh)))
        print(
            f"\ncoverage {coverage}: served sets cover {rate:.3f}, mean size {np.mean(sizes):.2f}"
        )
        assert rate >= coverage - tolerance
