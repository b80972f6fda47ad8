"""The offline held-out fit and the calibrator file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.offline.fitting import calibration_file_content, fit_with_holdout, parse_eps
from calibrators import TemperatureScaling, calibrator_from_dict
from tests.app.factories import overconfident_data

LABELS = ["billing", "bug", "other"]


def test_eps_option_parser():
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
