"""Train-stage throughput vs plain TRL `SFTTrainer`, same model and data, in one run.

Both fine-tune the bundled SmolLM2-135M student on the same real SST-2 sentences (labels as
the teacher would give them, soft labels leaning to the true label) for the same steps:
  1. plain: `SFTTrainer` with TRL's defaults and the same learning rate, batch size, epochs
     and max length (no checkpoints);
  2. stage: `train_student`, what the train stage runs: the soft-label KL term, length-grouped
     batches, no activation checkpointing for small students, and its checkpoints.
Prints trained (non-padding) tokens/s of each and their ratio (target >= 1.0).

    python bench/train_throughput.py [--rows 96] [--epochs 1]
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workers.training.data import sft_example  # noqa: E402
from workers.training.run import train_student  # noqa: E402
from workers.training.student import load_student  # noqa: E402

STUDENT = "smollm2-135m-instruct"
SST2 = Path(__file__).resolve().parents[2] / "shared" / "data" / "sst2"
LABELS = ["negative", "positive"]


def sst2_rows(n: int) -> list[dict]:
    """The first `n` SST-2 training sentences as data set rows."""
    path = next(p for p in sorted(SST2.rglob("*")) if p.suffix in (".tsv", ".csv") and "train" in p.name)
    with path.open(encoding="utf-8") as f:
        reader = csv.DictReader(f, delimiter="\t" if path.suffix == ".tsv" else ",")
        rows = []
        for record in reader:
            text = record.get("sentence") or record["text"]
            label = LABELS[int(record["label"])]
            rows.append({"input": text.strip(), "output": label, "split": "train",
                         "label_probs": {label: 0.85, LABELS[1 - LABELS.index(label)]: 0.15}})
            if len(rows) == n:
                return rows
    return rows


def plain_sft(rows: list[dict], epochs: float, out: Path) -> tuple[float, int]:
    """Seconds and trained tokens of a plain SFTTrainer run."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    loaded = load_student(STUDENT, for_training=True)
    model, tokenizer = loaded.model, loaded.tokenizer
    config = SFTConfig(output_dir=str(out), num_train_epochs=epochs, learning_rate=5e-5,
                       per_device_train_batch_size=8, max_length=256, logging_steps=1, save_strategy="no",
                       report_to=[], disable_tqdm=True, use_cpu=True, seed=0)
    trainer = SFTTrainer(model=model, args=config, processing_class=tokenizer,
                         train_dataset=Dataset.from_list([sft_example(r) for r in rows]))
    result = trainer.train()
    return result.metrics["train_runtime"], int(trainer._total_train_tokens)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=96)
    parser.add_argument("--epochs", type=float, default=1.0)
    args = parser.parse_args()
    rows = sst2_rows(args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        plain_s, plain_tokens = plain_sft(rows, args.epochs, Path(tmp) / "plain")
        start = time.perf_counter()
        result = train_student(student=STUDENT, rows=rows, labels=LABELS, options={"epochs": args.epochs},
                               checkpoints=Path(tmp) / "ck", out=Path(tmp) / "out")
        stage_wall = time.perf_counter() - start
    stage_s, stage_tokens = result.metrics["train_runtime_s"], result.metrics["tokens"]
    plain_rate, stage_rate = plain_tokens / plain_s, stage_tokens / stage_s
    print(f"rows {len(rows)}, epochs {args.epochs}, steps {result.metrics['steps']}, "
          f"soft labels {result.metrics['soft_labels']}")
    print(f"plain SFTTrainer : {plain_tokens} tokens in {plain_s:.1f} s = {plain_rate:.1f} tokens/s")
    print(f"train stage      : {stage_tokens} tokens in {stage_s:.1f} s = {stage_rate:.1f} tokens/s "
          f"({stage_wall:.1f} s including loading and saving; checkpoints at most every TRAIN_CHECKPOINT_SECONDS)")
    print(f"ratio stage/plain: {stage_rate / plain_rate:.2f} (target >= 1.0)")


if __name__ == "__main__":
    main()
