"""A task's LLM configuration (stored as JSON with the task; public API).

Secrets are never part of it: ``api_key_env`` is the *name* of an environment variable, read at
call time by ``resolve_api_key``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import math
import os
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.llm.errors import LLMError
from app.schemas.common import INTEGRAL, JsonInt

PLACEHOLDER_API_KEY = "not-needed"
"""Sent when no key is configured: local servers (vLLM, ollama, the simulator) ignore it."""

StructuredOutput = Literal["json_schema", "json_object", "none"]
MissingLabels = Literal["fail", "fill_zero"]


# Sample i uses seed + i (at most 20 samples): it stays a signed 32-bit integer, which every
# OpenAI-compatible server accepts.
MAX_SEED = 2**31 - 20
MAX_TOKENS = 1_000_000


def _has_non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_non_finite(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_non_finite(v) for v in value)
    return False


class LLMConfig(BaseModel):
    """How to ask one OpenAI-compatible endpoint for a distribution over a task's labels."""

    model_config = ConfigDict(extra="forbid", strict=True)

    base_url: str = Field(
        pattern=r"^https?://[A-Za-z0-9._~%\-]+(:[0-9]{1,5})?(/[!-~]*)?$|^https?://\[[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*\](:[0-9]{1,5})?(/[!-~]*)?$",
        max_length=500,
        description="OpenAI-compatible base URL, e.g. http://host:8000/v1",
    )
    model: str = Field(
        min_length=1, max_length=200, description="Model name sent with every request."
    )
    api_key_env: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        max_length=200,
        description="Name of the environment variable holding the API key (never the key).",
    )
    structured_output: StructuredOutput = Field(
        default="json_schema",
        description="json_schema: strict per-task schema; json_object: JSON mode; none: free text.",
    )
    reasoning: bool = Field(
        default=False,
        description="Ask for a `reasoning` string before the probabilities: the schema's first "
        "property (json_schema) or the prompt's object (json_object, none). Answers with and "
        "without it are kept apart (the prompt version covers it).",
    )
    temperature: float = Field(default=1.0, ge=0, le=2)
    seed: Annotated[int, Field(ge=0, le=MAX_SEED), INTEGRAL] | None = Field(
        default=0,
        description="Sample i is asked with seed + i (no seed sent when null).",
    )
    samples: JsonInt = Field(default=1, ge=1, le=20, description="k: answers averaged per text.")
    max_tokens: JsonInt = Field(default=400, ge=1, le=MAX_TOKENS)
    timeout_s: float = Field(default=30.0, gt=0, le=600, description="Per HTTP attempt.")
    max_retries: JsonInt = Field(
        default=3, ge=0, le=10, description="Retries of 429/5xx/connection errors/timeouts."
    )
    concurrency: JsonInt = Field(default=8, ge=1, le=256, description="In-flight requests per URL.")
    extra_body: dict[str, Any] = Field(
        default_factory=dict, description="Extra JSON fields merged into each request body."
    )
    missing_labels: MissingLabels = Field(
        default="fail", description="fail: an answer lacking a label fails; fill_zero: it gets 0."
    )

    @field_validator("base_url")
    @classmethod
    def _parseable_url(cls, value: str) -> str:
        host = urlsplit(value).hostname or ""
        if value.split("//", 1)[1].startswith("["):
            try:
                ipaddress.IPv6Address(host)
            except ValueError as exc:
                raise ValueError(f"[{host}] is not an IPv6 address") from exc
        try:
            urlsplit(value).port  # noqa: B018 (raises for a port out of range)
        except ValueError as exc:
            raise ValueError(str(exc)) from exc
        return value

    @field_validator("extra_body")
    @classmethod
    def _finite_numbers(cls, value: dict[str, Any]) -> dict[str, Any]:
        # JSON has no NaN or Infinity: they would be stored as null, and sent as invalid JSON.
        if _has_non_finite(value):
            raise ValueError("must not contain NaN or Infinity")
        return value

    def params_fingerprint(self) -> str:
        """A stable short hash of the request parameters that change answers.

        Covers structured_output, temperature, max_tokens, extra_body and missing_labels. Seeds
        are not included: stored answers are keyed by sample index, and sample i always uses
        seed + i. Transport settings (timeouts, retries, concurrency) never change an answer.
        """
        params = {
            "structured_output": self.structured_output,
            "temperature": float(self.temperature),
            "max_tokens": self.max_tokens,
            "extra_body": self.extra_body,
            "missing_labels": self.missing_labels,
        }
        canonical = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def seed_for_sample(self, index: int) -> int | None:
        """The seed sent for sample ``index`` (None when no seed is configured)."""
        return None if self.seed is None else self.seed + index

    def resolve_api_key(self) -> str:
        """The API key from the environment, or the placeholder when none is configured.

        Raises ``LLMError(kind="config")`` naming the variable (never a value) when
        ``api_key_env`` is set but the variable is missing or empty.
        """
        if self.api_key_env is None:
            return PLACEHOLDER_API_KEY
        key = os.environ.get(self.api_key_env)
        if not key:
            raise LLMError(
                "config",
                f"environment variable {self.api_key_env} is not set: it should hold the API key "
                f"for {self.base_url}",
            )
        return key
