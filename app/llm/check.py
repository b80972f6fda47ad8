"""Checking an OpenAI-compatible server before using it: which structured-output modes work.

``check_server`` sends one short real classification request per structured-output mode
(``json_schema``, ``json_object``, ``none``), then, in the recommended mode (the configured one
when none works), probes ``seed`` (the request asked again with the same seed: accepted, and
whether the answer repeats) and ``n > 1`` (accepted, and whether the server returned two
choices). Every probe reports whether the server accepted the
request or its error (HTTP status and an excerpt of what it said), the latency, the parse status
and an excerpt of the answer. No secret is ever part of a report: errors and excerpts are
scrubbed of the API key by the client, and the configuration shown is the mode, never headers.

The recommended mode is the configured one when it gave a usable answer, else the first usable
one in the order ``json_schema``, ``json_object``, ``none`` (strictest first: a server that
enforces the schema cannot answer outside it). When the server accepted modes but none of their
answers parsed (a small model's probabilities summing to 0.75, say), the problem is the model's
answer to this one text, not the server: the configured mode is kept if the server accepted it,
else the first accepted one, and the recommendation says that no answer parsed and why.
``None`` only when the server accepted no mode.
Probes are not retried more than once, so a check takes about five answers' time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field

from app.llm.client import LLMClient, RetryPolicy, SampleRecord
from app.llm.config import LLMConfig, StructuredOutput
from prompts import STRUCTURED_OUTPUT_MODES, Template

EXCERPT_CHARS = 300
# Errors of an answered request (the server said 200, the answer was not usable).
_ANSWER_ERROR_KINDS = frozenset({"unparseable", "truncated", "refused"})
PROBE_SEED = 0
_PROBE_RETRIES = 1


class Probe(BaseModel):
    """One probe request and what came back."""

    name: str = Field(description="The mode, `seed` or `n`.")
    accepted: bool = Field(description="The server answered 200.")
    status_code: int | None = Field(description="HTTP status of a rejected request.")
    error: str | None = Field(description="The typed error (kind: message), if any.")
    latency_ms: float | None
    parse_status: str | None = Field(description="ok, repaired or failed; null without answer.")
    parse_reason: str | None = None
    usable: bool = Field(description="The answer gave a distribution over the labels.")
    reasoning: bool = Field(default=False, description="The answer carried a reasoning string.")
    answer_excerpt: str | None = None
    detail: str | None = Field(default=None, description="What a feature probe found.")


class ServerCheck(BaseModel):
    """The report of ``check_server``."""

    base_url: str
    model: str
    configured_mode: StructuredOutput
    reasoning: bool
    modes: list[Probe]
    seed: Probe
    n: Probe
    recommended_mode: StructuredOutput | None
    usable: bool = Field(
        description="Some mode's answer parsed into a distribution over the labels: false when "
        "the server works but the model's answers do not (see `recommendation`)."
    )
    recommendation: str


async def check_server(
    config: LLMConfig, template: Template, labels: Sequence[str], text: str
) -> ServerCheck:
    """Probe the server of ``config`` with ``text`` (see the module docstring)."""
    labels = list(labels)
    probe_config = config.model_copy(
        update={"samples": 1, "max_retries": min(config.max_retries, _PROBE_RETRIES)}
    )
    if probe_config.seed is None:
        probe_config = probe_config.model_copy(update={"seed": PROBE_SEED})
    samples: dict[str, SampleRecord] = {}
    for mode in STRUCTURED_OUTPUT_MODES:
        samples[mode] = await _ask(probe_config, template, labels, text, structured_output=mode)
    modes = [_probe(mode, sample) for mode, sample in samples.items()]
    recommended = _recommended(config.structured_output, modes)

    feature_mode = recommended or config.structured_output
    again = await _ask(probe_config, template, labels, text, structured_output=feature_mode)
    seed = _probe("seed", again, _seed_detail(samples[feature_mode], again, probe_config.seed))
    extra_body = {**probe_config.extra_body, "n": 2}
    with_n = await _ask(
        probe_config, template, labels, text, structured_output=feature_mode, extra_body=extra_body
    )
    n = _probe("n", with_n, _n_detail(with_n))

    return ServerCheck(
        base_url=config.base_url,
        model=config.model,
        configured_mode=config.structured_output,
        reasoning=config.reasoning,
        modes=modes,
        seed=seed,
        n=n,
        recommended_mode=recommended,
        usable=any(probe.usable for probe in modes),
        recommendation=_recommendation(config.structured_output, recommended, modes),
    )


async def _ask(
    config: LLMConfig, template: Template, labels: list[str], text: str, **changes: Any
) -> SampleRecord:
    client = LLMClient(
        config.model_copy(update=changes), template, retry_policy=RetryPolicy(max_backoff_s=2.0)
    )
    result = await client.elicit(text, labels, sample_indices=[0])
    return result.samples[0]


def _probe(name: str, sample: SampleRecord, detail: str | None = None) -> Probe:
    error = sample.error
    accepted = error is None or error.kind in _ANSWER_ERROR_KINDS
    return Probe(
        name=name,
        accepted=accepted,
        status_code=None if accepted or error is None else error.status_code,
        error=None if error is None else f"{error.kind}: {error.message}",
        latency_ms=sample.latency_ms,
        parse_status=sample.parse_status,
        parse_reason=sample.reason,
        usable=sample.parsed,
        reasoning=sample.reasoning is not None,
        answer_excerpt=_excerpt(sample.raw_text),
        detail=detail,
    )


def _excerpt(text: str | None) -> str | None:
    if text is None:
        return None
    return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + "…"


def _seed_detail(first: SampleRecord, again: SampleRecord, seed: int) -> str | None:
    if first.raw_text is None or again.raw_text is None:
        return None
    same = first.raw_text == again.raw_text
    return f"seed {seed} asked twice: {'the same answer' if same else 'different answers'}"


def _n_detail(sample: SampleRecord) -> str | None:
    if sample.choices is None:
        return None
    if sample.choices >= 2:
        return f"n = 2 gave {sample.choices} choices"
    return f"n = 2 gave {sample.choices} choice: the server ignores n (verbcal never needs it)"


def _recommended(configured: StructuredOutput, modes: list[Probe]) -> StructuredOutput | None:
    usable = [probe.name for probe in modes if probe.usable]
    candidates = usable or [probe.name for probe in modes if probe.accepted]
    if configured in candidates:
        return configured
    return next((mode for mode in STRUCTURED_OUTPUT_MODES if mode in candidates), None)  # type: ignore[return-value]


def _recommendation(
    configured: StructuredOutput, recommended: StructuredOutput | None, modes: list[Probe]
) -> str:
    if recommended is None:
        return (
            "the server accepted no structured-output mode: check the URL, the model name and "
            "the errors above"
        )
    if not any(probe.usable for probe in modes):
        chosen = next(probe for probe in modes if probe.name == recommended)
        return (
            f"the server accepts structured_output={recommended!r}, but no answer to the probe "
            f"parsed ({chosen.parse_reason or chosen.error}): the model's answers, not the "
            "server, are the problem (such answers are stored as failed); try reasoning, "
            "another prompt or model, and check with a real example (the probe text is the "
            "task's first example)"
        )
    if recommended == configured:
        return f"keep structured_output={configured!r}: it gives usable answers"
    failure = next(probe for probe in modes if probe.name == configured)
    why = failure.error or failure.parse_reason or "no usable answer"
    return f"set structured_output={recommended!r}: {configured!r} failed ({why})"
