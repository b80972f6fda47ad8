"""Prior shift: Bayes correction to a new prior and the EM estimate of Saerens et al. (2002)."""

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.llm import synthetic
from calibrators import TemperatureScaling, log_loss
from calibrators.prior_shift import (
    PriorShift,
    adjust_to_prior,
    check_prior,
    class_frequencies,
    estimate_target_prior,
)
from tests.calibrators.simulated import draw_tickets, stated

TARGET = np.array([0.1, 0.2, 0.3, 0.4])
SOURCE = np.asarray(synthetic.CLASS_PRIOR)


def test_adjust_to_prior_by_hand():
    np.testing.assert_allclose(adjust_to_prior([[0.5, 0.5]], [0.5, 0.5], [0.8, 0.2]), [[0.8, 0.2]])
    # Ratios 5/6 and 5/4: 0.6 x 5/6 = 0.5 and 0.4 x 5/4 = 0.5.
    np.testing.assert_allclose(adjust_to_prior([[0.6, 0.4]], [0.6, 0.4], [0.5, 0.5]), [[0.5, 0.5]])
    Q = np.array([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]])
    out = adjust_to_prior(Q, [0.5, 0.25, 0.25], [0.25, 0.25, 0.5])
    # Row 0: weights 0.2/2, 0.3, 0.5 x 2 = 0.1, 0.3, 1.0 over 1.4.
    np.testing.assert_allclose(out, [[0.1 / 1.4, 0.3 / 1.4, 1.0 / 1.4], [1.0, 0.0, 0.0]])


@given(
    st.integers(0, 2**32 - 1),
    st.integers(2, 6),
)
def test_adjust_round_trip_and_identity(seed, n_classes):
    rng = np.random.default_rng(seed)
    Q = rng.dirichlet(np.ones(n_classes), size=20)
    source, target = rng.dirichlet(np.ones(n_classes) * 2, size=2) + 1e-3
    source, target = source / source.sum(), target / target.sum()
    there = adjust_to_prior(Q, source, target)
    np.testing.assert_allclose(there.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(adjust_to_prior(there, target, source), Q, atol=1e-10)
    np.testing.assert_allclose(adjust_to_prior(Q, source, source), Q, atol=1e-15)


def test_em_fixed_point_and_monotone_likelihood():
    rng = np.random.default_rng(0)
    Q = rng.dirichlet(np.ones(3), size=500)
    source = np.array([0.5, 0.3, 0.2])
    result = estimate_target_prior(Q, source)
    prior = np.array(result["prior"])
    assert result["converged"] and result["n_iter"] < result["max_iter"]
    # The estimate is the mean of the corrected posteriors (the EM fixed point).
    np.testing.assert_allclose(adjust_to_prior(Q, source, prior).mean(axis=0), prior, atol=1e-9)
    assert prior.sum() == pytest.approx(1.0, abs=1e-12)
    likelihoods = [
        estimate_target_prior(Q, source, max_iter=k)["log_likelihood"] for k in (1, 2, 3, 5, 10)
    ]
    assert likelihoods == sorted(likelihoods) and likelihoods[0] >= 0.0
    assert result["log_likelihood"] >= likelihoods[-1]
    json.dumps(result, allow_nan=False)


def test_em_on_a_symmetric_sample_stays_at_the_source_prior():
    Q = np.array([[0.9, 0.1], [0.1, 0.9]])
    result = estimate_target_prior(Q, [0.5, 0.5])
    assert result["prior"] == [0.5, 0.5] and result["converged"] and result["n_iter"] == 1
    assert result["log_likelihood"] == 0.0


def test_em_driven_to_a_vertex_reports_no_standard_error():
    # Identical rows favouring class 0: the likelihood grows towards prior (1, 0).
    result = estimate_target_prior(np.tile([0.8, 0.2], (10, 1)), [0.5, 0.5], max_iter=5000)
    assert result["prior"][0] > 0.999
    assert result["standard_error"] is None and "boundary" in result["note"]
    json.dumps(result, allow_nan=False)


def test_prior_shift_estimator_round_trips_and_given_target():
    rng = np.random.default_rng(1)
    Q = rng.dirichlet(np.ones(3), size=200)
    model = PriorShift([0.5, 0.3, 0.2]).fit(Q)
    rebuilt = PriorShift.from_dict(json.loads(json.dumps(model.to_dict(), allow_nan=False)))
    np.testing.assert_array_equal(rebuilt.transform(Q), model.transform(Q))
    assert rebuilt.estimate_ == model.estimate_
    given_target = PriorShift.with_target([0.5, 0.3, 0.2], [0.2, 0.3, 0.5])
    np.testing.assert_allclose(
        given_target.transform(Q), adjust_to_prior(Q, [0.5, 0.3, 0.2], [0.2, 0.3, 0.5])
    )
    assert given_target.to_dict()["fitted"]["estimate"] is None


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: check_prior([0.5, 0.6]), "must sum to 1"),
        (lambda: check_prior([1.0, 0.0]), r"finite and > 0 for every class; bad at \[1\]"),
        (lambda: check_prior([np.nan, 1.0]), "finite and > 0"),
        (lambda: check_prior([1.0]), "at least 2"),
        (lambda: check_prior("ab"), "list of numbers"),
        (lambda: adjust_to_prior([[0.5, 0.5]], [0.5, 0.5], [0.2, 0.3, 0.5]), "2 entries"),
        (lambda: estimate_target_prior([[0.5, 0.5]], [0.5, 0.5], max_iter=0), "max_iter"),
        (lambda: estimate_target_prior([[0.5, 0.5]], [0.5, 0.5], tol=0), "tol"),
        (lambda: class_frequencies([0, 0, 2], 3), r"classes \[1\] have no labelled rows"),
        (lambda: PriorShift([0.5, 0.5]).transform([[0.5, 0.5]]), "no target prior"),
    ],
)
def test_bad_input_raises(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# ----------------------------------------------------------------------------- simulated shift


def test_estimate_within_sampling_tolerance_on_calibrated_posteriors():
    # Traffic drawn with class mix TARGET from the simulator's generative model; its exact
    # Bayes posteriors under the generator's prior SOURCE are perfectly calibrated for SOURCE.
    # Sampling tolerance: the maximum-likelihood estimate is asymptotically normal with the
    # reported standard errors, so every class lands within 4 SE (two-sided 6e-5 per class).
    # Over the seeds the standardized errors must look standard normal.
    z_scores = []
    for seed in range(20):
        posterior, y, _ = draw_tickets(3000, np.random.default_rng(seed), class_prior=TARGET)
        result = estimate_target_prior(posterior, SOURCE)
        error = np.array(result["prior"]) - TARGET
        se = np.array(result["standard_error"])
        assert result["converged"]
        assert np.all(np.abs(error) <= 4 * se), (seed, result["prior"], se)
        z_scores.append(error / se)
        assert log_loss(adjust_to_prior(posterior, SOURCE, result["prior"]), y) < log_loss(
            posterior, y
        )
    z = np.concatenate(z_scores)
    print(f"standardized EM errors: mean {z.mean():.3f}, sd {z.std():.3f} over {z.size}")
    assert abs(z.mean()) <= 3 / np.sqrt(20)  # per-seed sums of z are ~0: classes share one sum
    assert 0.7 <= z.std() <= 1.3


def test_simulated_llm_pipeline_estimates_the_shifted_prior_and_lowers_nll():
    # The simulator's stated answers (posterior**2, rounded to 0.05) are temperature-calibrated
    # on labelled rows drawn with the source mix, then corrected on traffic with another mix.
    # Temperature scaling on rounded answers leaves some per-class miscalibration, so the
    # estimate carries a calibration bias beyond sampling error: it must still land much
    # nearer the traffic's prior than the source prior is, and lower the NLL on the traffic.
    for seed in range(5):
        rng = np.random.default_rng(100 + seed)
        posterior, y, _ = draw_tickets(2000, rng)
        calibrator = TemperatureScaling().fit(stated(posterior), y)
        source = class_frequencies(y, 4)
        traffic_posterior, traffic_y, _ = draw_tickets(3000, rng, class_prior=TARGET)
        Q = calibrator.transform(stated(traffic_posterior))
        model = PriorShift(source.tolist()).fit(Q)
        estimate = model.target_prior_
        before, after = log_loss(Q, traffic_y), log_loss(model.transform(Q), traffic_y)
        print(
            f"seed {seed}: estimated prior {np.round(estimate, 3).tolist()} (true "
            f"{TARGET.tolist()}), NLL {before:.4f} -> {after:.4f}"
        )
        assert np.abs(estimate - TARGET).sum() <= 0.25 * np.abs(source - TARGET).sum()
        assert after < before
