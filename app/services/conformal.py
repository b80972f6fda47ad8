"""Conformal label sets: fitted with a calibration, served by ``POST /calibrate``.

The sets are fitted on the calibration's held-out (or out-of-fold) calibrated probabilities, so
the coverage guarantee of split conformal prediction holds for new rows exchangeable with the
labelled data (see ``calibrators.conformal``). They are stored in ``Calibration.data`` under
``conformal`` (``ConformalSets.to_dict()``), or ``None`` when the fit asked for none.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from app.errors import InvalidInputError, field_error
from app.schemas.extras import ConformalSpec, PredictionSet
from calibrators import ConformalSets, prediction_set_labels


def fit_conformal(spec: ConformalSpec | None, Q: np.ndarray, y: np.ndarray) -> dict | None:
    """``ConformalSets`` of ``spec`` fitted on held-out calibrated ``Q`` and labels ``y``."""
    if spec is None:
        return None
    model = ConformalSets(
        score=spec.score, class_conditional=spec.class_conditional, coverages=spec.coverages
    )
    return model.fit(Q, y).to_dict()


def load_conformal(data: dict[str, Any]) -> ConformalSets | None:
    """The stored conformal predictor of a calibration's ``data``, or ``None``."""
    stored = data.get("conformal")
    return None if stored is None else ConformalSets.from_dict(stored)


def stored_coverages(conformal: ConformalSets | None) -> list[float]:
    return [] if conformal is None else list(conformal.coverages_)


def prediction_set(
    conformal: ConformalSets | None,
    probabilities: np.ndarray,
    coverage: float,
    labels: list[str],
) -> PredictionSet:
    """The label set of one probability row at a stored ``coverage``; 422 naming `coverage`."""
    if conformal is None:
        raise InvalidInputError(
            "no conformal sets to serve: the task needs an active calibration fitted with "
            "`conformal`",
            [field_error("coverage", "no active calibration with conformal sets")],
        )
    available = stored_coverages(conformal)
    if float(coverage) not in available:
        raise InvalidInputError(
            f"coverage {coverage} is not stored with the active calibration; "
            f"available: {available}",
            [field_error("coverage", f"must be one of {available}")],
        )
    sets = conformal.predict_sets(np.asarray(probabilities, dtype=np.float64)[None, :], coverage)
    return PredictionSet(
        labels=prediction_set_labels(sets, labels)[0],
        coverage=float(coverage),
        method=conformal.score,
        class_conditional=bool(conformal.class_conditional),
    )
