"""Fitting calibrators on a task's stored distributions, stored as new versions.

Held-out evaluation. With a holdout fraction the labelled examples (ordered by id) are
permuted with ``numpy.random.default_rng(seed)``; the first ``round(holdout * n)`` are held
out and scored by a calibrator fitted on the rest. With k folds, every example is scored by a
calibrator fitted on the other folds (out-of-fold metrics). The stored metrics and decision
curves are that held-out / out-of-fold estimate of the procedure.

The served calibrator is then refitted on every labelled example (``refit``, the default; k
folds always do). With ``refit: false`` a holdout fit serves the calibrator fitted on the
other rows, and that calibrator is the one scored. A refitted holdout fit also stores the
validation calibrator (``data.validation_calibrator``) so that its report scores the held-out
rows with the calibrator that never saw them.

Every fit is compared, on the same held-out rows, with the other calibrators, among them the
re-softmax baseline ``softmax(p / T)``.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.config import Settings
from app.errors import ConflictError, TaskNotReadyError, field_error
from app.llm.samples import mean_distribution
from app.models import Calibration, Elicitation, Example, Task
from app.schemas.calibrations import (
    FitRequest,
)
from app.services import conformal as conformal_service
from app.services import prior as prior_service
from app.services.elicitation import AnswerKey, answer_key_filter, current_answer_key
from app.services.predictions import IMPORT_SOURCE
from app.services.versions import activate
from calibrators import (
    IsotonicCalibration,
    ResoftmaxScaling,
    TemperatureScaling,
    VectorScaling,
    calibration_report,
)
from calibrators._validation import invalid_rows
from calibrators.report import SUMMARY_METRICS
from calibrators.splits import fold_assignment, holdout_split
from calibrators.thresholds import decision_curves

DEFAULT_VECTOR_EPS = 1e-3
COMPARED_METHODS = ("temperature", "vector", "isotonic", "resoftmax")
BASELINE_METHOD = "resoftmax"
# What the stored metrics estimate, by validation scheme.
HELD_OUT_ESTIMATE = "held_out"
OUT_OF_FOLD_ESTIMATE = "out_of_fold"


MAX_EXAMPLES_NAMED = 20


@dataclass
class LabelledData:
    """Labelled distributions of a task, rows in example-id order."""

    example_ids: np.ndarray
    P: np.ndarray
    y: np.ndarray
    source: str
    answer_key: dict[str, Any] | None


# --- data ----------------------------------------------------------------------------------


def load_labelled(
    session: Session,
    task: Task,
    source: str,
    example_ids: Sequence[int] | None = None,
    answer_key: AnswerKey | None = None,
) -> LabelledData:
    """Labelled distributions from ``source`` ("imported", "elicited" or "auto").

    Elicited answers are those of ``answer_key`` (default: the task's current LLM and prompt).
    """
    key = answer_key or current_answer_key(task)
    if source == "auto":
        source = (
            "elicited" if key is not None and _count_elicited(session, task, key) else "imported"
        )
    if source == "elicited":
        return _load_elicited(session, task, key, example_ids)
    return _load_imported(session, task, example_ids)


def _count_elicited(session: Session, task: Task, key: AnswerKey) -> int:
    return session.scalar(
        select(func.count())
        .select_from(Elicitation)
        .where(*answer_key_filter(task, key), Elicitation.status != "failed")
    )


def _labelled_rows(session: Session, filters: list[Any], example_ids):
    query = (
        select(Elicitation.example_id, Example.label, Elicitation.probabilities)
        .join(Example, Example.id == Elicitation.example_id)
        .where(*filters, Example.label.is_not(None), Elicitation.status != "failed")
        .order_by(Elicitation.example_id, Elicitation.sample_index)
    )
    rows = session.execute(query).all()
    if example_ids is not None:
        wanted = set(int(i) for i in example_ids)
        rows = [r for r in rows if r[0] in wanted]
    return rows


def _assemble(rows, task: Task, source: str, answer_key) -> LabelledData:
    label_index = {label: i for i, label in enumerate(task.labels)}
    samples: dict[int, list[list[float]]] = defaultdict(list)
    labels: dict[int, int] = {}
    for example_id, label, probabilities in rows:
        if label not in label_index or probabilities is None:
            continue
        samples[example_id].append(probabilities)
        labels[example_id] = label_index[label]
    ids = np.array(sorted(samples), dtype=np.int64)
    K = len(task.labels)
    means = [mean_distribution(samples[i]) for i in ids]
    P = np.array(means, dtype=np.float64).reshape(len(ids), K)
    y = np.array([labels[i] for i in ids], dtype=np.int64)
    return LabelledData(ids, P, y, source, answer_key)


def _load_imported(session: Session, task: Task, example_ids) -> LabelledData:
    filters = [Elicitation.task_id == task.id, Elicitation.source == IMPORT_SOURCE]
    return _assemble(_labelled_rows(session, filters, example_ids), task, "imported", None)


def _load_elicited(
    session: Session, task: Task, key: AnswerKey | None, example_ids
) -> LabelledData:
    if key is None:
        raise TaskNotReadyError(
            "the task has no LLM configured, so it has no elicited distributions",
            [field_error("source", "use 'imported' or configure the task's llm")],
        )
    rows = _labelled_rows(session, answer_key_filter(task, key), example_ids)
    return _assemble(rows, task, "elicited", dataclasses.asdict(key))


# --- fitting -------------------------------------------------------------------------------


def make_calibrator(method: str, objective: str, eps: float | str, seed: int):
    if method == "temperature":
        return TemperatureScaling(objective=objective, eps=eps, random_state=seed)
    if method == "vector":
        return VectorScaling(eps=DEFAULT_VECTOR_EPS if eps == "auto" else eps)
    if method == "isotonic":
        return IsotonicCalibration()
    if method == "resoftmax":
        return ResoftmaxScaling(objective=objective)
    raise ValueError(f"unknown method {method!r}")


class _OutOfFold:
    """Adapter presenting out-of-fold calibrated probabilities as a fitted calibrator."""

    def __init__(self, calibrated: np.ndarray, final) -> None:
        self._calibrated = calibrated
        self._final = final

    def transform(self, P: np.ndarray) -> np.ndarray:
        if P.shape != self._calibrated.shape:
            raise ValueError("out-of-fold predictions exist only for the evaluated rows")
        return self._calibrated

    def to_dict(self) -> dict[str, Any]:
        return self._final.to_dict()


def evaluate(
    data: LabelledData,
    method: str,
    objective: str,
    eps,
    validation: dict[str, Any],
    refit: bool = False,
) -> tuple[Any, Any, np.ndarray, np.ndarray, np.ndarray]:
    """Fit and score. Returns (served calibrator, evaluator, eval rows, fit rows, eval ids).

    The evaluator scores the eval rows without having seen them. The served calibrator is
    fitted on every row with folds, or with a holdout when ``refit``; otherwise it is the
    evaluator.
    """
    n = len(data.y)
    seed = validation["seed"]
    if validation.get("folds"):
        fold_of = fold_assignment(n, validation["folds"], seed)
        calibrated = np.empty_like(data.P)
        for fold in range(validation["folds"]):
            test = fold_of == fold
            model = make_calibrator(method, objective, eps, seed)
            model.fit(data.P[~test], data.y[~test])
            calibrated[test] = model.transform(data.P[test])
        final = make_calibrator(method, objective, eps, seed).fit(data.P, data.y)
        everything = np.arange(n)
        return final, _OutOfFold(calibrated, final), everything, everything, data.example_ids
    fit_rows, eval_rows = holdout_split(n, validation["holdout"], seed)
    model = make_calibrator(method, objective, eps, seed).fit(data.P[fit_rows], data.y[fit_rows])
    served = make_calibrator(method, objective, eps, seed).fit(data.P, data.y) if refit else model
    return served, model, eval_rows, fit_rows, data.example_ids[eval_rows]


def _check_stored_rows(session: Session, data: LabelledData) -> None:
    """Refuse stored distributions no calibrator accepts, naming their examples.

    Imports reject such rows today; older data may still hold them. The error names each
    example by its id (its own id, or ``#<row id>`` when it has none), never by array index.
    """
    bad = invalid_rows(data.P)
    if not bad.size:
        return
    ids = [int(i) for i in data.example_ids[bad[:MAX_EXAMPLES_NAMED]]]
    external = dict(
        session.execute(select(Example.id, Example.external_id).where(Example.id.in_(ids))).all()
    )
    names = [external.get(i) or f"#{i}" for i in ids]
    more = f" (and {bad.size - len(names)} more)" if bad.size > len(names) else ""
    raise TaskNotReadyError(
        f"cannot fit: the stored distributions of example(s) {names}{more} are invalid "
        "(negative, NaN, infinite, all zero or overflowing): import them again",
        [field_error("examples", "invalid stored distribution", example=name) for name in names],
    )


def _summary(metrics: dict[str, Any]) -> dict[str, Any]:
    return {name: metrics.get(name) for name in SUMMARY_METRICS}


def fit_task(session: Session, task: Task, request: FitRequest, settings: Settings) -> Calibration:
    """Fit, score on held-out data, store a new version, and activate it if asked."""
    data = load_labelled(session, task, request.source)
    n = len(data.y)
    if n < settings.min_fit_examples:
        raise TaskNotReadyError(
            f"not enough labelled distributions to fit: {n} available from source "
            f"{data.source!r}, at least {settings.min_fit_examples} needed",
            {"available": n, "needed": settings.min_fit_examples, "source": data.source},
        )
    _check_stored_rows(session, data)
    validation = request.validation.model_dump()
    if validation.get("folds") and validation["folds"] > n:
        raise TaskNotReadyError(
            f"{validation['folds']} folds need at least as many examples; {n} available",
            [field_error("validation.folds", "more folds than examples")],
        )
    try:
        served, evaluator, eval_rows, fit_rows, eval_ids = evaluate(
            data, request.method, request.objective, request.eps, validation, request.refit
        )
    except ValueError as exc:
        # The request is valid (its schema checked it): the task's data cannot support it.
        raise TaskNotReadyError(f"cannot fit: {exc}", [field_error("data", str(exc))]) from exc
    labels = list(task.labels)
    P_eval, y_eval = data.P[eval_rows], data.y[eval_rows]
    report = calibration_report(P_eval, y_eval, labels, calibrator=evaluator)
    calibrated_eval = evaluator.transform(P_eval)
    comparison = {}
    for method in COMPARED_METHODS:
        if method == request.method:
            continue
        try:
            _, other, rows, _, _ = evaluate(
                data, method, request.objective, request.eps, validation
            )
            other_report = calibration_report(
                data.P[rows], data.y[rows], labels, calibrator=other, n_boot=0
            )
            comparison[method] = _summary(other_report["calibrated"]["metrics"])
        except ValueError as exc:
            comparison[method] = {"error": str(exc)}
        if method == BASELINE_METHOD:
            comparison[method]["baseline"] = True
    fitted = served.to_dict()
    folds = bool(validation.get("folds"))
    # With folds the evaluator is out of fold and the served calibrator always saw every row.
    refitted = served is not evaluator
    extra_data = {}
    if refitted and not folds:
        extra_data["validation_calibrator"] = evaluator.to_dict()
    calibration = Calibration(
        task_id=task.id,
        version=_next_version(session, task),
        method=request.method,
        objective=request.objective if request.method in ("temperature", "resoftmax") else "nll",
        temperature=getattr(served, "temperature_", None),
        eps=getattr(served, "eps_", None),
        calibrator=fitted,
        fit_request=request.model_dump(mode="json"),
        data={
            "source": data.source,
            "answer_key": data.answer_key,
            "n_labelled": n,
            "n_fit": len(fit_rows),
            "n_eval": len(eval_rows),
            "refit": refitted,
            "n_served_fit": n if refitted else len(fit_rows),
            "validation": validation,
            "eval_example_ids": [int(i) for i in eval_ids],
            "class_counts_eval": report.get("class_counts"),
            "decision_curves": decision_curves(calibrated_eval, y_eval, labels),
            **extra_data,
            "conformal": conformal_service.fit_conformal(
                request.conformal, calibrated_eval, y_eval
            ),
            "class_prior": prior_service.training_prior(data.y, len(labels)),
        },
        metrics={
            "estimate": OUT_OF_FOLD_ESTIMATE if folds else HELD_OUT_ESTIMATE,
            "before": report["raw"]["metrics"],
            "after": report["calibrated"]["metrics"],
            "ci_before": report["raw"].get("ci"),
            "ci_after": report["calibrated"].get("ci"),
            "fit": _fit_diagnostics(served),
            "comparison": comparison,
        },
        conventions=report["conventions"],
    )
    session.add(calibration)
    try:
        session.flush()
    except IntegrityError as exc:
        raise ConflictError("another fit of this task finished at the same time; retry") from exc
    if request.activate:
        activate(session, task, calibration)
    return calibration


def _fit_diagnostics(model) -> dict[str, Any]:
    names = ("n_iter_", "converged_", "loss_before_", "loss_after_", "at_bound_")
    return {name.rstrip("_"): _plain(getattr(model, name, None)) for name in names}


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _next_version(session: Session, task: Task) -> int:
    current = session.scalar(
        select(func.max(Calibration.version)).where(Calibration.task_id == task.id)
    )
    return (current or 0) + 1
