"""Ask an OpenAI-compatible endpoint for a distribution over labels, robustly.

One code path: everything is async (``openai.AsyncOpenAI``).

Transport policy:

- The openai client gets an explicit per-attempt ``timeout`` (``config.timeout_s``, not the
  library's 10 minutes) and ``max_retries=0``: retries are ours, bounded by
  ``config.max_retries``, with exponential backoff and jitter, on 429/500/502/503/504, connection
  errors and timeouts. A ``Retry-After`` (seconds or HTTP date; ``retry-after-ms`` too) is
  honoured up to ``RetryPolicy.max_retry_after_s``.
- Per event loop, one ``AsyncOpenAI`` per (base URL, key) is shared, with a connection pool larger
  than any allowed concurrency, and one ``asyncio.Semaphore`` per base URL bounds in-flight
  requests. The semaphore is sized by the ``concurrency`` of the first config that uses that URL
  in the loop, and is held only while a request is in flight, never during a backoff wait.

Answer policy, for k samples (k calls with seeds seed+i; ``n`` is never sent):

- A sample fails as ``truncated`` on ``finish_reason == "length"``, as ``refused`` on a refusal
  or ``finish_reason == "content_filter"``, as ``unparseable`` when the parser fails; transport
  failures keep their kind after the retries run out.
- A server that rejects the structured-output mode fails at once, without retries, as
  ``unsupported_structured_output``: an HTTP 400, 422, 500 or 501 to a request that carried a
  ``response_format``, whose body mentions one of ``STRUCTURED_OUTPUT_WORDS`` (llama-cpp-python
  answers 500 to ``json_schema``; a 400 about something else, such as an unknown model, stays an
  ``http_error``).
- Each parsed sample keeps the model's ``reasoning`` and whether a field naming a label (such as
  ``"Answer"``) agrees with the argmax (``answer_agrees``). The item's ``reasoning`` is the first
  parsed sample's; its ``answer_agrees`` is None when no parsed sample named a label, else
  whether all that did agree.
- The item's distribution is the mean of the parsed samples' distributions when at least one
  sample parsed; the failed samples stay in ``samples`` with their error (``failed_samples``
  counts them) and can be re-asked alone with ``sample_indices``. Status is ``repaired`` when any
  parsed sample needed a repair, else ``ok``.
- When no sample parsed, status is ``failed``, ``probabilities`` is None and ``error`` is the last
  sample's typed error.

The API key is read from the environment at call time and never logged or put in an error. With
an ``endpoint_policy`` (``app.llm.policy``), a config the operator does not allow (key variable,
host) fails as ``config`` before anything is sent.
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import json
import logging
import random
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import openai
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletion

from app.llm.config import LLMConfig
from app.llm.errors import FATAL_KINDS, RAW_EXCERPT_LIMIT, LLMError, scrub
from app.llm.policy import EndpointPolicy
from prompts import Template, parse_distribution, render_messages, response_format_for

try:  # openai >= 3 speaks httpx2; older releases speak httpx.
    import httpx2 as _http
except ImportError:  # pragma: no cover - depends on the installed openai
    import httpx as _http

logger = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
STRUCTURED_OUTPUT_REJECTION_STATUS = frozenset({400, 422, 500, 501})
STRUCTURED_OUTPUT_WORDS = ("response_format", "json_schema", "json_object", "schema", "grammar")
_POOL_CONNECTIONS = 512  # above the largest allowed concurrency, so the pool never throttles

ProgressCallback = Callable[[int, int, int], None]
ElicitationStatus = Literal["ok", "repaired", "failed"]


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff of the retry loop: ``initial * 2**attempt`` capped, ± ``jitter`` fraction."""

    initial_backoff_s: float = 0.5
    max_backoff_s: float = 8.0
    max_retry_after_s: float = 30.0
    jitter: float = 0.25

    def wait_s(self, attempt: int, retry_after_s: float | None) -> float:
        """Seconds to wait before retry number ``attempt + 1``."""
        if retry_after_s is not None:
            # Never earlier than the server asked; the jitter only spreads clients out.
            wait = min(retry_after_s, self.max_retry_after_s)
            return wait * (1 + random.uniform(0, self.jitter))
        wait = min(self.initial_backoff_s * 2**attempt, self.max_backoff_s)
        return wait * (1 + random.uniform(-self.jitter, self.jitter))


@dataclass
class SampleRecord:
    """One sample: one answered (or failed) request, after retries."""

    index: int
    seed: int | None
    model: str | None = None
    latency_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None
    choices: int | None = None
    raw_text: str | None = None
    parse_status: str | None = None
    repairs: list[str] = field(default_factory=list)
    reason: str | None = None
    probabilities: list[float] | None = None
    reasoning: str | None = None
    answer_agrees: bool | None = None
    error: LLMError | None = None
    attempts: int = 0

    @property
    def parsed(self) -> bool:
        return self.probabilities is not None


@dataclass
class Elicitation:
    """The answer for one text: the mean parsed distribution (label order) and every sample."""

    probabilities: list[float] | None
    status: ElicitationStatus
    samples: list[SampleRecord]
    error: LLMError | None
    latency_ms: float
    asked: bool = True
    """False for a text not asked because an earlier one failed fatally (see elicit_many)."""

    @property
    def failed_samples(self) -> int:
        return sum(1 for sample in self.samples if not sample.parsed)

    @property
    def reasoning(self) -> str | None:
        """The first parsed sample's reasoning (None when none gave one)."""
        return next((s.reasoning for s in self.samples if s.parsed and s.reasoning), None)

    @property
    def answer_agrees(self) -> bool | None:
        """None when no parsed sample named a label, else whether all that did agree."""
        stated = [s.answer_agrees for s in self.samples if s.parsed and s.answer_agrees is not None]
        return all(stated) if stated else None


def parse_retry_after(headers: Any) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds or HTTP date), else None."""
    if headers is None:
        return None
    milliseconds = headers.get("retry-after-ms")
    if milliseconds is not None:
        try:
            return max(float(milliseconds) / 1000, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


class _EndpointPool:
    """The shared clients and in-flight limits of one event loop."""

    def __init__(self) -> None:
        self.clients: dict[tuple[str, str], AsyncOpenAI] = {}
        self.limits: dict[str, asyncio.Semaphore] = {}

    def client(self, config: LLMConfig, api_key: str) -> AsyncOpenAI:
        key_digest = hashlib.sha256(api_key.encode()).hexdigest()
        slot = (config.base_url, key_digest)
        if slot not in self.clients:
            limits = _http.Limits(
                max_connections=_POOL_CONNECTIONS, max_keepalive_connections=_POOL_CONNECTIONS
            )
            self.clients[slot] = AsyncOpenAI(
                api_key=api_key,
                base_url=config.base_url,
                timeout=config.timeout_s,
                max_retries=0,
                http_client=openai.DefaultAsyncHttpxClient(limits=limits),
            )
        return self.clients[slot]

    def limit(self, config: LLMConfig) -> asyncio.Semaphore:
        if config.base_url not in self.limits:
            self.limits[config.base_url] = asyncio.Semaphore(config.concurrency)
        return self.limits[config.base_url]

    async def aclose(self) -> None:
        clients, self.clients = list(self.clients.values()), {}
        for client in clients:
            await client.close()


_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _EndpointPool] = (
    weakref.WeakKeyDictionary()
)


def _current_pool() -> _EndpointPool:
    loop = asyncio.get_running_loop()
    if loop not in _pools:
        _pools[loop] = _EndpointPool()
    return _pools[loop]


async def aclose_endpoint_clients() -> None:
    """Close the shared HTTP clients of the running event loop (call before the loop ends)."""
    pool = _pools.pop(asyncio.get_running_loop(), None)
    if pool is not None:
        await pool.aclose()


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
            return _combine(samples, started, last_error=exc)
        messages = render_messages(self.template, text, list(labels))
        samples = await asyncio.gather(
            *(self._ask_sample(messages, list(labels), i, api_key) for i in indices)
        )
        return _combine(list(samples), started)

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
                    skipped = _combine([], time.perf_counter(), last_error=fatal)
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
            return _combine([], started, last_error=error)

    async def _ask_sample(
        self, messages: list[dict[str, Any]], labels: list[str], index: int, api_key: str
    ) -> SampleRecord:
        record = SampleRecord(index=index, seed=self.config.seed_for_sample(index))
        pool = _current_pool()
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
                error, retry_after = _transport_error(exc, api_key)
                if self.config.structured_output != "none" and _rejects_structured_output(error):
                    error = _unsupported_structured_output(error, self.config.structured_output)
                retryable = error.kind in ("unreachable", "timeout", "rate_limited") or (
                    error.kind == "http_error" and error.status_code in RETRYABLE_STATUS
                )
                if retryable and attempt < self.config.max_retries:
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


def _transport_error(exc: openai.OpenAIError, api_key: str) -> tuple[LLMError, float | None]:
    """The typed error for an openai exception, and the server's Retry-After if any."""
    secrets = (api_key,)
    if isinstance(exc, openai.APITimeoutError):
        return LLMError("timeout", "the request timed out"), None
    if isinstance(exc, openai.APIConnectionError):
        cause = type(exc.__cause__).__name__ if exc.__cause__ is not None else "connection error"
        return LLMError("unreachable", f"could not reach the endpoint ({cause})"), None
    if isinstance(exc, openai.APIStatusError):
        kind = "rate_limited" if exc.status_code == 429 else "http_error"
        excerpt = _excerpt(exc.body if exc.body is not None else exc.response.text, secrets)
        detail = _server_message(exc.body, secrets) or exc.response.reason_phrase
        error = LLMError(
            kind,
            f"the endpoint answered HTTP {exc.status_code}: {detail}"[:RAW_EXCERPT_LIMIT],
            status_code=exc.status_code,
            raw_excerpt=excerpt,
        )
        return error, parse_retry_after(exc.response.headers)
    message = scrub(str(exc), secrets) or type(exc).__name__
    return LLMError("http_error", f"{type(exc).__name__}: {message}"[:RAW_EXCERPT_LIMIT]), None


def _rejects_structured_output(error: LLMError) -> bool:
    """Whether an HTTP error is a server refusing ``response_format`` (see the module doc)."""
    if error.status_code not in STRUCTURED_OUTPUT_REJECTION_STATUS:
        return False
    said = f"{error.message} {error.raw_excerpt or ''}".lower()
    return any(word in said for word in STRUCTURED_OUTPUT_WORDS)


def _unsupported_structured_output(error: LLMError, mode: str) -> LLMError:
    return LLMError(
        "unsupported_structured_output",
        f"the server rejected structured_output={mode!r} (HTTP {error.status_code}); run "
        "`verbcal llm check TASK` to see which modes it accepts and set `structured_output` "
        f"accordingly. Server said: {error.message}"[:RAW_EXCERPT_LIMIT],
        status_code=error.status_code,
        raw_excerpt=error.raw_excerpt,
    )


def _server_message(body: object, secrets: tuple[str, ...]) -> str | None:
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, dict) else inner
        if message is not None:
            return scrub(str(message), secrets)
    return None


def _excerpt(body: object, secrets: tuple[str, ...]) -> str | None:
    if body is None:
        return None
    text = body if isinstance(body, str) else json.dumps(body, default=str)
    return scrub(text, secrets)[:RAW_EXCERPT_LIMIT]


def mean_distribution(distributions: Sequence[Sequence[float]]) -> list[float]:
    """The distribution of an item asked k times: the mean of its k parsed distributions.

    ``p_j = (1/k) * sum_i p_ij`` in label order, summed in sample order. Each sample sums to 1, so
    the mean does too (up to rounding); it is not renormalized.
    """
    k = len(distributions)
    if k == 0:
        raise ValueError("the mean of no distributions is undefined")
    return [sum(column) / k for column in zip(*distributions, strict=True)]


def _combine(
    samples: list[SampleRecord], started: float, last_error: LLMError | None = None
) -> Elicitation:
    """The item's result from its samples (see the module docstring for the policy)."""
    latency_ms = (time.perf_counter() - started) * 1000
    parsed = [s for s in samples if s.probabilities is not None]
    if not parsed:
        if last_error is None:
            failures = [s.error for s in samples if s.error is not None]
            last_error = failures[-1] if failures else None
        error = last_error or LLMError("unparseable", "no sample was answered")
        return Elicitation(None, "failed", samples, error, latency_ms)
    mean = mean_distribution([s.probabilities or [] for s in parsed])
    status: ElicitationStatus = (
        "repaired" if any(s.parse_status == "repaired" for s in parsed) else "ok"
    )
    return Elicitation(mean, status, samples, None, latency_ms)
