import json

import numpy as np
import pytest
from scipy.optimize import check_grad
from sklearn.exceptions import NotFittedError

from calibrators.logits import inverse_softmax, softmax
from calibrators.temperature import TemperatureScaling
from calibrators.vector import VectorScaling, _nll_and_gradient


def per_class_miscalibrated(n, seed):
    """Labels from softmax(z); verbalized P = softmax(a ⊙ z + c) with per-class a and c."""
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=1.5, size=(n, 4))
    q = softmax(z)
    y = (q.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    P = softmax(z * np.array([3.0, 1.0, 0.5, 2.0]) + np.array([1.0, 0.0, -0.5, 0.0]))
    return P, y


def heldout_nll(Q, y):
    return -np.mean(np.log(Q[np.arange(len(y)), y]))


def test_improves_nll_on_per_class_miscalibration():
    P, y = per_class_miscalibrated(20_000, seed=0)
    fit, test = slice(0, 10_000), slice(10_000, None)
    vector = VectorScaling(eps=1e-6).fit(P[fit], y[fit])
    temperature = TemperatureScaling(eps=1e-6).fit(P[fit], y[fit])
    assert vector.converged_
    assert vector.loss_after_ < vector.loss_before_
    raw = heldout_nll(P[test], y[test])
    scaled = heldout_nll(vector.transform(P[test]), y[test])
    assert scaled < raw - 0.1
    assert scaled < heldout_nll(temperature.transform(P[test]), y[test]) - 0.01
    # Class 0 was the most overconfident (a_0 = 3): it gets the smallest scale.
    assert np.argmin(vector.scale_) == 0


def test_gradient_matches_finite_differences():
    rng = np.random.default_rng(1)
    Z = rng.normal(size=(50, 3))
    W = rng.random((50, 3))
    theta = rng.normal(size=6)
    error = check_grad(
        lambda t: _nll_and_gradient(t, Z, W, 0.3)[0],
        lambda t: _nll_and_gradient(t, Z, W, 0.3)[1],
        theta,
    )
    assert error < 1e-6


def test_identity_start_loss_equals_raw_smoothed_nll():
    P, y = per_class_miscalibrated(1_000, seed=2)
    model = VectorScaling(eps=1e-2).fit(P, y)
    smoothed = softmax(inverse_softmax(P, 1e-2))
    assert model.loss_before_ == pytest.approx(heldout_nll(smoothed, y), rel=1e-12)


def test_roundtrip_is_exact_and_json_safe():
    P, y = per_class_miscalibrated(2_000, seed=3)
    model = VectorScaling().fit(P, y)
    data = json.loads(json.dumps(model.to_dict()))
    assert data["method"] == "vector"
    rebuilt = VectorScaling.from_dict(data)
    np.testing.assert_array_equal(rebuilt.transform(P), model.transform(P))
    np.testing.assert_array_equal(rebuilt.predict(P), model.predict(P))


def test_errors():
    with pytest.raises(NotFittedError):
        VectorScaling().transform([[0.5, 0.5]])
    with pytest.raises(ValueError, match="l2"):
        VectorScaling(l2=-1.0).fit([[0.5, 0.5]], [0])
    with pytest.raises(ValueError, match="eps"):
        VectorScaling(eps="auto").fit([[0.5, 0.5]], [0])
    with pytest.raises(ValueError, match=r"indices \[0\]"):
        VectorScaling().fit([[np.nan, 0.5], [0.5, 0.5]], [0, 1])
    with pytest.raises(ValueError, match="method"):
        VectorScaling.from_dict({"method": "temperature", "fitted": {}})
    model = VectorScaling().fit([[0.5, 0.5], [0.1, 0.9]], [0, 1])
    data = model.to_dict()
    data["fitted"]["scale"] = [1.0]
    with pytest.raises(ValueError, match="n_classes=2"):
        VectorScaling.from_dict(data)
