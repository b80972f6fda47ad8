"""The operator's policy on LLM configs: key variables and hosts."""

from __future__ import annotations

import socket

import pytest

from app.config import Settings
from app.llm.config import LLMConfig
from app.llm.policy import EndpointPolicy

DEFAULT = Settings().llm_policy


def config(base_url: str = "http://127.0.0.1:8000/v1", key: str | None = None) -> LLMConfig:
    return LLMConfig(base_url=base_url, model="m", api_key_env=key)


@pytest.mark.parametrize(
    ("key", "allowed"),
    [
        (None, True),
        ("OPENAI_API_KEY", True),
        ("VERBCAL_LLM_KEY_OPENROUTER", True),
        ("VERBCAL_LLM_KEY_", True),
        ("OPENAI_API_KEY_2", False),
        ("openai_api_key", False),
        ("PATH", False),
        ("VERBCAL_DATABASE_URL", False),
        ("VERBCAL_SECRET_KEY", False),
        ("VERBCAL_METRICS_TOKEN", False),
        (
            "VERBCAL_ALLOWED_LLM_KEY_ENVS",
            False,
        ),  # a setting, although the prefix pattern matches it
    ],
)
def test_default_key_variables(key, allowed):
    assert (DEFAULT.violations(config(key=key)) == []) is allowed


def test_every_setting_variable_is_forbidden():
    names = {f"VERBCAL_{name.upper()}" for name in Settings.model_fields}
    assert names == DEFAULT.forbidden_key_envs
    anything = EndpointPolicy(
        key_env_patterns=("*",), forbidden_key_envs=DEFAULT.forbidden_key_envs
    )
    for name in names:
        [violation] = anything.violations(config(key=name))
        assert violation.field == "llm.api_key_env"
    assert anything.violations(config(key="ANY_OTHER")) == []


@pytest.mark.parametrize(
    ("host", "refused"),
    [
        ("127.0.0.1", False),
        ("10.0.0.5", False),
        ("api.openai.com", False),
        ("169.254.169.254", True),
        ("169.254.0.1", True),
        ("[fd00:ec2::254]", True),
        ("[fe80::1]", True),
        ("[::ffff:169.254.169.254]", True),
        ("metadata.google.internal", True),
        ("METADATA", True),
    ],
)
def test_link_local_and_metadata_hosts(host, refused):
    violations = DEFAULT.violations(config(f"http://{host}/v1"))
    assert bool(violations) is refused
    allowing = EndpointPolicy(("X",), frozenset(), allow_link_local=True)
    assert allowing.violations(config(f"http://{host}/v1")) == []


def test_a_name_resolving_to_a_metadata_address_is_refused_when_saved(monkeypatch):
    def fake_getaddrinfo(host, *args, **kwargs):  # the OS resolver, not our code
        assert host == "innocent.example"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", 0))]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    llm = config("http://innocent.example/v1")
    assert DEFAULT.violations(llm) == []  # at call time only the literal host is checked
    [violation] = DEFAULT.violations(llm, resolve=True)
    assert violation.field == "llm.base_url" and "cloud-metadata" in violation.message


def test_allowed_hosts():
    policy = EndpointPolicy((), frozenset(), allowed_hosts=("llm.internal", "*.example.com"))
    assert policy.violations(config("http://llm.internal:8080/v1")) == []
    assert policy.violations(config("https://a.b.example.com/v1")) == []
    for refused in ("http://example.com/v1", "http://llm.internal.evil/v1", "http://x/v1"):
        [violation] = policy.violations(config(refused))
        assert "VERBCAL_ALLOWED_LLM_HOSTS" in violation.message
