"""What each dashboard page shows, assembled from the services (reads only)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.config import Settings
from app.dashboard import charts, extras
from app.errors import InvalidInputError, TaskNotReadyError
from app.models import FINISHED_JOB_STATUSES, Calibration, Job, Task
from app.schemas.jobs import JobOut
from app.services import elicitation as elicitation_service
from app.services import fitting as fitting_service
from app.services import jobs as job_service
from app.services import reports as report_service
from app.services import tasks as task_service
from app.services import versions as version_service
from app.services.elicitation import ELICITATION_JOB
from app.services.monitoring import task_monitoring
from calibrators.report import METRIC_BETTER, METRIC_TITLES, SUMMARY_METRICS

METRICS = tuple((name, METRIC_TITLES[name], METRIC_BETTER[name]) for name in SUMMARY_METRICS)
SHOWN_JOB_ERRORS = 10
SHOWN_ANSWERS = 10
TEXT_EXCERPT_CHARS = 120
# Pages take metrics and their intervals from the stored fit; the report is recomputed only for
# its tables and curves, so it skips the bootstrap.
REPORT_N_BOOT = 0
# The smooth reliability curve's band is drawn, so it needs resamples.
SMOOTH_BAND_N_BOOT = 100


def tasks_overview(session: Session, settings: Settings) -> list[dict[str, Any]]:
    rows = []
    for task in task_service.list_tasks(session):
        out = task_service.task_out(session, task)
        monitoring = task_monitoring(session, task, settings)
        rows.append(
            {
                "task": out,
                "drift": monitoring.drift,
                "drift_reason": monitoring.drift_reason,
                "feedback": monitoring.labelled,
            }
        )
    return rows


def latest_job(session: Session, task: Task) -> Job | None:
    return session.scalar(
        select(Job)
        .where(Job.task_id == task.id, Job.kind == ELICITATION_JOB)
        .order_by(Job.created_at.desc())
        .limit(1)
    )


def job_progress(job_out: JobOut) -> dict[str, Any]:
    """The JSON the progress bar polls (and the server-side first render of the bar)."""
    finished = job_out.status in FINISHED_JOB_STATUSES
    return {
        "id": job_out.id,
        "status": job_out.status,
        "total": job_out.total,
        "done": job_out.done,
        "failed": job_out.failed,
        "succeeded": job_out.done - job_out.failed,
        "percent": round(100 * job_out.done / job_out.total, 1) if job_out.total else 100.0,
        "finished": finished,
        "cancel_requested": job_out.cancel_requested,
        "errors": [
            error.model_dump(include={"kind", "message", "example_id", "text", "raw_excerpt"})
            for error in job_out.errors[:SHOWN_JOB_ERRORS]
        ],
    }


def task_data(session: Session, task: Task) -> dict[str, Any]:
    job = latest_job(session, task)
    job_out = job_service.job_summary(job, session) if job is not None else None
    return {
        "task": task_service.task_out(session, task),
        "llm": task_service.task_llm_config(task),
        "job": job_out,
        "progress": job_progress(job_out) if job_out is not None else None,
        "answers": answer_rows(session, task),
    }


def answer_rows(session: Session, task: Task) -> list[dict[str, Any]]:
    """The newest LLM answers: text excerpt, top label, status, reasoning, answer agreement."""
    labels = list(task.labels)
    rows = []
    for answer, example in elicitation_service.recent_answers(session, task, SHOWN_ANSWERS):
        probabilities = answer.probabilities
        top = None
        if probabilities:
            index = max(range(len(probabilities)), key=probabilities.__getitem__)
            top = {"label": labels[index], "probability": probabilities[index]}
        rows.append(
            {
                "text": example.text[:TEXT_EXCERPT_CHARS],
                "truncated": len(example.text) > TEXT_EXCERPT_CHARS,
                "label": example.label,
                "sample_index": answer.sample_index,
                "status": answer.status,
                "top": top,
                "repairs": answer.repairs or [],
                "reasoning": answer.reasoning,
                "answer_agrees": answer.answer_agrees,
                "error": (answer.error or {}).get("message"),
                "raw_text": answer.raw_text,
            }
        )
    return rows


def pick_calibration(
    session: Session, task: Task, calibration_id: int | None
) -> Calibration | None:
    """The requested calibration, else the active one, else the newest."""
    if calibration_id is not None:
        return version_service.get_calibration(session, task, calibration_id)
    active = task_service.active_calibration(session, task)
    if active is not None:
        return active
    versions = version_service.list_calibrations(session, task)
    return versions[0] if versions else None


def _report(
    session: Session,
    task: Task,
    calibration: Calibration | None,
    n_bins: int,
    binning: str,
    band_boot: int = SMOOTH_BAND_N_BOOT,
) -> tuple[dict[str, Any] | None, str | None]:
    try:
        report = report_service.task_report(
            session,
            task,
            calibration,
            n_bins=n_bins,
            binning=binning,
            n_boot=REPORT_N_BOOT,
            band_boot=band_boot,
        )
    except (InvalidInputError, TaskNotReadyError) as exc:
        return None, exc.message
    return report, None


def metric_rows(calibration: Calibration) -> list[dict[str, Any]]:
    metrics = calibration.metrics
    before, after = metrics.get("before") or {}, metrics.get("after") or {}
    ci_before, ci_after = metrics.get("ci_before") or {}, metrics.get("ci_after") or {}
    rows = []
    for key, name, better in METRICS:
        rows.append(
            {
                "key": key,
                "name": name,
                "better": better,
                "before": before.get(key),
                "after": after.get(key),
                "ci_before": ci_before.get(key),
                "ci_after": ci_after.get(key),
                "improved": _improved(before.get(key), after.get(key), better),
            }
        )
    return rows


def _improved(before: float | None, after: float | None, better: str) -> bool | None:
    if before is None or after is None or before == after:
        return None
    if better == "lower":
        return after < before
    if better == "higher":
        return after > before
    return abs(after) < abs(before)


def comparison_table(calibration: Calibration) -> dict[str, Any]:
    """Held-out scores of raw, this calibrator and the other calibrators, side by side.

    Fits stored before a calibrator joined the comparison show an empty column for it.
    """
    metrics = calibration.metrics
    comparison = metrics.get("comparison") or {}
    others = [m for m in fitting_service.COMPARED_METHODS if m != calibration.method]
    columns = ["raw", calibration.method, *others]
    sources = {"raw": metrics.get("before") or {}, calibration.method: metrics.get("after") or {}}
    errors = {}
    for method in columns[2:]:
        entry = comparison.get(method) or {}
        if "error" in entry:
            errors[method] = entry["error"]
        sources[method] = entry
    rows = []
    for key, name, better in METRICS:
        values = [sources[column].get(key) for column in columns]
        best = _best_index(values[1:], better)
        rows.append(
            {
                "name": name,
                "values": values,
                "best": None if best is None else best + 1,
            }
        )
    titles = [
        f"{column} (baseline)" if column == fitting_service.BASELINE_METHOD else column
        for column in columns
    ]
    return {"columns": columns, "titles": titles, "rows": rows, "errors": errors}


def _best_index(values: list[float | None], better: str) -> int | None:
    scored = [(i, v) for i, v in enumerate(values) if v is not None]
    if len(scored) < 2:
        return None
    if better == "lower":
        return min(scored, key=lambda item: item[1])[0]
    if better == "higher":
        return max(scored, key=lambda item: item[1])[0]
    return min(scored, key=lambda item: abs(item[1]))[0]


def fit_view(
    session: Session, task: Task, calibration_id: int | None, n_bins: int, binning: str
) -> dict[str, Any]:
    calibration = pick_calibration(session, task, calibration_id)
    view: dict[str, Any] = {
        "calibration": calibration,
        "report_error": None,
        "reliability_svg": None,
        "reliability": None,
        "metric_rows": None,
        "comparison": None,
    }
    report, view["report_error"] = _report(session, task, calibration, n_bins, binning)
    if report is not None:
        raw = report["raw"]["reliability"]
        calibrated = (report.get("calibrated") or {}).get("reliability")
        view["reliability"] = {"raw": raw, "calibrated": calibrated}
        view["reliability_svg"] = extras.reliability_with_smooth_svg(
            raw, calibrated, report.get("smooth_ece")
        )
        view["report"] = report
        view["extras"] = extras.extras_view(report)
    if calibration is not None:
        view["metric_rows"] = metric_rows(calibration)
        view["comparison"] = comparison_table(calibration)
    return view


def operating_points_view(
    session: Session, task: Task, calibration_id: int | None, label: str | None
) -> dict[str, Any]:
    calibration = pick_calibration(session, task, calibration_id)
    report, error = _report(session, task, calibration, 15, "uniform", band_boot=0)
    labels = list(task.labels)
    chosen = label if label in labels else labels[0]
    view: dict[str, Any] = {
        "calibration": calibration,
        "label": chosen,
        "labels": labels,
        "report_error": error,
        "points": None,
        "svg": None,
        "scored_on": None,
    }
    if report is not None:
        points = report["operating_points"][chosen]
        view["points"] = points
        view["scored_on"] = report.get("operating_points_on")
        view["n_eval"] = report.get("n")
        view["svg"] = charts.precision_recall_svg(
            points["curve"], points["precision_targets"], title=f"class “{chosen}” (one vs rest)"
        )
    return view
