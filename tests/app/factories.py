"""Test data shared by the app tests (API, dashboard, services, offline commands)."""

import numpy as np

LABELS = ["a", "b", "c"]
T0 = 2.5  # verbalized distributions are softmax(T0 * z): overconfident by T0


def overconfident_items(n: int, seed: int = 0) -> list[dict]:
    """Prediction items: labels drawn from softmax(z), verbalized softmax(T0 · z)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=1.5, size=(n, len(LABELS)))
    true = np.exp(z - z.max(axis=1, keepdims=True))
    true /= true.sum(axis=1, keepdims=True)
    y = np.array([rng.choice(len(LABELS), p=p) for p in true])
    verbal = np.exp(T0 * (z - z.max(axis=1, keepdims=True)))
    verbal /= verbal.sum(axis=1, keepdims=True)
    return [
        {
            "text": f"text {i}",
            "label": LABELS[y[i]],
            "probabilities": dict(zip(LABELS, verbal[i].tolist(), strict=True)),
        }
        for i in range(n)
    ]


def overconfident_data(n: int, t0: float = 2.0, seed: int = 0, n_classes: int = 3):
    """``(P, y)``: labels drawn from a posterior; P is posterior**t0, renormalized."""
    rng = np.random.default_rng(seed)
    posterior = rng.dirichlet(np.full(n_classes, 0.8), size=n)
    y = np.array([rng.choice(n_classes, p=row) for row in posterior])
    stated = posterior**t0
    return stated / stated.sum(axis=1, keepdims=True), y
