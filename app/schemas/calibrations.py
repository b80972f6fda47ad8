"""Fitting, versions and reports."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.schemas.common import INTEGRAL, JsonInt, QueryModel, RequestModel, RowId
from app.schemas.extras import ConformalSpec

# Largest smoothing a fit request may set: more would flatten every distribution it smooths.
MAX_EPS = 0.5


class ValidationSpec(RequestModel):
    """How held-out data is chosen: a seeded holdout fraction, or k folds."""

    model_config = ConfigDict(
        json_schema_extra={
            # Not both schemes, and not none: a null holdout needs folds.
            "not": {
                "anyOf": [
                    {
                        "required": ["holdout", "folds"],
                        "properties": {
                            "holdout": {"type": "number"},
                            "folds": {"type": "integer"},
                        },
                    },
                    {
                        "required": ["holdout"],
                        "properties": {"holdout": {"type": "null"}, "folds": {"type": "null"}},
                    },
                ]
            }
        }
    )

    holdout: float | None = Field(default=0.3, gt=0, lt=1)
    folds: Annotated[int, Field(ge=2, le=20), INTEGRAL] | None = None
    seed: JsonInt = 0

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
    method: Literal["temperature", "vector", "isotonic", "resoftmax"] = Field(
        default="temperature",
        description="The calibrator to fit and serve; 'resoftmax' (softmax(p / T)) is the "
        "baseline every fit is compared with, not a recommended choice.",
    )
    objective: Literal["nll", "brier", "spherical"] = "nll"
    eps: (
        Annotated[float, Field(json_schema_extra={"minimum": 0, "maximum": MAX_EPS})]
        | Literal["auto"]
    ) = Field(default="auto", description=f'A float in [0, {MAX_EPS}] or "auto".')
    validation: ValidationSpec = Field(default_factory=ValidationSpec)
    refit: bool = Field(
        default=True,
        description="After validation, refit the served calibrator on every labelled row "
        "(k folds always do). The stored metrics stay the held-out / out-of-fold estimate of "
        "the procedure. false: a holdout fit serves the calibrator fitted on the other rows.",
    )
    activate: bool = True
    source: Literal["auto", "imported", "elicited"] = Field(
        default="auto",
        description="Which stored distributions to use: LLM answers for the task's current "
        "model and prompt (k samples averaged), imported ones, or auto (elicited when there "
        "are any, else imported).",
    )
    conformal: ConformalSpec | None = Field(
        default_factory=ConformalSpec,
        description="Conformal label sets stored with the fit (null: none).",
    )

    @field_validator("eps")
    @classmethod
    def _eps_range(cls, eps: float | str) -> float | str:
        if isinstance(eps, float) and not 0 <= eps <= MAX_EPS:
            raise ValueError(f"eps must lie in [0, {MAX_EPS}] or be 'auto'")
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


class ReportQuery(QueryModel):
    calibration_id: RowId | None = None
    n_bins: int = Field(default=15, ge=1, le=100)
    binning: Literal["uniform", "quantile"] = "uniform"
    n_boot: int = Field(default=200, ge=0, le=2000)


class ReportCalibration(BaseModel):
    """The calibration a report is about."""

    model_config = ConfigDict(extra="allow")

    id: int
    version: int
    method: str
    temperature: float | None
    eps: float | None
    is_active: bool


class ReportData(BaseModel):
    """Which data a report was computed on; the fields after ``held_out`` are those of a
    calibration's report (absent from a report on raw data)."""

    model_config = ConfigDict(extra="allow")

    source: str
    n_eval: int
    n_fit: int | None = None
    held_out: bool
    estimate: Literal["held_out", "out_of_fold"] | None = Field(
        default=None,
        description="What the calibrated metrics estimate: scores of rows the scoring "
        "calibrator never saw (a holdout, or out of fold with k folds).",
    )
    refit: bool | None = Field(
        default=None, description="Whether the served calibrator was refitted on every row."
    )
    n_served_fit: int | None = Field(
        default=None, description="Rows the served calibrator was fitted on."
    )
    validation: dict[str, Any] | None = None


class TaskReport(BaseModel):
    """``GET /tasks/{name}/report``: :func:`calibrators.calibration_report` on held-out data,
    with the calibration, the data it used and the other methods' held-out metrics.

    Keys a report does not have (``comparison`` without a calibration, the calibration's fields
    of ``data`` for raw data) are left out of the answer, not null.
    """

    model_config = ConfigDict(extra="allow")

    conventions: dict[str, Any]
    n: int
    labels: list[str]
    class_counts: dict[str, int]
    raw: dict[str, Any]
    calibrated: dict[str, Any] | None
    operating_points: dict[str, Any]
    operating_points_on: Literal["raw", "calibrated"]
    selective: dict[str, Any]
    notes: list[str]
    calibration: ReportCalibration | None
    data: ReportData
    comparison: dict[str, Any] | None = None
    smooth_ece: dict[str, Any] | None = None
    decompositions: dict[str, Any] | None = None
    aurc: dict[str, Any] | None = None
    conformal: dict[str, Any] | None = None
