"""Fitting, versions and reports."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.schemas.common import RequestModel, RowId


class ValidationSpec(RequestModel):
    """How held-out data is chosen: a seeded holdout fraction, or k folds."""

    holdout: float | None = Field(default=0.3, gt=0, lt=1)
    folds: int | None = Field(default=None, ge=2, le=20)
    seed: int = 0

    @model_validator(mode="after")
    def _one_scheme(self) -> ValidationSpec:
        holdout_given = self.holdout is not None and "holdout" in self.model_fields_set
        if self.folds is not None and holdout_given:
            raise ValueError("give `holdout` or `folds`, not both")
        if self.folds is not None:
            self.holdout = None
        if self.holdout is None and self.folds is None:
            raise ValueError("give `holdout` (a fraction) or `folds`")
        return self


class FitRequest(RequestModel):
    method: Literal["temperature", "vector", "isotonic"] = "temperature"
    objective: Literal["nll", "brier", "spherical"] = "nll"
    eps: float | Literal["auto"] = Field(default="auto", description='A float >= 0 or "auto".')
    validation: ValidationSpec = Field(default_factory=ValidationSpec)
    activate: bool = True
    source: Literal["auto", "imported", "elicited"] = Field(
        default="auto",
        description="Which stored distributions to use: LLM answers for the task's current "
        "model and prompt (k samples averaged), imported ones, or auto (elicited when there "
        "are any, else imported).",
    )

    @field_validator("eps")
    @classmethod
    def _eps_range(cls, eps: float | str) -> float | str:
        if isinstance(eps, float) and not 0 <= eps <= 0.5:
            raise ValueError("eps must lie in [0, 0.5] or be 'auto'")
        return eps


class CalibrationBase(BaseModel):
    """Fields every view of a calibration version has, read from the stored row."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    version: int
    method: str
    objective: str | None
    temperature: float | None
    eps: float | None
    is_active: bool
    created_at: datetime


class CalibrationOut(CalibrationBase):
    task: str
    activated_at: datetime | None
    fit_request: dict[str, Any]
    data: dict[str, Any]
    metrics: dict[str, Any]
    conventions: dict[str, Any]


class CalibrationSummary(CalibrationBase):
    n_fit: int
    n_eval: int
    ece_before: float | None
    ece_after: float | None


class ReportQuery(RequestModel):
    calibration_id: RowId | None = None
    n_bins: int = Field(default=15, ge=1, le=100)
    binning: Literal["uniform", "quantile"] = "uniform"
    n_boot: int = Field(default=200, ge=0, le=2000)
