"""Retry-After parsing and the retry wait (the classification of failures is exercised end to end
in test_client.py, against the simulator)."""

from __future__ import annotations

import time

import pytest

from app.llm.retry import RetryPolicy, parse_retry_after


@pytest.mark.parametrize(
    ("seconds", "expected"), [("0.2", 0.2), ("3", 3.0), ("junk", None), (None, None)]
)
def test_parse_retry_after_seconds(seconds, expected):
    headers = {} if seconds is None else {"retry-after": seconds}
    assert parse_retry_after(headers) == expected


def test_parse_retry_after_http_date_and_ms():
    future = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 5))
    assert 3 <= parse_retry_after({"retry-after": future}) <= 5.5
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25


def test_retry_after_wait_is_capped():
    policy = RetryPolicy(max_retry_after_s=2.0, jitter=0.0)
    assert policy.wait_s(0, 3600) == 2.0
    assert policy.wait_s(0, 0.2) == 0.2
