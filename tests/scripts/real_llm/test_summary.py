"""The run's figures from stored answers and the report, checked by hand."""

import pytest

from scripts.real_llm.summary import (
    Answer,
    answer_stats,
    format_stages,
    format_stats,
    report_lines,
)


def test_answer_stats_by_hand():
    answers = [
        Answer("ok", [0.7, 0.2, 0.1], gold=0, latency_ms=2000, completion_tokens=40),
        Answer("repaired", [0.1, 0.6, 0.3], gold=2, latency_ms=4000, completion_tokens=60),
        Answer("ok", [0.5, 0.5, 0.0], gold=0, latency_ms=None, completion_tokens=None),
        Answer("failed", None, gold=1, latency_ms=3000, completion_tokens=30, reason="sum 0.75"),
        Answer("failed", None, gold=1, latency_ms=3000, completion_tokens=30, reason="sum 0.75"),
    ]
    stats = answer_stats(answers)
    assert stats.status_counts == {"failed": 2, "ok": 2, "repaired": 1}
    assert stats.parsed == 3
    assert stats.correct == 2  # the tie [0.5, 0.5, 0] goes to the first label, which is gold
    assert stats.accuracy_parsed == pytest.approx(2 / 3)
    assert stats.accuracy_all == pytest.approx(2 / 5)
    assert stats.mean_latency_s == pytest.approx(3.0)  # (2 + 4 + 3 + 3) / 4
    assert stats.tokens_per_s == pytest.approx(160 / 12)  # 40 + 60 + 30 + 30 over 12 s
    assert stats.failure_reasons == [("sum 0.75", 2)]


def test_answer_stats_of_nothing_has_no_figures():
    stats = answer_stats([])
    assert (stats.n, stats.parsed, stats.accuracy_parsed, stats.tokens_per_s) == (0, 0, None, None)
    assert "n/a" in format_stats(stats)[1]


def test_report_lines_show_raw_to_calibrated_with_intervals():
    report = {
        "n": 45,
        "raw": {
            "metrics": {"ece": 0.21, "nll": 1.5, "brier": 0.4},
            "ci": {"ece": {"estimate": 0.21, "lower": 0.15, "upper": 0.3}},
        },
        "calibrated": {"metrics": {"ece": 0.05, "nll": 0.9, "brier": None}, "ci": None},
    }
    assert report_lines(report) == [
        "  held-out rows: 45",
        "  ece    0.2100 [0.1500, 0.3000]  ->  0.0500",
        "  nll    1.5000  ->  0.9000",
        "  brier  0.4000  ->  n/a",
    ]


def test_format_stats_and_stages():
    stats = answer_stats([Answer("ok", [1.0, 0.0], 0, 1500.0, 30)])
    assert format_stats(stats) == [
        "  answers: 1 (ok 1)",
        "  accuracy: 100.0 % of parsed answers, 100.0 % counting failures as wrong",
        "  mean latency: 1.50 s per answer; 20.0 generated tokens/s",
    ]
    assert format_stages([("data", 0.25, True), ("fit", 12.0, False)]) == [
        "  data       0.2 s  ok",
        "  fit       12.0 s  FAILED",
    ]
