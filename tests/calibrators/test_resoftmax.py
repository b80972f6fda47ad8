"""Re-softmax scaling softmax(P / T): hand-computed fits and a cross-check with scipy."""

import json
import math

import numpy as np
import pytest
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

from calibrators.registry import calibrator_from_dict
from calibrators.resoftmax import ResoftmaxScaling
from calibrators.temperature import TemperatureScaling


def test_hand_computed_temperature():
    # Every row is [1, 0]; 3 of 4 labels are class 0, so the best q_0 is 3/4:
    # softmax([1/T, 0])_0 = 1 / (1 + exp(-1/T)) = 3/4  ⇔  T = 1 / ln 3.
    P = np.array([[1.0, 0.0]] * 4)
    model = ResoftmaxScaling().fit(P, [0, 0, 0, 1])
    assert model.temperature_ == pytest.approx(1 / math.log(3), rel=1e-9)
    np.testing.assert_allclose(model.transform(P), [[0.75, 0.25]] * 4, rtol=1e-9)
    # At T = 1 the same rows get softmax([1, 0]) = [e/(1+e), 1/(1+e)]: not the identity.
    e = math.e
    expected_before = -(3 * math.log(e / (1 + e)) + math.log(1 / (1 + e))) / 4
    assert model.loss_before_ == pytest.approx(expected_before, rel=1e-12)
    assert model.loss_after_ == pytest.approx(-(3 * math.log(0.75) + math.log(0.25)) / 4)


def _verbalized(n, seed):
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=2.0, size=(n, 4))
    truth = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    y = (truth.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    P = np.round(np.exp(2 * z) / np.exp(2 * z).sum(axis=1, keepdims=True) * 20) / 20
    P[P.sum(axis=1) == 0, 0] = 1.0
    return P / P.sum(axis=1, keepdims=True), y


@pytest.mark.parametrize("seed", range(3))
def test_matches_a_bounded_scalar_search_with_scipy(seed):
    P, y = _verbalized(800, seed)

    def nll(log_t):
        return -log_softmax(P / math.exp(log_t), axis=1)[np.arange(y.size), y].mean()

    reference = minimize_scalar(
        nll, bounds=(math.log(1e-3), math.log(1e3)), method="bounded", options={"xatol": 1e-10}
    )
    model = ResoftmaxScaling().fit(P, y)
    assert math.log(model.temperature_) == pytest.approx(reference.x, abs=1e-6)
    assert model.loss_after_ == pytest.approx(reference.fun, rel=1e-10)
    assert model.converged_ and not model.at_bound_


def test_keeps_the_argmax_and_round_trips():
    P, y = _verbalized(300, 7)
    model = ResoftmaxScaling(objective="brier").fit(P, y)
    Q = model.transform(P)
    np.testing.assert_array_equal(np.argmax(Q, axis=1), np.argmax(P, axis=1))
    rebuilt = calibrator_from_dict(json.loads(json.dumps(model.to_dict())))
    assert type(rebuilt) is ResoftmaxScaling
    np.testing.assert_array_equal(rebuilt.transform(P), Q)
    assert rebuilt.to_dict() == model.to_dict()


def test_integer_weights_equal_repeated_rows():
    P, y = _verbalized(200, 3)
    weight = np.arange(200) % 3
    weighted = ResoftmaxScaling().fit(P, y, sample_weight=weight)
    repeated = ResoftmaxScaling().fit(np.repeat(P, weight, axis=0), np.repeat(y, weight))
    assert weighted.temperature_ == pytest.approx(repeated.temperature_, rel=1e-9)


def test_is_worse_than_inverse_softmax_scaling_when_answers_are_log_linear():
    # Answers ∝ truth²: inverse-softmax scaling with T = 2 recovers the truth exactly; no T
    # makes softmax(p / T) do so.
    P, y = _verbalized(4000, 11)
    temperature = TemperatureScaling(eps=1e-3).fit(P, y)
    baseline = ResoftmaxScaling().fit(P, y)
    assert baseline.loss_after_ > temperature.loss_after_


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"objective": "hinge"}, "objective must be one of"),
        ({"bounds": (1.0, 0.5)}, "0 < low < high"),
        ({"bounds": "x"}, "bounds must be a pair"),
        ({"tol": 0}, "tol must be a positive"),
        ({"max_iter": 0}, "max_iter must be an integer"),
    ],
)
def test_rejects_bad_parameters(params, message):
    with pytest.raises(ValueError, match=message):
        ResoftmaxScaling(**params).fit([[0.6, 0.4], [0.2, 0.8]], [0, 1])
