"""The combination of an item's samples."""

from __future__ import annotations

import pytest

from app.llm.samples import mean_distribution


def test_mean_distribution_is_the_elementwise_mean_in_label_order():
    # (0.5 + 0.25 + 0.75) / 3 = 0.5, (0.5 + 0.75 + 0.25) / 3 = 0.5; a single sample is itself.
    assert mean_distribution([[0.5, 0.5], [0.25, 0.75], [0.75, 0.25]]) == [0.5, 0.5]
    assert mean_distribution([[0.1, 0.2, 0.7]]) == [0.1, 0.2, 0.7]
    assert mean_distribution([[0.2, 0.8], [0.6, 0.4]]) == [0.4, 0.6000000000000001]
    with pytest.raises(ValueError):
        mean_distribution([])
    with pytest.raises(ValueError):
        mean_distribution([[0.5, 0.5], [1.0]])
