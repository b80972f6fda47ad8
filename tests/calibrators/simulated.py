"""Labelled rows from the simulator's generative model, vectorized for many-seed tests.

Tickets are drawn as in :func:`app.llm.synthetic.generate_examples` without rendering text: a
class from ``class_prior`` (default the generator's ``CLASS_PRIOR``), a length uniform in
4..12 and that many words from the class's ``WORD_DISTRIBUTIONS`` row. The posterior is the
exact Bayes posterior under the generator's ``CLASS_PRIOR`` (what a model trained on the
generator's mix believes, whatever mix the rows were drawn from); ``test_simulated.py`` checks
it against :func:`app.llm.synthetic.posterior` on rendered text. The stated distribution is
the simulator's: ``posterior**t0`` renormalized, rounded to its grid and printed decimals.
"""

from __future__ import annotations

import numpy as np

from app.llm import synthetic
from app.llm.simulator import round_to_grid, to_decimals

LENGTHS = (synthetic._MIN_WORDS, synthetic._MAX_WORDS)


def draw_tickets(n: int, rng: np.random.Generator, class_prior=synthetic.CLASS_PRIOR):
    """(posterior (n, K), labels (n,), word counts (n, V)) of ``n`` generated tickets."""
    theta = synthetic.WORD_DISTRIBUTIONS
    labels = rng.choice(theta.shape[0], size=n, p=np.asarray(class_prior, dtype=np.float64))
    lengths = rng.integers(LENGTHS[0], LENGTHS[1] + 1, size=n)
    counts = rng.multinomial(lengths, theta[labels])
    log_joint = np.log(np.asarray(synthetic.CLASS_PRIOR)) + counts @ np.log(theta).T
    log_joint -= log_joint.max(axis=1, keepdims=True)
    posterior = np.exp(log_joint)
    posterior /= posterior.sum(axis=1, keepdims=True)
    return posterior, labels, counts


def stated(posterior: np.ndarray, t0: float = 2.0, rounding: float = 0.05, decimals: int = 4):
    """What the simulator states for each posterior row (no sampling noise)."""
    logits = t0 * np.log(posterior)
    sharpened = np.exp(logits - logits.max(axis=1, keepdims=True))
    sharpened /= sharpened.sum(axis=1, keepdims=True)
    return np.array([to_decimals(round_to_grid(row, rounding), decimals) for row in sharpened])
