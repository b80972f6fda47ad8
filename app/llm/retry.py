"""Which failed requests are retried, how long to wait, and the typed error of each failure.

- Retries are the client's (the openai client gets ``max_retries=0``), bounded by
  ``config.max_retries``, with exponential backoff and jitter (``RetryPolicy``), on
  ``RETRYABLE_STATUS``, connection errors and timeouts. A ``Retry-After`` (seconds or HTTP date;
  ``retry-after-ms`` too) is honoured up to ``RetryPolicy.max_retry_after_s``.
- A server that rejects the structured-output mode fails at once, without retries, as
  ``unsupported_structured_output``: an HTTP 400, 422, 500 or 501 to a request that carried a
  ``response_format``, whose body mentions one of ``STRUCTURED_OUTPUT_WORDS`` (llama-cpp-python
  answers 500 to ``json_schema``; a 400 about something else, such as an unknown model, stays an
  ``http_error``).
- Error messages are built here from the failure; anything the server echoed is scrubbed of the
  API key.
"""

from __future__ import annotations

import email.utils
import json
import random
import time
from dataclasses import dataclass
from typing import Any

import openai

from app.llm.errors import RAW_EXCERPT_LIMIT, LLMError, scrub

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
STRUCTURED_OUTPUT_REJECTION_STATUS = frozenset({400, 422, 500, 501})
STRUCTURED_OUTPUT_WORDS = ("response_format", "json_schema", "json_object", "schema", "grammar")


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


def is_retryable(error: LLMError) -> bool:
    """Whether another attempt may succeed: transport failures and ``RETRYABLE_STATUS``."""
    return error.kind in ("unreachable", "timeout", "rate_limited") or (
        error.kind == "http_error" and error.status_code in RETRYABLE_STATUS
    )


def transport_error(exc: openai.OpenAIError, api_key: str) -> tuple[LLMError, float | None]:
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


def rejects_structured_output(error: LLMError) -> bool:
    """Whether an HTTP error is a server refusing ``response_format`` (see the module doc)."""
    if error.status_code not in STRUCTURED_OUTPUT_REJECTION_STATUS:
        return False
    said = f"{error.message} {error.raw_excerpt or ''}".lower()
    return any(word in said for word in STRUCTURED_OUTPUT_WORDS)


def unsupported_structured_output(error: LLMError, mode: str) -> LLMError:
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
