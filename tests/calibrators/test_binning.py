"""Bin assignment: exact uniform edges, right-closed bins, stable quantile chunks."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from calibrators.binning import (
    assign_bins,
    quantile_chunk_sums,
    uniform_bin_ids,
    uniform_edges,
)


def test_uniform_edges_are_the_literals():
    # j/M computed as one division equals the decimal literal: 0.2, 0.4, 0.6 with M = 5, 10.
    assert uniform_edges(5).tolist() == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert uniform_edges(10)[[2, 4, 6, 7]].tolist() == [0.2, 0.4, 0.6, 0.7]


@pytest.mark.parametrize(
    ("c", "m", "expected"),
    [
        (0.0, 5, 0),  # c = 0 goes in the first bin
        (0.2, 5, 0),  # on the edge: lower bin (0, 0.2]
        (0.2000000000000001, 5, 1),
        (0.4, 5, 1),
        (0.6, 5, 2),
        (0.8, 5, 3),
        (1.0, 5, 4),
        (0.2, 10, 1),
        (0.4, 10, 3),
        (0.6, 10, 5),
        (0.7, 10, 6),
        (0.95, 10, 9),
        (0.85, 10, 8),
        (0.9, 10, 8),
        (1.0, 15, 14),
        (1 / 15, 15, 0),
    ],
)
def test_uniform_bins_are_right_closed(c, m, expected):
    assert uniform_bin_ids(np.array([c]), m)[0] == expected
    assert assign_bins(np.array([c]), m).bin_ids[0] == expected


@given(
    st.lists(st.floats(0, 1), min_size=1, max_size=50),
    st.integers(1, 40),
)
def test_uniform_bin_ids_equal_searchsorted_on_exact_edges(values, m):
    c = np.array(values + [j / m for j in range(m + 1)])
    reference = np.clip(np.searchsorted(uniform_edges(m), c, side="left"), 1, m) - 1
    assert np.array_equal(uniform_bin_ids(c, m), reference)


def test_quantile_bins_stable_chunks_and_bounds():
    c = np.array([0.6, 0.6, 0.8, 0.5, 1.0, 1.0])
    bins = assign_bins(c, 3, "quantile")
    # stable order: i3(0.5) i0(0.6) | i1(0.6) i2(0.8) | i4 i5 (1.0)
    assert bins.bin_ids.tolist() == [0, 1, 1, 0, 2, 2]
    assert bins.lower.tolist() == [0.5, 0.6, 1.0]
    assert bins.upper.tolist() == [0.6, 0.8, 1.0]
    # n = 6 < M = 10: four empty chunks dropped
    assert assign_bins(c, 10, "quantile").n_bins == 6


def test_invalid_binning_arguments():
    with pytest.raises(ValueError, match="n_bins"):
        assign_bins(np.array([0.5]), 0)
    with pytest.raises(ValueError, match="binning"):
        assign_bins(np.array([0.5]), 5, "equal")


@given(st.lists(st.integers(0, 4), min_size=1, max_size=30), st.integers(1, 8))
def test_quantile_chunk_sums_equal_the_materialized_resample(counts, m):
    counts = np.array(counts)
    if counts.sum() == 0:
        counts[0] = 1
    rng = np.random.default_rng(len(counts))
    values = rng.random((counts.size, 2))
    chunk_counts, sums = quantile_chunk_sums(counts, values, m)
    expanded = np.repeat(values, counts, axis=0)
    chunks = [ch for ch in np.array_split(expanded, m) if len(ch)]
    assert chunk_counts.tolist() == [len(ch) for ch in chunks]
    assert np.allclose(sums, [ch.sum(axis=0) for ch in chunks])
