"""Calibrators on real LLM answers: 11 models on SAT-EN, repeated 70/30 splits.

Run: ``python benchmarks/bench_real_data.py [--repeats R] [--holdout H] [--data PATH]``.

Reads ``../shared/data/real-llm-sat-en/answers.jsonl`` relative to the repository (real answers
of 11 LLMs with gold letters, MIT licence; nothing is copied into the repository). Each raw
answer is read with verbcal's parser (``prompts.parse_distribution``); its parse rate is the
share of answers that yield a distribution. On the parsed rows of each model, for ``R`` seeded
splits (``calibrators.splits.holdout_split``, seeds 0..R-1), every calibrator is fitted on 70 %
and scored on the held-out 30 %: top-label ECE (15 uniform bins) and NLL, averaged over the
splits (± their standard deviation over splits, not a confidence interval of the mean).

Columns: ``raw`` (the parsed answers), ``temperature`` (inverse-softmax temperature scaling,
``eps="auto"``, the default fit), ``resoftmax`` (the ``softmax(p / T)`` baseline), ``vector``
and ``isotonic``. ``parsed`` is parsed answers / stored answers per model; a model whose answers
do not parse has fewer rows to fit and score.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from calibrators import (
    IsotonicCalibration,
    ResoftmaxScaling,
    TemperatureScaling,
    VectorScaling,
    expected_calibration_error,
    log_loss,
)
from calibrators.splits import holdout_split
from prompts import parse_distribution

REPOSITORY = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPOSITORY.parent / "shared" / "data" / "real-llm-sat-en" / "answers.jsonl"
METHODS = {
    "temperature": lambda seed: TemperatureScaling(eps="auto", random_state=seed),
    "resoftmax": lambda seed: ResoftmaxScaling(),
    "vector": lambda seed: VectorScaling(),
    "isotonic": lambda seed: IsotonicCalibration(),
}
COLUMNS = ("raw", *METHODS)


def load_answers(path: Path) -> dict[str, dict]:
    """Per model: the parsed distributions ``P``, gold indices ``y`` and answer counts."""
    models: dict[str, dict] = {}
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            model = models.setdefault(record["model"], {"rows": [], "gold": [], "answers": 0})
            if record["answer"] is None:
                continue
            model["answers"] += 1
            result = parse_distribution(record["answer"], record["labels"])
            if result.succeeded:
                model["rows"].append(result.as_list())
                model["gold"].append(record["labels"].index(record["gold"]))
    return {
        name: {
            "P": np.array(model["rows"], dtype=np.float64),
            "y": np.array(model["gold"], dtype=np.int64),
            "answers": model["answers"],
        }
        for name, model in sorted(models.items())
    }


def held_out_scores(P: np.ndarray, y: np.ndarray, repeats: int, holdout: float) -> dict:
    """``{column: (ece values, nll values)}`` over ``repeats`` seeded splits."""
    scores = {column: ([], []) for column in COLUMNS}
    for seed in range(repeats):
        fit_rows, held_out = holdout_split(y.size, holdout, seed)
        predictions = {"raw": P[held_out]}
        for name, make in METHODS.items():
            model = make(seed).fit(P[fit_rows], y[fit_rows])
            predictions[name] = model.transform(P[held_out])
        for column, Q in predictions.items():
            scores[column][0].append(expected_calibration_error(Q, y[held_out]))
            scores[column][1].append(log_loss(Q, y[held_out]))
    return scores


def _cell(values: list[float]) -> str:
    return f"{np.mean(values):.3f}±{np.std(values):.3f}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="answers.jsonl")
    parser.add_argument("--repeats", type=int, default=50, help="seeded 70/30 splits per model")
    parser.add_argument("--holdout", type=float, default=0.3, help="held-out share")
    args = parser.parse_args(argv)
    if not args.data.is_file():
        print(
            f"bench_real_data: {args.data} not found. This benchmark reads the real SAT-EN "
            "answers from ../shared/data/real-llm-sat-en/ beside the repository (or pass "
            "--data PATH to answers.jsonl); it copies nothing into the repository.",
            file=sys.stderr,
        )
        return 2
    start = time.perf_counter()
    models = load_answers(args.data)
    print(
        f"[real_data] {args.data.parent.name}: {len(models)} models, {args.repeats} seeded "
        f"{round(100 * (1 - args.holdout))}/{round(100 * args.holdout)} splits each; "
        "held-out mean±sd over splits"
    )
    header = f"{'model':<30} {'parsed':>9} {'n':>4}  " + "  ".join(f"{c:>13}" for c in COLUMNS)
    tables = {"ECE": [], "NLL": []}
    means = {metric: {column: [] for column in COLUMNS} for metric in tables}
    for name, model in models.items():
        P, y = model["P"], model["y"]
        rate = f"{y.size}/{model['answers']}"
        scores = held_out_scores(P, y, args.repeats, args.holdout)
        for index, metric in enumerate(tables):
            cells = "  ".join(f"{_cell(scores[c][index]):>13}" for c in COLUMNS)
            tables[metric].append(f"{name:<30} {rate:>9} {y.size:>4}  {cells}")
            for column in COLUMNS:
                means[metric][column].append(np.mean(scores[column][index]))
    for metric, lines in tables.items():
        print(f"\n[real_data] held-out {metric} (lower is better)")
        print(header)
        for line in lines:
            print(line)
        overall = "  ".join(f"{np.mean(means[metric][c]):>13.3f}" for c in COLUMNS)
        print(f"{'mean over models':<30} {'':>9} {'':>4}  {overall}")
    total_parsed = sum(m["y"].size for m in models.values())
    total_answers = sum(m["answers"] for m in models.values())
    print(
        f"\n[real_data] parse rate of the raw answers with prompts.parse_distribution: "
        f"{total_parsed}/{total_answers} = {total_parsed / total_answers:.2%}"
    )
    print(f"[real_data] wall time: {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
