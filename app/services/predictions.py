"""Imported predictions: distributions elicited elsewhere, validated and stored (all or nothing).

Also owns the check of one probability distribution against a task's labels, and the per-task
counts of stored distributions by origin.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.config import Settings
from app.models import Elicitation, Example, Task
from app.schemas.data import ImportResult, PredictionIn
from app.services.examples import existing_examples, in_chunks, text_hash
from app.services.uploads import RowErrors, check_row_count

IMPORT_SOURCE = "imported"
IMPORT_KEY = "import"


def validate_distribution(
    probabilities: dict[str, float], labels: Sequence[str], errors: RowErrors, row: int
) -> list[float] | None:
    """The distribution in label order, renormalized; or None after recording errors."""
    unknown = [k for k in probabilities if k not in labels]
    missing = [label for label in labels if label not in probabilities]
    if unknown:
        errors.add(row, "probabilities", f"unknown label(s) {unknown}; task labels are {labels}")
    if missing:
        errors.add(row, "probabilities", f"missing label(s) {missing}")
    if unknown or missing:
        return None
    values = [float(probabilities[label]) for label in labels]
    total = sum(values)
    if not total > 0:
        errors.add(row, "probabilities", "all probabilities are zero")
        return None
    if not math.isfinite(total):
        errors.add(row, "probabilities", "the probabilities are too large: their sum overflows")
        return None
    return [v / total for v in values]


def import_predictions(
    session: Session, task: Task, rows: Sequence[Any], settings: Settings
) -> ImportResult:
    """Store distributions elicited elsewhere (source ``imported``); all or nothing.

    An item names its example by ``text`` (created when absent) or by ``example_id`` (your id,
    which must exist). A given ``label`` sets the example's true label.
    """
    check_row_count(rows, settings)
    labels = list(task.labels)
    errors = RowErrors("prediction")
    parsed: list[tuple[int, PredictionIn, list[float]]] = []
    for i, raw in enumerate(rows):
        if isinstance(raw, dict) and "__error__" in raw:
            errors.add(i, "row", raw["__error__"])
            continue
        try:
            item = PredictionIn.model_validate(raw)
        except ValidationError as exc:
            errors.add_validation(i, exc)
            continue
        if item.label is not None and item.label not in labels:
            errors.add(i, "label", f"unknown label {item.label!r}; task labels are {labels}")
        if item.text is not None and len(item.text) > settings.max_text_length:
            errors.add(i, "text", f"text longer than {settings.max_text_length} characters")
        distribution = validate_distribution(item.probabilities, labels, errors, i)
        if distribution is not None:
            parsed.append((i, item, distribution))
    errors.raise_if_any()

    by_id, by_hash = existing_examples(
        session,
        task,
        (item.example_id for _, item, _ in parsed if item.example_id is not None),
        (text_hash(item.text) for _, item, _ in parsed if item.text is not None),
    )

    resolved: list[tuple[Example, list[float]]] = []
    inserted_examples = 0
    for i, item, distribution in parsed:
        if item.example_id is not None:
            example = by_id.get(item.example_id)
            if example is None:
                errors.add(i, "example_id", f"no example with id {item.example_id!r}")
                continue
        else:
            digest = text_hash(item.text)
            example = by_hash.get(digest)
            if example is None:
                example = Example(task_id=task.id, text=item.text, text_hash=digest)
                session.add(example)
                by_hash[digest] = example
                inserted_examples += 1
        if item.label is not None:
            example.label = item.label
        resolved.append((example, distribution))
    errors.raise_if_any()
    session.flush()

    existing = {
        e.example_id: e
        for chunk in in_chunks([ex.id for ex, _ in resolved])
        for e in session.scalars(
            select(Elicitation).where(
                Elicitation.task_id == task.id,
                Elicitation.source == IMPORT_SOURCE,
                Elicitation.example_id.in_(chunk),
            )
        )
    }
    inserted = updated = unchanged = 0
    for example, distribution in resolved:
        stored = existing.get(example.id)
        if stored is None:
            stored = Elicitation(
                task_id=task.id,
                example_id=example.id,
                source=IMPORT_SOURCE,
                text_hash=example.text_hash,
                base_url=IMPORT_KEY,
                model=IMPORT_KEY,
                prompt_version=IMPORT_KEY,
                params_fingerprint=IMPORT_KEY,
                sample_index=0,
                status="ok",
                probabilities=distribution,
                repairs=[],
            )
            session.add(stored)
            existing[example.id] = stored
            inserted += 1
        elif stored.probabilities == distribution:
            unchanged += 1
        else:
            stored.probabilities = distribution
            updated += 1
    session.flush()
    return ImportResult(received=len(rows), inserted=inserted, updated=updated, unchanged=unchanged)


def distribution_counts(session: Session, task: Task) -> dict[str, int]:
    """Number of examples with an imported distribution, an LLM answer, and a failed one."""
    rows = session.execute(
        select(
            Elicitation.source,
            Elicitation.status,
            func.count(func.distinct(Elicitation.example_id)),
        )
        .where(Elicitation.task_id == task.id)
        .group_by(Elicitation.source, Elicitation.status)
    ).all()
    counts = {"imported": 0, "elicited": 0, "failed": 0}
    for source, status, n in rows:
        if status == "failed":
            counts["failed"] += n
        elif source == IMPORT_SOURCE:
            counts["imported"] += n
        else:
            counts["elicited"] += n
    return counts
