"""The k samples of one item and their combination into the item's answer.

- Each parsed sample keeps the model's ``reasoning`` and whether a field naming a label (such as
  ``"Answer"``) agrees with the argmax (``answer_agrees``). The item's ``reasoning`` is the first
  parsed sample's; its ``answer_agrees`` is None when no parsed sample named a label, else
  whether all that did agree.
- The item's distribution is the mean of the parsed samples' distributions when at least one
  sample parsed; the failed samples stay in ``samples`` with their error (``failed_samples``
  counts them). Status is ``repaired`` when any parsed sample needed a repair, else ``ok``.
- When no sample parsed, status is ``failed``, ``probabilities`` is None and ``error`` is the last
  sample's typed error.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from app.llm.errors import LLMError

ElicitationStatus = Literal["ok", "repaired", "failed"]


@dataclass
class SampleRecord:
    """One sample: one answered (or failed) request, after retries."""

    index: int
    seed: int | None
    model: str | None = None
    latency_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None
    choices: int | None = None
    raw_text: str | None = None
    parse_status: str | None = None
    repairs: list[str] = field(default_factory=list)
    reason: str | None = None
    probabilities: list[float] | None = None
    reasoning: str | None = None
    answer_agrees: bool | None = None
    error: LLMError | None = None
    attempts: int = 0

    @property
    def parsed(self) -> bool:
        return self.probabilities is not None


@dataclass
class Elicitation:
    """The answer for one text: the mean parsed distribution (label order) and every sample."""

    probabilities: list[float] | None
    status: ElicitationStatus
    samples: list[SampleRecord]
    error: LLMError | None
    latency_ms: float
    asked: bool = True
    """False for a text not asked because an earlier one failed fatally (see elicit_many)."""

    @property
    def failed_samples(self) -> int:
        return sum(1 for sample in self.samples if not sample.parsed)

    @property
    def reasoning(self) -> str | None:
        """The first parsed sample's reasoning (None when none gave one)."""
        return next((s.reasoning for s in self.samples if s.parsed and s.reasoning), None)

    @property
    def answer_agrees(self) -> bool | None:
        """None when no parsed sample named a label, else whether all that did agree."""
        stated = [s.answer_agrees for s in self.samples if s.parsed and s.answer_agrees is not None]
        return all(stated) if stated else None


def mean_distribution(distributions: Sequence[Sequence[float]]) -> list[float]:
    """The distribution of an item asked k times: the mean of its k parsed distributions.

    ``p_j = (1/k) * sum_i p_ij`` in label order, summed in sample order. Each sample sums to 1, so
    the mean does too (up to rounding); it is not renormalized.
    """
    k = len(distributions)
    if k == 0:
        raise ValueError("the mean of no distributions is undefined")
    return [sum(column) / k for column in zip(*distributions, strict=True)]


def combine(
    samples: list[SampleRecord], started: float, last_error: LLMError | None = None
) -> Elicitation:
    """The item's result from its samples (see the module docstring for the policy)."""
    latency_ms = (time.perf_counter() - started) * 1000
    parsed = [s for s in samples if s.probabilities is not None]
    if not parsed:
        if last_error is None:
            failures = [s.error for s in samples if s.error is not None]
            last_error = failures[-1] if failures else None
        error = last_error or LLMError("unparseable", "no sample was answered")
        return Elicitation(None, "failed", samples, error, latency_ms)
    mean = mean_distribution([s.probabilities or [] for s in parsed])
    status: ElicitationStatus = (
        "repaired" if any(s.parse_status == "repaired" for s in parsed) else "ok"
    )
    return Elicitation(mean, status, samples, None, latency_ms)
