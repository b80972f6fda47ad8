"""LLMConfig: validation, the answer-params fingerprint, and API keys read from the environment."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.llm.config import PLACEHOLDER_API_KEY, LLMConfig
from app.llm.errors import LLMError


def config(**overrides) -> LLMConfig:
    return LLMConfig(**{"base_url": "http://127.0.0.1:9/v1", "model": "m", **overrides})


def test_defaults():
    cfg = config()
    assert cfg.structured_output == "json_schema"
    assert (cfg.temperature, cfg.seed, cfg.samples, cfg.max_tokens) == (1.0, 0, 1, 400)
    assert (cfg.timeout_s, cfg.max_retries, cfg.concurrency) == (30.0, 3, 8)
    assert cfg.extra_body == {} and cfg.missing_labels == "fail"


@pytest.mark.parametrize(
    "overrides",
    [
        {"temperature": -0.1},
        {"temperature": 2.1},
        {"samples": 0},
        {"samples": 21},
        {"timeout_s": 0},
        {"timeout_s": 601},
        {"max_retries": 11},
        {"concurrency": 0},
        {"concurrency": 257},
        {"structured_output": "xml"},
        {"missing_labels": "guess"},
        {"api_key": "sk-should-not-be-accepted"},
    ],
)
def test_invalid_values_are_rejected(overrides):
    with pytest.raises(ValidationError):
        config(**overrides)


def test_json_round_trip():
    cfg = config(extra_body={"top_k": 5}, seed=None, samples=3)
    assert LLMConfig.model_validate_json(cfg.model_dump_json()) == cfg


def test_fingerprint_changes_with_answer_params_only():
    base = config().params_fingerprint()
    assert base == config().params_fingerprint()
    assert len(base) == 16
    for overrides in (
        {"structured_output": "none"},
        {"temperature": 0.5},
        {"max_tokens": 100},
        {"extra_body": {"top_p": 0.9}},
        {"missing_labels": "fill_zero"},
    ):
        assert config(**overrides).params_fingerprint() != base, overrides
    for overrides in (
        {"timeout_s": 5},
        {"max_retries": 0},
        {"concurrency": 2},
        {"samples": 5},
        {"base_url": "http://other/v1"},
        {"api_key_env": "X"},
    ):
        assert config(**overrides).params_fingerprint() == base, overrides
    assert (
        config(temperature=1).params_fingerprint() == config(temperature=1.0).params_fingerprint()
    )


def test_sample_seeds():
    assert [config(seed=7).seed_for_sample(i) for i in range(3)] == [7, 8, 9]
    assert config(seed=None).seed_for_sample(2) is None


def test_api_key_from_environment(monkeypatch):
    monkeypatch.setenv("VERBCAL_TEST_LLM_KEY", "sk-from-env")
    assert config(api_key_env="VERBCAL_TEST_LLM_KEY").resolve_api_key() == "sk-from-env"
    assert config().resolve_api_key() == PLACEHOLDER_API_KEY


def test_missing_key_variable_is_a_config_error_naming_the_variable(monkeypatch):
    monkeypatch.delenv("VERBCAL_TEST_MISSING_KEY", raising=False)
    with pytest.raises(LLMError) as caught:
        config(api_key_env="VERBCAL_TEST_MISSING_KEY").resolve_api_key()
    assert caught.value.kind == "config"
    assert "VERBCAL_TEST_MISSING_KEY" in str(caught.value)
    assert caught.value.to_dict()["kind"] == "config"
