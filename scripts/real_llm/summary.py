"""Figures of one run, computed from the stored answers and the API's report, and printed."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

REPORT_METRICS = ("ece", "nll", "brier")


@dataclass(frozen=True)
class Answer:
    """One stored LLM answer: its parse status, distribution (task label order) and costs."""

    status: str
    probabilities: Sequence[float] | None
    gold: int
    latency_ms: float | None
    completion_tokens: int | None
    reason: str | None = None


@dataclass
class AnswerStats:
    n: int
    status_counts: dict[str, int]
    parsed: int
    correct: int
    mean_latency_s: float | None
    tokens_per_s: float | None
    failure_reasons: list[tuple[str, int]] = field(default_factory=list)

    @property
    def accuracy_parsed(self) -> float | None:
        """Argmax accuracy over the answers that parsed."""
        return self.correct / self.parsed if self.parsed else None

    @property
    def accuracy_all(self) -> float | None:
        """Argmax accuracy with every failed answer counted wrong."""
        return self.correct / self.n if self.n else None


def _argmax(values: Sequence[float]) -> int:
    # Ties go to the first label, as numpy.argmax does.
    return max(range(len(values)), key=lambda i: (values[i], -i))


def answer_stats(answers: Iterable[Answer], top_reasons: int = 5) -> AnswerStats:
    """Parse status counts, accuracy, mean latency and generated tokens per second.

    Tokens per second is total completion tokens over total latency of the answers that report
    both (so the prompt's processing time counts against it, as a caller sees it).
    """
    answers = list(answers)
    counts = Counter(a.status for a in answers)
    parsed = [a for a in answers if a.status != "failed" and a.probabilities is not None]
    correct = sum(1 for a in parsed if _argmax(a.probabilities) == a.gold)
    latencies = [a.latency_ms for a in answers if a.latency_ms is not None]
    timed = [a for a in answers if a.latency_ms and a.completion_tokens is not None]
    seconds = sum(a.latency_ms for a in timed) / 1000
    reasons = Counter(a.reason or "no reason given" for a in answers if a.status == "failed")
    return AnswerStats(
        n=len(answers),
        status_counts=dict(sorted(counts.items())),
        parsed=len(parsed),
        correct=correct,
        mean_latency_s=sum(latencies) / len(latencies) / 1000 if latencies else None,
        tokens_per_s=sum(a.completion_tokens for a in timed) / seconds if seconds else None,
        failure_reasons=reasons.most_common(top_reasons),
    )


def _number(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def _with_ci(section: dict[str, Any], metric: str) -> str:
    value = _number(section.get("metrics", {}).get(metric))
    ci = (section.get("ci") or {}).get(metric)
    if not ci:
        return value
    return f"{value} [{_number(ci.get('lower'))}, {_number(ci.get('upper'))}]"


def report_lines(report: dict[str, Any]) -> list[str]:
    """Held-out ECE / NLL / Brier raw -> calibrated with their bootstrap CIs."""
    lines = [f"  held-out rows: {report.get('n')}"]
    raw, calibrated = report.get("raw") or {}, report.get("calibrated") or {}
    for metric in REPORT_METRICS:
        lines.append(f"  {metric:<6} {_with_ci(raw, metric)}  ->  {_with_ci(calibrated, metric)}")
    return lines


def format_stats(stats: AnswerStats) -> list[str]:
    counts = ", ".join(f"{status} {count}" for status, count in stats.status_counts.items())
    lines = [
        f"  answers: {stats.n} ({counts})",
        f"  accuracy: {_pct(stats.accuracy_parsed)} of parsed answers, "
        f"{_pct(stats.accuracy_all)} counting failures as wrong",
        f"  mean latency: {_number(stats.mean_latency_s, 2)} s per answer; "
        f"{_number(stats.tokens_per_s, 1)} generated tokens/s",
    ]
    lines += [f"  failed ({count}x): {reason}" for reason, count in stats.failure_reasons]
    return lines


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def format_stages(stages: Sequence[tuple[str, float, bool]]) -> list[str]:
    """One line per stage: wall time and whether it passed."""
    width = max((len(name) for name, _, _ in stages), default=0)
    return [
        f"  {name:<{width}}  {seconds:8.1f} s  {'ok' if ok else 'FAILED'}"
        for name, seconds, ok in stages
    ]
