"""The real held-out data sets `bench/quality.py` scores whole jobs on, one job body per set.

Every builder is a pure function of the files in ../shared/data (`VIBETUNE_SHARED_DATA`), `n` and
`seed`: it samples `n` test rows of a test (or dev) split with `random.Random(seed)` (a training
split is read only for the optional seed examples and real inputs, `examples` and `real_inputs`),
and returns a `QualitySet` whose `body` is a ready `POST /api/jobs` body (a one-line task,
`task_type`, the `labels` / `fields` / `tools`, and the rows as `test_set`) without
`num_examples` (the benchmark adds it). `meta` holds per test row what the body cannot
carry (where the row came from, PubMedQA's long answer, BFCL's acceptable values).

| set | task type | rows come from | default n |
| --- | --- | --- | ---: |
| sst2, banking77, tweeteval | classification | the test splits, balanced over the labels | 60 |
| restaurant8k_extraction | extraction | restaurant8k test.json | 60 |
| wnut17_extraction | extraction | wnut17 emerging.test.annotated | 60 |
| pubmedqa | qa | PQA-L, the 500 official test ids only | 60 |
| restaurant8k_booking | tool_calling | restaurant8k test.json | 60 |
| bfcl_simple_python | tool_calling | BFCL v4 simple_python (an evaluation-only set) | 20 |

Choices (each also in the set's `notes`):

* restaurant8k: rows whose `context.requestedSlots` is set are left out: they are answers to a
  question the assistant asked ("13" after "for how many people?"), ambiguous without that turn.
  Identical utterances are kept once; an utterance labelled two different ways is left out. The
  sample keeps the data's mix (about half the rows name no slot at all).
* restaurant8k_booking: no argument of `book_table` is required. Of the labelled utterances, only
  about 3% give party size, date and time together (most give one or two slots, the rest come in
  later turns), so "required: people, date, time" would make almost every real row a no-call. The
  rule: an utterance with at least one labelled slot expects a call with exactly its labelled
  slots as arguments; one with none expects no call ("").
* wnut17: the input is the sentence's tokens joined by single spaces (as the data has them, HTML
  escapes included), and each entity the B-/I- tokens joined the same way.
* pubmedqa: the expected output is the final decision word (yes / no / maybe), so the QA exact
  match is meaningful; the long answer (the abstract's conclusion, which also holds the answer) is
  kept in `meta` for reference only.
* bfcl_simple_python: see `bench/quality_bfcl.py`.
"""

from __future__ import annotations

import csv
import json
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from quality_bfcl import bfcl_simple_python
from quality_set import DATA, QualitySet, sample

from app.answer_shapes import MAX_TOOLS, call_text
from workers.prompts import open_book_input

# ------------------------------------------------------------------------------ classification


def _balanced(rows: list[dict[str, str]], labels: list[str], n: int, seed: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    per_label = {label: [r for r in rows if r["output"] == label] for label in labels}
    for group in per_label.values():
        rng.shuffle(group)
    longest = max(len(g) for g in per_label.values())
    return [group[i] for i in range(longest) for group in per_label.values() if i < len(group)][:n]


def _classification(name: str, task: str, labels: list[str], rows: list[dict[str, str]], n: int, seed: int,
                    source: str) -> QualitySet:
    test_set = _balanced(rows, labels, n, seed)
    return QualitySet(name, {"task": task, "labels": labels, "test_set": test_set},
                      [{} for _ in test_set], source, "balanced over the labels")


def sst2(n: int = 60, seed: int = 0, data: Path = DATA) -> QualitySet:
    labels = ["negative", "positive"]
    with (data / "sst2" / "test_labeled.tsv").open(encoding="utf-8", newline="") as f:
        rows = [{"input": r["sentence"].strip(), "output": labels[int(r["label"])]}
                for r in csv.DictReader(f, delimiter="\t")]
    return _classification("sst2", "Decide whether a movie review sentence is positive or negative", labels, rows,
                           n, seed, "sst2/test_labeled.tsv")


def banking77(n: int = 60, seed: int = 0, data: Path = DATA, keep: int = 6) -> QualitySet:
    """banking77 cut to its first `keep` intents (test rows of those only)."""
    labels = json.loads((data / "banking77" / "categories.json").read_text())[:keep]
    with (data / "banking77" / "test.csv").open(encoding="utf-8", newline="") as f:
        rows = [{"input": r["text"], "output": r["category"]} for r in csv.DictReader(f) if r["category"] in labels]
    return _classification("banking77", "Sort online banking customer messages by what the customer needs help with",
                           labels, rows, n, seed, f"banking77/test.csv, first {keep} intents")


def tweeteval(n: int = 60, seed: int = 0, data: Path = DATA) -> QualitySet:
    labels = ["negative", "neutral", "positive"]
    folder = data / "tweeteval_sentiment"
    texts = (folder / "test_text.txt").read_text(encoding="utf-8").splitlines()
    golds = (folder / "test_labels.txt").read_text(encoding="utf-8").split()
    rows = [{"input": t.strip(), "output": labels[int(g)]} for t, g in zip(texts, golds, strict=True)]
    return _classification("tweeteval", "Classify the sentiment of a tweet as negative, neutral or positive", labels,
                           rows, n, seed, "tweeteval_sentiment/test_text.txt + test_labels.txt")


def sms_spam(n: int = 60, seed: int = 0, data: Path = DATA) -> QualitySet:
    """SMS Spam Collection: one file with no split; the job never trains on any of it (the teacher
    writes the training data), so its rows are test rows."""
    labels = ["spam", "ham"]
    with (data / "sms_spam" / "SMSSpamCollection.tsv").open(encoding="utf-8", newline="") as f:
        rows = [{"input": text.strip(), "output": label}
                for label, text in (line.rstrip("\n").split("\t", 1) for line in f if "\t" in line)
                if label in labels and text.strip()]
    return _classification("sms_spam", "Decide whether an SMS text message is spam (unsolicited advertising, prize "
                           "or scam messages) or ham (a normal personal message)", labels, rows, n, seed,
                           "sms_spam/SMSSpamCollection.tsv")


# ------------------------------------------------------------------------------ restaurant8k

RESTAURANT_SLOTS: dict[str, str] = {
    "people": "how many people the booking is for, as the customer wrote it (e.g. '4', 'six of us')",
    "date": "the day of the booking, as written (e.g. 'tomorrow', 'the 21st of July')",
    "time": "the time of the booking, as written (e.g. '7:30', 'noon')",
    "first_name": "the first name the booking is under",
    "last_name": "the last name the booking is under",
}
RESTAURANT_FILE = "restaurant8k/test.json"
RESTAURANT_TRAIN_FILE = "restaurant8k/train_0.json"


def restaurant8k_utterances(data: Path = DATA, file: str = RESTAURANT_FILE) -> list[dict[str, Any]]:
    """The usable utterances of a restaurant8k file (the test split unless told): `{index, text,
    slots}` (slot -> span text), in file order; rows answering a requested slot left out,
    duplicates kept once, conflicts dropped."""
    records = json.loads((data / file).read_text(encoding="utf-8"))
    by_text: dict[str, list[dict[str, Any]]] = {}
    for index, record in enumerate(records):
        if (record.get("context") or {}).get("requestedSlots"):
            continue
        text = record["userInput"]["text"]
        slots: dict[str, str] = {}
        for label in record.get("labels", []):
            span = label["valueSpan"]
            slots[label["slot"]] = text[span.get("startIndex", 0):span["endIndex"]].strip()
        if not text.strip() or any(not v for v in slots.values()):
            continue
        by_text.setdefault(text.strip(), []).append({"index": index, "text": text.strip(), "slots": slots})
    return [group[0] for group in by_text.values() if all(g["slots"] == group[0]["slots"] for g in group)]


_RESTAURANT_NOTES = ("test.json only; rows answering a requested slot (context.requestedSlots) left out as "
                     "ambiguous without the assistant's question; duplicate utterances once, conflicting ones "
                     "dropped; values are the labelled span text; natural mix of rows with and without slots")


def restaurant8k_real_inputs(count: int, seed: int, data: Path = DATA) -> list[str]:
    """`count` utterances of restaurant8k's *train* split, text only (their labels are never read):
    what a person would import as unlabeled production messages (`inputs`). The test rows come from
    another file, and the service drops any imported input equal to one (`input_in_test_set`)."""
    if count <= 0:
        return []
    return [u["text"] for u in sample(restaurant8k_utterances(data, RESTAURANT_TRAIN_FILE), count, seed)]


def _with_real_inputs(qs: QualitySet, real_inputs: int, seed: int, data: Path) -> QualitySet:
    if real_inputs:
        qs.body["inputs"] = restaurant8k_real_inputs(real_inputs, seed, data)
        qs.notes += (f"; {real_inputs} unlabeled utterances of {RESTAURANT_TRAIN_FILE} imported as real inputs "
                     "(the teacher labels them; their labels are never read)")
    return qs


def _with_examples(qs: QualitySet, examples: list[dict[str, str]], source: str) -> QualitySet:
    if examples:
        qs.body["examples"] = examples
        qs.notes += (f"; {len(examples)} labelled rows of {source} given as the person's seed examples (never a "
                     "test row)")
    return qs


def restaurant8k_seed_examples(count: int, seed: int, data: Path = DATA, with_slots: bool | None = None
                               ) -> list[dict[str, Any]]:
    """`count` labelled utterances of restaurant8k's *train* split as `{input, slots}`: what a person
    would write as seed examples (only those with a labelled slot, or only those without, when
    `with_slots` says)."""
    if count <= 0:
        return []
    pool = [u for u in restaurant8k_utterances(data, RESTAURANT_TRAIN_FILE)
            if with_slots is None or bool(u["slots"]) == with_slots]
    return [{"input": u["text"], "slots": u["slots"]} for u in sample(pool, count, seed)]


#: The reply the benchmark's "person" writes for a seed message that gives no booking detail (the
#: data set has no replies; only the absence of a call is scored).
BOOKING_REPLY = "Happy to help. For a booking, tell me the day, the time and how many people."


def restaurant8k_extraction(n: int = 60, seed: int = 0, data: Path = DATA, real_inputs: int = 0,
                            examples: int = 0) -> QualitySet:
    chosen = sample(restaurant8k_utterances(data), n, seed)
    fields = [{"name": name, "description": description, "type": "string", "span": True}
              for name, description in RESTAURANT_SLOTS.items()]
    test_set = [{"input": u["text"],
                 "output": json.dumps({name: u["slots"].get(name) for name in RESTAURANT_SLOTS}, ensure_ascii=False)}
                for u in chosen]
    body = {"task": "Extract the restaurant booking details a customer's message gives: number of people, date, "
                    "time, first name and last name, copied as written",
            "task_type": "extraction", "fields": fields, "test_set": test_set}
    meta = [{"source": RESTAURANT_FILE, "index": u["index"]} for u in chosen]
    seeds = [{"input": u["input"], "output": json.dumps({name: u["slots"].get(name) for name in RESTAURANT_SLOTS},
                                                        ensure_ascii=False)}
             for u in restaurant8k_seed_examples(examples, seed, data)]
    qs = QualitySet("restaurant8k_extraction", body, meta, RESTAURANT_FILE, _RESTAURANT_NOTES)
    return _with_examples(_with_real_inputs(qs, real_inputs, seed, data), seeds, RESTAURANT_TRAIN_FILE)


BOOK_TABLE_TOOL: dict[str, Any] = {"type": "function", "function": {
    "name": "book_table",
    "description": "Book a restaurant table with the details the customer has given so far.",
    "parameters": {"type": "object",
                   "properties": {name: {"type": "string", "description": description}
                                  for name, description in RESTAURANT_SLOTS.items()},
                   "additionalProperties": False},
}}


def restaurant8k_booking(n: int = 60, seed: int = 0, data: Path = DATA, real_inputs: int = 0,
                         examples: int = 0) -> QualitySet:
    chosen = sample(restaurant8k_utterances(data), n, seed)
    test_set = [{"input": u["text"],
                 "output": call_text({"name": "book_table", "arguments": u["slots"]}) if u["slots"] else ""}
                for u in chosen]
    body = {"task": "Handle restaurant booking messages: call book_table with exactly the booking details the "
                    "message gives (party size, date, time, first and last name, as written); when it gives none "
                    "of them, reply without calling",
            "task_type": "tool_calling", "tools": [BOOK_TABLE_TOOL], "test_set": test_set}
    meta = [{"source": RESTAURANT_FILE, "index": u["index"]} for u in chosen]
    notes = (_RESTAURANT_NOTES + "; no argument is required (about 3% of labelled utterances give people, date "
             "and time together); a row with >= 1 labelled slot expects book_table with exactly those slots, a row "
             "with none expects no call")
    # Half the seeds are calls, half messages that need none, answered with the person's reply: with
    # calls alone the teacher, shown only calls, called for 10 of 14 test messages that need none.
    calls = restaurant8k_seed_examples(examples - examples // 2, seed, data, with_slots=True)
    replies = restaurant8k_seed_examples(examples // 2, seed, data, with_slots=False)
    seeds = [{"input": u["input"], "output": call_text({"name": "book_table", "arguments": u["slots"]})}
             for u in calls] + [{"input": u["input"], "output": BOOKING_REPLY} for u in replies]
    qs = QualitySet("restaurant8k_booking", body, meta, RESTAURANT_FILE, notes)
    return _with_examples(_with_real_inputs(qs, real_inputs, seed, data), seeds, RESTAURANT_TRAIN_FILE)


# ------------------------------------------------------------------------------ wnut17

WNUT_TYPES: dict[str, tuple[str, str]] = {
    # field name: (BIO tag type, description)
    "person": ("person", "names of people (also usernames and characters)"),
    "location": ("location", "names of places: countries, cities, streets, buildings, landmarks"),
    "corporation": ("corporation", "names of companies and other corporations"),
    "product": ("product", "names of products and services: devices, software, brands of goods"),
    "creative_work": ("creative-work", "titles of creative works: songs, films, books, shows, games"),
    "group": ("group", "names of groups: bands, sports teams, organisations that are not companies"),
}
WNUT_FILE = "wnut17/emerging.test.annotated"
WNUT_TRAIN_FILE = "wnut17/wnut17train.conll"


def wnut17_sentences(data: Path = DATA, file: str = WNUT_FILE) -> list[dict[str, Any]]:
    """The gold sentences of a WNUT-17 file (the test split unless told): `{index, text,
    entities}` (field -> entity strings)."""
    by_tag = {tag: name for name, (tag, _) in WNUT_TYPES.items()}
    sentences: list[dict[str, Any]] = []
    tokens: list[tuple[str, str]] = []
    lines = (data / file).read_text(encoding="utf-8").splitlines()
    for line in [*lines, ""]:
        if line.strip():
            token, tag = line.split("\t")[:2]
            tokens.append((token, tag.strip()))
            continue
        if not tokens:
            continue
        entities: dict[str, list[str]] = {}
        current: tuple[str, list[str]] | None = None
        for token, tag in [*tokens, ("", "O")]:
            kind = by_tag.get(tag[2:]) if tag[:2] in ("B-", "I-") else None
            if current and (tag.startswith("B-") or kind != current[0]):
                entities.setdefault(current[0], []).append(" ".join(current[1]))
                current = None
            if kind is not None:
                if current is None:
                    current = (kind, [])
                current[1].append(token)
        deduped = {k: list(dict.fromkeys(v)) for k, v in entities.items()}
        sentences.append({"index": len(sentences), "text": " ".join(t for t, _ in tokens), "entities": deduped})
        tokens = []
    return sentences


def wnut17_extraction(n: int = 60, seed: int = 0, data: Path = DATA, examples: int = 0) -> QualitySet:
    sentences = wnut17_sentences(data)
    counts = Counter(s["text"] for s in sentences)
    chosen = sample([s for s in sentences if counts[s["text"]] == 1], n, seed)
    fields = [{"name": name, "description": description, "type": "list", "span": True}
              for name, (_, description) in WNUT_TYPES.items()]
    test_set = [{"input": s["text"],
                 "output": json.dumps({name: s["entities"].get(name) for name in WNUT_TYPES}, ensure_ascii=False)}
                for s in chosen]
    body = {"task": "Find the named entities in a social media post: people, locations, corporations, products, "
                    "creative works and groups",
            "task_type": "extraction", "fields": fields, "test_set": test_set}
    meta = [{"source": WNUT_FILE, "sentence": s["index"]} for s in chosen]
    notes = ("gold test split; input = tokens joined by spaces (HTML escapes as in the data); each field a list of "
             "entity strings (B-/I- tokens joined by spaces), null when none; sentences that occur twice left out")
    # Seeds name at least one entity each: what a person shows is what to find.
    pool = [t for t in wnut17_sentences(data, WNUT_TRAIN_FILE) if t["entities"]] if examples > 0 else []
    seeds = [{"input": t["text"], "output": json.dumps({name: t["entities"].get(name) for name in WNUT_TYPES},
                                                       ensure_ascii=False)}
             for t in (sample(pool, examples, seed) if pool else [])]
    return _with_examples(QualitySet("wnut17_extraction", body, meta, WNUT_FILE, notes), seeds, WNUT_TRAIN_FILE)


# ------------------------------------------------------------------------------ pubmedqa

PUBMEDQA_FILES = ("pubmedqa/ori_pqal.json", "pubmedqa/test_ground_truth.json")


def pubmedqa_test_ids(data: Path = DATA) -> dict[str, str]:
    """The 500 official PQA-L test ids with their decision."""
    ids: dict[str, str] = json.loads((data / PUBMEDQA_FILES[1]).read_text(encoding="utf-8"))
    return ids


def pubmedqa(n: int = 60, seed: int = 0, data: Path = DATA) -> QualitySet:
    items = json.loads((data / PUBMEDQA_FILES[0]).read_text(encoding="utf-8"))
    test_ids = pubmedqa_test_ids(data)
    chosen = sample(sorted(test_ids), n, seed)
    test_set, meta = [], []
    for pmid in chosen:
        item = items[pmid]
        decision = item["final_decision"]
        if decision != test_ids[pmid]:
            raise ValueError(f"pubmedqa {pmid}: final_decision {decision!r} differs from the test ground truth")
        context = " ".join(part.strip() for part in item["CONTEXTS"])
        test_set.append({"input": open_book_input(context, item["QUESTION"]), "output": decision})
        meta.append({"source": PUBMEDQA_FILES[0], "pmid": pmid, "long_answer": item["LONG_ANSWER"]})
    body = {"task": "Answer a research question from the biomedical abstract given with it, in one word: yes, no "
                    "or maybe",
            "task_type": "qa", "qa_mode": "open_book", "test_set": test_set}
    notes = ("only the 500 official test ids (test_ground_truth.json), never the train/dev pool; expected output = "
             "final_decision (yes/no/maybe) so exact match is meaningful; LONG_ANSWER kept in meta; open book: the "
             "input is the abstract, a blank line and 'Question: ...', the service's open-book form")
    return QualitySet("pubmedqa", body, meta, " + ".join(PUBMEDQA_FILES), notes)


# ------------------------------------------------------------------------------ registry

#: Set name -> builder(n, seed, data) (banking77 and bfcl_simple_python take a keyword more).
SETS: dict[str, Callable[..., QualitySet]] = {
    "sst2": sst2,
    "banking77": banking77,
    "tweeteval": tweeteval,
    "sms_spam": sms_spam,
    "restaurant8k_extraction": restaurant8k_extraction,
    "wnut17_extraction": wnut17_extraction,
    "pubmedqa": pubmedqa,
    "restaurant8k_booking": restaurant8k_booking,
    "bfcl_simple_python": bfcl_simple_python,
}
DEFAULT_N = {"bfcl_simple_python": MAX_TOOLS}


def build(name: str, n: int | None = None, seed: int = 0, data: Path = DATA, **options: Any) -> QualitySet:
    """The set `name` with `n` test rows (its default when None)."""
    if name not in SETS:
        raise KeyError(f"unknown set {name!r}; one of {', '.join(SETS)}")
    return SETS[name](n=n or DEFAULT_N.get(name, 60), seed=seed, data=data, **options)


def summary(qs: QualitySet) -> dict[str, Any]:
    """What a set's body holds, for `--dry-run`: sizes and the mix of expected outputs."""
    rows = qs.rows
    body = qs.body
    out: dict[str, Any] = {"set": qs.name, "task_type": qs.task_type, "task": body["task"], "n": len(rows),
                           "source": qs.source, "notes": qs.notes,
                           "mean_input_chars": round(sum(len(r["input"]) for r in rows) / len(rows)) if rows else 0,
                           "body_bytes": len(json.dumps(body, ensure_ascii=False).encode())}
    if body.get("labels"):
        out["labels"] = body["labels"]
        out["outputs"] = dict(Counter(r["output"] for r in rows))
    if body.get("fields"):
        out["fields"] = [f["name"] for f in body["fields"]]
        filled: Counter[str] = Counter()
        for r in rows:
            filled.update(k for k, v in json.loads(r["output"]).items() if v is not None)
        out["rows_with_field"] = dict(filled)
        out["rows_all_null"] = sum(all(v is None for v in json.loads(r["output"]).values()) for r in rows)
    if body.get("tools"):
        out["tools"] = [t["function"]["name"] for t in body["tools"]]
        out["rows_expecting_a_call"] = sum(bool(r["output"]) for r in rows)
        out["rows_expecting_no_call"] = sum(not r["output"] for r in rows)
    if qs.task_type == "qa":
        out["outputs"] = dict(Counter(r["output"] for r in rows))
    return out
