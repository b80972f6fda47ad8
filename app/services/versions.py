"""Calibration versions of a task: listing, lookup, activation (rollback) and their API views."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.errors import ConflictError, NotFoundError
from app.models import Calibration, Task, utcnow
from app.schemas.calibrations import CalibrationBase, CalibrationOut, CalibrationSummary


def list_calibrations(session: Session, task: Task) -> list[Calibration]:
    return list(
        session.scalars(
            select(Calibration)
            .where(Calibration.task_id == task.id)
            .order_by(Calibration.version.desc())
        )
    )


def get_calibration(session: Session, task: Task, calibration_id: int) -> Calibration:
    calibration = session.get(Calibration, calibration_id)
    if calibration is None or calibration.task_id != task.id:
        raise NotFoundError(f"task {task.name!r} has no calibration {calibration_id}")
    return calibration


def activate(session: Session, task: Task, calibration: Calibration) -> Calibration:
    """Make ``calibration`` the task's only active one (the database enforces uniqueness)."""
    session.execute(
        Calibration.__table__.update()
        .where(Calibration.task_id == task.id, Calibration.is_active)
        .values(is_active=False)
    )
    session.flush()
    session.refresh(calibration)
    calibration.is_active = True
    calibration.activated_at = utcnow()
    try:
        session.flush()
    except IntegrityError as exc:
        raise ConflictError("another activation of this task happened at the same time") from exc
    return calibration


# Stored with a calibration for the service's own use, too large for API answers.
_INTERNAL_DATA_KEYS = ("eval_example_ids", "decision_curves", "validation_calibrator")


def _common_fields(calibration: Calibration) -> dict[str, Any]:
    return CalibrationBase.model_validate(calibration).model_dump()


def calibration_out(calibration: Calibration, task_name: str) -> CalibrationOut:
    """The API view of a calibration version, without the data kept for the service's use."""
    data = {k: v for k, v in calibration.data.items() if k not in _INTERNAL_DATA_KEYS}
    return CalibrationOut(
        **_common_fields(calibration),
        task=task_name,
        activated_at=calibration.activated_at,
        fit_request=calibration.fit_request,
        data=data,
        metrics=calibration.metrics,
        conventions=calibration.conventions,
    )


def calibration_summary(calibration: Calibration) -> CalibrationSummary:
    """The list view of a calibration version."""
    ece_before, ece_after = calibration.held_out_ece()
    return CalibrationSummary(
        **_common_fields(calibration),
        n_fit=calibration.data.get("n_fit", 0),
        n_eval=calibration.data.get("n_eval", 0),
        ece_before=ece_before,
        ece_after=ece_after,
    )
