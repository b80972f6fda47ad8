"""verbcal calibrators: pure numpy/scipy calibration of verbalized probabilities.

No I/O, no web, no database, no LLM. Conventions are those of DESIGN.md ("Numeric
conventions") and are echoed by :func:`calibration_report` under ``conventions``.
"""

from calibrators.bootstrap import bootstrap_ci
from calibrators.conformal import ConformalSets, prediction_set_labels
from calibrators.decomposition import (
    aurc,
    brier_decomposition,
    log_score_decomposition,
    score_decompositions,
)
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
from calibrators.prior_shift import (
    PriorShift,
    adjust_to_prior,
    check_prior,
    class_frequencies,
    estimate_target_prior,
)
from calibrators.registry import calibrator_from_dict
from calibrators.report import CONVENTIONS, calibration_report
from calibrators.resoftmax import ResoftmaxScaling
from calibrators.smooth_ece import smooth_ece, smooth_reliability_diagram
from calibrators.temperature import TemperatureScaling
from calibrators.thresholds import operating_points, selective_curve
from calibrators.vector import VectorScaling

__all__ = [
    "CONVENTIONS",
    "ConformalSets",
    "IsotonicCalibration",
    "PriorShift",
    "ResoftmaxScaling",
    "TemperatureScaling",
    "VectorScaling",
    "accuracy",
    "adjust_to_prior",
    "aurc",
    "bootstrap_ci",
    "brier_decomposition",
    "brier_score",
    "calibration_report",
    "calibrator_from_dict",
    "check_prior",
    "class_frequencies",
    "classwise_ece",
    "entropy_gap",
    "estimate_target_prior",
    "expected_calibration_error",
    "inverse_softmax",
    "log_loss",
    "log_score_decomposition",
    "maximum_calibration_error",
    "mean_entropy",
    "operating_points",
    "prediction_set_labels",
    "reliability_table",
    "rms_calibration_error",
    "score_decompositions",
    "selective_curve",
    "smooth_ece",
    "smooth_reliability_diagram",
    "softmax",
    "spherical_score",
]
