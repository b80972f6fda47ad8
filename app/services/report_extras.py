"""The report sections beyond binned ECE (``calibrators.report_extras``) for a stored fit.

Added to ``GET /tasks/{name}/report`` next to the binned metrics: ``smooth_ece``,
``decompositions`` and ``aurc`` ({raw, calibrated}) and ``conformal`` (the coverage of the
calibration's stored conformal procedure on its held-out rows, with the stored thresholds).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from app.models import Calibration
from calibrators.report_extras import add_report_extras


def add_to_report(
    report: dict[str, Any],
    P: np.ndarray,
    y: np.ndarray,
    calibrator: Any,
    calibration: Calibration | None,
    n_bins: int,
    n_boot: int,
) -> dict[str, Any]:
    """Add the extra sections to ``report`` in place (and return it).

    ``calibrator`` gives the held-out calibrated probabilities (``None``: raw only).
    """
    Q = None if calibrator is None else calibrator.transform(P)
    stored = None if calibration is None else calibration.data.get("conformal")
    add_report_extras(
        report,
        P,
        y,
        Q=Q,
        conformal=None if stored is None else stored["params"],
        n_bins=n_bins,
        n_boot=n_boot,
    )
    if report["conformal"] is not None:
        report["conformal"]["fitted"] = stored["fitted"]
    return report
