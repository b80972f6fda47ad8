"""Reading distribution files for ``verbcal fit`` / ``verbcal report``: no server, no database.

File formats (chosen by extension: ``.csv``; ``.jsonl``/``.ndjson``/``.json``; else sniffed):

- CSV with a header: a ``label`` column (the true label) and one column per class holding its
  probability. The class columns are every column except ``label``, ``id`` and ``text``, in
  header order, unless ``labels`` is given: then exactly those columns, in that order (other
  columns are ignored).
- JSONL: one object per line, ``{"label": "...", "probabilities": {"a": 0.7, "b": 0.3}}``. The
  class order is ``labels`` if given, else the key order of the first line; every line must
  have exactly those keys.

Probabilities are non-negative finite numbers, not all zero in a row; rows need not sum to 1
(the calibrators renormalize). Any bad row raises :class:`DataFileError` naming the line and
column.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

LABEL_COLUMN = "label"
NON_CLASS_COLUMNS = frozenset({"label", "id", "text"})
JSONL_SUFFIXES = frozenset({".jsonl", ".ndjson", ".json"})
# Progress is reported in chunks: a callback per line would dominate the reading time.
PROGRESS_CHUNK_CHARS = 1 << 16

ProgressCallback = Callable[[int], None]


class DataFileError(ValueError):
    """A problem in a distributions file; ``line`` is 1-based, ``column`` a name if known."""

    def __init__(
        self, message: str, *, path: str | Path, line: int | None = None, column: str | None = None
    ) -> None:
        self.path = str(path)
        self.line = line
        self.column = column
        self.problem = message
        where = self.path
        if line is not None:
            where += f", line {line}"
        if column is not None:
            where += f", column {column!r}"
        super().__init__(f"{where}: {message}")


def parse_labels_option(value: str | None) -> list[str] | None:
    """``"a,b,c"`` → ``["a", "b", "c"]`` (None or empty → None); duplicates are an error."""
    if value is None or not value.strip():
        return None
    labels = [part.strip() for part in value.split(",")]
    if any(not label for label in labels):
        raise ValueError(f"--labels has an empty label: {value!r}")
    if len(set(labels)) != len(labels):
        raise ValueError(f"--labels has duplicates: {value!r}")
    if len(labels) < 2:
        raise ValueError("--labels needs at least two labels")
    return labels


def read_distributions(
    path: str | Path,
    labels: Sequence[str] | None = None,
    on_progress: ProgressCallback | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read ``(P, y, labels)`` from a CSV or JSONL file (see the module docstring).

    ``P`` is float64 ``(n, K)``, ``y`` int64 indices into ``labels``. ``on_progress`` is called
    with the number of characters read since its last call, roughly every 64 KiB.
    """
    path = Path(path)
    if labels is not None:
        labels = list(labels)
        if len(labels) < 2 or len(set(labels)) != len(labels):
            raise ValueError("labels must hold at least two distinct labels")
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise DataFileError(f"cannot open the file: {exc.strerror}", path=path) from exc
    with handle:
        lines = _counting(handle, on_progress)
        try:
            if _is_jsonl(path, handle):
                P, y, labels = _read_jsonl(path, lines, labels)
            else:
                P, y, labels = _read_csv(path, lines, labels)
        except UnicodeDecodeError as exc:
            raise DataFileError("the file is not UTF-8 text", path=path) from exc
    if not y.size:
        raise DataFileError("the file holds no rows", path=path)
    return P, y, labels


def _counting(lines: Iterable[str], on_progress: ProgressCallback | None) -> Iterator[str]:
    if on_progress is None:
        yield from lines
        return
    pending = 0
    for line in lines:
        pending += len(line)
        if pending >= PROGRESS_CHUNK_CHARS:
            on_progress(pending)
            pending = 0
        yield line
    on_progress(pending)


def _is_jsonl(path: Path, handle) -> bool:
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return True
    if suffix == ".csv":
        return False
    start = handle.tell()
    head = handle.read(4096).lstrip()
    handle.seek(start)
    return head.startswith("{")


def _probability(raw: Any, path: Path, line: int, column: str, *, from_text: bool) -> float:
    """A probability from a CSV cell (``from_text``) or a JSON number (strings refused)."""
    if isinstance(raw, bool) or raw is None or (isinstance(raw, str) and not from_text):
        raise DataFileError(f"not a number: {raw!r}", path=path, line=line, column=column)
    if isinstance(raw, str):
        text = raw.strip()
        if not text:
            raise DataFileError("missing value", path=path, line=line, column=column)
        try:
            value = float(text)
        except ValueError:
            raise DataFileError(
                f"not a number: {raw!r}", path=path, line=line, column=column
            ) from None
    elif isinstance(raw, int | float):
        value = float(raw)
    else:
        raise DataFileError(f"not a number: {raw!r}", path=path, line=line, column=column)
    if not math.isfinite(value):
        raise DataFileError(f"not a finite number: {raw!r}", path=path, line=line, column=column)
    if value < 0:
        raise DataFileError(f"negative probability {value!r}", path=path, line=line, column=column)
    return value


def _check_row(row: list[float], path: Path, line: int) -> None:
    if not any(row):
        raise DataFileError("all probabilities are zero", path=path, line=line)


def _label_index(raw: Any, index: dict[str, int], path: Path, line: int) -> int:
    if not isinstance(raw, str) or not raw.strip():
        raise DataFileError("missing label", path=path, line=line, column=LABEL_COLUMN)
    label = raw.strip()
    if label not in index:
        raise DataFileError(
            f"unknown label {label!r}; the labels are {list(index)}",
            path=path,
            line=line,
            column=LABEL_COLUMN,
        )
    return index[label]


def _read_csv(
    path: Path, lines: Iterator[str], labels: list[str] | None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None:
        raise DataFileError("the file is empty", path=path)
    header = [name.strip() for name in header]
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise DataFileError(f"duplicate columns {duplicates}", path=path, line=1)
    if LABEL_COLUMN not in header:
        raise DataFileError(f"missing column {LABEL_COLUMN!r} (the true label)", path=path, line=1)
    if labels is None:
        labels = [name for name in header if name not in NON_CLASS_COLUMNS]
        if len(labels) < 2:
            raise DataFileError(
                f"need at least two class columns besides {sorted(NON_CLASS_COLUMNS)}; "
                f"found {labels}",
                path=path,
                line=1,
            )
    else:
        missing = [label for label in labels if label not in header]
        if missing:
            raise DataFileError(f"missing class columns {missing}", path=path, line=1)
    label_at = header.index(LABEL_COLUMN)
    class_at = [header.index(label) for label in labels]
    index = {label: k for k, label in enumerate(labels)}
    rows: list[list[float]] = []
    targets: list[int] = []
    for record in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in record):
            continue
        if len(record) != len(header):
            raise DataFileError(
                f"{len(record)} fields where the header has {len(header)}", path=path, line=line
            )
        targets.append(_label_index(record[label_at], index, path, line))
        row = [_probability(record[at], path, line, header[at], from_text=True) for at in class_at]
        _check_row(row, path, line)
        rows.append(row)
    return *_arrays(rows, targets, len(labels)), labels


def _read_jsonl(
    path: Path, lines: Iterator[str], labels: list[str] | None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    index = None if labels is None else {label: k for k, label in enumerate(labels)}
    rows: list[list[float]] = []
    targets: list[int] = []
    for line, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataFileError(f"invalid JSON: {exc.msg}", path=path, line=line) from None
        if not isinstance(record, dict):
            raise DataFileError("expected a JSON object", path=path, line=line)
        probabilities = record.get("probabilities")
        if not isinstance(probabilities, dict):
            raise DataFileError(
                "missing or non-object 'probabilities'",
                path=path,
                line=line,
                column="probabilities",
            )
        if index is None:
            labels = [str(key) for key in probabilities]
            if len(labels) < 2:
                raise DataFileError(
                    "need probabilities for at least two labels", path=path, line=line
                )
            index = {label: k for k, label in enumerate(labels)}
        unknown = [key for key in probabilities if key not in index]
        if unknown:
            raise DataFileError(
                f"unknown labels {unknown} in probabilities; the labels are {list(index)}",
                path=path,
                line=line,
                column="probabilities",
            )
        missing = [label for label in index if label not in probabilities]
        if missing:
            raise DataFileError(
                f"missing probabilities for {missing}", path=path, line=line, column="probabilities"
            )
        targets.append(_label_index(record.get(LABEL_COLUMN), index, path, line))
        row = [
            _probability(
                probabilities[label], path, line, f"probabilities.{label}", from_text=False
            )
            for label in index
        ]
        _check_row(row, path, line)
        rows.append(row)
    if index is None:
        raise DataFileError("the file holds no rows", path=path)
    return *_arrays(rows, targets, len(index)), list(index)


def _arrays(
    rows: list[list[float]], targets: list[int], n_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    P = np.array(rows, dtype=np.float64).reshape(len(rows), n_classes)
    return P, np.array(targets, dtype=np.int64)
