"""LLMClient against the simulator running as a real HTTP server, with the real openai client."""

from __future__ import annotations

import json
import logging
import socket
import time

import numpy as np
import pytest

from app.llm.client import LLMClient, RetryPolicy
from app.llm.config import LLMConfig
from app.llm.errors import LLMError
from app.llm.synthetic import TICKET_LABELS, generate_examples
from prompts import default_template, load_template, parse_distribution, template_from_text

LABELS = list(TICKET_LABELS)
TEXTS = [example.text for example in generate_examples(40, seed=21)]
FAST_RETRIES = RetryPolicy(initial_backoff_s=0.01, max_backoff_s=0.05, jitter=0.1)


def make_client(base_url: str, template=None, **overrides) -> LLMClient:
    config = LLMConfig(base_url=base_url, model="verbcal-simulated-llm", **overrides)
    return LLMClient(config, template or load_template(), retry_policy=FAST_RETRIES)


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


@pytest.mark.parametrize("mode", ["json_schema", "json_object", "none"])
def test_structured_output_modes_send_the_right_request(simulator, run_async, mode):
    client = make_client(simulator.base_url, structured_output=mode, temperature=0.5, seed=3)
    result = run_async(client.elicit(TEXTS[0], LABELS))
    assert result.status == "ok" and result.error is None
    assert sum(result.probabilities) == pytest.approx(1.0, abs=1e-3)
    body = simulator.stats()["recent_requests"][-1]
    assert body["model"] == "verbcal-simulated-llm"
    assert body["temperature"] == 0.5 and body["seed"] == 3 and body["max_tokens"] == 400
    assert "n" not in body
    if mode == "json_schema":
        response_format = body["response_format"]
        assert response_format["type"] == "json_schema"
        assert response_format["json_schema"]["strict"] is True
        schema = response_format["json_schema"]["schema"]
        assert list(schema["properties"]) == LABELS and schema["required"] == LABELS
        assert schema["additionalProperties"] is False
    elif mode == "json_object":
        assert body["response_format"] == {"type": "json_object"}
    else:
        assert "response_format" not in body


def test_sample_record_fields(simulator, run_async):
    client = make_client(simulator.base_url, temperature=0)
    result = run_async(client.elicit(TEXTS[1], LABELS))
    [sample] = result.samples
    assert sample.index == 0 and sample.seed == 0 and "simulated" in sample.model
    assert sample.finish_reason == "stop" and sample.parse_status == "ok"
    assert sample.prompt_tokens > 0 and sample.completion_tokens > 0
    assert sample.latency_ms > 0 and result.latency_ms >= sample.latency_ms
    assert sample.probabilities == result.probabilities
    assert json.loads(sample.raw_text) == dict(zip(LABELS, sample.probabilities, strict=True))
    assert sample.error is None and sample.attempts == 1


def test_no_seed_sent_when_seed_is_none(simulator, run_async):
    run_async(make_client(simulator.base_url, seed=None).elicit(TEXTS[0], LABELS))
    assert "seed" not in simulator.stats()["recent_requests"][-1]


def test_extra_body_is_merged_into_the_request(simulator, run_async):
    client = make_client(simulator.base_url, extra_body={"top_k": 5})
    run_async(client.elicit(TEXTS[0], LABELS))
    assert simulator.stats()["recent_requests"][-1]["top_k"] == 5


def test_k_samples_use_distinct_seeds_and_are_averaged(simulator, run_async):
    client = make_client(simulator.base_url, samples=4, seed=10, temperature=1.0)
    result = run_async(client.elicit(TEXTS[2], LABELS))
    assert result.status == "ok"
    assert sorted(s.seed for s in result.samples) == [10, 11, 12, 13]
    assert sorted(b["seed"] for b in simulator.stats()["recent_requests"]) == [10, 11, 12, 13]
    answers = [json.loads(s.raw_text) for s in result.samples]
    assert len({json.dumps(a) for a in answers}) > 1  # sampling noise: answers differ
    expected = np.mean([[a[label] for label in LABELS] for a in answers], axis=0)
    np.testing.assert_allclose(result.probabilities, expected, atol=1e-12)


def test_only_the_requested_sample_indices_are_asked(simulator, run_async):
    client = make_client(simulator.base_url, samples=5, seed=0)
    result = run_async(client.elicit(TEXTS[3], LABELS, sample_indices=[2, 4]))
    assert [s.index for s in result.samples] == [2, 4]
    assert sorted(b["seed"] for b in simulator.stats()["recent_requests"]) == [2, 4]


def test_429_is_retried_honouring_retry_after_and_bounded(start_simulator, run_async):
    server = start_simulator(rate_429=1.0, retry_after_s=0.2)
    client = make_client(server.base_url, max_retries=2)
    started = time.perf_counter()
    result = run_async(client.elicit(TEXTS[0], LABELS))
    elapsed = time.perf_counter() - started
    assert result.status == "failed" and result.probabilities is None
    assert result.error.kind == "rate_limited" and result.error.status_code == 429
    assert server.stats()["requests"] == 3  # max_retries + 1 attempts
    assert result.samples[0].attempts == 3
    assert elapsed >= 2 * 0.2  # both waits honoured the server's Retry-After


def test_429_then_success(start_simulator, run_async):
    server = start_simulator(rate_429=0.5, retry_after_s=0.05)
    client = make_client(server.base_url, max_retries=10, temperature=0)
    results = run_async(client.elicit_many(TEXTS[:6], LABELS, concurrency=1))
    assert all(r.status == "ok" for r in results)
    stats = server.stats()
    assert stats["responses"]["429"] > 0
    assert stats["requests"] == sum(r.samples[0].attempts for r in results)


@pytest.mark.parametrize("max_retries", [0, 3])
def test_500_is_retried_exactly_max_retries_times(simulator, run_async, max_retries):
    client = make_client(simulator.base_url, max_retries=max_retries)
    result = run_async(client.elicit(f"{TEXTS[0]} [sim-fault:500]", LABELS))
    assert result.status == "failed"
    assert result.error.kind == "http_error" and result.error.status_code == 500
    assert "simulated" in result.error.message
    assert simulator.stats()["requests"] == max_retries + 1


def test_400_is_not_retried(simulator, run_async):
    client = make_client(simulator.base_url, extra_body={"n": 2}, max_retries=3)
    result = run_async(client.elicit(TEXTS[0], LABELS))
    assert result.error.kind == "http_error" and result.error.status_code == 400
    assert "n > 1" in result.error.message
    assert simulator.stats()["requests"] == 1


def test_slow_answer_is_a_timeout(simulator, run_async):
    client = make_client(
        simulator.base_url, timeout_s=0.3, max_retries=1, extra_body={"sim_delay": 2}
    )
    started = time.perf_counter()
    result = run_async(client.elicit(TEXTS[0], LABELS))
    elapsed = time.perf_counter() - started
    assert result.status == "failed" and result.error.kind == "timeout"
    assert 0.6 <= elapsed < 1.8
    assert simulator.stats()["requests"] == 2


def test_unreachable_endpoint(run_async):
    client = make_client(closed_port_url(), max_retries=1)
    result = run_async(client.elicit(TEXTS[0], LABELS))
    assert result.status == "failed" and result.error.kind == "unreachable"
    assert result.samples[0].attempts == 2


@pytest.mark.parametrize("fault", ["prose", "malformed"])
def test_garbage_answers_fail_with_a_reason(simulator, run_async, fault):
    result = run_async(make_client(simulator.base_url).elicit(f"x [sim-fault:{fault}]", LABELS))
    assert result.status == "failed" and result.error.kind == "unparseable"
    [sample] = result.samples
    assert sample.parse_status == "failed" and sample.reason
    assert sample.raw_text and result.error.raw_excerpt == sample.raw_text[:500]
    assert simulator.stats()["requests"] == 1  # a bad answer is not retried


def test_missing_label_fails_or_fills_zero_as_configured(simulator, run_async):
    text = f"{TEXTS[0]} [sim-fault:missing_label]"
    failing = run_async(make_client(simulator.base_url).elicit(text, LABELS))
    assert failing.status == "failed" and failing.error.kind == "unparseable"
    filled = run_async(
        make_client(simulator.base_url, missing_labels="fill_zero").elicit(text, LABELS)
    )
    assert filled.status == "repaired" and filled.samples[0].repairs
    assert sorted(filled.probabilities)[0] == 0 and sum(filled.probabilities) == pytest.approx(1)


def test_non_default_prompt_is_unparseable(simulator, run_async):
    template = template_from_text("Labels: {labels}\nText: {text}\nAnswer in JSON.")
    result = run_async(make_client(simulator.base_url, template).elicit(TEXTS[0], LABELS))
    assert result.status == "failed" and result.error.kind == "unparseable"


def test_length_limit_is_truncated(simulator, run_async):
    result = run_async(make_client(simulator.base_url, max_tokens=5).elicit(TEXTS[0], LABELS))
    assert result.status == "failed" and result.error.kind == "truncated"
    assert result.samples[0].finish_reason == "length" and result.samples[0].raw_text


def test_refusal_is_refused(simulator, run_async):
    result = run_async(make_client(simulator.base_url).elicit("x [sim-fault:refuse]", LABELS))
    assert result.status == "failed" and result.error.kind == "refused"


def test_partial_sample_failure_averages_the_parsed_samples(start_simulator, run_async):
    server = start_simulator(rate_malformed=0.5)
    client = make_client(server.base_url, samples=6, temperature=1.0)
    result = run_async(client.elicit(TEXTS[4], LABELS))
    parsed = [s.probabilities for s in result.samples if s.probabilities is not None]
    assert 0 < len(parsed) < 6 and result.failed_samples == 6 - len(parsed)
    assert result.status == "ok" and result.error is None
    np.testing.assert_allclose(result.probabilities, np.mean(parsed, axis=0))


def test_concurrency_is_bounded(start_simulator, run_async):
    server = start_simulator(delay_s=0.1)
    client = make_client(server.base_url, concurrency=32)
    results = run_async(client.elicit_many(TEXTS, LABELS, concurrency=5))
    assert all(r.status == "ok" for r in results)
    stats = server.stats()
    assert stats["requests"] == len(TEXTS)
    assert stats["max_in_flight"] == 5


def test_endpoint_limit_bounds_requests_across_items_and_samples(start_simulator, run_async):
    server = start_simulator(delay_s=0.05)
    client = make_client(server.base_url, concurrency=3, samples=2)
    run_async(client.elicit_many(TEXTS[:12], LABELS, concurrency=10))
    assert 2 <= server.stats()["max_in_flight"] <= 3


def test_one_failing_item_does_not_fail_the_others(simulator, run_async):
    texts = [*TEXTS[:9]]
    texts.insert(4, "broken [sim-fault:500]")
    progress: list[tuple[int, int, int]] = []
    client = make_client(simulator.base_url, max_retries=0)
    results = run_async(
        client.elicit_many(texts, LABELS, on_progress=lambda *args: progress.append(args))
    )
    assert [r.status for r in results] == ["ok"] * 4 + ["failed"] + ["ok"] * 5
    assert results[4].error.status_code == 500
    assert len(progress) == 10 and progress[-1] == (10, 1, 10)
    assert [p[0] for p in progress] == list(range(1, 11))


def test_missing_key_variable_fails_every_sample_without_a_request(simulator, run_async):
    client = make_client(simulator.base_url, api_key_env="VERBCAL_TEST_UNSET_KEY", samples=2)
    result = run_async(client.elicit(TEXTS[0], LABELS))
    assert result.status == "failed" and result.error.kind == "config"
    assert "VERBCAL_TEST_UNSET_KEY" in result.error.message
    assert all(s.error.kind == "config" for s in result.samples)
    assert simulator.stats()["requests"] == 0


SECRET = "sk-verbcal-test-DO-NOT-LEAK-7f3a9c"


def test_api_key_never_appears_in_errors_or_logs(simulator, run_async, monkeypatch, caplog):
    monkeypatch.setenv("VERBCAL_TEST_SECRET_KEY", SECRET)
    for name in ("", "openai", "httpx", "httpx2", "httpcore", "httpcore2", "app.llm"):
        caplog.set_level(logging.DEBUG, logger=name)

    def client(base_url=simulator.base_url, **overrides) -> LLMClient:
        overrides.setdefault("max_retries", 1)
        return make_client(base_url, api_key_env="VERBCAL_TEST_SECRET_KEY", **overrides)

    cases = {
        "unreachable": (client(closed_port_url()), TEXTS[0]),
        "timeout": (client(timeout_s=0.2, extra_body={"sim_delay": 1}), TEXTS[0]),
        "rate_limited": (client(), "x [sim-fault:429]"),
        "http_error": (client(), "x [sim-fault:500]"),
        "refused": (client(), "x [sim-fault:refuse]"),
        "truncated": (client(max_tokens=3), TEXTS[0]),
        "unparseable": (client(), "x [sim-fault:prose]"),
    }
    for kind, (llm_client, text) in cases.items():
        # The shared simulator asks for Retry-After: 1; cap it to keep the test fast.
        llm_client.retry_policy = RetryPolicy(initial_backoff_s=0.01, max_retry_after_s=0.01)
        result = run_async(llm_client.elicit(text, LABELS))
        assert result.error is not None and result.error.kind == kind
        for shown in (str(result.error), repr(result.error), json.dumps(result.error.to_dict())):
            assert SECRET not in shown
        assert SECRET not in repr(result.samples)
    monkeypatch.delenv("VERBCAL_TEST_SECRET_KEY")
    with pytest.raises(LLMError) as caught:
        client().config.resolve_api_key()
    assert caught.value.kind == "config" and SECRET not in str(caught.value)
    assert caplog.records  # the libraries did log at DEBUG
    for record in caplog.records:
        assert SECRET not in record.getMessage()
        assert SECRET not in repr(record.args)


# --- reasoning first, and servers that reject a structured-output mode --------------------------


@pytest.mark.parametrize("mode", ["json_schema", "json_object", "none"])
def test_reasoning_mode_asks_for_reasoning_first_and_keeps_it(simulator, run_async, mode):
    client = LLMClient(
        LLMConfig(
            base_url=simulator.base_url,
            model="verbcal-simulated-llm",
            structured_output=mode,
            reasoning=True,
            temperature=0,
        ),
        default_template(reasoning=True),
        retry_policy=FAST_RETRIES,
    )
    result = run_async(client.elicit(TEXTS[2], LABELS))
    assert result.status == "ok", result.error
    [sample] = result.samples
    answer = json.loads(sample.raw_text)
    assert list(answer) == ["reasoning", *LABELS]
    assert sample.reasoning == answer["reasoning"] == result.reasoning
    assert sample.reasoning.startswith("The text reads most like")
    assert sample.answer_agrees is None and result.answer_agrees is None
    body = simulator.stats()["recent_requests"][-1]
    assert '"reasoning"' in body["messages"][-1]["content"]
    if mode == "json_schema":
        schema = body["response_format"]["json_schema"]["schema"]
        assert list(schema["properties"]) == ["reasoning", *LABELS]
        assert schema["required"] == ["reasoning", *LABELS]
        assert schema["properties"]["reasoning"] == {"type": "string"}


@pytest.mark.parametrize(
    ("fault", "agrees"), [(None, True), ("answer_disagrees", False)], ids=["agrees", "disagrees"]
)
def test_answer_field_agreement_is_recorded(start_simulator, run_async, fault, agrees):
    server = start_simulator(style="reasoning_answer")
    client = make_client(server.base_url, structured_output="none", temperature=0)
    text = TEXTS[3] if fault is None else f"{TEXTS[3]} [sim-fault:{fault}]"
    result = run_async(client.elicit(text, LABELS))
    assert result.status == "repaired", result.error
    [sample] = result.samples
    assert sample.answer_agrees is agrees and result.answer_agrees is agrees
    assert sample.reasoning == json.loads(sample.raw_text)["Reasoning"]
    assert any(repair.startswith("ignored keys") for repair in sample.repairs)
    expected = parse_distribution(sample.raw_text, LABELS)
    assert result.probabilities == expected.as_list()


def test_item_agreement_over_samples(run_async, start_simulator):
    server = start_simulator(style="reasoning_answer")
    client = make_client(server.base_url, structured_output="none", samples=3, temperature=0)
    result = run_async(client.elicit(TEXTS[4], LABELS))
    assert [s.answer_agrees for s in result.samples] == [True, True, True]
    assert result.answer_agrees is True
    result.samples[1].answer_agrees = False
    assert result.answer_agrees is False
    for sample in result.samples:
        sample.answer_agrees = None
    assert result.answer_agrees is None


def test_a_server_rejecting_json_schema_is_unsupported_and_not_retried(start_simulator, run_async):
    server = start_simulator(reject_json_schema=True)
    client = make_client(server.base_url, structured_output="json_schema", max_retries=3)
    result = run_async(client.elicit(TEXTS[0], LABELS))
    assert result.status == "failed"
    error = result.error
    assert error.kind == "unsupported_structured_output" and error.status_code == 500
    assert "structured_output='json_schema'" in error.message
    assert "verbcal llm check" in error.message
    assert "json_object" in error.raw_excerpt
    assert server.stats()["requests"] == 1
    json_object = make_client(server.base_url, structured_output="json_object")
    assert run_async(json_object.elicit(TEXTS[0], LABELS)).status == "ok"


def test_a_plain_500_in_json_schema_mode_stays_a_retried_http_error(simulator, run_async):
    client = make_client(simulator.base_url, structured_output="json_schema", max_retries=1)
    result = run_async(client.elicit(f"{TEXTS[0]} [sim-fault:500]", LABELS))
    assert result.error.kind == "http_error" and result.error.status_code == 500
    assert simulator.stats()["requests"] == 2


def test_a_400_about_the_format_is_unsupported_but_other_400s_are_not(simulator, run_async):
    bad_format = make_client(
        simulator.base_url, structured_output="json_object", extra_body={"response_format": 1}
    )
    error = run_async(bad_format.elicit(TEXTS[0], LABELS)).error
    assert error.kind == "unsupported_structured_output" and error.status_code == 400
    other = make_client(simulator.base_url, extra_body={"n": 2})
    assert run_async(other.elicit(TEXTS[0], LABELS)).error.kind == "http_error"


def test_elicit_many_stops_asking_after_a_fatal_error(start_simulator, run_async):
    server = start_simulator(reject_json_schema=True)
    client = make_client(server.base_url, structured_output="json_schema")
    results = run_async(client.elicit_many(TEXTS[:10], LABELS, concurrency=2))
    assert server.stats()["requests"] == 2  # the two started before the first rejection came
    assert [r.asked for r in results] == [True, True] + [False] * 8
    assert all(r.error.kind == "unsupported_structured_output" for r in results)
    assert all(r.samples == [] for r in results[2:])


def test_elicit_many_restricts_each_text_to_its_sample_indices(simulator, run_async):
    client = make_client(simulator.base_url, samples=3, temperature=0.5)
    results = run_async(client.elicit_many(TEXTS[:2], LABELS, sample_indices=[[2], None]))
    assert [s.index for s in results[0].samples] == [2]
    assert [s.index for s in results[1].samples] == [0, 1, 2]
    with pytest.raises(ValueError, match="one entry per text"):
        run_async(client.elicit_many(TEXTS[:2], LABELS, sample_indices=[[0]]))
