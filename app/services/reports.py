"""Calibration reports of a task: a stored calibration on its held-out data, or the raw data.

The held-out rows are those the fit stored (``eval_example_ids``); a k-fold fit's out-of-fold
scores are recomputed on them (see :mod:`app.services.fitting`).

A calibration's report is computed once per (calibration, report options, held-out data) and
kept in a small LRU: a stored calibration never changes, and the held-out data is read on every
call and part of the key (a digest of its ids, distributions and labels), so a relabelled or
deleted example gives a new report rather than a stale one.
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

from sqlalchemy.orm import Session

from app.errors import InvalidInputError, TaskNotReadyError, field_error
from app.lru import LRU
from app.models import Calibration, Task
from app.services import report_extras
from app.services.elicitation import AnswerKey
from app.services.fitting import HELD_OUT_ESTIMATE, LabelledData, evaluate, load_labelled
from calibrators import calibration_report, calibrator_from_dict

REPORT_CACHE_SIZE = 16
# Reports of stored calibrations: (id, created_at, n_bins, binning, n_boot, band_boot, data
# digest) -> the report; copied out, never handed to callers.
REPORT_CACHE: LRU[dict[str, Any]] = LRU(REPORT_CACHE_SIZE)


def _data_digest(data: LabelledData) -> str:
    digest = hashlib.sha256()
    for array in (data.example_ids, data.P, data.y):
        digest.update(array.tobytes())
    return digest.hexdigest()


def held_out_calibrator(calibration: Calibration):
    """The calibrator that scored a holdout fit's held-out rows: the stored validation
    calibrator when the served one was refitted on every row, else the served one."""
    return calibrator_from_dict(
        calibration.data.get("validation_calibrator", calibration.calibrator)
    )


def task_report(
    session: Session,
    task: Task,
    calibration: Calibration | None,
    *,
    n_bins: int,
    binning: str,
    n_boot: int,
    band_boot: int | None = None,
) -> dict[str, Any]:
    """The full calibration report of ``calibration`` on its held-out data.

    Without a calibration, the raw distributions of all labelled data are reported.
    ``band_boot``: resamples of the smooth reliability band (default ``n_boot``).
    """
    band_boot = n_boot if band_boot is None else band_boot
    labels = list(task.labels)
    if calibration is None:
        data = load_labelled(session, task, "auto")
        if len(data.y) == 0:
            raise TaskNotReadyError(
                "the task has no labelled distributions to report on",
                [field_error("task", "import predictions or run an elicitation first")],
            )
        report = calibration_report(
            data.P, data.y, labels, n_bins=n_bins, binning=binning, n_boot=n_boot
        )
        report["calibration"] = None
        report["data"] = {"source": data.source, "n_eval": len(data.y), "held_out": False}
        report_extras.add_to_report(report, data.P, data.y, None, None, n_bins, band_boot)
        return report
    stored = calibration.data
    eval_ids = stored["eval_example_ids"]
    key = AnswerKey(**stored["answer_key"]) if stored.get("answer_key") else None
    data = load_labelled(session, task, stored["source"], example_ids=eval_ids, answer_key=key)
    if len(data.y) == 0:
        raise InvalidInputError(
            "the held-out data of this calibration is no longer stored",
            [field_error("calibration_id", "no held-out data")],
        )
    options = (n_bins, binning, n_boot, band_boot)
    cache_key = (calibration.id, calibration.created_at, *options, _data_digest(data))
    cached = REPORT_CACHE.get(cache_key)
    if cached is None:
        cached = _held_out_report(calibration, data, labels, *options)
        REPORT_CACHE.put(cache_key, cached)
    report = copy.deepcopy(cached)
    # The one part of a stored calibration that changes.
    report["calibration"]["is_active"] = calibration.is_active
    return report


def _held_out_report(
    calibration: Calibration,
    data: LabelledData,
    labels: list[str],
    n_bins: int,
    binning: str,
    n_boot: int,
    band_boot: int,
) -> dict[str, Any]:
    stored = calibration.data
    eval_ids = stored["eval_example_ids"]
    notes = []
    if len(data.y) < len(eval_ids):
        notes.append(
            f"{len(eval_ids) - len(data.y)} held-out examples are no longer stored "
            "or lost their label"
        )
    validation = stored["validation"]
    fit_request = calibration.fit_request
    if validation.get("folds"):
        # Out-of-fold scores are recomputed on the rows the fit used (all were evaluated).
        _, calibrator, _, _, _ = evaluate(
            data, calibration.method, fit_request["objective"], fit_request["eps"], validation
        )
    else:
        calibrator = held_out_calibrator(calibration)
    report = calibration_report(
        data.P, data.y, labels, calibrator=calibrator, n_bins=n_bins, binning=binning, n_boot=n_boot
    )
    report["calibration"] = {
        "id": calibration.id,
        "version": calibration.version,
        "method": calibration.method,
        "temperature": calibration.temperature,
        "eps": calibration.eps,
        "is_active": calibration.is_active,
    }
    report["data"] = {
        "source": stored["source"],
        "n_eval": len(data.y),
        "n_fit": stored["n_fit"],
        "held_out": True,
        "estimate": calibration.metrics.get("estimate", HELD_OUT_ESTIMATE),
        "refit": stored.get("refit", bool(validation.get("folds"))),
        "n_served_fit": stored.get("n_served_fit", stored["n_fit"]),
        "validation": validation,
    }
    report["comparison"] = calibration.metrics.get("comparison", {})
    report_extras.add_to_report(report, data.P, data.y, calibrator, calibration, n_bins, band_boot)
    if notes:
        report.setdefault("notes", []).extend(notes)
    return report
