import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from calibrators.logits import inverse_softmax, softmax

LN2 = math.log(2.0)


def positive_rows(min_value=1e-6):
    shape = st.tuples(st.integers(1, 8), st.integers(2, 8))
    return shape.flatmap(
        lambda s: arrays(np.float64, s, elements=st.floats(min_value, 1e3, allow_subnormal=False))
    )


def test_inverse_softmax_hand_computed_eps0():
    # log([1/2, 1/4, 1/4]) = [-ln2, -2 ln2, -2 ln2]; the mean is -5/3 ln2, so centred:
    # [2/3 ln2, -1/3 ln2, -1/3 ln2].
    Z = inverse_softmax([[0.5, 0.25, 0.25]], 0)
    np.testing.assert_allclose(Z, [[2 / 3 * LN2, -1 / 3 * LN2, -1 / 3 * LN2]], rtol=1e-14)


def test_inverse_softmax_hand_computed_eps_0_1():
    # (p + 0.1) / (1 + 3 * 0.1) = [0.6, 0.35, 0.35] / 1.3; the constant 1.3 cancels on centring,
    # leaving log 0.6 - mean = 2/3 ln(0.6/0.35) = 2/3 ln(12/7), log 0.35 - mean = -1/3 ln(12/7).
    Z = inverse_softmax([[0.5, 0.25, 0.25]], 0.1)
    r = math.log(12 / 7)
    np.testing.assert_allclose(Z, [[2 / 3 * r, -1 / 3 * r, -1 / 3 * r]], rtol=1e-14)
    np.testing.assert_allclose(softmax(Z), [[0.6 / 1.3, 0.35 / 1.3, 0.35 / 1.3]], rtol=1e-14)


def test_inverse_softmax_renormalizes_rows():
    np.testing.assert_allclose(
        inverse_softmax([[2.0, 1.0, 1.0]], 0.1), inverse_softmax([[0.5, 0.25, 0.25]], 0.1)
    )


def test_softmax_hand_computed_and_overflow_free():
    np.testing.assert_allclose(softmax([[0.0, math.log(3.0)]]), [[0.25, 0.75]], rtol=1e-15)
    np.testing.assert_allclose(softmax([[1000.0, 0.0, -np.inf]]), [[1.0, math.exp(-1000), 0.0]])


def test_resoftmax_of_probabilities_is_capped():
    # The paper's point: softmax(p) is not p, and its maximum is at most e / (e + K - 1).
    K = 4
    q = softmax([[1.0, 0.0, 0.0, 0.0]])
    assert q[0, 0] == pytest.approx(math.e / (math.e + K - 1), rel=1e-15)
    assert q[0, 0] < 0.48


def test_eps0_with_zero_entry_names_rows():
    with pytest.raises(ValueError, match=r"eps=0.*\[1, 3\]"):
        inverse_softmax([[0.5, 0.5], [1.0, 0.0], [0.2, 0.8], [0.0, 1.0]], 0)


def test_zero_entry_with_positive_eps_is_finite():
    Z = inverse_softmax([[1.0, 0.0]], 1e-3)
    assert np.all(np.isfinite(Z))
    # log(1.001) - log(0.001), split evenly around 0
    np.testing.assert_allclose(Z[0, 0] - Z[0, 1], math.log(1001.0), rtol=1e-13)


@pytest.mark.parametrize(
    "P", [[[0.5, -0.1, 0.6]], [[np.nan, 0.5, 0.5]], [[np.inf, 1.0, 1.0]], [[0.0, 0.0, 0.0]]]
)
def test_invalid_probability_rows_are_named(P):
    rows = [[0.2, 0.3, 0.5], *P]
    with pytest.raises(ValueError, match=r"indices \[1\]"):
        inverse_softmax(rows, 0.1)


@pytest.mark.parametrize("eps", [-1e-3, np.nan, np.inf, "0.1", None, True])
def test_invalid_eps(eps):
    with pytest.raises(ValueError, match="eps"):
        inverse_softmax([[0.5, 0.5]], eps)


def test_inverse_softmax_requires_eps():
    with pytest.raises(TypeError):
        inverse_softmax([[0.5, 0.5]])


@pytest.mark.parametrize("Z", [[[np.nan, 0.0]], [[np.inf, 0.0]], [[-np.inf, -np.inf]]])
def test_softmax_invalid_rows_are_named(Z):
    with pytest.raises(ValueError, match=r"indices \[1\]"):
        softmax([[0.0, 1.0], *Z])


def test_wrong_shapes():
    with pytest.raises(ValueError, match="2-D"):
        softmax([0.0, 1.0])
    with pytest.raises(ValueError, match="2-D"):
        inverse_softmax([0.5, 0.5], 0.1)


@given(positive_rows(), st.floats(1e-3, 1e3), st.sampled_from([0.0, 1e-3, 0.1]))
def test_row_scale_invariance(P, c, eps):
    np.testing.assert_allclose(
        inverse_softmax(P, eps), inverse_softmax(c * P, eps), rtol=1e-9, atol=1e-11
    )


@given(positive_rows(), st.sampled_from([0.0, 1e-3, 0.1]))
def test_logits_are_row_centred(P, eps):
    np.testing.assert_allclose(inverse_softmax(P, eps).mean(axis=1), 0.0, atol=1e-12)


@given(
    arrays(np.float64, (5, 4), elements=st.floats(-50, 50)),
    arrays(np.float64, (5, 1), elements=st.floats(-1e3, 1e3)),
)
def test_softmax_shift_invariance(Z, shift):
    np.testing.assert_allclose(softmax(Z + shift), softmax(Z), rtol=1e-9, atol=1e-300)
    np.testing.assert_allclose(softmax(Z).sum(axis=1), 1.0, rtol=1e-14)


@given(positive_rows())
def test_softmax_inverts_inverse_softmax(P):
    expected = P / P.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(softmax(inverse_softmax(P, 0)), expected, rtol=1e-9)


@given(positive_rows(min_value=0.0), st.floats(1e-6, 1.0))
def test_softmax_of_inverse_softmax_is_smoothed_distribution(P, eps):
    P = np.where(P.sum(axis=1, keepdims=True) > 0, P, 1.0)
    K = P.shape[1]
    expected = (P / P.sum(axis=1, keepdims=True) + eps) / (1 + K * eps)
    np.testing.assert_allclose(softmax(inverse_softmax(P, eps)), expected, rtol=1e-9)
