"""The simulated LLM's generative model and answer styles: pure functions, no HTTP.

1. True distribution: for the ticket labels (any order/case) the exact Bayes posterior of
   ``app.llm.synthetic``; for other label sets a deterministic near-uniform pseudo-posterior
   drawn from a Dirichlet(5) seeded by a hash of (text, labels).
2. Miscalibration: it states ``posterior**t0`` renormalized. ``t0 > 1`` is overconfident and
   temperature scaling recovers T ≈ t0 (DESIGN.md's contract).
3. Sampling noise: when the request temperature is > 0, Gaussian noise with standard deviation
   ``noise * temperature`` is added to the log-probabilities. It is deterministic per
   (text, seed) when a seed is sent and random otherwise; temperature 0 is fully deterministic.
4. Rounding: each value is rounded to the ``rounding`` grid (0 = no rounding); if every value
   rounds to 0 the argmax gets all the mass; the result is renormalized and printed with at most
   ``decimals`` decimals by largest-remainder rounding, so the printed values sum to exactly 1.
5. Styles (``ANSWER_STYLES``): ``json`` (clean object), ``fenced`` (```json fence), ``prose``
   (sentence, JSON, sentence), ``percent`` (values as "70%" strings), and two styles of the real
   corpus of 11 LLMs' answers: ``reasoning_answer`` (one object over several lines with a
   ``"Reasoning"`` string, an ``"Answer"`` label and a probability per label) and
   ``broken_quote`` (the same with unescaped double quotes inside the reasoning, so the JSON is
   invalid, as real models write it). ``mixed`` picks one per text, deterministically.
6. Reasoning: when the request asks for the reasoning flavour (the default reasoning prompt, or a
   ``json_schema`` whose first property is ``reasoning``), the object's first key is
   ``"reasoning"`` with a short deterministic explanation (``reasoning_for``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from app.llm import synthetic
from app.llm.simulator.settings import SimulatorSettings
from prompts import REASONING_KEY

NOT_UNDERSTOOD_ANSWER = "I can't classify this: I only understand verbcal's default prompt."
ANSWER_STYLES = ("json", "fenced", "prose", "percent", "reasoning_answer", "broken_quote")
CORPUS_REASONING_KEY = "Reasoning"
CORPUS_ANSWER_KEY = "Answer"


def stable_hash(*parts: object) -> int:
    """A 64-bit hash of the parts that is the same in every process (unlike ``hash``)."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def true_distribution(text: str, labels: Sequence[str]) -> np.ndarray:
    """The distribution the simulator treats as the truth for ``text`` over ``labels``."""
    try:
        return synthetic.posterior(text, labels)
    except ValueError:
        rng = np.random.default_rng(stable_hash("pseudo", text, *labels))
        return rng.dirichlet(np.full(len(labels), 5.0))


def round_to_grid(probabilities: np.ndarray, grid: float) -> np.ndarray:
    """Round to multiples of ``grid`` (0: unchanged), keep it a distribution (see module doc)."""
    if grid <= 0:
        return probabilities / probabilities.sum()
    rounded = np.round(probabilities / grid) * grid
    if rounded.sum() <= 0:
        rounded = np.zeros_like(probabilities)
        rounded[int(np.argmax(probabilities))] = 1.0
    return rounded / rounded.sum()


def stated_distribution(
    text: str,
    labels: Sequence[str],
    settings: SimulatorSettings,
    *,
    temperature: float = 0.0,
    seed: int | None = None,
) -> list[float]:
    """The distribution the simulator states, in label order, rounded as it will be printed."""
    logits = settings.t0 * np.log(true_distribution(text, labels))
    if temperature > 0 and settings.noise > 0:
        rng = np.random.default_rng(stable_hash("noise", text, seed) if seed is not None else None)
        logits = logits + rng.normal(0.0, settings.noise * temperature, size=len(labels))
    stated = np.exp(logits - logits.max())
    stated = round_to_grid(stated / stated.sum(), settings.rounding)
    return to_decimals(stated, settings.decimals)


def to_decimals(probabilities: np.ndarray, decimals: int) -> list[float]:
    """Values with ``decimals`` decimals that sum to exactly 1 in those decimals.

    Largest-remainder rounding: each value is floored to the last decimal and the units left over
    go to the largest remainders, so the printed answer is a distribution, not one off by 1e-4.
    """
    units = 10**decimals
    scaled = probabilities / probabilities.sum() * units
    floored = np.floor(scaled).astype(np.int64)
    shortfall = units - int(floored.sum())
    if shortfall > 0:
        floored[np.argsort(-(scaled - floored), kind="stable")[:shortfall]] += 1
    return [int(unit) / units for unit in floored]


def style_for(text: str, style: str) -> str:
    """The concrete style of one text (``mixed`` picks one per text, deterministically)."""
    if style != "mixed":
        return style
    return ANSWER_STYLES[stable_hash("style", text) % len(ANSWER_STYLES)]


def reasoning_for(labels: Sequence[str], values: Sequence[float], *, quoted: bool = False) -> str:
    """A short explanation of a stated distribution; ``quoted`` puts raw quotes around labels."""
    order = np.argsort(-np.asarray(values), kind="stable")
    top = labels[int(order[0])]
    mark = '"' if quoted else ""
    reasoning = f"The text reads most like {mark}{top}{mark} ({values[int(order[0])]:.0%} sure)"
    if len(labels) > 1 and values[int(order[1])] > 0:
        second = labels[int(order[1])]
        reasoning += f"; {mark}{second}{mark} is still plausible"
    return reasoning + "."


def distribution_object(
    labels: Sequence[str], values: Sequence[float], *, reasoning: bool
) -> dict[str, Any]:
    """The answer object of the default prompts: reasoning first when asked, then the labels."""
    answer: dict[str, Any] = {REASONING_KEY: reasoning_for(labels, values)} if reasoning else {}
    answer.update(zip(labels, values, strict=True))
    return answer


def format_answer(
    labels: Sequence[str],
    values: Sequence[float],
    style: str,
    decimals: int,
    *,
    reasoning: bool = False,
    stated_answer: str | None = None,
) -> str:
    """The answer text for a stated distribution in one of ``ANSWER_STYLES``.

    ``stated_answer`` is the label the corpus styles name as their ``"Answer"`` (default: the
    argmax).
    """
    if style in ("reasoning_answer", "broken_quote"):
        return _corpus_answer(labels, values, style == "broken_quote", stated_answer)
    answer = distribution_object(labels, values, reasoning=reasoning)
    if style == "percent":
        answer.update({lab: _percent(v, decimals) for lab, v in zip(labels, values, strict=True)})
        return json.dumps(answer)
    if style == "fenced":
        return f"```json\n{json.dumps(answer, indent=2)}\n```"
    if style == "prose":
        top = labels[int(np.argmax(values))]
        return (
            f"The most likely label is {top}; here is my confidence in each label:\n"
            f"{json.dumps(answer)}\nI hope this helps."
        )
    return json.dumps(answer)


def _corpus_answer(
    labels: Sequence[str], values: Sequence[float], broken: bool, stated_answer: str | None
) -> str:
    """One object over several lines, as the real corpus's models wrote it."""
    reasoning = reasoning_for(labels, values, quoted=broken)
    answer = stated_answer if stated_answer is not None else labels[int(np.argmax(values))]
    reasoning_text = f'"{reasoning}"' if broken else json.dumps(reasoning)
    lines = [
        f'"{CORPUS_REASONING_KEY}": {reasoning_text}',
        f'"{CORPUS_ANSWER_KEY}": {json.dumps(answer)}',
        *(f"{json.dumps(label)}: {value}" for label, value in zip(labels, values, strict=True)),
    ]
    return "{\n" + ",\n".join(lines) + "\n}"


def _percent(value: float, decimals: int) -> str:
    digits = max(decimals - 2, 0)
    return f"{value * 100:.{digits}f}".rstrip("0").rstrip(".") + "%"


def faulty_answer(fault: str, labels: Sequence[str], values: Sequence[float]) -> str:
    """The answer text of an answer fault: ``malformed``, ``missing_label`` or ``prose``."""
    if fault == "malformed":
        answer = json.dumps(dict(zip(labels, values, strict=True)))
        return answer[: max(len(answer) // 2, 2)]
    if fault == "missing_label":
        # Like a model that leaves out the label it finds least likely: the rest still sum to 1.
        dropped = int(np.argmin(values))
        kept = [i for i in range(len(labels)) if i != dropped]
        rest = to_decimals(np.array([values[i] for i in kept]) + 1e-12, 4)
        return json.dumps({labels[i]: value for i, value in zip(kept, rest, strict=True)})
    top = labels[int(np.argmax(values))]
    return f"I think this is probably about {top}, but I would rather not put numbers on it."


def runner_up(labels: Sequence[str], values: Sequence[float]) -> str:
    """The second most likely label (the ``answer_disagrees`` fault names it as the answer)."""
    order = np.argsort(-np.asarray(values), kind="stable")
    return labels[int(order[1 if len(labels) > 1 else 0])]
