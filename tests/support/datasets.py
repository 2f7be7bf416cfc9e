"""Reading the real public data sets in ../shared/data for tests and benchmarks."""

from __future__ import annotations

import csv
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = Path(os.environ.get("VIBETUNE_SHARED_DATA", ROOT.parent / "shared" / "data"))


def sms_spam(per_class: int) -> list[dict[str, str]]:
    """The first `per_class` spam and ham messages of the SMS Spam Collection, interleaved."""
    rows: dict[str, list[dict[str, str]]] = {"spam": [], "ham": []}
    with (SHARED_DATA / "sms_spam" / "SMSSpamCollection.tsv").open(encoding="utf-8") as f:
        for label, text in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            if len(rows[label]) < per_class:
                rows[label].append({"input": text, "output": label})
    return [row for pair in zip(rows["spam"], rows["ham"], strict=False) for row in pair]
