"""Smooth ECE and the kernel-smoothed reliability diagram (Błasiok & Nakkiran 2023).

Reference: J. Błasiok and P. Nakkiran, "Smooth ECE: Principled reliability diagrams via kernel
smoothing", ICLR 2024 (arXiv:2309.12236), and its reference implementation ``relplot`` 1.0.3,
which this module reproduces (to floating-point rounding) without depending on it.

Inputs: predictions ``f_i ∈ [0, 1]`` and outcomes ``y_i ∈ [0, 1]`` (binary in practice). For
multiclass probabilities the pair is the top-label confidence ``c_i = max_k q_ik`` and the
correctness ``o_i = 1[argmax_k q_ik = y_i]`` (argmax ties to the lowest index, as everywhere in
:mod:`calibrators.metrics`).

Definition, for a bandwidth ``σ`` and the reflected Gaussian kernel ``K_σ``:
``r̂(t) = Σ_i K_σ(t, f_i)(f_i − y_i) / Σ_i K_σ(t, f_i)`` (smoothed residual, confidence minus
accuracy), ``δ̂(t) = (1/n) Σ_i K_σ(t, f_i)`` (density of the predictions) and
``smECE_σ = ∫₀¹ |r̂(t)| δ̂(t) dt``. The reliability curve is ``μ̂(t) = Σ_i K_σ(t, f_i) y_i /
Σ_i K_σ(t, f_i)`` (smoothed accuracy at confidence ``t``).

Reflection (boundary) convention: ``K_σ(t, f) = Σ_m φ_σ(t − f_m)`` over the images of ``f``
reflected once about 0 and once about 1 (``f``, ``−f``, ``2 − f``), so no kernel mass leaks
outside [0, 1]; ``φ_σ`` is the Gaussian density truncated to ``|t − f| <= 1/2``.

Discretization (relplot's): every ``f_i`` is split linearly between the two nearest nodes of a
uniform grid of ``m = ⌊max(2000, round(20/σ))/2⌋ + 1`` nodes on [0, 1], the weights are
convolved with ``φ_σ`` sampled on that grid (after reflecting the weights about both ends) and
the result is interpolated linearly at the evaluation points. ``smECE_σ`` is the Riemann sum
``Σ_t |R(t)/D(t)|·D(t) / Σ_t D(t)`` over ``max(200, round(10/σ))`` equispaced ``t`` in [0, 1],
with ``R`` and ``D`` the discrete convolutions of ``f − y`` and of ones and ``D`` regularized by
``+1e-4``; the curve uses the same ``+1e-4``.

Bandwidth rule (paper, Sec. 4; relplot ``smECE``): ``σ*`` is the fixed point
``smECE_σ = σ`` (``smECE_σ`` decreases in ``σ``). It is located by bisection on [0, 1] for 10
steps, keeping the smallest ``σ`` tried with ``smECE_σ <= σ`` (``σ = 1`` itself when
``smECE_1 > 1``, and any ``σ < 0.001`` counts as below the fixed point). The reported smooth
ECE is ``smECE_{σ*}``.
"""

from __future__ import annotations

import numbers

import numpy as np
from scipy import sparse
from scipy.fft import irfft, next_fast_len, rfft

from calibrators._validation import check_labels, check_probabilities
from calibrators.metrics import top_label

DENSITY_FLOOR = 1e-4
MIN_BANDWIDTH = 1e-3
BISECTION_STEPS = 10
MIN_MESH_POINTS = 200
DEFAULT_CURVE_POINTS = 200
DEFAULT_N_BOOT = 200

CONVENTIONS = {
    "pairs": "top-label confidence max_k q_k vs correctness 1[argmax q = y] (ties: lowest index)",
    "kernel": "Gaussian, reflected once about 0 and 1, truncated to |t - f| <= 1/2",
    "bandwidth": "fixed point smECE_sigma = sigma, 10 bisection steps on [0, 1] (relplot 1.0.3)",
    "residual": "confidence minus accuracy (positive: overconfident)",
    "curve": "kernel-smoothed accuracy at each confidence t, same bandwidth as smECE",
    "density": "(1/n) sum_i K_sigma(t, f_i): a density of the confidences on [0, 1]",
    "band": "percentile bootstrap of the curve, rows resampled with replacement, sigma fixed",
    "reference": "Blasiok & Nakkiran 2023, Smooth ECE (arXiv:2309.12236); relplot 1.0.3",
}


# ----------------------------------------------------------------------------- validation


def check_predictions(f, y) -> tuple[np.ndarray, np.ndarray]:
    """Validate 1-D float64 ``f`` and ``y`` of equal non-zero length, finite, within [0, 1]."""
    f = np.asarray(f, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if f.ndim != 1 or f.size == 0 or y.shape != f.shape:
        raise ValueError(
            f"f and y must be non-empty 1-D arrays of equal length; got {f.shape}, {y.shape}"
        )
    for name, values in (("f", f), ("y", y)):
        bad = np.flatnonzero(~np.isfinite(values) | (values < 0) | (values > 1))
        if bad.size:
            raise ValueError(f"{name} must lie in [0, 1]; bad at indices {bad[:20].tolist()}")
    return f, y


def _check_bandwidth(bandwidth) -> float:
    if isinstance(bandwidth, bool) or not isinstance(bandwidth, numbers.Real):
        raise ValueError(f"bandwidth must be a number in (0, 1]; got {bandwidth!r}")
    if not 0.0 < float(bandwidth) <= 1.0:
        raise ValueError(f"bandwidth must be a number in (0, 1]; got {bandwidth!r}")
    return float(bandwidth)


# ----------------------------------------------------------------------------- kernel smoothing


def grid_size(bandwidth: float) -> int:
    """Nodes of the convolution grid: ``⌊max(2000, round(20/σ))/2⌋ + 1``."""
    return max(2000, round(20 / bandwidth)) // 2 + 1


def mesh_size(bandwidth: float) -> int:
    """Evaluation points of the smECE Riemann sum: ``max(200, round(10/σ))``."""
    return max(round(10 / bandwidth), MIN_MESH_POINTS)


def _split_to_grid(f: np.ndarray, weights: np.ndarray, m: int) -> np.ndarray:
    """Grid weights (r, m): each ``f_i`` shares ``weights[:, i]`` linearly with 2 nodes."""
    position = f * (m - 1)
    node = position.astype(np.int64).clip(0, m - 2)
    frac = position - node
    rows = np.concatenate([np.arange(f.size), np.arange(f.size)])
    split = sparse.csr_matrix(
        (np.concatenate([1 - frac, frac]), (rows, np.concatenate([node, node + 1]))),
        shape=(f.size, m),
    )
    return np.asarray((split.T @ weights.T).T)


def _kernel_on_grid(bandwidths: np.ndarray, m: int) -> np.ndarray:
    """``φ_σ(t − 1/2)`` on the grid ``t = j/(m−1)``, one row per bandwidth."""
    t = np.linspace(0, 1, m) - 0.5
    sigma = bandwidths[:, None]
    return np.exp(-t * t / (2 * sigma**2)) / (np.sqrt(2 * np.pi) * sigma)


def _interpolate(t: np.ndarray, node_values: np.ndarray) -> np.ndarray:
    """Piecewise-linear function through ``(j/(m−1), node_values[..., j])`` evaluated at ``t``."""
    m = node_values.shape[-1]
    step = 1 / (m - 1)
    node = (t * (m - 1)).astype(np.int64).clip(0, m - 2)
    residual = (t - node * step) / step
    return node_values[..., node] * (1 - residual) + node_values[..., node + 1] * residual


class _KernelSmoother:
    """``Σ_i K_σ(t, f_i)·w_i`` for fixed ``f`` and weight rows ``W`` (r, n), any bandwidths.

    The grid weights, reflected about both ends, are Fourier-transformed once per grid size and
    reused for every bandwidth (the bisection tries 11 per resample); each bandwidth costs one
    kernel transform and one inverse transform per weight row (linear convolution by FFT).
    """

    def __init__(self, f: np.ndarray, weights: np.ndarray):
        self.f = f
        self.weights = np.atleast_2d(weights)
        self._spectra: dict[int, tuple[np.ndarray, int]] = {}

    def _spectrum(self, m: int) -> tuple[np.ndarray, int]:
        if m not in self._spectra:
            values = _split_to_grid(self.f, self.weights, m)
            flipped = values[:, ::-1]
            extended = np.concatenate([flipped[:, :-1], values, flipped[:, 1:]], axis=1)
            length = next_fast_len(extended.shape[1] + m - 1, real=True)
            self._spectra[m] = (rfft(extended, length, axis=1), length)
        return self._spectra[m]

    def sums(self, t: np.ndarray, rows: np.ndarray, bandwidths: np.ndarray) -> np.ndarray:
        """Sums (len(rows), len(t)) of weight row ``rows[j]`` at bandwidth ``bandwidths[j]``.

        The bandwidths must share one :func:`grid_size`.
        """
        sizes = {grid_size(float(b)) for b in bandwidths}
        if len(sizes) != 1:
            raise ValueError(f"bandwidths need one grid size; got {sorted(sizes)}")
        m = sizes.pop()
        spectrum, length = self._spectrum(m)
        unique, which = np.unique(bandwidths, return_inverse=True)
        kernel_spectra = rfft(_kernel_on_grid(unique, m), length, axis=1)
        full = irfft(spectrum[rows] * kernel_spectra[which], length, axis=1)
        # np.convolve(extended, kernel, "valid") starts at m − 1; relplot keeps m//2 onwards.
        start = m - 1 + m // 2
        return _interpolate(t, full[:, start : start + m])


def kernel_sums(f, weights, t, bandwidth: float) -> np.ndarray:
    """``Σ_i K_σ(t_j, f_i)·w_i`` (discretized as in the module docstring), shape (r, len(t)).

    ``weights`` is (n,) or (r, n) for r weight vectors at once.
    """
    weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    smoother = _KernelSmoother(np.asarray(f, dtype=np.float64), weights)
    rows = np.arange(weights.shape[0])
    bandwidths = np.full(rows.size, _check_bandwidth(bandwidth))
    return smoother.sums(np.asarray(t, dtype=np.float64), rows, bandwidths)


# ----------------------------------------------------------------------------- smooth ECE


def smooth_ece_at(f, y, bandwidth: float) -> float:
    """``smECE_σ`` at a fixed bandwidth ``σ`` (relplot ``smECE_sigma``)."""
    f, y = check_predictions(f, y)
    sigma = np.array([_check_bandwidth(bandwidth)])
    return float(_SmoothECE(f, y, np.ones((1, f.size))).values(sigma)[0])


class _SmoothECE:
    """``smECE_σ`` of resamples given by row multiplicities ``counts`` (B, n) of ``(f, y)``."""

    def __init__(self, f: np.ndarray, y: np.ndarray, counts: np.ndarray):
        self.n_resamples = counts.shape[0]
        self.smoother = _KernelSmoother(f, np.vstack([counts * (f - y), counts]))

    def values(self, bandwidths: np.ndarray) -> np.ndarray:
        """``smECE`` of resample ``b`` at ``bandwidths[b]``, for every ``b``."""
        out = np.empty(self.n_resamples)
        groups: dict[tuple[int, int], list[int]] = {}
        for b, sigma in enumerate(bandwidths):
            groups.setdefault((grid_size(sigma), mesh_size(sigma)), []).append(b)
        for (_, n_mesh), members in groups.items():
            members = np.asarray(members)
            rows = np.concatenate([members, members + self.n_resamples])
            sums = self.smoother.sums(
                np.linspace(0, 1, n_mesh), rows, np.tile(bandwidths[members], 2)
            )
            residual, density = sums[: members.size], sums[members.size :] + DENSITY_FLOOR
            out[members] = np.sum(np.abs(residual / density) * density, axis=1) / np.sum(
                density, axis=1
            )
        return out

    def bandwidths(self) -> np.ndarray:
        """``σ*`` of every resample: the bisections of the module docstring, side by side."""

        def below_fixed_point(sigmas: np.ndarray) -> np.ndarray:
            return (sigmas < MIN_BANDWIDTH) | (sigmas < self.values(sigmas))

        at_one = below_fixed_point(np.ones(self.n_resamples))
        high, low = np.ones(self.n_resamples), np.zeros(self.n_resamples)
        for _ in range(BISECTION_STEPS):
            middle = (high + low) / 2
            below = below_fixed_point(middle)
            low = np.where(below, middle, low)
            high = np.where(below, high, middle)
        return np.where(at_one, 1.0, high)


def smooth_ece_bandwidth(f, y) -> float:
    """The bandwidth ``σ*`` with ``smECE_σ* = σ*`` (bisection rule of the module docstring)."""
    f, y = check_predictions(f, y)
    return float(_SmoothECE(f, y, np.ones((1, f.size))).bandwidths()[0])


def smooth_ece_binary(f, y) -> tuple[float, float]:
    """``(smECE_σ*, σ*)`` of predictions ``f`` and outcomes ``y`` (relplot ``smECE``)."""
    f, y = check_predictions(f, y)
    estimator = _SmoothECE(f, y, np.ones((1, f.size)))
    sigma = estimator.bandwidths()
    return float(estimator.values(sigma)[0]), float(sigma[0])


def top_label_pairs(P, y) -> tuple[np.ndarray, np.ndarray]:
    """Top-label confidence and correctness (float64) of validated probabilities ``P``."""
    P = check_probabilities(P)
    y = check_labels(y, P.shape[0], P.shape[1])
    return top_label(P, y)


def smooth_ece(P, y) -> float:
    """Top-label smooth ECE ``smECE_σ*`` of probabilities ``P`` (n, K) and labels ``y``."""
    return smooth_ece_binary(*top_label_pairs(P, y))[0]


# ----------------------------------------------------------------------------- reliability curve


def _smoothed_accuracy(f, y, counts: np.ndarray, t, bandwidth: float) -> np.ndarray:
    """``μ̂(t) = Σ K·y / (Σ K + 1e-4)`` for each resample (rows of ``counts``) → (B, len(t))."""
    sums = kernel_sums(f, np.vstack([counts * y, counts]), t, bandwidth)
    n_rows = counts.shape[0]
    return sums[:n_rows] / (sums[n_rows:] + DENSITY_FLOOR)


def _check_curve_params(n_points, n_boot, alpha) -> None:
    if isinstance(n_points, bool) or not isinstance(n_points, numbers.Integral) or n_points < 2:
        raise ValueError(f"n_points must be an integer >= 2; got {n_points!r}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, numbers.Integral) or n_boot < 0:
        raise ValueError(f"n_boot must be an integer >= 0; got {n_boot!r}")
    if not (isinstance(alpha, numbers.Real) and 0.0 < alpha < 1.0):
        raise ValueError(f"alpha must lie in (0, 1); got {alpha!r}")


def smooth_reliability_binary(
    f,
    y,
    n_points: int = DEFAULT_CURVE_POINTS,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict:
    """Smooth ECE, its bandwidth, the smoothed reliability curve, density and bootstrap band.

    The curve and density are evaluated on ``n_points`` equispaced confidences ``t`` in [0, 1]
    (relplot ``prepare_rel_diagram`` with ``plot_confidence_band=False`` gives the same
    ``mu``, ``density``, ``sigma`` and ``ce``). The band: ``n_boot`` resamples of the rows
    (``numpy.random.default_rng(seed).integers(0, n, n)``, one call per resample), the curve
    refitted on each with ``σ*`` fixed, then the pointwise ``alpha/2`` and ``1 − alpha/2``
    quantiles (``np.quantile``, linear). ``smooth_ece_interval``: the same percentiles of
    ``smECE`` recomputed on each resample with its own bandwidth. ``n_boot = 0``: no band,
    ``lower``/``upper``/interval are ``None``. relplot's default band uses an unseeded bagging
    regressor and reports the *mean* of the bootstrap curves as ``mu``; here ``accuracy`` is the
    full-data curve.

    Returns a JSON-ready dict: ``smooth_ece``, ``bandwidth``, ``n``, ``t``, ``accuracy``,
    ``density``, ``lower``, ``upper``, ``smooth_ece_interval`` ({lower, upper}), ``n_boot``,
    ``seed``, ``alpha`` and ``conventions``.
    """
    f, y = check_predictions(f, y)
    _check_curve_params(n_points, n_boot, alpha)
    value, sigma = smooth_ece_binary(f, y)
    t = np.linspace(0, 1, int(n_points))
    accuracy = _smoothed_accuracy(f, y, np.ones((1, f.size)), t, sigma)[0]
    density = kernel_sums(f, np.full(f.size, 1.0 / f.size), t, sigma)[0]
    result = {
        "smooth_ece": value,
        "bandwidth": sigma,
        "n": int(f.size),
        "t": t.tolist(),
        "accuracy": accuracy.tolist(),
        "density": density.tolist(),
        "lower": None,
        "upper": None,
        "smooth_ece_interval": None,
        "n_boot": int(n_boot),
        "seed": int(seed),
        "alpha": float(alpha),
        "conventions": dict(CONVENTIONS),
    }
    if n_boot == 0:
        return result
    counts = bootstrap_counts(f.size, n_boot, seed)
    curves = _smoothed_accuracy(f, y, counts, t, sigma)
    resampled = _SmoothECE(f, y, counts)
    values = resampled.values(resampled.bandwidths())
    quantiles = (alpha / 2, 1 - alpha / 2)
    lower, upper = np.quantile(curves, quantiles, axis=0)
    value_lower, value_upper = np.quantile(values, quantiles)
    result["lower"], result["upper"] = lower.tolist(), upper.tolist()
    result["smooth_ece_interval"] = {"lower": float(value_lower), "upper": float(value_upper)}
    return result


def bootstrap_counts(n: int, n_boot: int, seed: int) -> np.ndarray:
    """Row multiplicities (n_boot, n) of ``n_boot`` resamples with replacement.

    Resample ``b`` is ``default_rng(seed).integers(0, n, n)`` at the ``b``-th call; a row drawn
    ``w`` times has multiplicity ``w`` (sums over a resample are order-free).
    """
    rng = np.random.default_rng(seed)
    return np.stack(
        [np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(n_boot)]
    ).astype(np.float64)


def smooth_reliability_diagram(
    P,
    y,
    n_points: int = DEFAULT_CURVE_POINTS,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict:
    """:func:`smooth_reliability_binary` on the top-label pairs of ``P`` (n, K) and ``y``."""
    return smooth_reliability_binary(*top_label_pairs(P, y), n_points, n_boot, seed, alpha)
