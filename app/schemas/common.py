"""Shared field types: strict finite probabilities, task names, texts without NUL characters."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    field_validator,
)

# Database row ids are INTEGER columns (signed 32-bit on PostgreSQL): anything larger cannot
# name a row and would overflow the column in a query, so it is a 422, not a 500.
MAX_ROW_ID = 2**31 - 1
RowId = Annotated[int, Field(ge=1, le=MAX_ROW_ID)]


def _integral_number(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# An integer as JSON Schema defines one: 2 or 2.0, never "2" or true. Strict request models
# need it, since pydantic's strict int refuses 2.0. Constraints of an optional field go before
# it (``Annotated[int, Field(ge=2), INTEGRAL] | None``): after it they leave the JSON Schema.
INTEGRAL = BeforeValidator(_integral_number)
JsonInt = Annotated[int, INTEGRAL]

TASK_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"

# The task of the OpenAPI request examples (Swagger UI's "Try it out" bodies).
EXAMPLE_TASK = "support-tickets"
EXAMPLE_LABELS = ("billing", "bug", "other")
EXAMPLE_PROBABILITIES = {"billing": 0.7, "bug": 0.2, "other": 0.1}

TaskName = Annotated[
    str,
    Field(
        pattern=TASK_NAME_PATTERN,
        description="A slug: lowercase letters, digits, `-` and `_`, at most 64 characters.",
        examples=[EXAMPLE_TASK],
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


# The validators' rules as JSON Schema patterns, so that the schema says what is accepted.
_NO_NUL_PATTERN = r"^[^\u0000]*$"
_NON_BLANK_NO_NUL_PATTERN = r"^[^\u0000]*[^\u0000\s][^\u0000]*$"

Text = Annotated[
    str,
    Field(json_schema_extra={"pattern": _NON_BLANK_NO_NUL_PATTERN}),
    AfterValidator(_no_nul),
    AfterValidator(_non_blank),
]
Label = Annotated[
    str,
    Field(min_length=1, max_length=200, json_schema_extra={"pattern": _NO_NUL_PATTERN}),
    AfterValidator(_no_nul),
]
# Strict: a JSON boolean or a numeric string is not a probability.
Probability = Annotated[float, Strict(), Field(ge=0, allow_inf_nan=False)]


def _contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_contains_nul(k) or _contains_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_contains_nul(v) for v in value)
    if isinstance(value, RequestModel):  # already checked when it was validated
        return False
    if isinstance(value, BaseModel):
        return any(_contains_nul(v) for v in value.__dict__.values())
    return False


class QueryModel(BaseModel):
    """Base of query-parameter models: unknown parameters are rejected. Not strict, since
    every query value arrives as a string."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class RequestModel(QueryModel):
    """Base of JSON request bodies: also strict (a JSON string or `0` is not a number or a
    boolean), and NUL characters (which PostgreSQL cannot store in text) are rejected."""

    model_config = ConfigDict(strict=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul_characters(cls, value: Any) -> Any:
        if _contains_nul(value):
            raise ValueError("must not contain NUL characters")
        return value
