"""Uploads: CSV or JSONL bodies parsed into rows as they stream in, row and cell limits,
per-row error collection.

Every import validates all rows first and raises one ``InvalidInputError`` listing the bad
rows (``details``: field, row, message); nothing is written unless every row is valid.
"""

from __future__ import annotations

import codecs
import csv
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.config import Settings
from app.db import retry_on_write_race
from app.errors import InvalidInputError, field_error
from app.models import Task
from app.schemas.data import ImportResult
from app.services.tasks import get_task

MAX_ERRORS_REPORTED = 50
# Uploaded files are read and parsed this many bytes at a time.
UPLOAD_CHUNK_BYTES = 2**20

Importer = Callable[[Session, Task, list[Any], Settings], ImportResult]


def import_rows(
    session: Session, task_name: str, rows: list[Any], settings: Settings, importer: Importer
) -> ImportResult:
    """Run an all-or-nothing import service on the named task (blocking: call in a thread).

    Identical imports at the same moment race on the same unique keys: the losers run again
    and find the winner's rows (``retry_on_write_race``).
    """

    def attempt(session: Session) -> ImportResult:
        return importer(session, get_task(session, task_name), rows, settings)

    return retry_on_write_race(session, attempt)


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


# A JSONL line holds one text (up to max_text_length characters, up to 6 per character once
# escaped as \uXXXX) plus short fields; a CSV header holds short column names.
_JSONL_ESCAPE_FACTOR = 6
_ROW_SLACK_CHARS = 65_536


@dataclass(frozen=True)
class UploadLimits:
    """Limits checked while an upload streams in: rows, and characters per CSV cell."""

    max_rows: int
    max_cell_chars: int

    @classmethod
    def of(cls, settings: Settings) -> UploadLimits:
        return cls(max_rows=settings.max_upload_rows, max_cell_chars=settings.max_text_length)


class UploadParser:
    """Rows of a CSV or JSONL upload, parsed as its bytes arrive (``feed``, then ``close``).

    Rows are dicts (CSV: by header) numbered from 0 (the first data row); a row that cannot be
    parsed becomes ``{"__error__": message}`` for the import to report. The limits stop the
    upload as soon as a row breaks them (422 naming the row): more than ``max_rows`` rows, a
    CSV cell longer than ``max_cell_chars``, or a row that grows past every such cell.
    """

    def __init__(self, kind: str, limits: UploadLimits) -> None:
        self.kind = kind
        self.limits = limits
        self.rows: list[Any] = []
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self._pending = ""
        self._scanned = 0  # characters of _pending already scanned for a record end
        self._in_quotes = False
        self._header: list[str] | None = None

    def feed(self, chunk: bytes) -> None:
        try:
            self._pending += self._decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            raise InvalidInputError(
                "upload is not valid UTF-8", [field_error("file", str(exc))]
            ) from exc
        self._drain()

    def close(self) -> list[Any]:
        self.feed(b"")
        try:
            self._pending += self._decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise InvalidInputError(
                "upload is not valid UTF-8", [field_error("file", str(exc))]
            ) from exc
        if self._pending:
            self._record(self._pending)
            self._pending = ""
        if self.kind == "csv" and self._header is None:
            raise InvalidInputError("the CSV file is empty", [field_error("file", "no header row")])
        return self.rows

    @property
    def _row(self) -> int:
        return len(self.rows)

    def _max_record_chars(self) -> int:
        if self.kind == "jsonl":
            return _JSONL_ESCAPE_FACTOR * self.limits.max_cell_chars + _ROW_SLACK_CHARS
        if self._header is None:
            return _ROW_SLACK_CHARS
        # Every cell at its limit, each quote doubled, quoted, plus a separator.
        return len(self._header) * (2 * self.limits.max_cell_chars + 3) + 2

    def _drain(self) -> None:
        """Split off every complete record: a newline outside CSV quotes ends one."""
        pending, start, position = self._pending, 0, self._scanned
        while True:
            newline = pending.find("\n", position)
            if newline < 0:
                break
            if self.kind == "csv":
                # Doubled quotes inside a quoted cell flip the state twice: parity is enough.
                self._in_quotes ^= pending.count('"', position, newline) % 2 == 1
                if self._in_quotes:
                    position = newline + 1
                    continue
            self._record(pending[start : newline + 1])
            start = position = newline + 1
        if self.kind == "csv":
            self._in_quotes ^= pending.count('"', position) % 2 == 1
        self._pending = pending[start:]
        self._scanned = len(self._pending)
        if len(self._pending) > self._max_record_chars():
            self._too_long()

    def _too_long(self) -> None:
        what = "row" if self._header is not None or self.kind == "jsonl" else "header row"
        raise InvalidInputError(
            f"row {self._row}: the {what} is longer than any valid row "
            f"(cells of at most {self.limits.max_cell_chars} characters)",
            [field_error("row", "too long", row=self._row)],
        )

    def _record(self, text: str) -> None:
        if len(text) > self._max_record_chars():
            self._too_long()
        if self.kind == "jsonl":
            if not text.strip():
                return
            try:
                row = json.loads(text, parse_constant=reject_json_constant)
            except (ValueError, RecursionError) as exc:
                row = {"__error__": f"invalid JSON: {exc}"}
            self._append(row)
            return
        try:
            cells = next(csv.reader([text]))
        except csv.Error as exc:
            raise InvalidInputError(
                f"row {self._row}: {exc}", [field_error("row", str(exc), row=self._row)]
            ) from exc
        if not cells:  # a blank line, which csv.DictReader skips too
            return
        if self._header is None:
            self._header = [cell.strip() for cell in cells]
            return
        for column, cell in zip(self._header, cells, strict=False):
            if len(cell) > self.limits.max_cell_chars:
                raise InvalidInputError(
                    f"row {self._row}: cell {column!r} longer than "
                    f"{self.limits.max_cell_chars} characters",
                    [field_error(column, "cell too long", row=self._row)],
                )
        if len(cells) > len(self._header):
            self._append({"__error__": "row has more cells than the header"})
            return
        padded = cells + [None] * (len(self._header) - len(cells))
        self._append(dict(zip(self._header, padded, strict=True)))

    def _append(self, row: Any) -> None:
        if len(self.rows) >= self.limits.max_rows:
            raise InvalidInputError(
                f"too many rows: more than {self.limits.max_rows}",
                [field_error("rows", f"at most {self.limits.max_rows} rows per import")],
            )
        self.rows.append(row)


def upload_parser(content_type: str, filename: str | None, limits: UploadLimits) -> UploadParser:
    """A parser for a CSV (text/csv, .csv) or JSONL (application/x-ndjson, .jsonl) upload."""
    return UploadParser(_upload_kind(content_type, filename), limits)


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
