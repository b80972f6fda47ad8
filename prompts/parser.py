"""Tolerant parser of LLM answers into a probability distribution over a task's labels.

``parse_distribution(answer, labels)`` never raises on any answer string and never invents a
distribution: a ``failed`` result has ``probabilities=None`` and a ``reason``; any other result
has exactly the task labels as keys (in label order), finite values ≥ 0 summing to 1 within 1e-9.

Statuses
--------
``ok``
    The model's keys and values were taken as they are. Prose or code fences around the JSON
    object do not count as a repair, nor does a second identical copy of the object, nor a sum off
    by at most 1e-6 (float rounding; such sums are renormalized silently).
``repaired``
    The distribution is the model's, but something had to be fixed; ``repairs`` says what:
    trailing commas, Python-style literals (single quotes), label variants differing only in case,
    surrounding whitespace, or ``_``/``-``/space ("Not_Spam" → "not spam"), numeric strings
    ("0.7"), percentage strings ("70%"), percentages summing to 100 (within
    ``percent_tolerance``·100, when some value exceeds 1), a sum within ``sum_tolerance`` of 1
    (renormalized), missing labels under ``missing_labels="fill_zero"``, a distribution nested in
    a wrapper object such as ``{"label": ..., "probabilities": {...}}`` (the default prompt asks for
    one flat object, so unwrapping is a repair), keys other than the labels ("ignored keys
    'Reasoning', 'Answer'"), raw control characters inside a string, or label values recovered
    from an object whose JSON is invalid (see below).
``failed``
    ``reason`` names the problem (and the label, where one is at fault): empty or over-long answer,
    no JSON object (refusals, prose), a ``truncated`` object (cut off, e.g. by ``max_tokens``),
    unknown keys while labels are missing, two keys mapping to one label, duplicate keys,
    missing labels (policy ``fail``), a boolean, null, non-numeric, negative, NaN or infinite value
    (``true`` is not 1), all zeros, a sum outside the tolerances, or several JSON objects that give
    different distributions ("ambiguous").

Other keys, reasoning and the stated answer
-------------------------------------------
When every task label is a key with a numeric value, any other key is ignored whatever its value
(a reasoning string, an answer letter, a confidence, a nested object) and named in ``repairs``;
the ``reasoning`` key that the reasoning answer schema asks for (``prompts.schema.REASONING_KEY``)
is expected and no repair. While a label is missing, an unknown key fails the answer ("unknown
labels"), since it may be a misspelt label; only the expected fields (``reasoning`` and the answer
fields below) are then set aside.

``reasoning`` is the string value of the ``reasoning`` key (any case). A field named one of
``ANSWER_FIELD_NAMES`` (any case) whose string value names a label (same variants as keys;
surrounding spaces, brackets, quotes and a final period are stripped) is the stated answer:
``answer_label`` is that label and ``answer_agrees`` says whether it has the distribution's
largest probability (a label tied for the maximum agrees). Both are ``None`` when no such field
names a label. They never change the distribution.

Invalid JSON
------------
An object whose JSON is invalid only because of unescaped quotes or raw text inside a string
value (real models write ``"Reasoning": "the "new" law ..."``) is recovered when each task label
occurs exactly once in the object's text as a ``"label": number`` pair between ``{``/``,`` and
``,``/``}``; those pairs are the distribution (repair "recovered the label values from invalid
JSON"). Anything less fails: nothing is guessed.

Finding the object
------------------
Every top-level balanced ``{...}`` in the answer (quotes respected) is a candidate, decoded as
JSON, then JSON without trailing commas, then as a Python literal (``ast`` nodes of literals only,
nothing is evaluated). Candidates whose interpretation succeeds are preferred, and among them the
ones that needed no missing-label filling; if those disagree the answer is ambiguous. Without any
success, the failure of the candidate with most keys that are task labels is reported. Arrays are
not accepted: probabilities must be keyed by label.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from prompts.decoding import DecodeError, decode, object_spans, shorten
from prompts.labels import check_labels
from prompts.schema import REASONING_KEY

__all__ = [
    "ANSWER_FIELD_NAMES",
    "MAX_ANSWER_CHARS",
    "MISSING_LABEL_POLICIES",
    "PARSE_STATUSES",
    "ParseResult",
    "parse_distribution",
]

PARSE_STATUSES = ("ok", "repaired", "failed")
MISSING_LABEL_POLICIES = ("fail", "fill_zero")
MAX_ANSWER_CHARS = 200_000
# Keys (compared case-insensitively) under which a model states its chosen label.
ANSWER_FIELD_NAMES = frozenset(
    {"answer", "label", "prediction", "predicted label", "final answer", "choice", "class"}
)

# Sums this close to 1 are float rounding of a correct answer, not a model error.
_EXACT_SUM_TOLERANCE = 1e-6
_KEPT_AS_IS_TOLERANCE = 1e-9
_AGREEMENT_TOLERANCE = 1e-9
# A sum on the tolerance's edge (0.95 with 0.05) passes although abs(0.95 - 1) > 0.05 in floats.
_EDGE_SLACK = 1e-9
_ANSWER_VALUE_STRIP = " \t\n.()[]'\"`*:"
_MAX_NESTING_SEARCH_DEPTH = 2

ParseStatus = Literal["ok", "repaired", "failed"]


@dataclass(frozen=True)
class ParseResult:
    """Outcome of parsing one answer (see the module docstring for the statuses)."""

    status: ParseStatus
    probabilities: dict[str, float] | None
    repairs: tuple[str, ...] = ()
    reason: str | None = None
    reasoning: str | None = None
    answer_label: str | None = None
    answer_agrees: bool | None = None

    @property
    def succeeded(self) -> bool:
        """True when the result carries a distribution (status ``ok`` or ``repaired``)."""
        return self.probabilities is not None

    def as_list(self) -> list[float] | None:
        """The probabilities in task label order, or ``None`` for a failed parse."""
        if self.probabilities is None:
            return None
        return list(self.probabilities.values())


def parse_distribution(
    text: str,
    labels: Sequence[str],
    *,
    missing_labels: str = "fail",
    sum_tolerance: float = 0.05,
    percent_tolerance: float = 0.05,
) -> ParseResult:
    """Parse an LLM answer into a distribution over ``labels``.

    ``missing_labels``: ``"fail"`` (default) or ``"fill_zero"`` (missing labels get 0, repaired).
    ``sum_tolerance``: a sum in [1 − tol, 1 + tol] is renormalized (repaired unless within 1e-6
    of 1); further off, the answer fails unless it is on a percentage scale.
    ``percent_tolerance``: values whose sum is in [100·(1 − tol), 100·(1 + tol)], with at least one
    value above 1, are read as percentages and divided by their sum.

    Never raises on the answer; raises ``ValueError`` for invalid arguments (labels not a unique
    non-empty sequence of strings, unknown policy, negative tolerances).
    """
    label_list = check_labels(labels)
    if missing_labels not in MISSING_LABEL_POLICIES:
        raise ValueError(
            f"missing_labels must be one of {list(MISSING_LABEL_POLICIES)}, not {missing_labels!r}"
        )
    if not (sum_tolerance >= 0 and percent_tolerance >= 0):
        raise ValueError("tolerances must be non-negative numbers")
    settings = _Settings(
        labels=label_list,
        fill_missing=missing_labels == "fill_zero",
        sum_tolerance=float(sum_tolerance),
        percent_tolerance=float(percent_tolerance),
    )

    if not isinstance(text, str):
        return _failed(f"answer is not a string but {type(text).__name__}")
    if not text.strip():
        return _failed("empty answer")
    if len(text) > MAX_ANSWER_CHARS:
        return _failed(f"answer too long ({len(text)} characters; limit {MAX_ANSWER_CHARS})")

    spans, saw_unbalanced = object_spans(text)
    attempts: list[_Attempt] = []
    decode_errors: list[str] = []
    invalid_spans: list[str] = []
    for span in spans:
        try:
            obj, decode_repairs = decode(span)
        except DecodeError as exc:
            decode_errors.append(str(exc))
            invalid_spans.append(span)
            continue
        if isinstance(obj, dict):
            attempts.extend(_interpretations(obj, decode_repairs, settings))
    if not any(attempt.probabilities is not None for attempt in attempts):
        attempts.extend(_recovered(invalid_spans, saw_unbalanced, text, settings))
    return _choose(attempts, decode_errors, saw_unbalanced, text)


def _recovered(
    invalid_spans: list[str], saw_unbalanced: bool, text: str, settings: _Settings
) -> Iterator[_Attempt]:
    """Read label values out of objects whose JSON is invalid (see "Invalid JSON" above).

    Unescaped quotes can also hide an object's closing brace from the brace matcher, so with an
    unbalanced ``{`` the text from the first ``{`` to the last ``}`` is tried as well.
    """
    regions = list(invalid_spans)
    if saw_unbalanced:
        first, last = text.find("{"), text.rfind("}")
        if first != -1 and last > first:
            regions.append(text[first : last + 1])
    for region in regions:
        pairs = _label_pairs(region, settings)
        if pairs is not None:
            yield _interpret(pairs, (_RECOVERY_REPAIR,), settings)
            return


_RECOVERY_REPAIR = "recovered the label values from invalid JSON (unescaped quotes or raw text)"
_NUMBER = r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
_LABEL_PAIR = re.compile(r'[{,]\s*"([^"\\\n]{1,200})"\s*:\s*("?)(' + _NUMBER + r")\2\s*(?=[,}])")
_ANSWER_PAIR = re.compile(r'[{,\n]\s*"([^"\\\n]{1,40})"\s*:\s*("?)([^"\\\n,{}]{1,80})\2\s*(?=[,}])')


def _label_pairs(region: str, settings: _Settings) -> dict[str, Any] | None:
    """The ``"label": number`` pairs of ``region`` if each label occurs exactly once, else None.

    A stated-answer pair (``"Answer": "C"``, quoted or not) occurring exactly once is kept for
    agreement.
    """
    by_label: dict[str, list[tuple[str, str | float]]] = {label: [] for label in settings.labels}
    for key, quote, number in _LABEL_PAIR.findall(region):
        label, _ = _map_key(key, settings)
        if label is not None:
            # A quoted number stays a string, so that its conversion is named as a repair.
            by_label[label].append((key, number if quote else float(number)))
    if any(len(found) != 1 for found in by_label.values()):
        return None
    obj: dict[str, Any] = dict(found[0] for found in by_label.values())
    answers = [
        (key, value)
        for key, _quote, value in _ANSWER_PAIR.findall(region)
        if _label_variant(key) in ANSWER_FIELD_NAMES
    ]
    if len(answers) == 1:
        obj[answers[0][0]] = answers[0][1]
    return obj


# --- choosing among candidates -----------------------------------------------------------------


@dataclass(frozen=True)
class _Settings:
    labels: list[str]
    fill_missing: bool
    sum_tolerance: float
    percent_tolerance: float
    label_set: frozenset[str] = field(init=False)
    label_by_variant: dict[str, str] = field(init=False)
    ambiguous_variants: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        by_variant: dict[str, str] = {}
        ambiguous: set[str] = set()
        for label in self.labels:
            variant = _label_variant(label)
            if variant in by_variant:
                ambiguous.add(variant)
            by_variant[variant] = label
        for variant in ambiguous:
            del by_variant[variant]
        object.__setattr__(self, "label_set", frozenset(self.labels))
        object.__setattr__(self, "label_by_variant", by_variant)
        object.__setattr__(self, "ambiguous_variants", frozenset(ambiguous))


@dataclass(frozen=True)
class _Attempt:
    """One way of reading one decoded object: a distribution or the reason it is not one."""

    probabilities: dict[str, float] | None
    repairs: tuple[str, ...]
    reason: str | None
    relevance: int
    filled_missing: bool = False
    reasoning: str | None = None
    answer_label: str | None = None
    answer_agrees: bool | None = None


def _choose(
    attempts: list[_Attempt],
    decode_errors: list[str],
    saw_unbalanced: bool,
    text: str,
) -> ParseResult:
    successes = [attempt for attempt in attempts if attempt.probabilities is not None]
    complete = [attempt for attempt in successes if not attempt.filled_missing]
    preferred = complete or successes
    if preferred:
        first = preferred[0]
        assert first.probabilities is not None
        for other in preferred[1:]:
            assert other.probabilities is not None
            if not _agree(first.probabilities, other.probabilities):
                return _failed(
                    f"ambiguous: {len(preferred)} JSON objects give different distributions"
                )
        status: ParseStatus = "repaired" if first.repairs else "ok"
        return ParseResult(
            status,
            first.probabilities,
            first.repairs,
            None,
            reasoning=first.reasoning,
            answer_label=first.answer_label,
            answer_agrees=first.answer_agrees,
        )

    relevant = [attempt for attempt in attempts if attempt.relevance > 0]
    if relevant:
        best = max(relevant, key=lambda attempt: attempt.relevance)
        return ParseResult("failed", None, best.repairs, best.reason)
    if decode_errors:
        return _failed(f"could not parse the JSON object: {decode_errors[-1]}")
    if saw_unbalanced:
        return _failed("truncated: the JSON object is not closed (cut off, e.g. by max_tokens?)")
    if attempts:
        keys_seen = sorted({key for attempt in attempts for key in _reason_keys(attempt)})
        detail = f" (keys seen: {', '.join(keys_seen)})" if keys_seen else ""
        return _failed(f"no JSON object has the task's labels as keys{detail}")
    if "[" in text:
        return _failed(
            "no JSON object found in the answer (a JSON array is not accepted: "
            "probabilities must be keyed by label)"
        )
    return _failed("no JSON object found in the answer")


def _reason_keys(attempt: _Attempt) -> list[str]:
    if attempt.reason and attempt.reason.startswith("unknown labels: "):
        return attempt.reason.removeprefix("unknown labels: ").split(", ")
    return []


def _agree(first: dict[str, float], second: dict[str, float]) -> bool:
    return all(abs(first[label] - second[label]) <= _AGREEMENT_TOLERANCE for label in first)


def _failed(reason: str) -> ParseResult:
    return ParseResult("failed", None, (), reason)


# --- interpreting one decoded object -----------------------------------------------------------


def _interpretations(
    obj: dict, decode_repairs: tuple[str, ...], settings: _Settings
) -> Iterator[_Attempt]:
    """Read an object as a distribution; if that fails, try objects nested inside it."""
    direct = _interpret(obj, decode_repairs, settings)
    if direct.probabilities is not None:
        yield direct
        return
    nested = [
        _interpret(
            inner,
            (*decode_repairs, f"used the nested object under {path!r}"),
            settings,
            outer=obj,
        )
        for path, inner in _nested_objects(obj, "", _MAX_NESTING_SEARCH_DEPTH)
        if _relevance(inner, settings) > 0
    ]
    nested_successes = [attempt for attempt in nested if attempt.probabilities is not None]
    if nested_successes:
        yield from nested_successes
        return
    yield direct
    yield from nested


def _nested_objects(obj: dict, prefix: str, depth: int) -> Iterator[tuple[str, dict]]:
    if depth <= 0:
        return
    for key, value in obj.items():
        if isinstance(value, dict):
            path = f"{prefix}.{key}" if prefix else str(key)
            yield path, value
            yield from _nested_objects(value, path, depth - 1)


def _relevance(obj: dict, settings: _Settings) -> int:
    return sum(1 for key in obj if _map_key(key, settings)[0] is not None)


def _interpret(
    obj: dict,
    decode_repairs: tuple[str, ...],
    settings: _Settings,
    *,
    outer: dict | None = None,
) -> _Attempt:
    """Read one object as a distribution; ``outer`` is the wrapper it was nested in, if any."""
    repairs = list(decode_repairs)
    relevance = _relevance(obj, settings)

    def failure(reason: str) -> _Attempt:
        return _Attempt(None, tuple(repairs), reason, relevance)

    duplicates = getattr(obj, "duplicate_keys", ())
    if duplicates:
        return failure(f"duplicate key {duplicates[0]!r} in the JSON object")

    raw_by_label: dict[str, Any] = {}
    key_by_label: dict[str, Any] = {}
    expected: list[Any] = []
    unknown: list[str] = []
    for key, value in obj.items():
        label, problem = _map_key(key, settings)
        if label is None:
            if _is_expected_field(key):
                expected.append(key)
            else:
                unknown.append(repr(key) if problem is None else f"{key!r} ({problem})")
            continue
        if label in key_by_label:
            return failure(f"keys {key_by_label[label]!r} and {key!r} both map to label {label!r}")
        key_by_label[label] = key
        raw_by_label[label] = value
    missing = [label for label in settings.labels if label not in raw_by_label]
    if unknown and missing:
        return failure("unknown labels: " + ", ".join(unknown))
    if not raw_by_label:
        return failure("the JSON object is empty" if not obj else "no task label is a key")
    for label in settings.labels:
        key = key_by_label.get(label)
        if key is not None and key != label:
            repairs.append(f"mapped label {key!r} → {label!r}")

    values: dict[str, float] = {}
    for label, raw in raw_by_label.items():
        value, problem, repair = _probability_value(label, raw)
        if problem is not None:
            return failure(problem)
        if repair is not None:
            repairs.append(repair)
        values[label] = value

    ignored = [key for key in (*expected, *(k for k in obj if k not in key_by_label.values()))]
    ignored = [key for key in dict.fromkeys(ignored) if key != REASONING_KEY]
    if ignored:
        repairs.append("ignored keys " + ", ".join(repr(key) for key in ignored))
    if missing:
        names = ", ".join(repr(label) for label in missing)
        if not settings.fill_missing:
            return failure(f"missing labels: {names}")
        repairs.append(f"filled missing labels with 0: {names}")
        for label in missing:
            values[label] = 0.0

    ordered = [values[label] for label in settings.labels]
    normalized, problem = _normalized(ordered, repairs, settings)
    if normalized is None:
        return failure(problem or "invalid distribution")
    probabilities = dict(zip(settings.labels, normalized, strict=True))
    answer_label = _stated_answer(obj, settings)
    reasoning = _reasoning(obj)
    if outer is not None:
        answer_label = answer_label or _stated_answer(outer, settings)
        reasoning = reasoning or _reasoning(outer)
    return _Attempt(
        probabilities,
        tuple(repairs),
        None,
        relevance,
        filled_missing=bool(missing),
        reasoning=reasoning,
        answer_label=answer_label,
        answer_agrees=None if answer_label is None else _has_maximum(probabilities, answer_label),
    )


def _is_expected_field(key: Any) -> bool:
    """The reasoning key and answer fields: set aside even while labels are missing."""
    if not isinstance(key, str):
        return False
    variant = _label_variant(key)
    return variant == REASONING_KEY or variant in ANSWER_FIELD_NAMES


def _reasoning(obj: dict) -> str | None:
    for key, value in obj.items():
        if isinstance(key, str) and _label_variant(key) == REASONING_KEY and isinstance(value, str):
            return value
    return None


def _stated_answer(obj: dict, settings: _Settings) -> str | None:
    """The label named by the object's first answer field, or None (see the module docstring)."""
    for key, value in obj.items():
        if isinstance(key, str) and _label_variant(key) in ANSWER_FIELD_NAMES:
            if not isinstance(value, str):
                continue
            label, _ = _map_key(value.strip(_ANSWER_VALUE_STRIP), settings)
            if label is not None:
                return label
    return None


def _has_maximum(probabilities: dict[str, float], label: str) -> bool:
    return probabilities[label] >= max(probabilities.values()) - _AGREEMENT_TOLERANCE


def _normalized(
    values: list[float], repairs: list[str], settings: _Settings
) -> tuple[list[float] | None, str | None]:
    total = math.fsum(values)
    if not math.isfinite(total):
        return None, "probabilities sum to a non-finite number"
    if total == 0:
        return None, "all probabilities are zero"
    deviation = abs(total - 1)
    if deviation <= _KEPT_AS_IS_TOLERANCE:
        return values, None
    if deviation <= _EXACT_SUM_TOLERANCE:
        return _divided(values, total), None
    if deviation <= settings.sum_tolerance + _EDGE_SLACK:
        repairs.append(f"renormalized sum {total:.6g}")
        return _divided(values, total), None
    on_percent_scale = (
        max(values) > 1 and abs(total - 100) <= settings.percent_tolerance * 100 + _EDGE_SLACK
    )
    if on_percent_scale:
        repairs.append(f"interpreted values as percentages (sum {total:.6g})")
        return _divided(values, total), None
    return None, (
        f"probabilities sum to {total:.6g}, outside the tolerance "
        f"[{1 - settings.sum_tolerance:g}, {1 + settings.sum_tolerance:g}]"
    )


def _divided(values: list[float], total: float) -> list[float]:
    return [value / total for value in values]


def _probability_value(label: str, raw: Any) -> tuple[float, str | None, str | None]:
    """Return (value, problem, repair) for one label's raw value."""
    if isinstance(raw, bool):
        return 0.0, f"value for {label!r} is a boolean ({raw}), not a probability", None
    if raw is None:
        return 0.0, f"value for {label!r} is null, not a probability", None
    repair = None
    if isinstance(raw, int | float):
        try:
            value = float(raw)
        except OverflowError:
            return 0.0, f"value for {label!r} is not finite (too large)", None
    elif isinstance(raw, str):
        value, repair = _number_from_string(raw, label)
        if value is None:
            return 0.0, f"value for {label!r} is not a number: {shorten(raw)!r}", None
    else:
        return 0.0, f"value for {label!r} is not a number but {_kind(raw)}", None
    if not math.isfinite(value):
        return 0.0, f"value for {label!r} is not finite ({value})", None
    if value < 0:
        return 0.0, f"value for {label!r} is negative ({value:g})", None
    return value + 0.0, None, repair


def _number_from_string(raw: str, label: str) -> tuple[float | None, str | None]:
    stripped = raw.strip()
    is_percent = stripped.endswith("%")
    number_text = stripped[:-1].strip() if is_percent else stripped
    if not number_text or len(number_text) > 64:
        return None, None
    try:
        value = float(number_text)
    except ValueError:
        return None, None
    if is_percent:
        return value / 100, f"converted percentage string {raw!r} for {label!r}"
    return value, f"converted numeric string {raw!r} for {label!r}"


def _kind(raw: Any) -> str:
    if isinstance(raw, dict):
        return "an object"
    if isinstance(raw, list):
        return "an array"
    return type(raw).__name__


def _label_variant(name: str) -> str:
    return re.sub(r"[\s_\-]+", " ", name.casefold()).strip()


def _map_key(key: Any, settings: _Settings) -> tuple[str | None, str | None]:
    """Return (task label, None) for a key, or (None, why not) when it is no label."""
    if not isinstance(key, str):
        return None, None
    if key in settings.label_set:
        return key, None
    variant = _label_variant(key)
    if variant in settings.ambiguous_variants:
        return None, "matches several labels"
    return settings.label_by_variant.get(variant), None
