"""The active calibration as /calibrate serves it (cached per stored calibration), and the
decision at a target precision."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.lru import LRU
from app.models import Calibration, Task
from app.schemas.calibrate import (
    Decision,
)
from app.services import conformal as conformal_service
from calibrators import calibrator_from_dict
from calibrators.thresholds import threshold_for_precision

_CACHE_SIZE = 256


@dataclass(frozen=True)
class ServedCalibration:
    """What serving needs of an active calibration; immutable, so cached by id."""

    id: int
    version: int
    temperature: float | None
    calibrator: Any
    decision_curves: dict[str, Any]
    conformal: Any = None
    class_prior: list[float] | None = None


class _CalibrationCache:
    """LRU of fitted calibrators (a stored calibration never changes).

    Keyed by (id, created_at): a database may reuse the id of a deleted row.
    """

    def __init__(self, size: int = _CACHE_SIZE) -> None:
        self._items: LRU[ServedCalibration] = LRU(size)

    def get(self, session: Session, key: tuple[int, datetime]) -> ServedCalibration:
        served = self._items.get(key)
        if served is not None:
            return served
        row = session.get(Calibration, key[0])
        served = ServedCalibration(
            id=row.id,
            version=row.version,
            temperature=row.temperature,
            calibrator=calibrator_from_dict(row.calibrator),
            decision_curves=row.data.get("decision_curves", {}),
            conformal=conformal_service.load_conformal(row.data),
            class_prior=row.data.get("class_prior"),
        )
        self._items.put(key, served)
        return served


CALIBRATION_CACHE = _CalibrationCache()


def active_served_calibration(session: Session, task: Task) -> ServedCalibration | None:
    key = session.execute(
        select(Calibration.id, Calibration.created_at).where(
            Calibration.task_id == task.id, Calibration.is_active
        )
    ).first()
    return None if key is None else CALIBRATION_CACHE.get(session, tuple(key))


def decide(
    label: str,
    score: float,
    served: ServedCalibration | None,
    target_precision: float | None,
) -> Decision:
    if target_precision is None:
        return Decision(label=label, abstained=False, threshold=None)
    if served is None:
        return Decision(
            label=None,
            abstained=True,
            threshold=None,
            target_precision=target_precision,
            reason="no active calibration: thresholds come from a fitted calibration",
        )
    threshold = threshold_for_precision(served.decision_curves.get(label, {}), target_precision)
    if threshold is None:
        return Decision(
            label=None,
            abstained=True,
            threshold=None,
            target_precision=target_precision,
            reason=f"no threshold reaches precision {target_precision} for {label!r} "
            "on held-out data",
        )
    accepted = score >= threshold
    return Decision(
        label=label if accepted else None,
        abstained=not accepted,
        threshold=threshold,
        target_precision=target_precision,
        reason=None if accepted else f"confidence below the threshold for {label!r}",
    )
