"""`verbcal fit` and `verbcal report` on data files, no server."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from app.cli import cli
from calibrators import TemperatureScaling, calibrator_from_dict
from calibrators.report_extras import report_extras
from tests.app.factories import overconfident_data

LABELS = ["billing", "bug", "other"]


def write_csv(path, P, y) -> None:
    lines = ["id,label," + ",".join(LABELS)]
    for i, (row, k) in enumerate(zip(P, y, strict=True)):
        lines.append(f"{i},{LABELS[k]}," + ",".join(repr(float(p)) for p in row))
    path.write_text("\n".join(lines) + "\n")


def write_jsonl(path, P, y) -> None:
    with path.open("w") as handle:
        for row, k in zip(P, y, strict=True):
            probabilities = dict(zip(LABELS, map(float, row), strict=True))
            handle.write(json.dumps({"label": LABELS[k], "probabilities": probabilities}) + "\n")


def refuse_constant(name: str):
    raise AssertionError(f"non-standard JSON constant {name}")


@pytest.mark.parametrize(("fmt", "refit"), [("csv", "--no-refit"), ("jsonl", "--refit")])
def test_fit_prints_the_temperature_of_a_direct_fit(runner, tmp_path, fmt, refit):
    P, y = overconfident_data(600, t0=2.0, seed=3)
    data = tmp_path / f"data.{fmt}"
    (write_csv if fmt == "csv" else write_jsonl)(data, P, y)
    output = tmp_path / "calibration.json"
    result = runner.invoke(
        cli,
        [
            *("fit", str(data), "--eps", "0.001", "--holdout", "0.25", "--seed", "7"),
            *("--output", str(output), refit),
        ],
    )
    assert result.exit_code == 0, result.output

    # The split is spelled out here on purpose: it pins the documented semantics.
    order = np.random.default_rng(7).permutation(len(y))
    fit_rows = np.sort(order[round(0.25 * len(y)) :])
    if refit == "--refit":  # the written calibrator is refitted on every row
        fit_rows = np.arange(len(y))
        assert "written calibrator: refitted on all 600 rows" in result.stdout
    direct = TemperatureScaling(objective="nll", eps=0.001, random_state=7)
    direct.fit(P[fit_rows], y[fit_rows])
    printed = float(re.search(r"temperature: ([0-9.]+)", result.stdout).group(1))
    assert printed == pytest.approx(direct.temperature_, abs=1e-6)
    assert "ECE" in result.stdout and "calibrated" in result.stdout

    content = json.loads(output.read_text(), parse_constant=refuse_constant)
    assert content["method"] == "temperature"
    assert content["fitted"]["temperature"] == pytest.approx(direct.temperature_)
    assert content["labels"] == LABELS


def test_fit_with_auto_eps(runner, tmp_path):
    P, y = overconfident_data(400, seed=5)
    data = tmp_path / "data.csv"
    write_csv(data, P, y)
    result = runner.invoke(cli, ["fit", str(data), "--output", str(tmp_path / "c.json")])
    assert result.exit_code == 0, result.output
    assert re.search(r"eps: [0-9.e-]+", result.stdout)


def test_report_writes_json_without_nan(runner, tmp_path):
    P, y = overconfident_data(300, seed=2)
    data = tmp_path / "data.jsonl"
    write_jsonl(data, P, y)
    calibration = tmp_path / "calibration.json"
    fitted = runner.invoke(cli, ["fit", str(data), "--output", str(calibration)])
    assert fitted.exit_code == 0, fitted.output
    report_path = tmp_path / "report.json"
    result = runner.invoke(
        cli,
        [
            *(
                "report",
                str(data),
                "--calibration",
                str(calibration),
                "--json-out",
                str(report_path),
            ),
            *("--n-bins", "10", "--binning", "quantile"),
        ],
    )
    assert result.exit_code == 0, result.output
    for word in ("ECE", "MCE", "NLL", "Brier", "raw", "calibrated", "reliability"):
        assert word in result.stdout
    with report_path.open() as handle:
        report = json.load(handle, parse_constant=refuse_constant)
    assert report["n"] == 300
    assert report["labels"] == LABELS
    assert report["calibrated"]["calibrator"]["method"] == "temperature"
    assert report["conventions"]["n_bins"] == 10


def test_report_without_calibration(runner, tmp_path):
    P, y = overconfident_data(100, seed=4)
    data = tmp_path / "data.csv"
    write_csv(data, P, y)
    result = runner.invoke(cli, ["report", str(data)])
    assert result.exit_code == 0, result.output
    assert "calibrated" not in result.stdout.split("reliability")[0]


def test_report_has_the_api_reports_extra_sections(runner, tmp_path):
    P, y = overconfident_data(300, seed=6)
    data = tmp_path / "data.csv"
    write_csv(data, P, y)
    calibration = tmp_path / "calibration.json"
    assert runner.invoke(cli, ["fit", str(data), "--output", str(calibration)]).exit_code == 0
    report_path = tmp_path / "report.json"
    command = ["report", str(data), "--calibration", str(calibration), "--json-out"]
    result = runner.invoke(cli, [*command, str(report_path)])
    assert result.exit_code == 0, result.output
    report = json.loads(report_path.read_text(), parse_constant=refuse_constant)

    calibrator = calibrator_from_dict(json.loads(calibration.read_text()))
    expected = report_extras(P, y, LABELS, Q=calibrator.transform(P), n_bins=15)
    for side in ("raw", "calibrated"):
        smooth = report["smooth_ece"][side]["smooth_ece"]
        assert smooth == pytest.approx(expected["smooth_ece"][side]["smooth_ece"], abs=1e-12)
        assert report["aurc"][side] == pytest.approx(expected["aurc"][side])
    brier = report["decompositions"]["top_label"]["calibrated"]["brier"]
    assert brier["reliability"] == pytest.approx(
        expected["decompositions"]["top_label"]["calibrated"]["brier"]["reliability"]
    )
    assert "extras" in report["conventions"]
    printed = re.search(r"smooth ECE\s+([0-9.]+) → ([0-9.]+)", result.stdout)
    assert printed, result.stdout
    assert float(printed.group(2)) == pytest.approx(
        report["smooth_ece"]["calibrated"]["smooth_ece"], abs=5e-5
    )
    assert re.search(r"Brier resolution\s+[0-9.]+ → [0-9.]+", result.stdout)


@pytest.mark.parametrize("command", ["fit", "report"])
def test_bad_rows_exit_2_naming_the_row(runner, tmp_path, command):
    data = tmp_path / "bad.csv"
    data.write_text("label,a,b\na,0.6,0.4\nb,0.3,0.7\nc,0.5,0.5\n")
    result = runner.invoke(cli, [command, str(data)])
    assert result.exit_code == 2
    assert "line 4" in result.output and "unknown label 'c'" in result.output

    data.write_text("label,a,b\na,0.6,-0.4\n")
    result = runner.invoke(cli, [command, str(data)])
    assert result.exit_code == 2
    assert "line 2" in result.output and "'b'" in result.output and "negative" in result.output


def test_fit_rejects_bad_options(runner, tmp_path):
    P, y = overconfident_data(50)
    data = tmp_path / "data.csv"
    write_csv(data, P, y)
    assert runner.invoke(cli, ["fit", str(data), "--eps", "-1"]).exit_code == 2
    assert runner.invoke(cli, ["fit", str(data), "--objective", "nope"]).exit_code == 2
    assert runner.invoke(cli, ["fit", str(data), "--holdout", "1.5"]).exit_code == 2
    assert runner.invoke(cli, ["fit", str(tmp_path / "missing.csv")]).exit_code == 2
