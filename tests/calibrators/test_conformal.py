"""Split conformal label sets: hand vectors, MAPIE cross-checks, simulated and real coverage."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from mapie.classification import SplitConformalClassifier
from mapie.utils import _compute_classification_quantile
from sklearn.base import BaseEstimator, ClassifierMixin

from calibrators import TemperatureScaling
from calibrators._validation import invalid_rows
from calibrators.conformal import (
    ConformalSets,
    aps_scores,
    conformal_rank,
    conformal_threshold,
    lac_scores,
    prediction_set_labels,
)
from tests.calibrators.simulated import draw_tickets, stated

REAL_DATA = Path(__file__).resolve().parents[1] / "data" / "real-llm-sat-en" / "answers.jsonl"
COVERAGES = (0.8, 0.9, 0.95)


class _Prefit(ClassifierMixin, BaseEstimator):
    """A 'classifier' whose features are already the probabilities (MAPIE prefit mode)."""

    def fit(self, X, y):
        self.classes_ = np.arange(np.asarray(X).shape[1])
        return self

    def predict_proba(self, X):
        return np.asarray(X, dtype=np.float64)

    def predict(self, X):
        return np.argmax(X, axis=1)


def _mapie(Q_cal, y_cal, score, seed=7):
    estimator = _Prefit().fit(Q_cal, y_cal)
    return SplitConformalClassifier(
        estimator,
        confidence_level=list(COVERAGES),
        conformity_score=score,
        prefit=True,
        random_state=seed,
    ).conformalize(Q_cal, y_cal)


def _dirichlet_data(seed, n_cal=400, n_test=300, n_classes=4):
    rng = np.random.default_rng(seed)
    Q = rng.dirichlet(np.full(n_classes, 0.7), size=n_cal + n_test)
    y = (rng.random(n_cal + n_test)[:, None] > np.cumsum(Q, axis=1)).sum(axis=1)
    y = np.minimum(y, n_classes - 1)
    return Q[:n_cal], y[:n_cal], Q[n_cal:], y[n_cal:]


# ----------------------------------------------------------------------------- hand vectors


def test_rank_is_exact_ceiling_of_n_plus_one_times_coverage():
    assert conformal_rank(19, 0.95) == 19  # 20 x 0.95 = 19 exactly, not 19.000000000000004
    assert conformal_rank(9, 0.9) == 9
    assert conformal_rank(99, 0.9) == 90
    assert conformal_rank(100, 0.9) == 91  # ceil(90.9)
    assert conformal_rank(8, 0.9) == 9  # > n: no finite threshold
    assert conformal_rank(0, 0.5) == 1


def test_threshold_is_the_kth_smallest_score_or_inf():
    scores = [0.5, 0.1, 0.9, 0.3, 0.7, 0.2, 0.8, 0.4, 0.6]  # n = 9
    assert conformal_threshold(scores, 0.9) == 0.9  # k = 9
    assert conformal_threshold(scores, 0.8) == 0.8  # k = ceil(8.0) = 8
    assert conformal_threshold(scores, 0.5) == 0.5  # k = 5
    assert conformal_threshold(scores[:8], 0.9) == math.inf  # k = 9 > 8
    assert conformal_threshold([], 0.5) == math.inf


def test_lac_and_aps_scores_by_hand_with_ties():
    Q = np.array([[0.5, 0.2, 0.2, 0.1], [0.1, 0.6, 0.3, 0.0]])
    np.testing.assert_allclose(lac_scores(Q), [[0.5, 0.8, 0.8, 0.9], [0.9, 0.4, 0.7, 1.0]])
    # Tied labels count as ranked before each other: both 0.2s score 0.5 + 0.2 + 0.2.
    np.testing.assert_allclose(aps_scores(Q), [[0.5, 0.9, 0.9, 1.0], [1.0, 0.6, 0.9, 1.0]])
    # Randomized: minus u x the tie group's mass (u = 0.5 on row 0, 0.25 on row 1).
    randomized = aps_scores(Q, np.array([0.5, 0.25]))
    np.testing.assert_allclose(
        randomized, [[0.25, 0.7, 0.7, 0.95], [0.975, 0.45, 0.825, 1.0]], atol=1e-15
    )


def test_lac_sets_by_hand():
    # Calibration scores 1 - q_y: 0.1, 0.2, 0.3, 0.4 (n = 4); coverage 0.6 -> k = ceil(3) = 3.
    Q_cal = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.4, 0.6]])
    y_cal = np.array([0, 1, 0, 1])
    model = ConformalSets("lac", coverages=(0.6,)).fit(Q_cal, y_cal)
    assert model.thresholds_.tolist() == [[pytest.approx(0.3)]]
    sets = model.predict_sets(np.array([[0.75, 0.25], [0.5, 0.5], [0.69, 0.31]]), 0.6)
    # q_k >= 0.7 is in the set (1 - q_k <= 0.3).
    assert sets.tolist() == [[True, False], [False, False], [False, False]]
    assert prediction_set_labels(sets, ["no", "yes"]) == [["no"], [], []]


def test_aps_sets_by_hand():
    # APS scores of the true labels: 0.9, 0.5+0.3=0.8, 0.7, 1.0 -> sorted 0.7 0.8 0.9 1.0.
    Q_cal = np.array([[0.9, 0.05, 0.05], [0.5, 0.3, 0.2], [0.7, 0.2, 0.1], [0.6, 0.25, 0.15]])
    y_cal = np.array([0, 1, 0, 2])
    model = ConformalSets("aps", coverages=(0.6,)).fit(Q_cal, y_cal)  # k = 3 -> tau = 0.9
    assert model.thresholds_[0, 0] == pytest.approx(0.9)
    sets = model.predict_sets(np.array([[0.6, 0.3, 0.1], [0.95, 0.03, 0.02], [0.4, 0.4, 0.2]]), 0.6)
    assert sets.tolist() == [
        [True, True, False],  # 0.6, 0.9 <= tau; 1.0 > tau
        [False, False, False],  # 0.95 > tau already: empty set
        [True, True, False],  # tie 0.4, 0.4: both score 0.8
    ]


def test_too_few_rows_for_the_coverage_gives_all_labels_and_null_threshold():
    Q = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.4, 0.6], [0.5, 0.5]])
    model = ConformalSets(coverages=(0.8, 0.9)).fit(Q, [0, 1, 0, 1, 0])  # k = 5, then 6 > 5
    assert math.isfinite(model.thresholds_[0, 0]) and model.thresholds_[1, 0] == math.inf
    assert model.predict_sets(np.array([[1.0, 0.0]]), 0.9).all()
    stored = model.to_dict()
    assert stored["fitted"]["thresholds"][1] == [None]
    assert stored["fitted"]["ranks"] == [[5], [6]]
    assert ConformalSets.from_dict(json.loads(json.dumps(stored))).thresholds_[1, 0] == math.inf


def test_class_conditional_thresholds_per_true_class_and_absent_class_always_in():
    Q = np.array([[0.9, 0.05, 0.05], [0.8, 0.1, 0.1], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1]] * 5)
    y = np.array([0, 0, 1, 1] * 5)  # class 2 never seen
    model = ConformalSets("lac", class_conditional=True, coverages=(0.8,)).fit(Q, y)
    # Class 0 scores: 0.1 x5, 0.2 x5 -> k = ceil(11 x 0.8) = 9 -> 0.2. Class 1: 0.7 x5, 0.3 x5.
    assert model.thresholds_[0].tolist() == [pytest.approx(0.2), pytest.approx(0.7), math.inf]
    assert model.class_counts_.tolist() == [10, 10, 0]
    sets = model.predict_sets(np.array([[0.85, 0.1, 0.05], [0.1, 0.25, 0.65]]), 0.8)
    assert sets.tolist() == [[True, False, True], [False, False, True]]


# ----------------------------------------------------------------------------- MAPIE cross-checks


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lac_matches_mapie(seed):
    Q_cal, y_cal, Q_test, _ = _dirichlet_data(seed)
    mapie = _mapie(Q_cal, y_cal, "lac")
    _, mapie_sets = mapie.predict_set(Q_test)
    ours = ConformalSets("lac", coverages=COVERAGES).fit(Q_cal, y_cal)
    np.testing.assert_array_equal(ours.thresholds_[:, 0], mapie._mapie_classifier.quantiles_)
    for i, coverage in enumerate(COVERAGES):
        np.testing.assert_array_equal(ours.predict_sets(Q_test, coverage), mapie_sets[:, :, i])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_randomized_aps_matches_mapie_with_the_same_uniforms(seed):
    # MAPIE draws u with RandomState(seed).uniform, for calibration and again for prediction.
    Q_cal, y_cal, Q_test, _ = _dirichlet_data(seed)
    mapie = _mapie(Q_cal, y_cal, "aps", seed=seed)
    _, mapie_sets = mapie.predict_set(
        Q_test, conformity_score_params={"include_last_label": "randomized"}
    )
    u_cal = np.random.RandomState(seed).uniform(size=Q_cal.shape[0])
    u_test = np.random.RandomState(seed).uniform(size=(Q_test.shape[0], 1))[:, 0]
    ours = ConformalSets("aps", randomized=True, coverages=COVERAGES).fit(Q_cal, y_cal, u_cal)
    np.testing.assert_allclose(ours.thresholds_[:, 0], mapie._mapie_classifier.quantiles_)
    for i, coverage in enumerate(COVERAGES):
        np.testing.assert_array_equal(
            ours.predict_sets(Q_test, coverage, uniforms=u_test), mapie_sets[:, :, i]
        )


def test_deterministic_aps_score_is_mapies_before_its_randomization():
    # MAPIE's APS calibration score is cumsum - u * q_y; adding u * q_y back gives ours (u = 0).
    Q_cal, y_cal, _, _ = _dirichlet_data(4)
    mapie = _mapie(Q_cal, y_cal, "aps", seed=11)
    u = np.random.RandomState(11).uniform(size=Q_cal.shape[0])
    rows = np.arange(Q_cal.shape[0])
    restored = mapie.conformity_scores.ravel() + u * Q_cal[rows, y_cal]
    np.testing.assert_allclose(aps_scores(Q_cal)[rows, y_cal], restored, atol=1e-15)
    # And the randomized score with the same u is MAPIE's exactly.
    randomized = aps_scores(Q_cal, u)[rows, y_cal]
    np.testing.assert_array_equal(randomized, mapie.conformity_scores.ravel())


@pytest.mark.filterwarnings("ignore:WARNING. your conformalization dataset:UserWarning")
def test_class_conditional_lac_matches_mapie_fitted_per_class():
    # Mondrian by true class = for each class k, MAPIE conformalized on the rows of class k,
    # read on label column k.
    Q_cal, y_cal, Q_test, _ = _dirichlet_data(5, n_cal=900)
    mapie_sets = np.zeros((Q_test.shape[0], 4, len(COVERAGES)), dtype=bool)
    mapie_thresholds = np.zeros((len(COVERAGES), 4))
    for k in range(4):
        mapie = _mapie(Q_cal[y_cal == k], y_cal[y_cal == k], "lac")
        mapie_sets[:, k, :] = mapie.predict_set(Q_test)[1][:, k, :]
        mapie_thresholds[:, k] = mapie._mapie_classifier.quantiles_
    ours = ConformalSets("lac", class_conditional=True).fit(Q_cal, y_cal)
    np.testing.assert_array_equal(ours.thresholds_, mapie_thresholds)
    for i, coverage in enumerate(COVERAGES):
        np.testing.assert_array_equal(ours.predict_sets(Q_test, coverage), mapie_sets[:, :, i])


def test_class_conditional_aps_thresholds_match_mapie_quantiles_of_each_class():
    # MAPIE refuses APS on a one-class conformalization set, so the per-class thresholds are
    # MAPIE's quantile rule applied to MAPIE's (randomized) scores of each class's rows.
    Q_cal, y_cal, _, _ = _dirichlet_data(5, n_cal=900)
    mapie = _mapie(Q_cal, y_cal, "aps", seed=7)
    u_cal = np.random.RandomState(7).uniform(size=Q_cal.shape[0])
    alphas = 1 - np.array(COVERAGES)
    ours = ConformalSets("aps", class_conditional=True, randomized=True).fit(Q_cal, y_cal, u_cal)
    for k in range(4):
        expected = _compute_classification_quantile(
            mapie.conformity_scores[y_cal == k], alphas
        ).ravel()
        np.testing.assert_array_equal(ours.thresholds_[:, k], expected)


# ----------------------------------------------------------------------------- invariants


@st.composite
def _calibration_sets(draw):
    n_classes = draw(st.integers(2, 5))
    n = draw(st.integers(1, 60))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    Q = rng.dirichlet(np.ones(n_classes), size=n)
    if draw(st.booleans()):
        Q = np.round(Q * 20) / 20 + 1e-3  # verbalized grid with ties
    y = rng.integers(0, n_classes, size=n)
    return Q / Q.sum(axis=1, keepdims=True), y


@given(_calibration_sets(), st.sampled_from(["lac", "aps"]), st.booleans())
def test_calibration_coverage_and_nesting(data, score, class_conditional):
    Q, y = data
    model = ConformalSets(score, class_conditional=class_conditional).fit(Q, y)
    previous = None
    for coverage in COVERAGES:
        sets = model.predict_sets(Q, coverage)
        covered = sets[np.arange(y.size), y]
        # At least k of the n_g calibration scores of each group are <= its k-th smallest.
        groups = [y == k for k in range(Q.shape[1])] if class_conditional else [y >= 0]
        for group in groups:
            if group.any():
                needed = min(conformal_rank(group.sum(), coverage), group.sum())
                assert covered[group].sum() >= needed
        if previous is not None:
            assert np.all(sets >= previous)  # higher coverage: superset
        previous = sets


@given(_calibration_sets())
def test_randomized_aps_with_zero_uniforms_is_the_deterministic_aps(data):
    Q, y = data
    det = ConformalSets("aps").fit(Q, y)
    ran = ConformalSets("aps", randomized=True).fit(Q, y, np.zeros(y.size))
    np.testing.assert_array_equal(det.thresholds_, ran.thresholds_)
    for coverage in COVERAGES:
        np.testing.assert_array_equal(
            det.predict_sets(Q, coverage), ran.predict_sets(Q, coverage, np.zeros(y.size))
        )


# ----------------------------------------------------------------------------- persistence, report


@pytest.mark.parametrize(
    ("score", "class_conditional", "randomized"),
    [("lac", False, False), ("aps", True, False), ("aps", False, True)],
)
def test_to_dict_round_trips_through_json(score, class_conditional, randomized):
    Q_cal, y_cal, Q_test, _ = _dirichlet_data(6)
    model = ConformalSets(score, class_conditional, randomized, random_state=3).fit(Q_cal, y_cal)
    stored = json.loads(json.dumps(model.to_dict(), allow_nan=False))
    rebuilt = ConformalSets.from_dict(stored)
    assert rebuilt.to_dict() == model.to_dict()
    for coverage in COVERAGES:
        np.testing.assert_array_equal(
            rebuilt.predict_sets(Q_test, coverage), model.predict_sets(Q_test, coverage)
        )


def test_coverage_report_is_json_ready_with_nulls_for_absent_classes():
    Q_cal, y_cal, Q_test, y_test = _dirichlet_data(8)
    model = ConformalSets("aps", class_conditional=True).fit(Q_cal, y_cal)
    keep = y_test != 3
    report = model.coverage_report(Q_test[keep], y_test[keep], labels=["a", "b", "c", "d"])
    json.dumps(report, allow_nan=False)
    assert report["n"] == keep.sum() and [e["coverage"] for e in report["coverages"]] == [
        0.8,
        0.9,
        0.95,
    ]
    for entry in report["coverages"]:
        sets = model.predict_sets(Q_test[keep], entry["coverage"])
        rows = np.arange(keep.sum())
        assert entry["empirical_coverage"] == pytest.approx(sets[rows, y_test[keep]].mean())
        assert entry["mean_set_size"] == pytest.approx(sets.sum(axis=1).mean())
        assert sum(entry["set_size_counts"]) == keep.sum() and len(entry["set_size_counts"]) == 5
        assert entry["per_class"][3] == {
            "label": "d",
            "n": 0,
            "empirical_coverage": None,
            "mean_set_size": None,
        }
        assert len(entry["thresholds"]) == 4


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"score": "raps"}, "score must be one of"),
        ({"score": "lac", "randomized": True}, "randomized=True is defined"),
        ({"coverages": (0.9, 0.9)}, "distinct"),
        ({"coverages": (0.0, 0.9)}, r"\(0, 1\)"),
        ({"coverages": ()}, "must not be empty"),
        ({"class_conditional": "yes"}, "class_conditional must be a bool"),
    ],
)
def test_bad_parameters_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ConformalSets(**kwargs).fit(np.array([[0.5, 0.5]]), [0])


def test_bad_calls_raise():
    model = ConformalSets().fit(np.array([[0.7, 0.3], [0.4, 0.6]]), [0, 1])
    with pytest.raises(ValueError, match=r"coverage 0.85 was not fitted; available: \[0.8"):
        model.predict_sets(np.array([[0.5, 0.5]]), 0.85)
    with pytest.raises(ValueError, match="only used with randomized"):
        model.predict_sets(np.array([[0.5, 0.5]]), 0.9, uniforms=[0.5])
    with pytest.raises(ValueError, match="3 columns; the fit had 2"):
        model.predict_sets(np.full((1, 3), 1 / 3), 0.9)
    with pytest.raises(ValueError, match="invalid probability rows"):
        model.predict_sets(np.array([[0.5, np.nan]]), 0.9)
    with pytest.raises(ValueError, match="expected method 'conformal'"):
        ConformalSets.from_dict({"method": "temperature", "fitted": {}})
    broken = model.to_dict()
    broken["fitted"]["thresholds"] = [[0.1, 0.2]]
    with pytest.raises(ValueError, match="must hold 3 lists of 1 values"):
        ConformalSets.from_dict(broken)
    randomized = ConformalSets("aps", randomized=True).fit(np.array([[0.7, 0.3]]), [0])
    with pytest.raises(ValueError, match=r"uniforms must have shape \(1,\)"):
        randomized.predict_sets(np.array([[0.7, 0.3]]), 0.9, uniforms=[0.1, 0.2])


# ----------------------------------------------------------------------------- coverage in practice


def _simulated_split(seed, n_fit=500, n_cal=500, n_test=1000):
    """Stated answers of the simulator, temperature-calibrated on a fit split."""
    rng = np.random.default_rng(seed)
    posterior, y, _ = draw_tickets(n_fit + n_cal + n_test, rng)
    P = stated(posterior)
    calibrator = TemperatureScaling().fit(P[:n_fit], y[:n_fit])
    Q = calibrator.transform(P[n_fit:])
    return Q[:n_cal], y[n_fit : n_fit + n_cal], Q[n_cal:], y[n_fit + n_cal :]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("score", "class_conditional", "randomized"),
    [("lac", False, False), ("aps", False, False), ("aps", False, True), ("lac", True, False)],
)
def test_coverage_on_the_simulator_over_many_seeds(score, class_conditional, randomized):
    # Per seed the test coverage c_s is an unbiased draw of a quantity with mean >= 1 - alpha
    # (exchangeable calibration and test rows). Over S seeds the mean c̄ may fall below it by
    # sampling noise only: tolerance = 3 ŝ / √S with ŝ the standard deviation of the c_s.
    # Randomized APS (continuous scores) also has mean <= 1 - alpha + 1/(n_g + 1).
    n_seeds, n_cal = 30, 500
    coverage_by_seed = {c: [] for c in COVERAGES}
    for seed in range(n_seeds):
        Q_cal, y_cal, Q_test, y_test = _simulated_split(seed, n_cal=n_cal)
        model = ConformalSets(score, class_conditional, randomized, random_state=seed)
        report = model.fit(Q_cal, y_cal).coverage_report(Q_test, y_test)
        for entry in report["coverages"]:
            coverage_by_seed[entry["coverage"]].append(entry["empirical_coverage"])
    for coverage, values in coverage_by_seed.items():
        values = np.asarray(values)
        tolerance = 3 * values.std(ddof=1) / math.sqrt(n_seeds)
        print(
            f"{score} cc={class_conditional} rand={randomized} target {coverage}: "
            f"mean {values.mean():.4f} ± {tolerance:.4f} (min {values.min():.3f})"
        )
        assert values.mean() >= coverage - tolerance
        if randomized:
            assert values.mean() <= coverage + 1 / (n_cal + 1) + tolerance


def test_coverage_on_real_llm_answers():
    rows = [json.loads(line) for line in REAL_DATA.read_text().splitlines()]
    rows = [r for r in rows if r["parsed"] is not None]
    P = np.array([r["parsed"] for r in rows], dtype=np.float64)
    y = np.array([r["labels"].index(r["gold"]) for r in rows])
    valid = np.setdiff1d(np.arange(len(rows)), invalid_rows(P))
    P, y = P[valid], y[valid]
    order = np.random.default_rng(0).permutation(y.size)
    fit, cal, test = np.array_split(order, 3)
    Q = TemperatureScaling().fit(P[fit], y[fit]).transform(P)
    n_test, n_cal = test.size, cal.size
    for score in ("lac", "aps"):
        model = ConformalSets(score).fit(Q[cal], y[cal])
        report = model.coverage_report(Q[test], y[test], labels=["A", "B", "C", "D"])
        for entry in report["coverages"]:
            alpha = 1 - entry["coverage"]
            print(
                f"real sat-en {score} target {entry['coverage']}: coverage "
                f"{entry['empirical_coverage']:.3f}, mean set size {entry['mean_set_size']:.2f}, "
                f"sizes {entry['set_size_counts']} (n_cal {n_cal}, n_test {n_test})"
            )
            # One split: test noise plus the spread of the calibration quantile.
            tolerance = 3 * math.sqrt(alpha * (1 - alpha) * (1 / n_test + 1 / (n_cal + 2)))
            assert entry["empirical_coverage"] >= entry["coverage"] - tolerance
            assert sum(entry["set_size_counts"]) == n_test
            assert 0 <= entry["mean_set_size"] <= 4
