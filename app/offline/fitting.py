"""The offline fit (``verbcal fit``): temperature scaling with a held-out report, no server.

Held-out evaluation (``fit_with_holdout``) uses the same seeded split as ``POST
/tasks/{name}/fit``: a ``numpy.random.default_rng(seed)`` permutation whose first
``round(holdout · n)`` rows (at least 1, at most n − 1) are held out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from calibrators import TemperatureScaling, calibration_report
from calibrators.report_extras import add_report_extras
from calibrators.splits import holdout_split


def parse_eps(value: str) -> float | str:
    """``"auto"`` or a non-negative float, from a command-line option."""
    if value.strip().lower() == "auto":
        return "auto"
    try:
        eps = float(value)
    except ValueError:
        raise ValueError(f"eps must be 'auto' or a number >= 0; got {value!r}") from None
    if not (math.isfinite(eps) and eps >= 0):
        raise ValueError(f"eps must be 'auto' or a number >= 0; got {value!r}")
    return eps


@dataclass
class HoldoutFit:
    calibrator: TemperatureScaling  # the one to serve: refitted on every row when refit
    validation_calibrator: TemperatureScaling  # fitted on fit_rows; scored the held-out rows
    fit_rows: np.ndarray
    held_out_rows: np.ndarray
    report: dict[str, Any]  # calibration_report + report extras on the held-out rows
    refit: bool


def fit_with_holdout(
    P: np.ndarray,
    y: np.ndarray,
    labels: Sequence[str],
    *,
    objective: str = "nll",
    eps: float | str = "auto",
    holdout: float = 0.3,
    seed: int = 0,
    n_bins: int = 15,
    binning: str = "uniform",
    refit: bool = True,
) -> HoldoutFit:
    """Fit temperature scaling on the fit part, report raw vs calibrated on the held-out part.

    With ``refit`` (as API fits) the calibrator to serve is then refitted on every row; the
    report stays the held-out estimate of the procedure.
    """
    fit_rows, held_out_rows = holdout_split(len(y), holdout, seed)

    def new_calibrator() -> TemperatureScaling:
        return TemperatureScaling(objective=objective, eps=eps, random_state=seed)

    validation = new_calibrator().fit(P[fit_rows], y[fit_rows])
    P_held, y_held = P[held_out_rows], y[held_out_rows]
    report = calibration_report(
        P_held, y_held, labels, calibrator=validation, n_bins=n_bins, binning=binning, seed=seed
    )
    add_report_extras(
        report, P_held, y_held, validation.transform(P_held), n_bins=n_bins, seed=seed
    )
    served = new_calibrator().fit(P, y) if refit else validation
    return HoldoutFit(served, validation, fit_rows, held_out_rows, report, refit)


def calibration_file_content(calibrator: TemperatureScaling, labels: Sequence[str]) -> dict:
    """``calibrator.to_dict()`` plus the class order (``labels``) that ``from_dict`` ignores."""
    return {**calibrator.to_dict(), "labels": list(labels)}
