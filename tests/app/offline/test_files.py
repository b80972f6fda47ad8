"""Reading distribution files for the offline commands."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.offline.files import DataFileError, parse_labels_option, read_distributions

LABELS = ["billing", "bug", "other"]


def write_csv(path, rows: list[str]) -> None:
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


def test_csv_class_columns_are_all_but_label_id_text(tmp_path):
    path = tmp_path / "d.csv"
    write_csv(path, ["id,text,a,label,b", "1,hi,0.7,a,0.3", "2,yo,0.2,b,0.8"])
    P, y, labels = read_distributions(path)
    assert labels == ["a", "b"]
    np.testing.assert_array_equal(P, [[0.7, 0.3], [0.2, 0.8]])
    np.testing.assert_array_equal(y, [0, 1])
    assert P.dtype == np.float64


def test_csv_labels_fix_order_and_ignore_other_columns(tmp_path):
    path = tmp_path / "d.csv"
    write_csv(path, ["a,b,extra,label", "0.7,0.3,zzz,a"])
    P, y, labels = read_distributions(path, labels=["b", "a"])
    assert labels == ["b", "a"]
    np.testing.assert_array_equal(P, [[0.3, 0.7]])
    np.testing.assert_array_equal(y, [1])


def test_jsonl_uses_first_line_key_order(tmp_path):
    path = tmp_path / "d.jsonl"
    lines = [
        {"label": "b", "probabilities": {"b": 0.6, "a": 0.4}},
        {"label": "a", "probabilities": {"a": 0.9, "b": 0.1}},
    ]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")
    P, y, labels = read_distributions(path)
    assert labels == ["b", "a"]
    np.testing.assert_array_equal(P, [[0.6, 0.4], [0.1, 0.9]])
    np.testing.assert_array_equal(y, [0, 1])


def test_format_sniffed_without_known_suffix(tmp_path):
    path = tmp_path / "data.txt"
    path.write_text('{"label": "a", "probabilities": {"a": 1, "b": 0}}\n')
    assert read_distributions(path)[2] == ["a", "b"]


@pytest.mark.parametrize(
    ("row", "column", "problem"),
    [
        ("0.5,0.5,c", "label", "unknown label 'c'"),
        ("-0.1,0.5,a", "a", "negative"),
        ("nan,0.5,a", "a", "finite"),
        ("inf,0.5,a", "a", "finite"),
        ("abc,0.5,a", "a", "not a number"),
        (",0.5,a", "a", "missing value"),
        ("0,0,a", None, "all probabilities are zero"),
        ("0.5,a", None, "2 fields"),
    ],
)
def test_bad_csv_rows_name_line_and_column(tmp_path, row, column, problem):
    path = tmp_path / "d.csv"
    write_csv(path, ["a,b,label", "0.6,0.4,a", row])
    with pytest.raises(DataFileError) as info:
        read_distributions(path)
    assert info.value.line == 3
    assert info.value.column == column
    assert problem in str(info.value)
    assert "line 3" in str(info.value)


def test_csv_missing_columns(tmp_path):
    path = tmp_path / "d.csv"
    write_csv(path, ["a,b", "0.6,0.4"])
    with pytest.raises(DataFileError, match="missing column 'label'"):
        read_distributions(path)
    write_csv(path, ["a,b,label", "0.6,0.4,a"])
    with pytest.raises(DataFileError, match=r"missing class columns \['c'\]"):
        read_distributions(path, labels=["a", "c"])


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"label": "a", "probabilities": {"a": 0.5}}', "missing probabilities for ['b']"),
        ('{"label": "a", "probabilities": {"a": 0.5, "b": 0.5, "c": 0}}', "unknown labels"),
        ('{"label": "z", "probabilities": {"a": 0.5, "b": 0.5}}', "unknown label 'z'"),
        ('{"label": "a", "probabilities": {"a": "0.5", "b": 0.5}}', "not a number"),
        ('{"label": "a", "probabilities": {"a": NaN, "b": 0.5}}', "finite"),
        ('{"label": "a", "probabilities": {"a": 0, "b": 0}}', "all probabilities are zero"),
        ('{"label": "a", "probabilities": [0.5, 0.5]}', "probabilities"),
        ("{not json", "invalid JSON"),
    ],
)
def test_bad_jsonl_lines_name_the_line(tmp_path, line, problem):
    path = tmp_path / "d.jsonl"
    path.write_text('{"label": "a", "probabilities": {"a": 0.6, "b": 0.4}}\n' + line + "\n")
    with pytest.raises(DataFileError) as info:
        read_distributions(path)
    assert info.value.line == 2
    assert problem in str(info.value)


def test_empty_files(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("")
    with pytest.raises(DataFileError, match="empty"):
        read_distributions(path)
    write_csv(path, ["a,b,label"])
    with pytest.raises(DataFileError, match="no rows"):
        read_distributions(path)


def test_progress_reports_every_character(tmp_path):
    path = tmp_path / "d.csv"
    write_csv(path, ["a,b,label"] + ["0.6,0.4,a"] * 20_000)
    seen = []
    read_distributions(path, on_progress=seen.append)
    assert sum(seen) == len(path.read_text())
    assert len(seen) > 1


def test_labels_option_parser():
    assert parse_labels_option(" a, b ,c") == ["a", "b", "c"]
    assert parse_labels_option(None) is None
    with pytest.raises(ValueError, match="duplicates"):
        parse_labels_option("a,a")
