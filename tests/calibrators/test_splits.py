import numpy as np
import pytest

from calibrators.splits import fold_assignment, holdout_split, stratified_folds


def test_holdout_split_matches_the_api_semantics():
    fit_rows, held_out = holdout_split(10, 0.3, seed=4)
    order = np.random.default_rng(4).permutation(10)
    np.testing.assert_array_equal(held_out, np.sort(order[:3]))
    np.testing.assert_array_equal(fit_rows, np.sort(order[3:]))
    assert holdout_split(3, 0.01, 0)[1].size == 1
    assert holdout_split(3, 0.99, 0)[0].size == 1


@pytest.mark.parametrize(("n", "holdout"), [(1, 0.3), (10, 0.0), (10, 1.0)])
def test_holdout_split_rejects_degenerate_splits(n, holdout):
    with pytest.raises(ValueError):
        holdout_split(n, holdout, 0)


def test_fold_assignment_cuts_a_seeded_permutation():
    fold_of = fold_assignment(7, 3, seed=2)
    order = np.random.default_rng(2).permutation(7)
    np.testing.assert_array_equal(fold_of[order], [0, 0, 0, 1, 1, 2, 2])


def test_stratified_folds_deal_each_class_round_robin():
    y = np.array([0] * 5 + [1] * 4)
    fold_of = stratified_folds(y, 3, random_state=1)
    rng = np.random.default_rng(1)
    first, second = rng.permutation(np.arange(5)), rng.permutation(np.arange(5, 9))
    np.testing.assert_array_equal(fold_of[first], [0, 1, 2, 0, 1])
    np.testing.assert_array_equal(fold_of[second], [2, 0, 1, 2])
    assert sorted(np.bincount(fold_of)) == [3, 3, 3]
