"""Reading, cutting and sampling the BBC News articles (files made here)."""

from collections import Counter

import pytest

from scripts.real_llm.articles import (
    LABELS,
    Article,
    allocate,
    cut,
    read_articles,
    stratified_split,
)

BBC_COUNTS = {"business": 510, "entertainment": 386, "politics": 417, "sport": 511, "tech": 401}


def test_cut_collapses_whitespace_and_stops_at_a_word_boundary():
    assert cut("Ad sales\n\nboost  Time", 100) == "Ad sales boost Time"
    assert cut("Ad sales boost Time", 10) == "Ad sales"  # "Ad sales b" would split a word
    assert cut("Ad sales boost Time", 8) == "Ad sales"
    assert cut("Supercalifragilistic", 5) == "Super"
    assert len(cut("word " * 500, 600)) <= 600


def test_allocate_matches_a_hand_computed_largest_remainder_split():
    # 150 of 2,225: exact shares 34.38, 26.02, 28.11, 34.45, 27.03 -> floors 34+26+28+34+27 = 149;
    # the one left goes to the largest remainder, sport (0.45).
    assert allocate(BBC_COUNTS, 150) == {
        "business": 34,
        "entertainment": 26,
        "politics": 28,
        "sport": 35,
        "tech": 27,
    }
    assert sum(allocate(BBC_COUNTS, 61).values()) == 61
    with pytest.raises(ValueError, match="cannot sample 2226 of 2225"):
        allocate(BBC_COUNTS, 2226)


def _articles():
    return [
        Article(f"{label}/{i:03d}", label, f"text {label} {i}")
        for label, count in BBC_COUNTS.items()
        for i in range(count)
    ]


def test_stratified_split_is_proportional_disjoint_and_reproducible():
    chosen, held_out = stratified_split(_articles(), 150, 7, seed=0)
    assert Counter(a.label for a in chosen) == Counter(allocate(BBC_COUNTS, 150))
    assert len({a.id for a in chosen}) == 150
    assert not {a.id for a in chosen} & {a.id for a in held_out}
    # Held-out articles go round the labels: one each, then business and entertainment again.
    assert [a.label for a in held_out] == [*LABELS, "business", "entertainment"]
    again = stratified_split(_articles(), 150, 7, seed=0)
    assert again == (chosen, held_out)
    assert stratified_split(_articles(), 150, 7, seed=1)[0] != chosen


def test_read_articles_reads_every_label_directory_and_latin1_bytes(tmp_path):
    for directory in ("business", "entertainment", "politics", "sports", "tech"):
        (tmp_path / directory).mkdir()
    (tmp_path / "sports" / "007.txt").write_text("Goal\n\nLate winner.")
    (tmp_path / "business" / "001.txt").write_bytes(b"Profits up\n\nUp by \xa35m.")
    (tmp_path / "tech" / "002.txt").write_text("Chips\n\nFaster chips.")
    (tmp_path / "tech" / "003.txt").write_text("Chips Faster\nchips.")  # a repeat: skipped
    articles = read_articles(tmp_path, 600)
    assert articles == [
        Article("business/001", "business", "Profits up Up by £5m."),
        Article("sport/007", "sport", "Goal Late winner."),
        Article("tech/002", "tech", "Chips Faster chips."),
    ]
    (tmp_path / "sports").rename(tmp_path / "football")
    with pytest.raises(ValueError, match=r"found .*'football'"):
        read_articles(tmp_path, 600)
