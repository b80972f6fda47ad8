"""The simulated LLM's HTTP server, over real HTTP with the real openai client."""

from __future__ import annotations

import json

import httpx
import numpy as np
import openai
import pytest

from app.llm import simulator as simulator_module
from app.llm.simulator import SimulatorSettings, stated_distribution
from app.llm.synthetic import TICKET_LABELS, generate_examples, posterior
from prompts import load_template, parse_distribution, render_messages, response_format_for

LABELS = list(TICKET_LABELS)
# An ambiguous ticket, so rounding and noise are visible in its answers.
TEXT = next(e.text for e in generate_examples(100, seed=11) if 0.45 < max(e.posterior) < 0.6)


def openai_client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key="not-needed", max_retries=0, timeout=10)


def ask(base_url: str, text: str = TEXT, labels=LABELS, **kwargs):
    messages = render_messages(load_template(), text, labels)
    with openai_client(base_url) as client:
        return client.chat.completions.create(
            model=kwargs.pop("model", "verbcal-simulated-llm"), messages=messages, **kwargs
        )


def post(base_url: str, body: dict, **headers: str) -> httpx.Response:
    return httpx.post(f"{base_url}/chat/completions", json=body, headers=headers, timeout=10)


def default_body(text: str = TEXT, **extra) -> dict:
    messages = render_messages(load_template(), text, LABELS)
    return {"model": "m", "messages": messages, "temperature": 0, **extra}


def test_models_and_completion_are_labelled_simulated(simulator):
    with openai_client(simulator.base_url) as client:
        models = client.models.list().data
    assert models and all("simulated" in model.id for model in models)
    completion = ask(simulator.base_url, model="gpt-4o", temperature=0)
    assert "simulated" in completion.model
    assert completion.system_fingerprint == "verbcal-simulated"
    assert completion.object == "chat.completion" and completion.id
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )


def test_t0_one_without_rounding_states_the_exact_posterior(start_simulator):
    server = start_simulator(t0=1.0, rounding=0.0)
    for example in generate_examples(20, seed=4):
        answer = json.loads(
            ask(server.base_url, example.text, temperature=0).choices[0].message.content
        )
        assert list(answer) == LABELS
        np.testing.assert_allclose(list(answer.values()), example.posterior, atol=1e-4)


def test_default_answer_is_sharpened_and_rounded_posterior(simulator):
    answer = json.loads(ask(simulator.base_url, temperature=0).choices[0].message.content)
    values = np.array(list(answer.values()))
    truth = posterior(TEXT)
    sharpened = truth**2 / np.sum(truth**2)
    assert values.sum() == pytest.approx(1.0, abs=5e-4)
    assert np.argmax(values) == np.argmax(truth)
    np.testing.assert_allclose(values, sharpened, atol=0.05)


def test_unknown_labels_get_a_deterministic_pseudo_posterior(simulator):
    labels = ["spam", "ham", "eggs"]
    first = ask(simulator.base_url, "buy now", labels, temperature=0).choices[0].message.content
    second = ask(simulator.base_url, "buy now", labels, temperature=0).choices[0].message.content
    assert first == second
    answer = json.loads(first)
    assert list(answer) == labels and sum(answer.values()) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("style", ["json", "fenced", "prose", "percent", "mixed"])
def test_every_style_parses_to_the_same_distribution(start_simulator, style):
    server = start_simulator(style=style)
    expected = stated_distribution(TEXT, LABELS, SimulatorSettings())
    content = ask(server.base_url, temperature=0).choices[0].message.content
    parsed = parse_distribution(content, LABELS)
    assert parsed.status in ("ok", "repaired"), (content, parsed.reason)
    np.testing.assert_allclose(parsed.as_list(), expected, atol=1e-6)
    if style == "fenced":
        assert content.startswith("```json")
    if style == "percent":
        assert "%" in content
    # Asking for JSON gets clean JSON, as from a server with structured output.
    json_mode = ask(server.base_url, temperature=0, response_format={"type": "json_object"})
    assert json.loads(json_mode.choices[0].message.content) == dict(
        zip(LABELS, expected, strict=True)
    )


def test_sampling_noise_is_deterministic_per_seed(simulator):
    def answer(**kwargs):
        return ask(simulator.base_url, **kwargs).choices[0].message.content

    assert answer(temperature=1.0, seed=1) == answer(temperature=1.0, seed=1)
    by_seed = {answer(temperature=1.0, seed=seed) for seed in range(8)}
    assert len(by_seed) > 1
    assert answer(temperature=0, seed=1) == answer(temperature=0, seed=2)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"model": "m"}, "messages"),
        ({"model": "m", "messages": []}, "messages"),
        ({"messages": [{"role": "user", "content": "hi"}]}, "model"),
        ({**default_body(), "n": 2}, "n > 1"),
        ({**default_body(), "temperature": 3}, "temperature"),
        ({**default_body(), "response_format": {"type": "json_schema"}}, "json_schema"),
    ],
)
def test_invalid_requests_get_400(simulator, body, message):
    response = post(simulator.base_url, body)
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]


def test_n_above_one_accepted_when_not_rejected(start_simulator):
    server = start_simulator(reject_n=False)
    assert post(server.base_url, default_body(n=2)).status_code == 200


def test_header_faults(simulator):
    url = simulator.base_url
    limited = post(url, default_body(), **{"X-Sim-Fault": "429"})
    assert limited.status_code == 429 and limited.headers["retry-after"] == "1"
    assert post(url, default_body(), **{"X-Sim-Fault": "500"}).status_code == 500

    def content(fault: str) -> str:
        response = post(url, default_body(), **{"X-Sim-Fault": fault})
        return response.json()["choices"][0]["message"]["content"]

    assert parse_distribution(content("malformed"), LABELS).status == "failed"
    assert parse_distribution(content("prose"), LABELS).status == "failed"
    missing = json.loads(content("missing_label"))
    expected = stated_distribution(TEXT, LABELS, SimulatorSettings())
    assert len(missing) == 3 and LABELS[int(np.argmin(expected))] not in missing
    assert sum(missing.values()) == pytest.approx(1.0)
    refusal = post(url, default_body(), **{"X-Sim-Fault": "refuse"}).json()["choices"][0]
    assert refusal["message"]["content"] is None and refusal["message"]["refusal"]


def test_delay_header_and_body_field(simulator):
    response = post(simulator.base_url, default_body(), **{"X-Sim-Delay": "0.2"})
    assert response.status_code == 200 and response.elapsed.total_seconds() >= 0.2
    response = post(simulator.base_url, default_body(sim_delay=0.2))
    assert response.elapsed.total_seconds() >= 0.2


def test_fault_marker_in_text(simulator):
    assert post(simulator.base_url, default_body("refund [sim-fault:500]")).status_code == 500


def test_rate_faults_are_deterministic_and_close_to_the_rate(start_simulator):
    server = start_simulator(rate_500=0.3, rate_malformed=0.2)

    def statuses() -> list[int]:
        with httpx.Client(timeout=10) as http:
            url = f"{server.base_url}/chat/completions"
            return [http.post(url, json=default_body()).status_code for _ in range(40)]

    first = statuses()
    faults = server.stats()["faults"]
    server.reset()
    assert statuses() == first
    assert 4 <= first.count(500) <= 20
    assert 2 <= faults.get("malformed", 0) <= 16


def test_rates_must_not_exceed_one():
    with pytest.raises(ValueError):
        SimulatorSettings(rate_429=0.6, rate_500=0.6)


def test_non_default_prompt_gets_an_unparseable_answer(simulator):
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    response = post(simulator.base_url, {"model": "m", "messages": messages})
    content = response.json()["choices"][0]["message"]["content"]
    assert content == simulator_module.NOT_UNDERSTOOD_ANSWER
    assert parse_distribution(content, LABELS).status == "failed"


def test_max_tokens_truncates_with_finish_reason_length(simulator):
    completion = ask(simulator.base_url, temperature=0, max_tokens=3)
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage.completion_tokens == 3
    assert len(completion.choices[0].message.content) <= 12


def test_stats_record_bodies_and_reset(simulator):
    response_format = response_format_for("json_schema", LABELS)
    ask(simulator.base_url, temperature=0, response_format=response_format)
    stats = simulator.stats()
    assert stats["simulated"] is True
    assert stats["requests"] == 1 and stats["responses"] == {"200": 1}
    assert stats["recent_requests"][-1]["response_format"] == response_format
    assert stats["in_flight"] == 0 and stats["max_in_flight"] == 1
    simulator.reset()
    assert simulator.stats()["requests"] == 0


def test_running_simulator_stops_on_exit():
    with simulator_module.running_simulator() as base_url:
        assert httpx.get(f"{base_url}/models", timeout=5).status_code == 200
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{base_url}/models", timeout=1)


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """T by NLL and the calibrated probabilities (calibrators' fit when it is importable)."""
    try:
        from calibrators import TemperatureScaling
    except ImportError:
        from scipy.optimize import minimize_scalar

        logits = np.log(probabilities)

        def scaled(temperature: float) -> np.ndarray:
            z = logits / temperature
            z -= z.max(axis=1, keepdims=True)
            return np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)

        def nll(log_t: float) -> float:
            q = scaled(np.exp(log_t))[np.arange(len(labels)), labels]
            return -float(np.mean(np.log(np.clip(q, 1e-15, 1))))

        temperature = float(np.exp(minimize_scalar(nll, bounds=(-4, 4), method="bounded").x))
        return temperature, scaled(temperature)
    scaler = TemperatureScaling(eps=1e-6).fit(probabilities, labels)
    return scaler.temperature_, scaler.transform(probabilities)


def test_temperature_fit_on_simulated_answers_recovers_t0(start_simulator, run_async):
    from app.llm.client import LLMClient
    from app.llm.config import LLMConfig

    settings = {"t0": 2.0, "rounding": 0.0, "decimals": 6}
    examples = generate_examples(2000, seed=0)
    # The answers come from the simulator's own function; the first 200 are checked to be exactly
    # what the HTTP server answers through the real client (2000 requests would cost ~5 s here).
    answers = np.array(
        [stated_distribution(e.text, LABELS, SimulatorSettings(**settings)) for e in examples]
    )
    server = start_simulator(**settings)
    config = LLMConfig(base_url=server.base_url, model="sim", temperature=0, concurrency=16)
    client = LLMClient(config, load_template())
    results = run_async(client.elicit_many([e.text for e in examples[:200]], LABELS))
    np.testing.assert_array_equal([r.probabilities for r in results], answers[:200])
    labels = np.array([LABELS.index(e.label) for e in examples])
    truth = np.array([e.posterior for e in examples])

    temperature, calibrated = fit_temperature(answers, labels)

    # Labels are draws from the posterior, so T has a sampling error (≈ 0.05 at n = 2000);
    # the fit of the exact stated posterior**2 on the same labels shows no extra error.
    oracle, _ = fit_temperature(truth**2 / np.sum(truth**2, axis=1, keepdims=True), labels)
    assert temperature == pytest.approx(2.0, rel=0.05)
    assert temperature == pytest.approx(oracle, rel=0.005)
    error_before = np.abs(answers - truth).mean()
    error_after = np.abs(calibrated - truth).mean()
    assert error_after < error_before / 3
