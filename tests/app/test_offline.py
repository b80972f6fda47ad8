"""Reading distribution files for the offline commands, and the held-out fit."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.offline import (
    DataFileError,
    calibration_file_content,
    fit_with_holdout,
    parse_eps,
    parse_labels_option,
    read_distributions,
)
from calibrators import TemperatureScaling, calibrator_from_dict
from tests.app.factories import overconfident_data

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


def test_option_parsers():
    assert parse_labels_option(" a, b ,c") == ["a", "b", "c"]
    assert parse_labels_option(None) is None
    with pytest.raises(ValueError, match="duplicates"):
        parse_labels_option("a,a")
    assert parse_eps("auto") == "auto"
    assert parse_eps("0.001") == 0.001
    with pytest.raises(ValueError):
        parse_eps("-1")


def test_fit_with_holdout_recovers_the_temperature_and_round_trips():
    P, y = overconfident_data(3000, t0=2.0)
    result = fit_with_holdout(P, y, LABELS, eps=1e-3, holdout=0.3, seed=1, refit=False)
    assert result.validation_calibrator is result.calibrator
    direct = TemperatureScaling(eps=1e-3, random_state=1).fit(
        P[result.fit_rows], y[result.fit_rows]
    )
    assert result.calibrator.temperature_ == pytest.approx(direct.temperature_)
    assert result.calibrator.temperature_ == pytest.approx(2.0, rel=0.15)
    assert result.report["n"] == result.held_out_rows.size
    after = result.report["calibrated"]["metrics"]
    assert after["ece"] < result.report["raw"]["metrics"]["ece"]
    content = json.loads(json.dumps(calibration_file_content(result.calibrator, LABELS)))
    assert content["labels"] == LABELS
    rebuilt = calibrator_from_dict(content)
    np.testing.assert_allclose(rebuilt.transform(P[:5]), result.calibrator.transform(P[:5]))


def test_refit_writes_the_calibrator_fitted_on_every_row_with_the_same_report():
    P, y = overconfident_data(1000, t0=2.0)
    kept = fit_with_holdout(P, y, LABELS, eps=1e-3, holdout=0.3, seed=1, refit=False)
    refit = fit_with_holdout(P, y, LABELS, eps=1e-3, holdout=0.3, seed=1)
    everything = TemperatureScaling(eps=1e-3, random_state=1).fit(P, y)
    assert refit.calibrator.temperature_ == everything.temperature_
    assert refit.validation_calibrator.temperature_ == kept.calibrator.temperature_
    assert refit.report == kept.report
