"""Shared field types: strict finite probabilities, task names, texts without NUL characters."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict

# Database row ids: anything outside a signed 64-bit integer cannot name a row (and would
# overflow the driver), so it is a 422, not a 500.
MAX_ROW_ID = 2**63 - 1
RowId = Annotated[int, Field(ge=1, le=MAX_ROW_ID)]

TASK_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"

TaskName = Annotated[
    str,
    Field(
        pattern=TASK_NAME_PATTERN,
        description="A slug: lowercase letters, digits, `-` and `_`, at most 64 characters.",
        examples=["support-tickets"],
    ),
]


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _non_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


Text = Annotated[str, AfterValidator(_no_nul), AfterValidator(_non_blank)]
Label = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_no_nul)]
# Strict: a JSON boolean or a numeric string is not a probability.
Probability = Annotated[float, Strict(), Field(ge=0, allow_inf_nan=False)]


class RequestModel(BaseModel):
    """Base of request bodies: unknown fields and non-finite numbers are rejected."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
