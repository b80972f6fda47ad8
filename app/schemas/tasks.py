"""Task requests and responses."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.llm.config import LLMConfig
from app.schemas.common import (
    EXAMPLE_LABELS,
    EXAMPLE_TASK,
    Label,
    Probability,
    RequestModel,
    TaskName,
)
from prompts.labels import check_labels
from prompts.templates import PLACEHOLDERS_PATTERN

PromptTemplateText = Annotated[
    str, Field(max_length=50_000, json_schema_extra={"pattern": PLACEHOLDERS_PATTERN})
]

TargetPrior = Annotated[
    Literal["estimate"] | dict[Label, Probability] | None,
    Field(
        description='Target class prior of live traffic: null (none), "estimate" (EM on '
        "recent /calibrate traffic) or {label: share} (every label, shares > 0 summing to 1). "
        "When active, /calibrate returns prior-corrected probabilities.",
    ),
]


class TaskCreate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"name": EXAMPLE_TASK, "labels": list(EXAMPLE_LABELS)}]}
    )

    name: TaskName
    labels: list[Label] = Field(
        min_length=2,
        max_length=100,
        description="Task label order (distinct labels).",
        json_schema_extra={"uniqueItems": True},
    )
    description: str = Field(default="", max_length=5_000)
    prompt_template: PromptTemplateText | None = Field(
        default=None,
        description="A custom prompt with `{text}` and `{labels}` placeholders; "
        "null uses the default incremental-elicitation prompt.",
    )
    llm: LLMConfig | None = None
    prior: TargetPrior = None

    @field_validator("labels")
    @classmethod
    def _unique_labels(cls, labels: list[str]) -> list[str]:
        return check_labels(labels)


class TaskUpdate(RequestModel):
    """Fields that may change; labels are fixed for a task's lifetime."""

    description: str = Field(default="", max_length=5_000)
    prompt_template: PromptTemplateText | None = Field(
        default=None, description="null: back to the default prompt."
    )
    llm: LLMConfig | None = Field(default=None, description="null: no LLM (imports only).")
    prior: TargetPrior = None


class ActiveCalibrationSummary(BaseModel):
    id: int
    version: int
    method: str
    temperature: float | None
    ece_before: float | None
    ece_after: float | None


class TaskOut(BaseModel):
    name: str
    labels: list[str]
    description: str
    prompt_template: str | None
    prompt_version: str
    llm: dict[str, Any] | None
    prior: str | dict[str, float] | None = None
    created_at: datetime
    updated_at: datetime
    counts: dict[str, Any]
    active_calibration: ActiveCalibrationSummary | None
