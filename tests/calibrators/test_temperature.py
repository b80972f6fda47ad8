import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar
from sklearn.calibration import _TemperatureScaling
from sklearn.exceptions import NotFittedError

from calibrators import _dedup, log_temperature
from calibrators._dedup import unique_rows
from calibrators.logits import inverse_softmax, softmax
from calibrators.temperature import DEFAULT_EPS_GRID, TemperatureScaling


def sample_labels(rng, probabilities):
    cumulative = probabilities.cumsum(axis=1)
    return (cumulative > rng.random((len(probabilities), 1)) * cumulative[:, -1:]).argmax(axis=1)


def verbalized(n, K, scale, seed, grid=None):
    """Labels y ~ softmax(z) for true logits z, verbalized P = softmax(scale · z), maybe rounded."""
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=1.5, size=(n, K))
    y = sample_labels(rng, softmax(z))
    P = softmax(scale * z)
    if grid is not None:
        P = np.round(P / grid) * grid
        P[P.sum(axis=1) == 0, 0] = 1.0
    return P, y


def brute_force_objective(Z, y, T, objective):
    """Per-sample objective, written independently of the fitted code (no dedup, no Newton)."""
    q = softmax(Z / T)
    q_y = q[np.arange(len(y)), y]
    if objective == "nll":
        return -np.mean(np.log(q_y))
    if objective == "brier":
        onehot = np.eye(Z.shape[1])[y]
        return np.mean(np.sum((q - onehot) ** 2, axis=1))
    return -np.mean(q_y / np.linalg.norm(q, axis=1))


def brute_force_temperature(Z, y, objective, low=1e-2, high=1e2):
    grid = np.linspace(math.log(low), math.log(high), 401)
    values = [brute_force_objective(Z, y, math.exp(u), objective) for u in grid]
    best = int(np.argmin(values))
    a, b = grid[max(best - 1, 0)], grid[min(best + 1, grid.size - 1)]
    result = minimize_scalar(
        lambda u: brute_force_objective(Z, y, math.exp(u), objective),
        bounds=(a, b),
        method="bounded",
        options={"xatol": 1e-12},
    )
    return math.exp(result.x)


@pytest.mark.parametrize("scale", [0.5, 2.0, 3.0])
@pytest.mark.parametrize("K", [4, 10])
def test_recovers_known_temperature(scale, K):
    # P = softmax(s z) gives inverse_softmax(P, 0) = s z + c, and softmax(s z / T) is the true
    # distribution softmax(z) at T = s; the MLE of T must find it.
    P, y = verbalized(20_000, K, scale, seed=K)
    model = TemperatureScaling(eps=0).fit(P, y)
    assert model.temperature_ == pytest.approx(scale, rel=0.02)
    assert model.converged_ and not model.at_bound_
    assert model.n_iter_ <= 20
    assert model.loss_after_ <= model.loss_before_


@pytest.mark.parametrize("objective", ["nll", "brier", "spherical"])
def test_matches_brute_force_grid_search(objective):
    P, y = verbalized(3_000, 5, 2.0, seed=7, grid=0.05)
    model = TemperatureScaling(objective=objective, eps=1e-2).fit(P, y)
    expected = brute_force_temperature(inverse_softmax(P, 1e-2), y, objective)
    assert model.temperature_ == pytest.approx(expected, rel=1e-4)
    assert model.objective_ == objective
    Z = inverse_softmax(P, 1e-2)
    assert model.loss_before_ == pytest.approx(brute_force_objective(Z, y, 1.0, objective))
    assert model.loss_after_ == pytest.approx(
        brute_force_objective(Z, y, model.temperature_, objective)
    )


@pytest.mark.parametrize("eps", [1e-3, 3e-2])
def test_matches_sklearn_temperature_scaling(eps):
    P, y = verbalized(20_000, 6, 2.5, seed=3, grid=0.05)
    ours = TemperatureScaling(eps=eps).fit(P, y)
    reference = _TemperatureScaling().fit(inverse_softmax(P, eps), y)
    assert ours.temperature_ == pytest.approx(1.0 / reference.beta_, rel=1e-3)


def test_unit_temperature_is_identity():
    P = np.array([[0.2, 0.3, 0.5], [1.0, 2.0, 1.0], [0.05, 0.9, 0.05]])
    fitted = TemperatureScaling(eps=0).fit(P, [0, 1, 2]).to_dict()
    fitted["fitted"]["temperature"] = 1.0
    model = TemperatureScaling.from_dict(fitted)
    np.testing.assert_allclose(model.transform(P), P / P.sum(axis=1, keepdims=True), rtol=1e-13)
    fitted["fitted"]["eps"] = 0.1
    smoothed = (P / P.sum(axis=1, keepdims=True) + 0.1) / 1.3
    np.testing.assert_allclose(TemperatureScaling.from_dict(fitted).transform(P), smoothed)


@given(
    st.lists(st.lists(st.integers(0, 20), min_size=4, max_size=4), min_size=1, max_size=20),
    st.floats(1e-2, 1e2),
    st.sampled_from([0.0, 1e-3, 0.1]),
)
def test_argmax_never_changes(counts, temperature, eps):
    # Verbalized rows on the 0.05 grid; ties keep the lowest index, as in np.argmax.
    P = np.array(counts, dtype=np.float64) / 20
    P[P.sum(axis=1) == 0] = 1.0
    if eps == 0:
        P += 0.05
    data = TemperatureScaling(eps=eps).fit(P, np.zeros(len(P), dtype=int)).to_dict()
    data["fitted"]["temperature"] = temperature
    model = TemperatureScaling.from_dict(data)
    np.testing.assert_array_equal(model.predict(P), P.argmax(axis=1))


def test_integer_weights_equal_repeated_rows():
    P, y = verbalized(2_000, 4, 2.0, seed=11, grid=0.1)
    weights = np.random.default_rng(0).integers(0, 4, size=len(y))
    weighted = TemperatureScaling().fit(P, y, sample_weight=weights)
    repeated = TemperatureScaling().fit(np.repeat(P, weights, axis=0), np.repeat(y, weights))
    assert weighted.temperature_ == pytest.approx(repeated.temperature_, rel=1e-10)
    assert weighted.loss_after_ == pytest.approx(repeated.loss_after_, rel=1e-10)


@pytest.mark.parametrize("objective", ["nll", "brier", "spherical"])
def test_dedup_fit_equals_fit_without_dedup(objective, monkeypatch):
    P, y = verbalized(3_000, 4, 2.0, seed=5, grid=0.05)
    deduped = TemperatureScaling(objective=objective).fit(P, y)
    assert deduped.n_unique_rows_ < len(P) // 2
    monkeypatch.setattr(_dedup, "unique_rows", lambda X: (X, np.arange(len(X))))
    every_row = TemperatureScaling(objective=objective).fit(P, y)
    assert every_row.n_unique_rows_ == len(P)
    assert deduped.temperature_ == pytest.approx(every_row.temperature_, rel=1e-9)
    assert deduped.loss_after_ == pytest.approx(every_row.loss_after_, rel=1e-12)


def test_unique_rows_inverse_and_hash_collision_fallback(monkeypatch):
    rng = np.random.default_rng(0)
    X = np.round(rng.random((500, 3)), 1)
    unique, inverse = unique_rows(X)
    np.testing.assert_array_equal(unique[inverse], X)
    assert len(unique) == len(np.unique(X, axis=0))
    monkeypatch.setattr(_dedup, "_row_hashes", lambda bits: np.zeros(len(bits), np.uint64))
    unique, inverse = unique_rows(X)
    np.testing.assert_array_equal(unique[inverse], X)
    assert len(unique) == len(np.unique(X, axis=0))


def test_inverse_softmax_beats_resoftmax_mistake():
    # The paper's point: treating probabilities as logits, q = softmax(P / T), is worse in
    # held-out NLL than temperature scaling of the inverse-softmax logits on the same data.
    P, y = verbalized(20_000, 5, 2.0, seed=1, grid=0.05)
    fit, test = slice(0, 10_000), slice(10_000, None)
    ours = TemperatureScaling(eps=1e-3).fit(P[fit], y[fit])
    ours_nll = -np.mean(np.log(ours.transform(P[test])[np.arange(10_000), y[test]]))

    def mistake_nll(u, rows):
        q = softmax(P[rows] / math.exp(u))
        return -np.mean(np.log(q[np.arange(len(q)), y[rows]]))

    u = minimize_scalar(lambda u: mistake_nll(u, fit), bounds=(-5, 5), method="bounded").x
    assert ours_nll < mistake_nll(u, test) - 0.05
    K = P.shape[1]
    assert softmax(P).max() <= math.e / (math.e + K - 1) + 1e-15


def test_temperature_stops_at_bound_and_flags_it():
    P, y = verbalized(5_000, 4, 3.0, seed=2)
    model = TemperatureScaling(eps=0, bounds=(0.5, 1.5)).fit(P, y)
    assert model.temperature_ == pytest.approx(1.5, rel=1e-12)
    assert model.at_bound_ and model.converged_
    model = TemperatureScaling(eps=0, bounds=(0.01, 5.0)).fit(P, y)
    assert not model.at_bound_


def test_eps_auto_is_deterministic_and_picks_best_heldout_nll():
    P, y = verbalized(4_000, 4, 2.0, seed=9, grid=0.1)
    first = TemperatureScaling(eps="auto", random_state=3).fit(P, y)
    second = TemperatureScaling(eps="auto", random_state=3).fit(P, y)
    assert first.to_dict() == second.to_dict()
    scores = first.eps_scores_
    assert [s["eps"] for s in scores] == list(DEFAULT_EPS_GRID)
    best = min(scores, key=lambda s: s["heldout_nll"])
    assert first.eps_ == best["eps"]
    direct = TemperatureScaling(eps=first.eps_).fit(P, y)
    assert first.temperature_ == direct.temperature_


def test_to_dict_roundtrip_is_exact_and_json_safe():
    P, y = verbalized(2_000, 4, 2.0, seed=4, grid=0.05)
    model = TemperatureScaling(objective="brier", eps="auto").fit(P, y)
    data = json.loads(json.dumps(model.to_dict()))
    assert data["method"] == "temperature"
    assert data["params"]["eps"] == "auto"
    rebuilt = TemperatureScaling.from_dict(data)
    np.testing.assert_array_equal(rebuilt.transform(P), model.transform(P))
    assert rebuilt.to_dict() == model.to_dict()


def test_not_fitted():
    with pytest.raises(NotFittedError, match="not fitted"):
        TemperatureScaling().transform([[0.5, 0.5]])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"objective": "hinge"}, "objective"),
        ({"bounds": (0.0, 10.0)}, "bounds"),
        ({"bounds": (5.0, 1.0)}, "bounds"),
        ({"bounds": (1.0,)}, "bounds"),
        ({"eps": -1.0}, "eps"),
        ({"eps": "big"}, "eps"),
        ({"eps_grid": ()}, "eps_grid"),
        ({"eps_grid": (0.0, 1e-3)}, "eps_grid"),
        ({"auto_folds": 1}, "auto_folds"),
        ({"tol": 0}, "tol"),
        ({"max_iter": 0}, "max_iter"),
    ],
)
def test_invalid_parameters(params, message):
    with pytest.raises(ValueError, match=message):
        TemperatureScaling(**params).fit([[0.5, 0.5], [0.2, 0.8]], [0, 1])


def test_invalid_data():
    model = TemperatureScaling()
    with pytest.raises(ValueError, match=r"indices \[1, 2\]"):
        model.fit([[0.5, 0.5], [np.nan, 1.0], [-0.1, 1.0]], [0, 1, 1])
    with pytest.raises(ValueError, match=r"out of range at indices \[1\]"):
        model.fit([[0.5, 0.5], [0.2, 0.8]], [0, 2])
    with pytest.raises(ValueError, match="shape"):
        model.fit([[0.5, 0.5], [0.2, 0.8]], [0])
    with pytest.raises(ValueError, match="2-D"):
        model.fit([0.5, 0.5], [0, 1])
    with pytest.raises(ValueError, match=r"eps=0.*\[1\]"):
        TemperatureScaling(eps=0).fit([[0.5, 0.5], [0.0, 1.0]], [0, 1])
    model.fit([[0.5, 0.5], [0.2, 0.8]], [0, 1])
    with pytest.raises(ValueError, match="3 columns"):
        model.transform([[0.2, 0.3, 0.5]])
    with pytest.raises(ValueError, match="needs at least 5 samples"):
        TemperatureScaling(eps="auto").fit([[0.5, 0.5]], [0])


def test_warm_start_on_a_subset_gives_the_same_fit(monkeypatch):
    P, y = verbalized(3_000, 4, 2.0, seed=8)
    cold = TemperatureScaling(eps=0).fit(P, y)
    monkeypatch.setattr(log_temperature, "_WARM_START_MIN_ROWS", 100)
    monkeypatch.setattr(log_temperature, "_WARM_START_SUBSET_ROWS", 300)
    warm = TemperatureScaling(eps=0).fit(P, y)
    assert warm.temperature_ == pytest.approx(cold.temperature_, rel=1e-9)
    assert warm.n_iter_ < cold.n_iter_


def test_invalid_rows_are_named_by_original_index_despite_dedup():
    rows = [[0.5, 0.5], [np.nan, 1.0], [0.5, 0.5], [np.nan, 1.0], [0.0, 1.0]]
    with pytest.raises(ValueError, match=r"indices \[1, 3\]"):
        TemperatureScaling().fit(rows, [0, 1, 0, 1, 1])
    with pytest.raises(ValueError, match=r"eps=0.*\[1, 3\]"):
        TemperatureScaling(eps=0).fit([[0.5, 0.5], [0.0, 1.0]] * 2, [0, 1, 0, 1])


def test_eps_auto_scores_are_cross_validated_nll():
    """Each grid score equals the fold-weighted held-out NLL computed here by hand."""
    from calibrators.logits import inverse_softmax
    from calibrators.splits import stratified_folds

    P, y = verbalized(600, 3, 2.0, seed=11, grid=0.05)
    model = TemperatureScaling(eps="auto", auto_folds=3, random_state=4).fit(P, y)
    fold_of = stratified_folds(y, 3, 4)
    assert sorted(np.bincount(fold_of)) == [200, 200, 200]
    for score in model.eps_scores_:
        losses = []
        for fold in range(3):
            held = fold_of == fold
            t = TemperatureScaling(eps=score["eps"]).fit(P[~held], y[~held]).temperature_
            z = inverse_softmax(P[held], score["eps"]) / t
            log_q = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
            losses.append(-log_q[np.arange(held.sum()), y[held]])
        assert score["heldout_nll"] == pytest.approx(np.concatenate(losses).mean(), rel=1e-9)


def test_eps_auto_needs_as_many_samples_as_folds():
    P = np.array([[0.9, 0.1], [0.2, 0.8]])
    with pytest.raises(ValueError, match="auto_folds=5 needs at least 5 samples"):
        TemperatureScaling(eps="auto").fit(P, [0, 1])


def test_a_row_whose_sum_overflows_is_invalid_not_zeros():
    # 1e308 + 1e308 is inf: renormalizing would give [0, 0] and a fit on zeros.
    rows = [[0.5, 0.5], [1e308, 1e308], [0.2, 0.8]]
    with pytest.raises(ValueError, match=r"overflowing sum\) at indices \[1\]"):
        TemperatureScaling().fit(rows, [0, 1, 1])
