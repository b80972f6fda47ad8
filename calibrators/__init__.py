"""verbcal calibrators: pure numpy/scipy calibration of verbalized probabilities.

No I/O, no web, no database, no LLM. Conventions are those of DESIGN.md ("Numeric
conventions") and are echoed by :func:`calibration_report` under ``conventions``.
"""

from calibrators.bootstrap import bootstrap_ci
from calibrators.isotonic import IsotonicCalibration
from calibrators.logits import inverse_softmax, softmax
from calibrators.metrics import (
    accuracy,
    brier_score,
    classwise_ece,
    entropy_gap,
    expected_calibration_error,
    log_loss,
    maximum_calibration_error,
    mean_entropy,
    reliability_table,
    rms_calibration_error,
    spherical_score,
)
from calibrators.registry import calibrator_from_dict
from calibrators.report import CONVENTIONS, calibration_report
from calibrators.temperature import TemperatureScaling
from calibrators.thresholds import operating_points, selective_curve
from calibrators.vector import VectorScaling

__all__ = [
    "CONVENTIONS",
    "IsotonicCalibration",
    "TemperatureScaling",
    "VectorScaling",
    "accuracy",
    "bootstrap_ci",
    "brier_score",
    "calibration_report",
    "calibrator_from_dict",
    "classwise_ece",
    "entropy_gap",
    "expected_calibration_error",
    "inverse_softmax",
    "log_loss",
    "maximum_calibration_error",
    "mean_entropy",
    "operating_points",
    "reliability_table",
    "rms_calibration_error",
    "selective_curve",
    "softmax",
    "spherical_score",
]
