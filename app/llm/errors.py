"""The one typed error of LLM elicitation.

Every failure of a call to an LLM endpoint, or of the answer it gave, is an ``LLMError`` with a
stable ``kind``. Messages are built by our code from the failure, never from request headers, so
they cannot carry the API key; the client additionally scrubs the key from anything the server
echoed (see ``scrub``).
"""

from __future__ import annotations

from typing import Any, Literal

LLMErrorKind = Literal[
    "unreachable",
    "timeout",
    "rate_limited",
    "http_error",
    "refused",
    "truncated",
    "unparseable",
    "config",
    "unsupported_structured_output",
]

FATAL_KINDS: frozenset[str] = frozenset({"config", "unsupported_structured_output"})
"""Kinds that no retry and no other text can fix: an elicitation job stops at the first one."""

RAW_EXCERPT_LIMIT = 500
REDACTED = "[redacted]"


def scrub(text: str | None, secrets: tuple[str, ...] = ()) -> str | None:
    """``text`` with every secret replaced by a marker (empty secrets are ignored)."""
    if text is None:
        return None
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


class LLMError(Exception):
    """A failed LLM call or answer: ``kind``, optional HTTP ``status_code``, a human message."""

    def __init__(
        self,
        kind: LLMErrorKind,
        message: str,
        *,
        status_code: int | None = None,
        raw_excerpt: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind: LLMErrorKind = kind
        self.message = message
        self.status_code = status_code
        self.raw_excerpt = raw_excerpt[:RAW_EXCERPT_LIMIT] if raw_excerpt is not None else None

    def __str__(self) -> str:
        status = f" (HTTP {self.status_code})" if self.status_code is not None else ""
        return f"{self.kind}{status}: {self.message}"

    def __repr__(self) -> str:
        return (
            f"LLMError(kind={self.kind!r}, status_code={self.status_code!r}, "
            f"message={self.message!r})"
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description, as stored with answers and shown in job errors."""
        return {
            "kind": self.kind,
            "status_code": self.status_code,
            "message": self.message,
            "raw_excerpt": self.raw_excerpt,
        }
