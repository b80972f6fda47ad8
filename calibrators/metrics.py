"""Calibration metrics and proper scores (DESIGN.md, "Numeric conventions").

Inputs: ``P`` of shape (n, K) (rows renormalized by :func:`check_probabilities`, written ``q``
below) and integer labels ``y`` in ``0..K-1``.

- Top-label confidence ``c_i = max_k q_ik``; correct ``o_i = 1[argmax_k q_ik = y_i]`` with argmax
  ties going to the lowest index (``np.argmax``).
- Binned errors over bins ``b`` (see :mod:`calibrators.binning`), with ``n_b`` samples,
  ``conf_b`` the mean ``c`` and ``acc_b`` the mean ``o`` in the bin:
  ``ECE = Σ_b (n_b/n)·|acc_b − conf_b|``, ``MCE = max_b |acc_b − conf_b|`` over non-empty bins,
  ``RMSCE = sqrt(Σ_b (n_b/n)·(acc_b − conf_b)²)``. Hence ``MCE >= RMSCE >= ECE``.
- ``gap_b = acc_b − conf_b``: negative means overconfident, positive underconfident.
- Scores, means over rows: NLL ``−log(clip(q_y, min_probability, 1))``; Brier
  ``Σ_k (q_k − 1[y=k])²`` (in [0, 2]); spherical ``q_y / ‖q‖₂`` (in [0, 1], higher is better);
  entropy ``H(q) = −Σ_k q_k log q_k`` (natural log, ``0·log 0 = 0``); entropy gap
  ``NLL − mean H`` (> 0 overconfident, < 0 underconfident).

Every function is a few vectorized passes over ``P`` (``np.bincount`` for per-bin sums).

The public metrics validate their inputs. The building blocks without a leading underscore
that are not exported by the package (``top_label``, ``log_loss_rows``, ``brier_rows``,
``spherical_rows``, ``entropy_rows``, ``bin_sums``, ``calibration_errors[_batch]``,
``classwise_errors``, ``reliability_rows``) take already-validated arrays: they are the
internal API that :mod:`calibrators.report` and :mod:`calibrators.bootstrap` build on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calibrators._validation import check_labels, check_probabilities
from calibrators.binning import assign_bins, check_binning, uniform_bin_ids

DEFAULT_N_BINS = 15
DEFAULT_BINNING = "uniform"
LOG_LOSS_MIN_PROBABILITY = 1e-15
_BLOCK_ROWS = 1 << 14


def _check_inputs(P, y) -> tuple[np.ndarray, np.ndarray]:
    P = check_probabilities(P)
    return P, check_labels(y, P.shape[0], P.shape[1])


def check_min_probability(min_probability: float) -> float:
    if not 0.0 < min_probability <= 1.0:
        raise ValueError(f"min_probability must lie in (0, 1]; got {min_probability!r}")
    return float(min_probability)


# ----------------------------------------------------------------------------- per-row quantities


def top_label(P: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Confidence ``max_k q_k`` and correctness ``1[argmax q = y]`` (float64) of each row."""
    predicted = np.argmax(P, axis=1)
    confidence = P[np.arange(P.shape[0]), predicted]
    return confidence, (predicted == y).astype(np.float64)


def true_class_probability(P: np.ndarray, y: np.ndarray) -> np.ndarray:
    return P[np.arange(P.shape[0]), y]


def log_loss_rows(P: np.ndarray, y: np.ndarray, min_probability: float) -> np.ndarray:
    return -np.log(np.clip(true_class_probability(P, y), min_probability, 1.0))


def brier_rows(P: np.ndarray, y: np.ndarray) -> np.ndarray:
    # Subtracting the one-hot before squaring keeps every term >= 0 (no cancellation below 0).
    diff = P.copy()
    diff[np.arange(P.shape[0]), y] -= 1.0
    return np.einsum("ij,ij->i", diff, diff)


def spherical_rows(P: np.ndarray, y: np.ndarray) -> np.ndarray:
    norms = np.sqrt(np.einsum("ij,ij->i", P, P))
    # q_y <= ‖q‖₂ exactly; the minimum only removes a rounding excess of one ulp.
    return np.minimum(true_class_probability(P, y) / norms, 1.0)


def entropy_rows(P: np.ndarray) -> np.ndarray:
    """``−Σ_k q_k log q_k`` per row, ``0·log 0 = 0``.

    Computed by blocks of rows (temporaries stay in cache) as ``q · log max(q, tiny)``:
    a zero entry contributes ``0 · log(tiny) = 0`` exactly.
    """
    entropy = np.empty(P.shape[0])
    tiny = np.finfo(np.float64).tiny
    for start in range(0, P.shape[0], _BLOCK_ROWS):
        block = P[start : start + _BLOCK_ROWS]
        log_block = np.log(np.maximum(block, tiny))
        entropy[start : start + _BLOCK_ROWS] = -np.einsum("ij,ij->i", block, log_block)
    return entropy


# ----------------------------------------------------------------------------- binned statistics


@dataclass(frozen=True)
class BinSums:
    """Per-bin totals: ``count`` (n_b), ``confidence_sum`` (Σ c) and ``correct_sum`` (Σ o)."""

    lower: np.ndarray
    upper: np.ndarray
    count: np.ndarray
    confidence_sum: np.ndarray
    correct_sum: np.ndarray


def bin_sums(confidence: np.ndarray, correct: np.ndarray, n_bins: int, binning: str) -> BinSums:
    bins = assign_bins(confidence, n_bins, binning)
    m = bins.n_bins
    return BinSums(
        lower=bins.lower,
        upper=bins.upper,
        count=np.bincount(bins.bin_ids, minlength=m).astype(np.float64),
        confidence_sum=np.bincount(bins.bin_ids, weights=confidence, minlength=m),
        correct_sum=np.bincount(bins.bin_ids, weights=correct, minlength=m),
    )


def calibration_errors_batch(
    count: np.ndarray, confidence_sum: np.ndarray, correct_sum: np.ndarray
) -> np.ndarray:
    """(ECE, MCE, RMSCE) from per-bin totals of shape (M,) or (b, M); empty bins are ignored.

    Returns shape (3,) or (b, 3). ``ECE = Σ_b (n_b/n)|gap_b|`` with ``gap_b = (Σo − Σc)/n_b``.
    """
    nonempty = count > 0
    safe_count = np.where(nonempty, count, 1.0)
    gaps = np.where(nonempty, (correct_sum - confidence_sum) / safe_count, 0.0)
    weights = count / count.sum(axis=-1, keepdims=True)
    ece = np.sum(weights * np.abs(gaps), axis=-1)
    mce = np.max(np.abs(gaps), axis=-1)
    rmsce = np.sqrt(np.sum(weights * gaps * gaps, axis=-1))
    return np.stack([ece, mce, rmsce], axis=-1)


def calibration_errors(
    count: np.ndarray, confidence_sum: np.ndarray, correct_sum: np.ndarray
) -> tuple[float, float, float]:
    ece, mce, rmsce = calibration_errors_batch(count, confidence_sum, correct_sum)
    return float(ece), float(mce), float(rmsce)


def _top_label_errors(P, y, n_bins, binning) -> tuple[float, float, float]:
    P, y = _check_inputs(P, y)
    n_bins = check_binning(n_bins, binning)
    sums = bin_sums(*top_label(P, y), n_bins, binning)
    return calibration_errors(sums.count, sums.confidence_sum, sums.correct_sum)


# ----------------------------------------------------------------------------- public metrics


def expected_calibration_error(P, y, n_bins: int = DEFAULT_N_BINS, binning: str = DEFAULT_BINNING):
    """Top-label ECE ``Σ_b (n_b/n)·|acc_b − conf_b|`` (module docstring; binning rules in
    :mod:`calibrators.binning`). In [0, 1]."""
    return _top_label_errors(P, y, n_bins, binning)[0]


def maximum_calibration_error(P, y, n_bins: int = DEFAULT_N_BINS, binning: str = DEFAULT_BINNING):
    """Top-label MCE ``max_b |acc_b − conf_b|`` over non-empty bins. In [0, 1]."""
    return _top_label_errors(P, y, n_bins, binning)[1]


def rms_calibration_error(P, y, n_bins: int = DEFAULT_N_BINS, binning: str = DEFAULT_BINNING):
    """Top-label RMSCE ``sqrt(Σ_b (n_b/n)·(acc_b − conf_b)²)``. Between ECE and MCE."""
    return _top_label_errors(P, y, n_bins, binning)[2]


def _classwise_ece_uniform(P: np.ndarray, y: np.ndarray, n_bins: int) -> np.ndarray:
    n, k = P.shape
    size = n_bins * k
    q_sum = np.zeros(size)
    columns = np.arange(k)
    # Blocks of rows keep the (rows × K) bin keys in cache; one bincount per block over all
    # (bin, class) pairs instead of K separate passes.
    for start in range(0, n, _BLOCK_ROWS):
        block = P[start : start + _BLOCK_ROWS]
        keys = uniform_bin_ids(block, n_bins)
        keys *= k
        keys += columns
        q_sum += np.bincount(keys.ravel(), weights=block.ravel(), minlength=size)
    positive_keys = uniform_bin_ids(P[np.arange(n), y], n_bins) * k + y
    positive_sum = np.bincount(positive_keys, minlength=size)
    return np.abs(positive_sum - q_sum).reshape(n_bins, k).sum(axis=0) / n


def _classwise_ece_quantile(P: np.ndarray, y: np.ndarray, n_bins: int) -> np.ndarray:
    errors = np.empty(P.shape[1])
    for k in range(P.shape[1]):
        q_k = np.ascontiguousarray(P[:, k])
        sums = bin_sums(q_k, (y == k).astype(np.float64), n_bins, "quantile")
        errors[k] = calibration_errors(sums.count, sums.confidence_sum, sums.correct_sum)[0]
    return errors


def classwise_ece_per_class(
    P, y, n_bins: int = DEFAULT_N_BINS, binning: str = DEFAULT_BINNING
) -> np.ndarray:
    """Binary ECE of ``(q_k, 1[y = k])`` for each class ``k``, shape (K,).

    Rows are binned by ``q_k`` (not by the top-label confidence) and, per bin, the mean ``q_k``
    is compared with the frequency of ``y = k``. Defined even for a class absent from ``y``
    (frequency 0 in every bin).
    """
    P, y = _check_inputs(P, y)
    return classwise_errors(P, y, check_binning(n_bins, binning), binning)


def classwise_errors(P: np.ndarray, y: np.ndarray, n_bins: int, binning: str) -> np.ndarray:
    """:func:`classwise_ece_per_class` on validated ``P``, ``y`` and binning."""
    if binning == "uniform":
        return _classwise_ece_uniform(P, y, n_bins)
    return _classwise_ece_quantile(P, y, n_bins)


def classwise_ece(P, y, n_bins: int = DEFAULT_N_BINS, binning: str = DEFAULT_BINNING) -> float:
    """Mean over classes ``k`` of the binary ECE of ``(q_k, 1[y = k])``. In [0, 1]."""
    return float(np.mean(classwise_ece_per_class(P, y, n_bins, binning)))


def brier_score(P, y) -> float:
    """Mean of ``Σ_k (q_k − 1[y = k])²``. In [0, 2]; 0 is perfect."""
    P, y = _check_inputs(P, y)
    return float(np.mean(brier_rows(P, y)))


def log_loss(P, y, min_probability: float = LOG_LOSS_MIN_PROBABILITY) -> float:
    """Negative log-likelihood ``−mean log(clip(q_y, min_probability, 1))`` (natural log).

    ``min_probability`` bounds the loss of a row at ``−log(min_probability)`` (34.5 for 1e-15).
    """
    min_probability = check_min_probability(min_probability)
    P, y = _check_inputs(P, y)
    return float(np.mean(log_loss_rows(P, y, min_probability)))


def spherical_score(P, y) -> float:
    """Mean of ``q_y / ‖q‖₂``. In [0, 1]; higher is better (a strictly proper score)."""
    P, y = _check_inputs(P, y)
    return float(np.mean(spherical_rows(P, y)))


def accuracy(P, y) -> float:
    """Fraction of rows with ``argmax q = y`` (ties to the lowest index)."""
    P, y = _check_inputs(P, y)
    return float(np.mean(top_label(P, y)[1]))


def mean_entropy(P) -> float:
    """Mean Shannon entropy ``−Σ_k q_k log q_k`` (natural log, ``0·log 0 = 0``)."""
    P = check_probabilities(P)
    return float(np.mean(entropy_rows(P)))


def entropy_gap(P, y, min_probability: float = LOG_LOSS_MIN_PROBABILITY) -> float:
    """``NLL − mean entropy``: > 0 overconfident, < 0 underconfident, 0 entropy-calibrated."""
    min_probability = check_min_probability(min_probability)
    P, y = _check_inputs(P, y)
    return float(np.mean(log_loss_rows(P, y, min_probability) - entropy_rows(P)))


def reliability_rows(sums: BinSums) -> list[dict]:
    rows = []
    for j in range(sums.count.shape[0]):
        count = int(sums.count[j])
        row = {"lower": float(sums.lower[j]), "upper": float(sums.upper[j]), "count": count}
        if count:
            confidence = float(sums.confidence_sum[j] / count)
            accuracy_ = float(sums.correct_sum[j] / count)
            row |= {"confidence": confidence, "accuracy": accuracy_, "gap": accuracy_ - confidence}
        else:
            row |= {"confidence": None, "accuracy": None, "gap": None}
        rows.append(row)
    return rows


def reliability_table(
    P, y, n_bins: int = DEFAULT_N_BINS, binning: str = DEFAULT_BINNING
) -> list[dict]:
    """Top-label reliability diagram as JSON-ready rows, one per bin, in increasing order.

    Each row: ``lower``, ``upper`` (uniform: the edges of ``(lower, upper]``; quantile: min and
    max confidence in the bin), ``count``, ``confidence`` (mean c), ``accuracy`` (mean o) and
    ``gap = accuracy − confidence`` (negative: overconfident). Uniform binning lists all
    ``n_bins`` bins, empty ones with ``count = 0`` and ``None`` for the three means; quantile
    binning lists only non-empty bins.
    """
    P, y = _check_inputs(P, y)
    n_bins = check_binning(n_bins, binning)
    return reliability_rows(bin_sums(*top_label(P, y), n_bins, binning))
