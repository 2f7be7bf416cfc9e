"""What every benchmark set is made of: `QualitySet`, where the shared data lives, and the seeded
sample of its rows (`bench/quality_sets.py` builds the sets, `bench/quality_bfcl.py` BFCL's)."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DATA = Path(os.environ.get("VIBETUNE_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@dataclass
class QualitySet:
    """One benchmark set: the job body, per test row metadata (aligned with `body["test_set"]`),
    the files and split the rows came from, and the choices made building it."""

    name: str
    body: dict[str, Any]
    meta: list[dict[str, Any]] = field(default_factory=list)
    source: str = ""
    notes: str = ""

    @property
    def task_type(self) -> str:
        return str(self.body.get("task_type") or "classification")

    @property
    def rows(self) -> list[dict[str, str]]:
        return list(self.body["test_set"])


def sample(items: list[Any], n: int, seed: int) -> list[Any]:
    if n <= 0:
        raise ValueError("n must be positive")
    return random.Random(seed).sample(items, min(n, len(items)))
