"""Operating points vs scikit-learn precision_recall_curve and a brute-force selection."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import precision_recall_curve

from calibrators._validation import check_probabilities
from calibrators.thresholds import (
    decision_curves,
    downsample_indices,
    operating_points,
    precision_recall_points,
    selective_curve,
    threshold_for_precision,
)


def test_sklearn_documentation_example():
    # scikit-learn docstring of precision_recall_curve (same "score >= t" convention):
    # y = [0,0,1,1], s = [.1,.4,.35,.8] → thresholds [.1,.35,.4,.8],
    # precision [.5, 2/3, .5, 1], recall [1, 1, .5, .5] (+ sklearn's (1, 0) sentinel)
    pts = precision_recall_points([0.1, 0.4, 0.35, 0.8], np.array([0, 0, 1, 1]) == 1)
    assert pts.thresholds.tolist() == [0.1, 0.35, 0.4, 0.8]
    assert np.allclose(pts.precision, [0.5, 2 / 3, 0.5, 1.0])
    assert np.allclose(pts.recall, [1.0, 1.0, 0.5, 0.5])
    assert pts.support.tolist() == [4, 3, 2, 1]


def _brute_force(scores, positive, target, kind):
    best = None
    for t in sorted(set(scores.tolist())):
        kept = scores >= t
        tp = int(np.sum(kept & positive))
        precision, recall = tp / kept.sum(), tp / positive.sum()
        if kind == "precision" and precision >= target and best is None:
            best = t  # smallest t reaching the target
        if kind == "recall" and recall >= target:
            best = t  # largest t reaching the target
    return best


@pytest.mark.parametrize("seed", range(4))
def test_matches_sklearn_and_brute_force(seed):
    rng = np.random.default_rng(seed)
    n, k = 400, 3
    P = np.round(rng.dirichlet(np.ones(k), size=n) * 20) / 20  # verbalized grid, many ties
    P[P.sum(axis=1) == 0, 0] = 1.0
    y = rng.integers(0, k, n)
    Q = check_probabilities(P)  # rows within ROW_SUM_TOLERANCE of 1 are kept as given
    result = operating_points(
        P,
        y,
        ["a", "b", "c"],
        max_points=None,
        target_precisions=(0.3, 0.5, 0.9),
        target_recalls=(0.5, 0.9, 1.0),
    )
    for j, label in enumerate(["a", "b", "c"]):
        precision, recall, thresholds = precision_recall_curve(y == j, Q[:, j])
        curve = result[label]["curve"]
        assert np.array_equal(curve["thresholds"], thresholds)
        assert np.allclose(curve["precision"], precision[:-1])
        assert np.allclose(curve["recall"], recall[:-1])
        for entry in result[label]["precision_targets"]:
            expected = _brute_force(Q[:, j], y == j, entry["target"], "precision")
            assert entry["threshold"] == expected
            if expected is not None:
                kept = Q[:, j] >= expected
                assert entry["support"] == kept.sum()
                assert entry["expected_precision"] == pytest.approx(Q[kept, j].mean())
                assert entry["precision"] >= entry["target"]
        for entry in result[label]["recall_targets"]:
            assert entry["threshold"] == _brute_force(Q[:, j], y == j, entry["target"], "recall")


def test_unreached_target_and_absent_class_are_null():
    P = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]])
    y = np.array([0, 1, 0])
    result = operating_points(P, y, ["x", "y"], target_precisions=(0.99,), target_recalls=(0.5,))
    # class x: points t=.9 (1/1), .8 (1/2), .7 (2/3): precision .99 only at t=.9
    assert result["x"]["precision_targets"][0]["threshold"] == 0.9
    # class y: t=.1 (1/3), .2 (1/2), .3 (0/1): never .99
    assert result["y"]["precision_targets"][0]["threshold"] is None
    absent = operating_points(P, np.zeros(3, int), ["x", "y"])
    assert absent["y"]["n_positive"] == 0
    assert absent["y"]["curve"]["recall"] is None
    assert all(e["threshold"] is None for e in absent["y"]["recall_targets"])


@given(
    st.lists(st.sampled_from([0.0, 0.05, 0.5, 0.55, 0.95, 1.0]), min_size=2, max_size=40), st.data()
)
def test_recall_non_increasing_in_threshold(scores, data):
    positive = np.array(
        data.draw(st.lists(st.booleans(), min_size=len(scores), max_size=len(scores)))
    )
    if not positive.any():
        positive[0] = True
    pts = precision_recall_points(np.array(scores), positive)
    assert np.all(np.diff(pts.thresholds) > 0)
    assert np.all(np.diff(pts.recall) <= 0)


def test_selective_curve_and_downsampling():
    P = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.5, 0.5]])
    y = np.array([0, 1, 0, 0])
    curve = selective_curve(P, y)
    # t = .9: keep 2 (1 correct); t = .6: 3 (2); t = .5: 4 (3, tie → class 0 correct)
    assert curve["threshold"] == [0.9, 0.6, 0.5]
    assert curve["coverage"] == [0.5, 0.75, 1.0]
    assert curve["accuracy"] == pytest.approx([0.5, 2 / 3, 0.75])
    rng = np.random.default_rng(0)
    P = rng.dirichlet(np.ones(3), size=1000)
    small = selective_curve(P, rng.integers(0, 3, 1000), max_points=10)
    assert len(small["threshold"]) == 10
    assert small["coverage"][-1] == 1.0


def test_decision_curves_and_the_served_threshold():
    # Class "b" is the sklearn example above: precision [.5, 2/3, .5, 1] at [.1, .35, .4, .8].
    scores = np.array([0.1, 0.4, 0.35, 0.8])
    P = np.column_stack([1 - scores, scores])
    curves = decision_curves(P, [0, 0, 1, 1], ["a", "b"])
    assert curves["b"]["thresholds"] == [0.1, 0.35, 0.4, 0.8]
    assert curves["b"]["precision"] == pytest.approx([0.5, 2 / 3, 0.5, 1.0])
    assert set(curves["b"]) == {"thresholds", "precision"}
    assert threshold_for_precision(curves["b"], 0.6) == 0.35
    assert threshold_for_precision(curves["b"], 0.7) == 0.8
    assert threshold_for_precision(curves["b"], 0.5) == 0.1
    assert threshold_for_precision({"thresholds": [], "precision": []}, 0.5) is None
    assert threshold_for_precision(curves["a"], 1.01) is None


def test_decision_curves_downsample_like_every_curve():
    rng = np.random.default_rng(0)
    P = rng.dirichlet([1, 1], size=50)
    y = rng.integers(0, 2, 50)
    full = decision_curves(P, y, ["a", "b"], max_points=None)["a"]
    short = decision_curves(P, y, ["a", "b"], max_points=7)["a"]
    keep = downsample_indices(len(full["thresholds"]), 7)
    assert short["thresholds"] == [full["thresholds"][i] for i in keep]
    assert short["thresholds"][0] == full["thresholds"][0]
    assert short["thresholds"][-1] == full["thresholds"][-1]


@pytest.mark.parametrize("seed", range(3))
def test_grouped_rows_give_the_points_of_every_row(seed):
    from calibrators.thresholds import group_rows

    rng = np.random.default_rng(seed)
    grid = np.round(rng.dirichlet(np.ones(3), size=40) * 10) / 10
    grid[grid.sum(axis=1) == 0, 0] = 1.0
    P = check_probabilities(grid[rng.integers(0, 40, 2000)])
    y = rng.integers(0, 3, 2000)
    grouped = group_rows(P, y)
    assert grouped.unique.shape[0] <= 40
    assert grouped.counts.sum() == 2000
    for k in range(3):
        rows = precision_recall_points(P[:, k], y == k)
        groups = precision_recall_points(
            grouped.unique[:, k], grouped.label_counts[:, k], grouped.counts
        )
        np.testing.assert_array_equal(groups.thresholds, rows.thresholds)
        np.testing.assert_array_equal(groups.precision, rows.precision)
        np.testing.assert_array_equal(groups.recall, rows.recall)
        np.testing.assert_array_equal(groups.support, rows.support)
        np.testing.assert_allclose(groups.expected_precision, rows.expected_precision, rtol=1e-12)
        assert groups.n_positive == rows.n_positive
