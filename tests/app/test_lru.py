"""The bounded LRU map behind the calibrator and report caches."""

from __future__ import annotations

import pytest

from app.lru import LRU


def test_least_recently_used_entry_is_dropped_first():
    cache: LRU[str] = LRU(2)
    cache.put("a", "A")
    cache.put("b", "B")
    assert cache.get("a") == "A"  # "b" is now the least recently used
    cache.put("c", "C")
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == ("A", None, "C")
    assert len(cache) == 2
    cache.put("a", "A2")
    assert cache.get("a") == "A2" and len(cache) == 2
    cache.clear()
    assert len(cache) == 0 and cache.get("a") is None


def test_size_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        LRU(0)
