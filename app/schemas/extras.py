"""Conformal label sets and prior shift: the request and response parts they add."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, Strict, StrictBool, field_validator

from app.schemas.common import RequestModel
from calibrators.conformal import DEFAULT_COVERAGES

# Strict: a JSON string or boolean is not a coverage.
Coverage = Annotated[float, Strict(), Field(gt=0, lt=1)]
MAX_COVERAGES = 10


class ConformalSpec(RequestModel):
    """Conformal label sets fitted with a calibration, on its held-out calibrated probabilities."""

    coverages: list[Coverage] = Field(
        default_factory=lambda: list(DEFAULT_COVERAGES),
        min_length=1,
        max_length=MAX_COVERAGES,
        description="Target coverages 1 - alpha; /calibrate serves sets at these only.",
        json_schema_extra={"uniqueItems": True},
    )
    score: Literal["lac", "aps"] = Field(
        default="lac",
        description="lac: 1 - q_y (smallest sets); aps: cumulative probability mass "
        "(adaptive sets, never empty).",
    )
    class_conditional: StrictBool = Field(
        default=False,
        description="One threshold per true class (coverage guaranteed per class) instead of "
        "one for all rows.",
    )

    @field_validator("coverages")
    @classmethod
    def _distinct(cls, coverages: list[float]) -> list[float]:
        if len(set(coverages)) != len(coverages):
            raise ValueError("coverages must be distinct")
        return coverages


class PredictionSet(BaseModel):
    labels: list[str] = Field(description="The labels of the set, in task label order.")
    coverage: float
    method: Literal["lac", "aps"]
    class_conditional: bool


class PriorShiftInfo(BaseModel):
    """How (and whether) a task's target class prior corrected the probabilities."""

    mode: Literal["given", "estimate"]
    applied: bool
    prior: dict[str, float] | None = Field(description="The target prior used (null: none).")
    training_prior: dict[str, float] | None = Field(
        description="The class frequencies of the active calibration's labelled data."
    )
    n: int | None = Field(
        default=None, description="Recent requests the estimate used (mode estimate)."
    )
    reason: str | None = None


class PriorMonitoring(BaseModel):
    """Monitoring's class prior block: training prior, the task's setting, live EM estimate."""

    setting: str | dict[str, float] | None = Field(description="The task's `prior`.")
    training_prior: dict[str, float] | None
    live_prior: dict[str, float] | None = Field(
        description="EM estimate from the last `window` /calibrate requests (null below "
        "VERBCAL_PRIOR_MIN_REQUESTS)."
    )
    standard_error: dict[str, float] | None = None
    n: int | None = None
    window: int
    converged: bool | None = None
    note: str | None = None
    reason: str | None = None
