"""refine: the error-driven round (`training.rounds: 2`), between train and evaluate.

The first round's model answers the data set's validation rows under the scoring rule. For each
row it got wrong, the teacher writes new inputs like it (`generation.generate_like`) and labels
them as the label stage does (votes, rationales). The new rows that pass the curation rules
(`row_checks`) and copy nothing in the data set or the test set are kept. Training then goes on
from the first model, on the new rows and as many old train rows drawn at random, so it does not
forget what it got right. Its folder replaces the first model's. With no misses, or no new row
kept, the first model stands.

Nothing is done twice: the teacher's answers are kept as they arrive (`answer_each`), the run
resumes from its checkpoints, and the second model's folder holds `refine.json` (this stage's
metrics), so a stage run again after the folder was replaced returns those metrics.
"""

from __future__ import annotations

import json
import math
import random
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from app.artifacts import (
    ADAPTER_FOLDER,
    DATASET_ARTIFACT,
    MODEL_FOLDER,
    REFINE_ROWS_ARTIFACT,
    delete_folder,
    folder_path,
    save_folder,
)
from app.dataset_edits import live_rows
from app.db import session_scope
from app.specs import Row, TaskSpec, TaskType, votes_for
from workers import curation
from workers.generation import PER_CALL, generate_like
from workers.labelling import answer_and_judge, answer_by_vote, with_rationale
from workers.row_checks import dataset_row, trusted_rows
from workers.scoring import rows_correct
from workers.stages.base import StageContext, StageError
from workers.stages.checkpointing import checkpointed, drop_checkpoints
from workers.stages.common import answer_each, answer_key, read_jsonl, write_jsonl
from workers.teacher import Teacher

#: New rows asked for, as a share of the first round's train rows.
NEW_ROWS_SHARE = 0.5
#: The record of a finished round, inside the second model's folder.
RECORD = "refine.json"


class RefineStage:
    name = "refine"
    queue = "gpu"

    def run(self, ctx: StageContext) -> dict[str, Any]:
        started = time.monotonic()
        first = folder_path(ctx.storage, ctx.job_id, MODEL_FOLDER)
        if not (first / "config.json").is_file():
            raise StageError("missing_model", "the first round's model is missing; run the train stage again")
        if (first / RECORD).is_file():
            return {**json.loads((first / RECORD).read_text()), "restored": True}
        spec = ctx.task_spec()
        dataset = live_rows(read_jsonl(ctx, DATASET_ARTIFACT))
        validation = [Row(input=r["input"], output=r["output"]) for r in dataset if r.get("split") == "validation"]
        train_rows = [r for r in dataset if r.get("split", "train") == "train"]
        if not validation:
            return {"validation_rows": 0, "misses": 0, "new_rows": 0,
                    "note": "no validation rows to find the first model's mistakes on: it stands"}
        misses, accuracy = self._misses(ctx, str(first), spec, validation)
        metrics: dict[str, Any] = {"validation_rows": len(validation), "misses": len(misses),
                                   "first_round_validation_accuracy": accuracy}
        if not misses:
            return {**metrics, "new_rows": 0, "note": "the first model got every validation row right: it stands"}
        new, found = self._new_rows(ctx, spec, misses, len(train_rows), dataset)
        metrics.update(found)
        if not new:
            return {**metrics, "note": "no new row passed the checks: the first model stands"}
        write_jsonl(ctx, REFINE_ROWS_ARTIFACT, new)
        replay = random.Random(ctx.spec.seed).sample(train_rows, min(len(new), len(train_rows)))
        metrics["replayed_rows"] = len(replay)
        return self._train(ctx, str(first), spec, new + replay, metrics, started)

    @staticmethod
    def _misses(ctx: StageContext, model: str, spec: TaskSpec, rows: list[Row]) -> tuple[list[Row], float]:
        """The validation rows the first model gets wrong under the scoring rule, and its accuracy on them."""
        from workers.training.predict import answerer
        from workers.training.student import load_student

        answer = answerer(load_student(model), spec, rows, lambda row: spec.student_messages(row.input, row.tools))
        answers: list[str | None] = []
        for done, row in enumerate(rows):
            ctx.check_canceled()
            answers.append(answer(row))
            ctx.progress(done + 1, len(rows))
        correct = rows_correct([row.output for row in rows], answers, spec.task_type, spec.label_names,
                               tools=spec.tools)
        misses = [row for row, right in zip(rows, correct, strict=True) if not right]
        return misses, round(1 - len(misses) / len(rows), 4)

    @staticmethod
    def _new_rows(ctx: StageContext, spec: TaskSpec, misses: Sequence[Row], train_rows: int,
                  dataset: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """The teacher's new rows like the misses, labelled, checked and deduplicated (as data set rows)."""
        calls = max(len(misses), math.ceil(train_rows * NEW_ROWS_SHARE / PER_CALL))
        asked = [misses[i % len(misses)] for i in range(calls)]
        written = answer_each(ctx, asked, [f"refine:write:{answer_key(i, row.input)}" for i, row in enumerate(asked)],
                              lambda teacher, row: generate_like(teacher, spec, row))
        classification = spec.task_type == TaskType.CLASSIFICATION
        rows = [{"input": text, "like": miss.input, "kind": None, "bucket": "refine",
                 "intended_label": miss.output if classification else None}
                for miss, result in zip(asked, written.results, strict=True)
                if not isinstance(result, BaseException) for text in result]
        votes = votes_for(ctx.spec.curation, spec.task_type)
        reasons = ctx.spec.curation.rationales
        judged = spec.task_type == TaskType.QA and spec.qa_mode == "open_book"

        async def label(teacher: Teacher, text: str) -> dict[str, Any]:
            result = await (answer_and_judge(teacher, spec, text, votes) if judged
                            else answer_by_vote(teacher, spec, text, votes))
            return await with_rationale(teacher, spec, text, result) if reasons else result

        texts = [row["input"] for row in rows]
        suffix = (f":votes={votes}" if votes > 1 else "") + (":rationale" if reasons else "")
        labelled = answer_each(ctx, texts, [f"refine:label:{answer_key(i, t)}{suffix}" for i, t in enumerate(texts)],
                               label, committee=votes > 1)
        answered = [{**row, **result} for row, result in zip(rows, labelled.results, strict=True)
                    if not isinstance(result, BaseException)]
        dropped: Counter[str] = Counter()
        dropped["malformed_answer"] = len(rows) - len(answered)
        trusted, _ = trusted_rows(answered, spec, ctx.spec.curation, dropped)
        held_out = {"test_overlap": [row.input for row in ctx.spec.test_set],
                    "data_overlap": [row["input"] for row in dataset]}
        kept = curation.deduplicate(trusted, held_out, curation.NEAR_DUPLICATE_JACCARD)
        dropped.update(kept.dropped)
        new = [{**dataset_row({**row, "split": "train"}, spec), "like": row["like"]} for row in kept.rows]
        usage = {k: written.usage.get(k, 0) + labelled.usage.get(k, 0) for k in {*written.usage, *labelled.usage}}
        return new, {"calls": calls, "written": len(rows), "new_rows": len(new),
                     "dropped": {k: v for k, v in dropped.items() if v}, "teacher_usage": usage,
                     "answers_restored": written.restored + labelled.restored}

    @staticmethod
    def _train(ctx: StageContext, first: str, spec: TaskSpec, rows: list[dict[str, Any]], metrics: dict[str, Any],
               started: float) -> dict[str, Any]:
        """Training continued from the first model on `rows`; its folder, holding the stage's
        metrics (returned), replaces the first one."""
        from workers.training.run import train_student

        checkpoints, out = ctx.work_dir / "checkpoints", ctx.work_dir / "out"
        with checkpointed(ctx, checkpoints) as job:
            result = train_student(student=first, rows=rows, labels=spec.label_names, options=ctx.spec.training,
                                   checkpoints=checkpoints, out=out, job=job, teacher=ctx.spec.teacher,
                                   task_spec=spec)
        # The train stage's keys, so the estimate reads this round's speed the same way.
        train = {key: result.metrics.get(key) for key in
                 ("examples", "repeated_for_balance", "rationale_examples", "steps", "train_loss", "resumed_from",
                  "train_runtime_s", "plan", "notes")}
        metrics = {**metrics, **train, "adapter_dropped": result.adapter_dir is not None,
                   "seconds": round(time.monotonic() - started, 1)}
        record = json.dumps(metrics)
        (result.model_dir / RECORD).write_text(record)
        with session_scope() as session:
            if result.adapter_dir is not None:
                # This round's adapter sits on the first model, not on the untuned student: only the
                # merged folder is right, so no adapter is offered.
                delete_folder(session, ctx.storage, ctx.job_id, ADAPTER_FOLDER)
            save_folder(session, ctx.storage, ctx.job_id, MODEL_FOLDER, result.model_dir)
        drop_checkpoints(ctx, checkpoints, out)
        return dict(json.loads(record))
