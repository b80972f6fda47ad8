"""Uploads: CSV or JSONL bodies parsed into rows, row-count limits, per-row error collection.

Every import validates all rows first and raises one ``InvalidInputError`` listing the bad
rows (``details``: field, row, message); nothing is written unless every row is valid.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from app.config import Settings
from app.errors import InvalidInputError, field_error

MAX_ERRORS_REPORTED = 50


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


def check_row_count(rows: Sequence[Any], settings: Settings) -> None:
    if not rows:
        raise InvalidInputError("no rows to import", [field_error("rows", "empty")])
    if len(rows) > settings.max_upload_rows:
        raise InvalidInputError(
            f"too many rows: {len(rows)} > {settings.max_upload_rows}",
            [field_error("rows", f"at most {settings.max_upload_rows} rows per import")],
        )


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
            rows.append(json.loads(line, parse_constant=reject_json_constant))
        except (ValueError, RecursionError) as exc:
            rows.append({"__error__": f"invalid JSON: {exc}"})
    return rows


def reject_json_constant(name: str) -> Any:
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
