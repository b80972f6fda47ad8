import json

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.isotonic import IsotonicRegression

from calibrators.isotonic import IsotonicCalibration
from calibrators.logits import softmax


def overconfident(n, seed):
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=1.5, size=(n, 3))
    y = (softmax(z).cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    return np.round(softmax(2.5 * z) / 0.05) * 0.05 + 1e-9, y


def test_per_class_maps_are_monotone_and_rows_sum_to_one():
    P, y = overconfident(3_000, seed=0)
    model = IsotonicCalibration().fit(P, y)
    grid = np.linspace(0, 1, 201)
    for x, v in zip(model.X_thresholds_, model.y_thresholds_, strict=True):
        assert np.all(np.diff(np.interp(grid, x, v)) >= 0)
        assert np.all((v >= 0) & (v <= 1))
    Q = model.transform(P)
    np.testing.assert_allclose(Q.sum(axis=1), 1.0, rtol=1e-14)
    assert model.loss_after_ < model.loss_before_


def test_matches_sklearn_isotonic_before_renormalization():
    P, y = overconfident(1_000, seed=1)
    model = IsotonicCalibration().fit(P, y)
    P = P / P.sum(axis=1, keepdims=True)
    raw = np.column_stack(
        [
            IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip")
            .fit(P[:, k], y == k)
            .predict(P[:, k])
            for k in range(3)
        ]
    )
    expected = raw / raw.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(model.transform(P), expected, rtol=1e-12)


def test_all_zero_calibrated_row_falls_back_to_uniform():
    # Class k's map is 0 below its smallest positive example: a row low on every class maps to 0.
    P = np.array([[0.9, 0.05, 0.05], [0.05, 0.9, 0.05], [0.05, 0.05, 0.9]])
    model = IsotonicCalibration().fit(P, [0, 1, 2])
    np.testing.assert_allclose(model.transform([[1 / 3, 1 / 3, 1 / 3]]), [[1 / 3] * 3])


def test_roundtrip_is_exact_without_refit():
    P, y = overconfident(2_000, seed=2)
    model = IsotonicCalibration().fit(P, y)
    data = json.loads(json.dumps(model.to_dict()))
    assert data["method"] == "isotonic"
    rebuilt = IsotonicCalibration.from_dict(data)
    probe = np.random.default_rng(0).random((500, 3))
    np.testing.assert_array_equal(rebuilt.transform(probe), model.transform(probe))


def test_errors():
    with pytest.raises(NotFittedError):
        IsotonicCalibration().transform([[0.5, 0.5]])
    with pytest.raises(ValueError, match=r"indices \[1\]"):
        IsotonicCalibration().fit([[0.5, 0.5], [-1.0, 2.0]], [0, 1])
    model = IsotonicCalibration().fit([[0.5, 0.5], [0.1, 0.9]], [0, 1])
    with pytest.raises(ValueError, match="3 columns"):
        model.transform([[0.2, 0.3, 0.5]])
    data = model.to_dict()
    data["fitted"]["y_thresholds"][0] = [1.0, 0.0]
    with pytest.raises(ValueError, match="non-decreasing"):
        IsotonicCalibration.from_dict(data)
