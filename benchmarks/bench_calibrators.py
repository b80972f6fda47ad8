"""Benchmarks of the calibrators against reference implementations.

Run: ``python benchmarks/bench_calibrators.py [--n N] [--k K] [--repeat R] [--sections ...]``.
Each section is a function ``section(args)`` registered in ``SECTIONS``; it prints clearly
labelled lines ``[section] ...`` with measured times, ratios and their targets. Times are the
best of ``--repeat`` runs (wall clock, ``time.perf_counter``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.calibration import _TemperatureScaling

from calibrators.logits import inverse_softmax, softmax
from calibrators.temperature import TemperatureScaling

GRID = 0.05
EPS = 1e-3


def best_time(function, repeat):
    """``(best wall time in seconds, last result)`` over ``repeat`` calls."""
    return best_times(function, repeat)[::2]


def best_times(function, repeat):
    """``(best wall time, best process CPU time, last result)`` over ``repeat`` calls.

    CPU time (all threads of this process) is printed beside wall time: on these shared
    machines other processes stretch wall time, not CPU time.
    """
    best_wall, best_cpu, result = float("inf"), float("inf"), None
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = function()
        best_wall = min(best_wall, time.perf_counter() - start)
        best_cpu = min(best_cpu, time.process_time() - start_cpu)
    return best_wall, best_cpu, result


def true_logits_and_labels(n, k, seed):
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=1.5, size=(n, k))
    cumulative = softmax(z).cumsum(axis=1)
    y = (cumulative > rng.random((n, 1))).argmax(axis=1)
    return z, y


def round_to_grid(P):
    """Round to multiples of ``GRID`` and renormalize; an all-zero row gets its top label."""
    rounded = np.round(P / GRID) * GRID
    empty = rounded.sum(axis=1) == 0
    rounded[empty, P[empty].argmax(axis=1)] = 1.0
    return rounded / rounded.sum(axis=1, keepdims=True)


def dense_verbalized(n, k, seed=0):
    """Every label may get mass: softmax(2 z) rounded to the 0.05 grid."""
    z, y = true_logits_and_labels(n, k, seed)
    return round_to_grid(softmax(2.0 * z)), y


def top3_verbalized(n, k, seed=0):
    """What LLMs usually answer: mass on at most 3 labels, on the 0.05 grid."""
    z, y = true_logits_and_labels(n, k, seed)
    probabilities = softmax(2.0 * z)
    third_largest = np.partition(probabilities, -3, axis=1)[:, -3:-2]
    top3 = np.where(probabilities < third_largest, 0.0, probabilities)
    return round_to_grid(top3 / top3.sum(axis=1, keepdims=True)), y


def compare_temperature_with_sklearn(name, P, y, repeat):
    ours_time, ours = best_time(lambda: TemperatureScaling(eps=EPS).fit(P, y), repeat)
    logits = inverse_softmax(P, EPS)
    sklearn_time, reference = best_time(lambda: _TemperatureScaling().fit(logits, y), repeat)
    sklearn_temperature = 1.0 / float(reference.beta_)
    relative_diff = abs(ours.temperature_ - sklearn_temperature) / sklearn_temperature
    print(f"[{name}] n={P.shape[0]} K={P.shape[1]} eps={EPS} unique_rows={ours.n_unique_rows_}")
    print(
        f"[{name}] verbcal TemperatureScaling.fit: {ours_time:.3f} s  "
        f"T={ours.temperature_:.9f} n_iter={ours.n_iter_} converged={ours.converged_}"
    )
    print(
        f"[{name}] sklearn _TemperatureScaling.fit (on precomputed logits): {sklearn_time:.3f} s  "
        f"T=1/beta_={sklearn_temperature:.9f}"
    )
    return sklearn_time / ours_time, relative_diff


def temperature_dense(args):
    P, y = dense_verbalized(args.n, args.k)
    ratio, diff = compare_temperature_with_sklearn("temperature_dense", P, y, args.repeat)
    print(f"[temperature_dense] speedup sklearn/verbcal: {ratio:.2f}x (target >= 1)")
    print(f"[temperature_dense] temperature relative diff: {diff:.2e} (target <= 1e-3)")


def temperature_realistic(args):
    P, y = top3_verbalized(args.n, args.k)
    ratio, diff = compare_temperature_with_sklearn("temperature_realistic", P, y, args.repeat)
    print(f"[temperature_realistic] speedup sklearn/verbcal: {ratio:.2f}x (target >= 5)")
    print(f"[temperature_realistic] temperature relative diff: {diff:.2e} (target <= 1e-3)")


def calibration_report_timing(args):
    """calibration_report (bootstrap CIs included) vs one MAPIE top_label_ece on the same data."""
    from mapie.metrics.calibration import top_label_ece

    from calibrators.report import calibration_report

    name = "calibration_report"
    P, y = top3_verbalized(args.n, args.k)
    labels = [f"class_{j}" for j in range(args.k)]
    raw_time, raw_cpu, report = best_times(lambda: calibration_report(P, y, labels), args.repeat)
    calibrator = TemperatureScaling(eps=EPS).fit(P, y)
    both_time, both_cpu, _ = best_times(
        lambda: calibration_report(P, y, labels, calibrator=calibrator), args.repeat
    )
    mapie_time, mapie_ece = best_time(lambda: top_label_ece(y, P, num_bins=16), 1)
    n_boot = report["conventions"]["bootstrap"]["n_boot"]
    print(f"[{name}] n={P.shape[0]} K={P.shape[1]} n_boot={n_boot} (x4 CIs per section)")
    print(f"[{name}] verbcal calibration_report raw only: {raw_time:.3f} s (cpu {raw_cpu:.3f} s)")
    print(
        f"[{name}] verbcal calibration_report raw + calibrated: {both_time:.3f} s "
        f"(cpu {both_cpu:.3f} s; target < 3 s)"
    )
    print(
        f"[{name}] MAPIE top_label_ece (one ECE, 16 edges = our 15 bins): {mapie_time:.3f} s  "
        f"(class-conditional top-label ECE {mapie_ece:.6f}; ours ECE "
        f"{report['raw']['metrics']['ece']:.6f})"
    )
    print(f"[{name}] ratio report(raw)/one MAPIE ECE: {raw_time / mapie_time:.2f}")
    print(f"[{name}] ratio report(raw + calibrated)/one MAPIE ECE: {both_time / mapie_time:.2f}")


SECTIONS = {
    "temperature_dense": temperature_dense,
    "temperature_realistic": temperature_realistic,
    "calibration_report": calibration_report_timing,
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="rows per data set")
    parser.add_argument("--k", type=int, default=10, help="number of classes")
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing (best is kept)")
    parser.add_argument("--sections", nargs="+", choices=sorted(SECTIONS), default=list(SECTIONS))
    args = parser.parse_args(argv)
    for name in args.sections:
        SECTIONS[name](args)


if __name__ == "__main__":
    main()
