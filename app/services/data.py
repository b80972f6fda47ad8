"""Labelled examples and imported distributions: validation, upsert, all-or-nothing.

Every import validates all rows first and raises one ``InvalidInputError`` listing the bad
rows (``details``: field, row, message); nothing is written unless every row is valid.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.config import Settings
from app.errors import InvalidInputError, field_error
from app.models import Elicitation, Example, Task
from app.schemas.data import ExampleIn, ImportResult, PredictionIn

MAX_ERRORS_REPORTED = 50
IMPORT_SOURCE = "imported"
IMPORT_KEY = "import"
_IN_CHUNK = 500


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class RowErrors:
    """Collects per-row errors and raises them together."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.errors: list[dict[str, Any]] = []
        self.count = 0

    def add(self, row: int, field: str, message: str) -> None:
        self.count += 1
        if len(self.errors) < MAX_ERRORS_REPORTED:
            self.errors.append(field_error(field, message, row=row))

    def add_validation(self, row: int, exc: ValidationError) -> None:
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "row"
            self.add(row, field, err["msg"])

    def raise_if_any(self) -> None:
        if not self.count:
            return
        first = self.errors[0]
        message = (
            f"{self.count} invalid {self.what} row(s); nothing was imported. "
            f"First: row {first['row']}, {first['field']}: {first['message']}"
        )
        raise InvalidInputError(message, self.errors)


# --- parsing uploads -----------------------------------------------------------------------


def parse_upload(content: bytes, content_type: str, filename: str | None = None) -> list[Any]:
    """Rows of a CSV or JSONL upload as dicts (row numbers are 0-based data rows)."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(
            "upload is not valid UTF-8", [field_error("file", str(exc))]
        ) from exc
    kind = _upload_kind(content_type, filename)
    if kind == "csv":
        return _parse_csv(text)
    return _parse_jsonl(text)


def _upload_kind(content_type: str, filename: str | None) -> str:
    name = (filename or "").lower()
    if "csv" in content_type or name.endswith(".csv"):
        return "csv"
    if any(t in content_type for t in ("jsonl", "ndjson", "json-lines")) or name.endswith(
        (".jsonl", ".ndjson")
    ):
        return "jsonl"
    raise InvalidInputError(
        "unsupported upload type: send CSV (text/csv, .csv) or JSONL "
        "(application/x-ndjson, .jsonl)",
        [field_error("file", f"content type {content_type!r}, file name {filename!r}")],
    )


def _parse_csv(text: str) -> list[Any]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if not reader.fieldnames:
        raise InvalidInputError("the CSV file is empty", [field_error("file", "no header row")])
    rows: list[Any] = []
    for record in reader:
        if None in record:  # more cells than header columns
            rows.append({"__error__": "row has more cells than the header"})
            continue
        rows.append({k.strip(): v for k, v in record.items() if k is not None})
    return rows


def _parse_jsonl(text: str) -> list[Any]:
    rows: list[Any] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line, parse_constant=_reject_constant))
        except (ValueError, RecursionError) as exc:
            rows.append({"__error__": f"invalid JSON: {exc}"})
    return rows


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a valid number")


_CSV_ITEM_COLUMNS = ("text", "example_id", "label")


def csv_probability_row(row: dict[str, Any]) -> dict[str, Any]:
    """Turn a flat CSV prediction row (one column per label) into the JSON item shape."""
    item = {k: v for k, v in row.items() if k in _CSV_ITEM_COLUMNS and v not in ("", None)}
    probabilities: dict[str, Any] = {}
    for key, value in row.items():
        if key in _CSV_ITEM_COLUMNS or key == "__error__":
            continue
        try:
            probabilities[key] = float(value) if value not in ("", None) else value
        except ValueError:
            probabilities[key] = value
    item["probabilities"] = probabilities
    if "__error__" in row:
        item["__error__"] = row["__error__"]
    return item


# --- examples ------------------------------------------------------------------------------


@dataclass
class _ValidExample:
    row: int
    external_id: str | None
    text: str
    text_hash: str
    label: str


def import_examples(
    session: Session, task: Task, rows: Sequence[Any], settings: Settings
) -> ImportResult:
    """Upsert labelled examples by id, or by text hash when no id is given. All or nothing."""
    valid = _validate_examples(task, rows, settings)
    by_id, by_hash = _existing_examples(
        session,
        task,
        (v.external_id for v in valid if v.external_id),
        (v.text_hash for v in valid),
    )
    errors = RowErrors("example")
    inserted = updated = unchanged = 0
    claimed_hashes: dict[str, int] = {}
    for item in valid:
        current, conflict = _match_stored(item, by_id, by_hash)
        if conflict:
            errors.add(item.row, "text", conflict)
            continue
        if claimed_hashes.setdefault(item.text_hash, item.row) != item.row:
            errors.add(item.row, "text", f"same text as row {claimed_hashes[item.text_hash]}")
            continue
        if current is None:
            example = Example(
                task_id=task.id,
                external_id=item.external_id,
                text=item.text,
                text_hash=item.text_hash,
                label=item.label,
            )
            session.add(example)
            by_hash[item.text_hash] = example
            if item.external_id:
                by_id[item.external_id] = example
            inserted += 1
            continue
        new_values = {"text": item.text, "text_hash": item.text_hash, "label": item.label}
        if item.external_id:
            new_values["external_id"] = item.external_id
        if all(getattr(current, k) == v for k, v in new_values.items()):
            unchanged += 1
            continue
        for key, value in new_values.items():
            setattr(current, key, value)
        updated += 1
    errors.raise_if_any()
    try:
        session.flush()
    except IntegrityError as exc:  # e.g. rows that swap texts between stored examples
        message = "rows conflict with each other or with stored examples (same id or same text)"
        raise InvalidInputError(message, [field_error("rows", message)]) from exc
    return ImportResult(received=len(rows), inserted=inserted, updated=updated, unchanged=unchanged)


def _match_stored(
    item: _ValidExample, by_id: dict[str, Example], by_hash: dict[str, Example]
) -> tuple[Example | None, str | None]:
    """The stored example an item updates (None: a new one), or why it conflicts.

    An item with an id updates the example with that id, or adopts an id-less example with the
    same text; without an id it updates the example with the same text.
    """
    by_text = by_hash.get(item.text_hash)
    if item.external_id is None:
        return by_text, None
    by_own_id = by_id.get(item.external_id)
    if by_text is None or by_text is by_own_id:
        return by_own_id, None
    if by_own_id is None and by_text.external_id is None:
        return by_text, None
    holder = f"example {by_text.external_id!r}" if by_text.external_id else "an example without id"
    return None, f"text already stored as {holder}"


def _validate_examples(task: Task, rows: Sequence[Any], settings: Settings) -> list[_ValidExample]:
    _check_row_count(rows, settings)
    errors = RowErrors("example")
    labels = set(task.labels)
    seen_ids: dict[str, int] = {}
    valid: list[_ValidExample] = []
    for i, raw in enumerate(rows):
        if isinstance(raw, dict) and "__error__" in raw:
            errors.add(i, "row", raw["__error__"])
            continue
        if isinstance(raw, dict) and raw.get("id") in ("", None):
            raw = {k: v for k, v in raw.items() if k != "id"}
        try:
            item = ExampleIn.model_validate(raw)
        except ValidationError as exc:
            errors.add_validation(i, exc)
            continue
        if item.label not in labels:
            errors.add(i, "label", f"unknown label {item.label!r}; task labels are {task.labels}")
        if len(item.text) > settings.max_text_length:
            errors.add(i, "text", f"text longer than {settings.max_text_length} characters")
        if item.id is not None:
            if item.id in seen_ids:
                errors.add(i, "id", f"duplicate id {item.id!r} (also row {seen_ids[item.id]})")
            seen_ids.setdefault(item.id, i)
        valid.append(_ValidExample(i, item.id, item.text, text_hash(item.text), item.label))
    errors.raise_if_any()
    return valid


def _check_row_count(rows: Sequence[Any], settings: Settings) -> None:
    if not rows:
        raise InvalidInputError("no rows to import", [field_error("rows", "empty")])
    if len(rows) > settings.max_upload_rows:
        raise InvalidInputError(
            f"too many rows: {len(rows)} > {settings.max_upload_rows}",
            [field_error("rows", f"at most {settings.max_upload_rows} rows per import")],
        )


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), _IN_CHUNK):
        yield values[start : start + _IN_CHUNK]


def _existing_examples(
    session: Session, task: Task, external_ids: Iterable[str], hashes: Iterable[str]
) -> tuple[dict[str, Example], dict[str, Example]]:
    """Stored examples of the task with any of these ids or text hashes: (by id, by hash)."""
    by_id: dict[str, Example] = {}
    by_hash: dict[str, Example] = {}
    for column, values in ((Example.external_id, external_ids), (Example.text_hash, hashes)):
        for chunk in _chunks(sorted(set(values))):
            query = select(Example).where(Example.task_id == task.id, column.in_(chunk))
            for example in session.scalars(query):
                by_hash[example.text_hash] = example
                if example.external_id:
                    by_id[example.external_id] = example
    return by_id, by_hash


def list_examples(session: Session, task: Task, limit: int, offset: int) -> list[Example]:
    return list(
        session.scalars(
            select(Example)
            .where(Example.task_id == task.id)
            .order_by(Example.id)
            .limit(limit)
            .offset(offset)
        )
    )


# --- imported predictions ------------------------------------------------------------------


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
    return [v / total for v in values]


def import_predictions(
    session: Session, task: Task, rows: Sequence[Any], settings: Settings
) -> ImportResult:
    """Store distributions elicited elsewhere (source ``imported``); all or nothing.

    An item names its example by ``text`` (created when absent) or by ``example_id`` (your id,
    which must exist). A given ``label`` sets the example's true label.
    """
    _check_row_count(rows, settings)
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

    by_id, by_hash = _existing_examples(
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
        for chunk in _chunks([ex.id for ex, _ in resolved])
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
