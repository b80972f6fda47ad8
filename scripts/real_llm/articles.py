"""BBC News articles: reading, cutting to a length, and a stratified, seeded sample."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

LABELS = ("business", "entertainment", "politics", "sport", "tech")
"""The five labels (the task's labels, as the data set's description spells them)."""

DIRECTORY_LABELS = {"sports": "sport"}
"""Directories of the data set not named as their label."""


@dataclass(frozen=True)
class Article:
    id: str
    label: str
    text: str


def cut(text: str, max_chars: int) -> str:
    """Whitespace collapsed, then cut at the last word boundary within ``max_chars``.

    A single word longer than ``max_chars`` is cut inside the word; the result is never longer
    than ``max_chars`` and never ends in whitespace.
    """
    flat = " ".join(text.split())
    if len(flat) <= max_chars:
        return flat
    head = flat[: max_chars + 1]
    boundary = head.rfind(" ")
    return (head[:boundary] if boundary > 0 else flat[:max_chars]).rstrip()


def _decode(raw: bytes) -> str:
    # The files are mostly ASCII; a few carry Latin-1 bytes such as the pound sign.
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def read_articles(root: Path, max_chars: int) -> list[Article]:
    """Every ``<root>/<directory>/<name>.txt`` as an Article (id ``label/name``), by id.

    A directory's label is its name, or ``DIRECTORY_LABELS[name]``; every label of ``LABELS``
    must have one (else ValueError). The data set repeats some articles: a text seen before
    (after cutting) is skipped, so every text is uploaded once.
    """
    directories = {
        DIRECTORY_LABELS.get(path.name, path.name): path
        for path in (sorted(root.iterdir()) if root.is_dir() else [])
        if path.is_dir()
    }
    if sorted(directories) != sorted(LABELS):
        raise ValueError(
            f"expected one directory per label {list(LABELS)} under {root}, "
            f"found {sorted(directories)}"
        )
    articles = []
    seen: set[str] = set()
    for label in LABELS:
        for path in sorted(directories[label].glob("*.txt")):
            text = cut(_decode(path.read_bytes()), max_chars)
            if text and text not in seen:
                seen.add(text)
                articles.append(Article(f"{label}/{path.stem}", label, text))
    if not articles:
        raise ValueError(f"no articles under {root}/<label>/*.txt")
    return articles


def allocate(counts: dict[str, int], n: int) -> dict[str, int]:
    """Split ``n`` over the labels in proportion to ``counts`` (largest remainders).

    Ties in the remainders go to the label first in sorted order, so the split is deterministic.
    Raises ValueError when ``n`` exceeds the total.
    """
    total = sum(counts.values())
    if not 0 <= n <= total:
        raise ValueError(f"cannot sample {n} of {total} articles")
    exact = {label: n * count / total for label, count in counts.items()}
    share = {label: int(value) for label, value in exact.items()}
    left = n - sum(share.values())
    by_remainder = sorted(exact, key=lambda label: (-(exact[label] - share[label]), label))
    for label in by_remainder[:left]:
        share[label] += 1
    return share


def stratified_split(
    articles: list[Article], n: int, n_held_out: int, seed: int
) -> tuple[list[Article], list[Article]]:
    """``n`` articles in label proportions, and ``n_held_out`` others spread over the labels.

    The same seed and articles always give the same two disjoint lists; the held-out ones go
    round the labels in order, so each label gets one before any gets two.
    """
    rng = random.Random(seed)
    by_label: dict[str, list[Article]] = {}
    for article in articles:
        by_label.setdefault(article.label, []).append(article)
    for group in by_label.values():
        rng.shuffle(group)
    share = allocate({label: len(group) for label, group in by_label.items()}, n)
    chosen = [a for label in sorted(by_label) for a in by_label[label][: share[label]]]
    rest = {label: by_label[label][share[label] :] for label in sorted(by_label)}
    held_out: list[Article] = []
    while len(held_out) < n_held_out and any(rest.values()):
        for label in sorted(rest):
            if rest[label] and len(held_out) < n_held_out:
                held_out.append(rest[label].pop(0))
    rng.shuffle(chosen)
    return chosen, held_out
