"""Pure curation logic: normalising, near-duplicate detection (MinHash + LSH), overlap with
held-out text, class balancing, a stratified split, and the person's imported real inputs (rows
to label, kept apart from the test set, examples for generation). No I/O here."""

from __future__ import annotations

import hashlib
import math
import random
import re
import struct
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

_WORD = re.compile(r"[a-z0-9]+")
_MASK = (1 << 61) - 1  # a Mersenne prime for the universal hash family


#: Word 3-gram Jaccard similarity from which two inputs count as near duplicates.
NEAR_DUPLICATE_JACCARD = 0.7


def normalize(text: str) -> str:
    """Lowercase words only: the key for exact duplicates."""
    return " ".join(_WORD.findall(text.lower()))


def shingles(text: str, n: int = 3) -> set[str]:
    """Word n-grams of the normalised text (the whole text if it has fewer than n words)."""
    words = normalize(text).split()
    if len(words) < n:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


class MinHasher:
    """MinHash signatures with banded LSH, for finding near-duplicate texts in near-linear time."""

    def __init__(self, num_perm: int = 64, bands: int = 16, seed: int = 1) -> None:
        if num_perm % bands:
            raise ValueError("num_perm must be a multiple of bands")
        rng = random.Random(seed)
        self.params = [(rng.randrange(1, _MASK), rng.randrange(0, _MASK)) for _ in range(num_perm)]
        self.bands, self.rows = bands, num_perm // bands

    def signature(self, grams: set[str]) -> tuple[int, ...]:
        if not grams:
            return tuple([_MASK] * len(self.params))
        hashes = [struct.unpack("<Q", hashlib.blake2b(g.encode(), digest_size=8).digest())[0] for g in grams]
        return tuple(min((a * h + b) % _MASK for h in hashes) for a, b in self.params)

    def band_keys(self, signature: tuple[int, ...]) -> list[tuple[int, tuple[int, ...]]]:
        return [(i, signature[i * self.rows : (i + 1) * self.rows]) for i in range(self.bands)]


class NearDuplicateIndex:
    """Texts added so far; `find` returns one whose word-shingle Jaccard is >= the threshold."""

    def __init__(self, threshold: float = NEAR_DUPLICATE_JACCARD, hasher: MinHasher | None = None) -> None:
        self.threshold = threshold
        self.hasher = hasher or MinHasher()
        self._buckets: dict[tuple[int, tuple[int, ...]], list[int]] = defaultdict(list)
        self._grams: list[set[str]] = []

    def find(self, text: str) -> int | None:
        grams = shingles(text)
        candidates = {i for key in self.hasher.band_keys(self.hasher.signature(grams))
                      for i in self._buckets.get(key, [])}
        return next((i for i in sorted(candidates) if jaccard(grams, self._grams[i]) >= self.threshold), None)

    def add(self, text: str) -> int:
        grams = shingles(text)
        index = len(self._grams)
        self._grams.append(grams)
        for key in self.hasher.band_keys(self.hasher.signature(grams)):
            self._buckets[key].append(index)
        return index


@dataclass
class Curated:
    """What curation kept, and how many rows it dropped for each reason."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    dropped: Counter[str] = field(default_factory=Counter)


def deduplicate(rows: Iterable[dict[str, Any]], held_out: Mapping[str, Sequence[str]],
                threshold: float = NEAR_DUPLICATE_JACCARD) -> Curated:
    """Drop exact and near duplicates, and rows that overlap any held-out text.

    `held_out` maps a reason (e.g. "test_overlap") to texts that no training row may resemble.
    """
    result = Curated()
    guards = {}
    for guard, texts in held_out.items():
        index = NearDuplicateIndex(threshold)
        for text in texts:
            index.add(text)
        guards[guard] = ({normalize(t) for t in texts}, index)
    seen_exact: set[str] = set()
    kept_index = NearDuplicateIndex(threshold)
    for row in rows:
        key = normalize(row["input"])
        reason = next((r for r, (exact, near) in guards.items()
                       if key in exact or near.find(row["input"]) is not None), None)
        if reason is None and key in seen_exact:
            reason = "duplicate"
        elif reason is None and kept_index.find(row["input"]) is not None:
            reason = "near_duplicate"
        if reason:
            result.dropped[reason] += 1
            continue
        seen_exact.add(key)
        kept_index.add(row["input"])
        result.rows.append(row)
    return result


def balance(rows: list[dict[str, Any]], labels: Sequence[str], budget: int, seed: int = 0) -> Curated:
    """Keep at most `budget` rows, as even across labels as the data allows.

    Each label gets an equal share; what a small class cannot use is shared among the others.
    """
    by_label: dict[str, list[dict[str, Any]]] = {label: [] for label in labels}
    for row in rows:
        by_label.setdefault(row["output"], []).append(row)
    rng = random.Random(seed)
    for group in by_label.values():
        rng.shuffle(group)
    quota = _fair_quota({k: len(v) for k, v in by_label.items()}, budget)
    result = Curated()
    for label, group in by_label.items():
        result.rows += group[: quota[label]]
        if len(group) > quota[label]:
            result.dropped["class_balance"] += len(group) - quota[label]
    return result


def _fair_quota(sizes: dict[str, int], budget: int) -> dict[str, int]:
    quota = {k: 0 for k in sizes}
    left = min(budget, sum(sizes.values()))
    open_ = [k for k in sizes if sizes[k] > 0]
    while left > 0 and open_:
        share = max(1, left // len(open_))
        for k in list(open_):
            take = min(share, sizes[k] - quota[k], left)
            quota[k] += take
            left -= take
            if quota[k] >= sizes[k]:
                open_.remove(k)
            if left == 0:
                break
    return quota


def split(rows: list[dict[str, Any]], validation_fraction: float = 0.1, seed: int = 0,
          key: str = "output") -> list[dict[str, Any]]:
    """Mark each row `train` or `validation`, stratified by `key`, every group keeping >= 1 train row."""
    rng = random.Random(seed)
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[str(row.get(key))].append(row)
    out = []
    for group in groups.values():
        rng.shuffle(group)
        n_val = int(round(len(group) * validation_fraction)) if len(group) > 1 else 0
        n_val = min(n_val, len(group) - 1)
        out += [{**row, "split": "validation" if i < n_val else "train"} for i, row in enumerate(group)]
    rng.shuffle(out)
    return out


def distrust(row: Mapping[str, Any], min_agreement: float, intent_check: bool, intent_confidence: float) -> str | None:
    """Why a labelled row is not trusted, or None: its self-consistency votes disagree
    (`low_agreement`), or its label contradicts the label its input was written for while the
    teacher is unsure of it (`intent_mismatch`)."""
    agreement = row.get("agreement")
    if agreement is not None and agreement < min_agreement:
        return "low_agreement"
    intended, output = row.get("intended_label"), row.get("output")
    if intent_check and intended and output != intended:
        confidence = (row.get("label_probs") or {}).get(output, 1.0)
        if confidence < intent_confidence:
            return "intent_mismatch"
    return None


def label_shares(rows: Iterable[Mapping[str, Any]], labels: Sequence[str], budget: int) -> dict[str, float]:
    """Each label's rows as a share of an even split of `budget` (1.0: its full share)."""
    counts = Counter(row["output"] for row in rows)
    fair = budget / len(labels) if labels else 0
    return {label: round(counts[label] / fair, 4) if fair else 0.0 for label in labels}


def short_labels(rows: Iterable[Mapping[str, Any]], labels: Sequence[str], budget: int) -> dict[str, int]:
    """The labels holding fewer rows than an even split of `budget`, with how many they lack."""
    counts = Counter(row["output"] for row in rows)
    fair = budget // len(labels) if labels else 0
    return {label: fair - counts[label] for label in labels if counts[label] < fair}


#: A label's yield (kept rows per generated input) assumed when it has none yet, and its floor:
#: a label the teacher rarely confirms gets more calls, up to MAX_CALLS_FACTOR times its first round.
DEFAULT_YIELD, MIN_YIELD = 0.5, 0.2
MAX_CALLS_FACTOR = 2


def top_up_calls(lacking: int, label_yield: float | None, first_round_calls: int, per_call: int = 5) -> int:
    """Generation calls for a label lacking `lacking` rows, given how many of its inputs survived so far."""
    rate = max(MIN_YIELD, label_yield if label_yield is not None else DEFAULT_YIELD)
    return max(1, min(MAX_CALLS_FACTOR * max(1, first_round_calls), math.ceil(lacking / rate / per_call)))


#: The `source` (and `bucket`) of a row made from one of the person's imported real inputs.
IMPORTED = "imported"


def imported_rows(inputs: Sequence[str]) -> tuple[list[dict[str, Any]], int]:
    """The person's real inputs as rows for the label stage, tagged `source: imported` (written
    for no label and no kind), and how many were left out as repeats of an earlier one (the
    same normalised text: labelling it twice would only cost the teacher)."""
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for text in inputs:
        key = normalize(text)
        if key in seen:
            continue
        seen.add(key)
        rows.append({"input": text, "bucket": IMPORTED, "source": IMPORTED, "intended_label": None, "kind": None})
    return rows, len(inputs) - len(rows)


def drop_inputs_in_test_set(rows: Iterable[dict[str, Any]], test_inputs: Iterable[str],
                            dropped: Counter[str]) -> list[dict[str, Any]]:
    """`rows` without the imported ones equal (normalised) to a test row, each counted in
    `dropped` as `input_in_test_set`: a test row is never trained on."""
    tests = {normalize(text) for text in test_inputs}
    kept = []
    for row in rows:
        if row.get("source") == IMPORTED and normalize(row["input"]) in tests:
            dropped["input_in_test_set"] += 1
        else:
            kept.append(row)
    return kept


def imported_apart(rows: Iterable[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """`rows` as (the generated ones, the imported ones marked for the train split). Imported rows
    are kept whole, on top of the budget that balancing fills with generated ones, and are trained
    on, never validated on: they are the real inputs the student will see."""
    made, real = [], []
    for row in rows:
        if row.get("source") == IMPORTED:
            real.append({**row, "split": "train"})
        else:
            made.append(row)
    return made, real


#: Imported inputs a generation prompt shows at most, and how much of each.
GUIDE_POOL, GUIDE_CHARS = 200, 400


def guide_inputs(inputs: Sequence[str], test_inputs: Iterable[str], seed: int = 0,
                 threshold: float = NEAR_DUPLICATE_JACCARD) -> list[str]:
    """The imported inputs generation may show the teacher as examples of real inputs: in an
    order shuffled by `seed`, each once, none equal or close to a test row (no test text ever
    reaches a generation prompt), at most GUIDE_POOL of them, each cut to GUIDE_CHARS."""
    tests = list(test_inputs)
    exact = {normalize(text) for text in tests}
    near = NearDuplicateIndex(threshold)
    for text in tests:
        near.add(text)
    order = list(range(len(inputs)))
    random.Random(seed).shuffle(order)
    pool: list[str] = []
    seen: set[str] = set()
    for index in order:
        text = inputs[index].strip()
        key = normalize(text)
        if not key or key in seen or key in exact or near.find(text) is not None:
            continue
        seen.add(key)
        pool.append(text if len(text) <= GUIDE_CHARS else text[:GUIDE_CHARS].rstrip() + "…")
        if len(pool) >= GUIDE_POOL:
            break
    return pool
