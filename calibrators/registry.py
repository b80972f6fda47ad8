"""Rebuild any fitted calibrator from its ``to_dict()`` output."""

from __future__ import annotations

from calibrators.isotonic import IsotonicCalibration
from calibrators.resoftmax import ResoftmaxScaling
from calibrators.temperature import TemperatureScaling
from calibrators.vector import VectorScaling

CALIBRATORS = {
    TemperatureScaling.method: TemperatureScaling,
    VectorScaling.method: VectorScaling,
    IsotonicCalibration.method: IsotonicCalibration,
    ResoftmaxScaling.method: ResoftmaxScaling,
}


def calibrator_from_dict(data: dict):
    """Fitted calibrator from ``data["method"]``, a key of :data:`CALIBRATORS`."""
    if not isinstance(data, dict):
        raise ValueError(f"expected a calibrator dict; got {type(data).__name__}")
    method = data.get("method")
    if method not in CALIBRATORS:
        raise ValueError(
            f"unknown calibration method {method!r}; expected one of {sorted(CALIBRATORS)}"
        )
    return CALIBRATORS[method].from_dict(data)
