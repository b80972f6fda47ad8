"""The vectorized ticket sampler agrees with the simulator's own functions."""

import numpy as np

from app.llm import synthetic
from app.llm.simulator import SimulatorSettings, stated_distribution
from tests.calibrators.simulated import draw_tickets, stated


def _text(counts: np.ndarray) -> str:
    return " ".join(
        word for word, c in zip(synthetic.VOCABULARY, counts, strict=True) for _ in range(c)
    )


def test_posterior_and_stated_distribution_match_the_simulator():
    posterior, labels, counts = draw_tickets(50, np.random.default_rng(3))
    settings = SimulatorSettings()
    ours = stated(posterior)
    for i in range(50):
        text = _text(counts[i])
        np.testing.assert_allclose(posterior[i], synthetic.posterior(text), rtol=1e-12)
        assert ours[i].tolist() == stated_distribution(text, synthetic.TICKET_LABELS, settings)
    assert set(labels.tolist()) <= set(range(len(synthetic.TICKET_LABELS)))
    assert counts.sum(axis=1).min() >= 4 and counts.sum(axis=1).max() <= 12
