"""Ask an OpenAI-compatible endpoint for a distribution over labels, robustly.

One code path: everything is async (``openai.AsyncOpenAI``), through the shared clients and
in-flight limits of ``app.llm.pool``. Each request gets an explicit per-attempt ``timeout``
(``config.timeout_s``, not the library's 10 minutes); failures are classified and retried as
``app.llm.retry`` says.

Answer policy, for k samples (k calls with seeds seed+i; ``n`` is never sent):

- A sample fails as ``truncated`` on ``finish_reason == "length"``, as ``refused`` on a refusal
  or ``finish_reason == "content_filter"``, as ``unparseable`` when the parser fails; transport
  failures keep their kind after the retries run out.
- The samples are combined as ``app.llm.samples`` says; failed samples can be re-asked alone with
  ``sample_indices``.

The API key is read from the environment at call time and never logged or put in an error. With
an ``endpoint_policy`` (``app.llm.policy``), a config the operator does not allow (key variable,
host) fails as ``config`` before anything is sent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import openai
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletion

from app.llm.config import LLMConfig
from app.llm.errors import FATAL_KINDS, RAW_EXCERPT_LIMIT, LLMError, scrub
from app.llm.policy import EndpointPolicy
from app.llm.pool import aclose_endpoint_clients, current_pool
from app.llm.retry import (
    RetryPolicy,
    is_retryable,
    rejects_structured_output,
    transport_error,
    unsupported_structured_output,
)
from app.llm.samples import Elicitation, SampleRecord, combine
from prompts import Template, parse_distribution, render_messages, response_format_for

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int, int], None]

__all__ = [
    "Elicitation",
    "LLMClient",
    "ProgressCallback",
    "RetryPolicy",
    "SampleRecord",
    "aclose_endpoint_clients",
]


class LLMClient:
    """Elicits label distributions for texts from one endpoint with one prompt template."""

    def __init__(
        self,
        config: LLMConfig,
        template: Template,
        *,
        retry_policy: RetryPolicy | None = None,
        endpoint_policy: EndpointPolicy | None = None,
    ) -> None:
        self.config = config
        self.template = template
        self.retry_policy = retry_policy or RetryPolicy()
        self.endpoint_policy = endpoint_policy

    async def elicit(
        self, text: str, labels: Sequence[str], sample_indices: Sequence[int] | None = None
    ) -> Elicitation:
        """Ask for ``config.samples`` answers (or only ``sample_indices``) and combine them."""
        started = time.perf_counter()
        indices = list(range(self.config.samples) if sample_indices is None else sample_indices)
        if not indices:
            raise ValueError("sample_indices must not be empty")
        try:
            self._check_endpoint_policy()
            api_key = self.config.resolve_api_key()
        except LLMError as exc:
            samples = [
                SampleRecord(index=i, seed=self.config.seed_for_sample(i), error=exc)
                for i in indices
            ]
            return combine(samples, started, last_error=exc)
        messages = render_messages(self.template, text, list(labels))
        samples = await asyncio.gather(
            *(self._ask_sample(messages, list(labels), i, api_key) for i in indices)
        )
        return combine(list(samples), started)

    def _check_endpoint_policy(self) -> None:
        """A config the operator does not allow is a ``config`` error: nothing is sent."""
        if self.endpoint_policy is None:
            return
        violations = self.endpoint_policy.violations(self.config)
        if violations:
            raise LLMError("config", "; ".join(v.message for v in violations))

    async def elicit_many(
        self,
        texts: Sequence[str],
        labels: Sequence[str],
        on_progress: ProgressCallback | None = None,
        concurrency: int | None = None,
        sample_indices: Sequence[Sequence[int] | None] | None = None,
    ) -> list[Elicitation]:
        """Elicit every text, at most ``concurrency`` texts at once (default config.concurrency).

        Results are in the order of ``texts``; ``sample_indices[i]`` (optional) restricts text i
        to those samples. One failing text never fails the others, and a crash while eliciting
        one text is logged and becomes that text's ``http_error``. After a fatal error
        (``FATAL_KINDS``: every other request would fail the same way) the texts not yet started
        are not asked: each gets that error, no samples and ``asked`` False.
        ``on_progress(done, failed, total)`` is called after each text completes.
        """
        limit = asyncio.Semaphore(concurrency or self.config.concurrency)
        indices = list(sample_indices) if sample_indices is not None else [None] * len(texts)
        if len(indices) != len(texts):
            raise ValueError("sample_indices must have one entry per text")
        total, done, failed = len(texts), 0, 0
        fatal: LLMError | None = None

        async def one(text: str, wanted: Sequence[int] | None) -> Elicitation:
            nonlocal done, failed, fatal
            async with limit:
                if fatal is not None:
                    skipped = combine([], time.perf_counter(), last_error=fatal)
                    skipped.asked = False
                    return skipped
                result = await self._elicit_guarded(text, labels, wanted)
            if result.error is not None and result.error.kind in FATAL_KINDS:
                fatal = fatal or result.error
            done += 1
            failed += result.status == "failed"
            if on_progress is not None:
                on_progress(done, failed, total)
            return result

        return list(await asyncio.gather(*(one(t, w) for t, w in zip(texts, indices, strict=True))))

    async def _elicit_guarded(
        self, text: str, labels: Sequence[str], sample_indices: Sequence[int] | None
    ) -> Elicitation:
        started = time.perf_counter()
        try:
            return await self.elicit(text, labels, sample_indices)
        except Exception as exc:  # a bug must not sink the whole batch; it is logged loudly
            logger.exception("elicitation crashed for one text")
            error = LLMError("http_error", f"unexpected {type(exc).__name__} while eliciting")
            return combine([], started, last_error=error)

    async def _ask_sample(
        self, messages: list[dict[str, Any]], labels: list[str], index: int, api_key: str
    ) -> SampleRecord:
        record = SampleRecord(index=index, seed=self.config.seed_for_sample(index))
        pool = current_pool()
        client, in_flight = pool.client(self.config, api_key), pool.limit(self.config)
        for attempt in range(self.config.max_retries + 1):
            record.attempts = attempt + 1
            started = time.perf_counter()
            try:
                async with in_flight:
                    started = time.perf_counter()
                    completion = await self._create(client, messages, labels, record.seed)
            except openai.OpenAIError as exc:
                record.latency_ms = (time.perf_counter() - started) * 1000
                error, retry_after = transport_error(exc, api_key)
                if self.config.structured_output != "none" and rejects_structured_output(error):
                    error = unsupported_structured_output(error, self.config.structured_output)
                if is_retryable(error) and attempt < self.config.max_retries:
                    wait = self.retry_policy.wait_s(attempt, retry_after)
                    logger.info(
                        "LLM request failed (%s), retry %d/%d in %.2fs: %s",
                        error.kind,
                        attempt + 1,
                        self.config.max_retries,
                        wait,
                        self.config.base_url,
                    )
                    await asyncio.sleep(wait)
                    continue
                record.error = error
                return record
            record.latency_ms = (time.perf_counter() - started) * 1000
            self._read_completion(record, completion, labels, api_key)
            return record
        raise AssertionError("unreachable: the retry loop always returns")

    async def _create(
        self,
        client: AsyncOpenAI,
        messages: list[dict[str, Any]],
        labels: list[str],
        seed: int | None,
    ) -> ChatCompletion:
        """POST /chat/completions: the body ``chat.completions.create`` would send.

        It goes through the openai client's generic ``post`` (same transport, auth, errors and
        response type) because ``create`` re-validates its typed arguments on every call, which
        cost ~0.6 ms of CPU per request, a fifth of the client's budget at 300 requests/s.
        """
        config = self.config
        body: dict[str, Any] = {
            "model": config.model,
            "messages": messages,
            "temperature": config.temperature,
            "max_tokens": config.max_tokens,
        }
        if seed is not None:
            body["seed"] = seed
        response_format = response_format_for(
            config.structured_output, labels, reasoning=config.reasoning
        )
        if response_format is not None:
            body["response_format"] = response_format
        body.update(config.extra_body)
        return await client.post(
            "/chat/completions",
            body=body,
            cast_to=ChatCompletion,
            options={"timeout": config.timeout_s},
        )

    def _read_completion(
        self, record: SampleRecord, completion: Any, labels: list[str], api_key: str
    ) -> None:
        record.model = getattr(completion, "model", None)
        usage = getattr(completion, "usage", None)
        record.prompt_tokens = getattr(usage, "prompt_tokens", None)
        record.completion_tokens = getattr(usage, "completion_tokens", None)
        choices = getattr(completion, "choices", None) or []
        if not choices:
            record.error = LLMError("unparseable", "the answer has no choices")
            return
        record.choices = len(choices)
        choice = choices[0]
        message = choice.message
        record.finish_reason = choice.finish_reason
        record.raw_text = scrub(message.content, (api_key,))
        refusal = getattr(message, "refusal", None)
        if refusal or choice.finish_reason == "content_filter":
            detail = scrub(refusal, (api_key,)) or "the answer was filtered"
            record.error = LLMError("refused", f"the model refused: {detail}"[:RAW_EXCERPT_LIMIT])
            return
        if choice.finish_reason == "length":
            record.error = LLMError(
                "truncated",
                f"the answer hit max_tokens={self.config.max_tokens} before it ended",
                raw_excerpt=record.raw_text,
            )
            return
        if record.raw_text is None:
            record.error = LLMError("unparseable", "the answer has no text")
            return
        parsed = parse_distribution(
            record.raw_text, labels, missing_labels=self.config.missing_labels
        )
        record.parse_status = parsed.status
        record.repairs = list(parsed.repairs)
        record.reason = parsed.reason
        if parsed.status == "failed" or parsed.probabilities is None:
            record.error = LLMError(
                "unparseable",
                f"the answer is not a distribution over the labels: {parsed.reason}",
                raw_excerpt=record.raw_text,
            )
            return
        record.probabilities = [float(p) for p in parsed.as_list()]
        record.reasoning = parsed.reasoning
        record.answer_agrees = parsed.answer_agrees
