"""The one label-list check: a non-empty sequence of distinct strings, in order."""

from __future__ import annotations

import pytest

from prompts.labels import check_labels


def test_labels_come_back_as_a_list_in_order():
    assert check_labels(("b", "a", "c")) == ["b", "a", "c"]
    assert check_labels(["only"]) == ["only"]


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ("ab", "not a single string"),
        (b"ab", "not a single string"),
        ({"a", "b"}, "not a single string"),
        ([], "must not be empty"),
        (["a", 1], "labels must be strings, got int"),
        (["a", "b", "a"], "duplicate label 'a'"),
    ],
)
def test_bad_label_lists_are_rejected(labels, message):
    with pytest.raises(ValueError, match=message):
        check_labels(labels)
