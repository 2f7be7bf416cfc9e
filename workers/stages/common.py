"""Helpers shared by the teacher stages: the teacher client, answers kept as they arrive, JSON Lines
artifacts, async runs."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import shutil
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, TypeVar

from app.artifacts import DATASET_ARTIFACT, artifact_key, save_artifact
from app.config import get_settings
from app.dataset_edits import live_rows
from app.db import session_scope
from app.specs import Row
from workers.answer_progress import AnswerMeter
from workers.checkpoint_store import mirrors
from workers.stages.base import StageContext, StageError
from workers.teacher import Teacher, TeacherConfig, TeacherKind

T = TypeVar("T")
log = logging.getLogger(__name__)
#: The store folder of a job's partial answers, one file per stage (not an artifact: never listed).
PARTIALS = "partial"


def teacher_for(ctx: StageContext, kind: TeacherKind = "bulk") -> Teacher:
    """A teacher client for the job's chosen teacher model; `kind` sets its requests' priority
    (`interactive` for the short calls someone waits on)."""
    settings = get_settings()
    return Teacher(TeacherConfig(
        base_url=settings.teacher_url, model=ctx.spec.teacher, api_key=settings.teacher_api_key,
        concurrency=settings.teacher_concurrency, silence_timeout=settings.teacher_timeout,
        max_retries=settings.teacher_max_retries, kind=kind, priority=settings.teacher_priority,
    ))


CANCEL_POLL_SECONDS = 0.5


def committee_for(ctx: StageContext, kind: TeacherKind = "bulk") -> list[Teacher]:
    """Clients of the extra teachers (COMMITTEE_TEACHERS) that vote with the job's teacher."""
    settings = get_settings()
    out = []
    for entry in settings.committee_teachers:
        url, _, model = entry.partition("|")
        out.append(Teacher(TeacherConfig(
            base_url=url, model=model or ctx.spec.teacher, api_key=settings.teacher_api_key,
            concurrency=settings.teacher_concurrency, silence_timeout=settings.teacher_timeout,
            max_retries=settings.teacher_max_retries, kind=kind, priority=settings.teacher_priority,
        )))
    return out


def with_teacher(
    ctx: StageContext, work: Callable[[Teacher], Awaitable[T]], kind: TeacherKind = "bulk", committee: bool = False,
    tick: Callable[[], None] | None = None,
) -> tuple[T, dict[str, int]]:
    """Run `work` with a fresh teacher client on a private event loop; returns its result and usage
    (summed over the committee: with `committee`, the extra teachers ride along as `teacher.committee`).

    The job's cancel flag is polled while requests are in flight, so a cancel aborts them at once
    instead of waiting for slow answers; `tick` is called at each poll too (to report progress
    made of tokens, which arrive with no item finishing).
    """

    async def run() -> tuple[T, dict[str, int]]:
        teacher = teacher_for(ctx, kind)
        teacher.committee = committee_for(ctx, kind) if committee else []
        task = asyncio.ensure_future(work(teacher))
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=CANCEL_POLL_SECONDS)
                if not task.done():
                    ctx.check_canceled()
                    if tick is not None:
                        tick()
            usage = dict(teacher.usage)
            for member in teacher.committee:
                for key, value in member.usage.items():
                    usage[key] = usage.get(key, 0) + value
            return task.result(), usage
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            for member in [teacher, *teacher.committee]:
                await member.close()

    return asyncio.run(run())


#: Where a stage keeps the teacher's answers as they arrive, in its work dir (kept across retries).
PARTIAL_ANSWERS = "answers.partial.jsonl"


def answer_key(index: int, text: str) -> str:
    """A partial-file key for the `index`th input: its position and a digest of its text."""
    return f"{index}:{hashlib.sha256(text.encode()).hexdigest()[:16]}"


class KeptMalformed(ValueError):
    """A malformed answer restored from the partial file (counted as malformed again, not re-asked)."""


class PartialAnswers:
    """One JSON line per finished answer, `{"key": ..., "answer": ...}` (or `"malformed": why`),
    appended and flushed as each answer arrives. A line cut short by a crash is ignored."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.added = 0
        self._file: IO[str] | None = None

    def load(self) -> dict[str, Any]:
        """The kept answers by key; malformed ones as `KeptMalformed`."""
        kept: dict[str, Any] = {}
        if not self.path.is_file():
            return kept
        with self.path.open(encoding="utf-8") as lines:
            for line in lines:
                try:
                    entry = json.loads(line)
                    key = entry["key"]
                    kept[key] = KeptMalformed(entry["malformed"]) if "malformed" in entry else entry["answer"]
                except (ValueError, KeyError, TypeError):
                    continue
        return kept

    def add(self, key: str, result: Any) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            cut = self.path.is_file() and self.path.stat().st_size > 0 and not self.path.read_bytes().endswith(b"\n")
            self._file = self.path.open("a", encoding="utf-8")
            if cut:  # a crash cut the last line short: start a fresh one
                self._file.write("\n")
        entry = ({"key": key, "malformed": f"{type(result).__name__}: {result}"} if isinstance(result, BaseException)
                 else {"key": key, "answer": result})
        self._file.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self._file.flush()
        self.added += 1

    def __enter__(self) -> PartialAnswers:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class StoredPartial:
    """A stage's partial answers kept in the store as well, when other machines read the store:
    restored onto an empty disk, uploaded at most every `MIRROR_SECONDS` while answers come and
    once more when the run ends (also when it fails). A worker killed outright loses at most the
    answers of its last `MIRROR_SECONDS`; the copy is best effort, the store being down costs
    nothing but that."""

    MIRROR_SECONDS = 10.0

    def __init__(self, ctx: StageContext) -> None:
        self.storage, self.path = ctx.storage, ctx.work_dir / PARTIAL_ANSWERS
        self.key = artifact_key(ctx.job_id, f"{PARTIALS}/{ctx.work_dir.name}.jsonl")
        self.shared = mirrors(ctx.storage)
        self._sent = time.monotonic()
        self._new = False

    def restore(self) -> None:
        """Fetch the stored copy when this disk has no partial file of its own."""
        if not self.shared or self.path.is_file():
            return
        try:
            stored = self.storage.local_path(self.key)  # one request: a missing object raises
        except FileNotFoundError:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(stored, self.path)

    def answered(self) -> None:
        self._new = True
        if time.monotonic() - self._sent >= self.MIRROR_SECONDS:
            self.send()

    def send(self) -> None:
        if not (self.shared and self._new and self.path.is_file()):
            return
        try:
            with self.path.open("rb") as stream:
                self.storage.put_stream(self.key, stream)
            self._new = False
        except Exception as exc:
            log.warning("partial answers did not reach the store: %s", exc)
        self._sent = time.monotonic()

    def __enter__(self) -> StoredPartial:
        return self

    def __exit__(self, *exc: object) -> None:
        self.send()


@dataclass
class Answers:
    """What `answer_each` got: one result (or exception) per item, the teacher's usage, and how many
    results came from the partial file of an earlier run."""

    results: list[Any]
    usage: dict[str, int]
    restored: int


def answer_each(
    ctx: StageContext, items: Sequence[T], keys: Sequence[str], call: Callable[[Teacher, T], Awaitable[Any]],
    committee: bool = False,
) -> Answers:
    """`call` the teacher on each item not answered yet, keeping every answer as it arrives.

    Answers (JSON values) are appended to the stage's partial file keyed by `keys`, so a retried or
    resumed stage asks only for the missing ones; progress counts kept and new answers alike, and
    the answers in flight by their streamed tokens (`AnswerMeter`, at most a report a second). When
    the teacher stays unavailable, the error says how many answers are kept. With a store other
    machines read, the file goes there too (`StoredPartial`), so a worker on another machine
    resumes from it.
    """
    total = len(items)
    stored = StoredPartial(ctx)
    stored.restore()
    with PartialAnswers(stored.path) as partial, stored:
        kept = partial.load()
        results: list[Any] = [kept.get(key) for key in keys]
        todo = [i for i, key in enumerate(keys) if key not in kept]
        restored = total - len(todo)
        ctx.progress(restored, total)

        def on_result(j: int, result: Any) -> None:
            results[todo[j]] = result
            partial.add(keys[todo[j]], result)
            stored.answered()

        meter = AnswerMeter(total, restored, lambda done, _, share: ctx.progress(done, total, fraction=share))

        async def work(teacher: Teacher) -> None:
            await teacher.map([items[i] for i in todo], lambda item: call(teacher, item),
                              on_result=on_result, meter=meter)

        try:
            _, usage = with_teacher(ctx, work, committee=committee, tick=meter.tick)
        except StageError as exc:
            if exc.code != "teacher_unavailable":
                raise
            have = restored + partial.added
            raise StageError(exc.code, f"{exc.message}; {have} of {total} answers are kept, a resume asks "
                                       f"only for the other {total - have}") from exc
    return Answers(results, usage, restored)


def write_jsonl(ctx: StageContext, name: str, rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Store rows as a JSON Lines artifact of the job; returns its name, size and sha256."""
    data = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode()
    with session_scope() as session:
        artifact = save_artifact(session, ctx.storage, ctx.job_id, name, data)
        return {"name": artifact.name, "size": artifact.size, "sha256": artifact.sha256}


def read_jsonl(ctx: StageContext, name: str) -> Iterator[dict[str, Any]]:
    """Rows of a JSON Lines artifact written by an earlier stage."""
    path = ctx.storage.local_path(artifact_key(ctx.job_id, name))
    if not path.is_file():
        raise StageError("missing_data", f"{name} is missing; run the earlier stages again")
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield json.loads(line)


def reference_rows(ctx: StageContext) -> tuple[list[Row], str]:
    """The rows models are scored on, and which they are: the person's `test_set`, else the live
    validation rows of the data set (`validation`)."""
    if ctx.spec.test_set:
        return list(ctx.spec.test_set), "test_set"
    return [Row(input=r["input"], output=r["output"]) for r in live_rows(read_jsonl(ctx, DATASET_ARTIFACT))
            if r.get("split") == "validation"], "validation"
