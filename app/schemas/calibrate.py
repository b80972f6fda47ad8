"""POST /calibrate, /calibrate/batch and /feedback."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.schemas.common import (
    EXAMPLE_PROBABILITIES,
    EXAMPLE_TASK,
    Label,
    Probability,
    RequestModel,
    TaskName,
    Text,
)
from app.schemas.extras import Coverage, PredictionSet, PriorShiftInfo

ONE_INPUT = {
    "oneOf": [
        {
            "required": ["text"],
            "properties": {"text": {"type": "string"}, "probabilities": {"type": "null"}},
        },
        {
            "required": ["probabilities"],
            "properties": {"probabilities": {"type": "object"}, "text": {"type": "null"}},
        },
    ]
}
EXAMPLE_TEXT = "I was charged twice for my subscription this month."


class CalibrateItem(RequestModel):
    model_config = ConfigDict(json_schema_extra=ONE_INPUT)

    text: Text | None = Field(default=None, description="Ask the task's LLM about this text.")
    probabilities: dict[str, Probability] | None = Field(
        default=None, description="A distribution elicited elsewhere: one value per task label."
    )
    target_precision: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="Decide only when the active calibration's held-out precision for the "
        "predicted label reaches this at the item's score; otherwise abstain.",
    )
    coverage: Coverage | None = Field(
        default=None,
        description="Also return the conformal label set at this coverage (one of the active "
        "calibration's stored coverages).",
    )

    @model_validator(mode="after")
    def _one_input(self) -> CalibrateItem:
        if (self.text is None) == (self.probabilities is None):
            raise ValueError("give exactly one of `text` or `probabilities`")
        return self


class CalibrateRequest(CalibrateItem):
    model_config = ConfigDict(
        json_schema_extra={
            **ONE_INPUT,
            "examples": [
                {"task": EXAMPLE_TASK, "probabilities": EXAMPLE_PROBABILITIES},
                {"task": EXAMPLE_TASK, "text": EXAMPLE_TEXT},
            ],
        }
    )

    task: TaskName


class CalibrateBatchRequest(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "task": EXAMPLE_TASK,
                    "items": [
                        {"probabilities": EXAMPLE_PROBABILITIES},
                        {"probabilities": EXAMPLE_PROBABILITIES, "target_precision": 0.9},
                    ],
                }
            ]
        }
    )

    task: TaskName
    items: list[CalibrateItem] = Field(min_length=1)


class CalibrationRef(BaseModel):
    id: int
    version: int
    temperature: float | None


class Decision(BaseModel):
    label: str | None
    abstained: bool
    threshold: float | None
    target_precision: float | None = None
    reason: str | None = None


class LLMInfo(BaseModel):
    model: str | None
    latency_ms: float | None
    parse_status: str
    samples: int = 1
    repairs: list[str] = Field(default_factory=list)
    reasoning: str | None = Field(
        default=None,
        description="The model's reasoning (first parsed sample), cut at "
        "VERBCAL_REASONING_MAX_CHARS; null when it gave none.",
    )
    answer_agrees: bool | None = Field(
        default=None,
        description="Whether a field of the answer naming a label (e.g. `Answer`) agrees with "
        "the distribution's argmax; null when the answer has no such field.",
    )


class CalibrateResponse(BaseModel):
    id: str
    task: str
    label: str
    confidence: float
    probabilities: dict[str, float]
    raw_probabilities: dict[str, float]
    calibration: CalibrationRef | None
    decision: Decision
    llm: LLMInfo | None
    prediction_set: PredictionSet | None = None
    prior_shift: PriorShiftInfo | None = None


class BatchItemError(BaseModel):
    code: str
    message: str
    details: Any = None


class BatchItemResult(BaseModel):
    index: int
    result: CalibrateResponse | None = None
    error: BatchItemError | None = None


class CalibrateBatchResponse(BaseModel):
    task: str
    results: list[BatchItemResult]
    succeeded: int
    failed: int


class FeedbackRequest(RequestModel):
    id: str = Field(min_length=1, max_length=64, description="The `id` of a /calibrate result.")
    label: Label


class FeedbackResponse(BaseModel):
    id: str
    task: str
    label: str
    predicted: str
    correct: bool
