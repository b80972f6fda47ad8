"""Labelled examples: validation, upsert by id or text hash (all or nothing), listing."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.config import Settings
from app.errors import InvalidInputError, field_error
from app.models import Example, Task
from app.schemas.data import ExampleIn, ImportResult
from app.services.uploads import RowErrors, check_row_count

_IN_CHUNK = 500


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


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
    by_id, by_hash = existing_examples(
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
    check_row_count(rows, settings)
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


def in_chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), _IN_CHUNK):
        yield values[start : start + _IN_CHUNK]


def existing_examples(
    session: Session, task: Task, external_ids: Iterable[str], hashes: Iterable[str]
) -> tuple[dict[str, Example], dict[str, Example]]:
    """Stored examples of the task with any of these ids or text hashes: (by id, by hash)."""
    by_id: dict[str, Example] = {}
    by_hash: dict[str, Example] = {}
    for column, values in ((Example.external_id, external_ids), (Example.text_hash, hashes)):
        for chunk in in_chunks(sorted(set(values))):
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
