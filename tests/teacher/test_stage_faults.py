"""Teacher stages on a misbehaving teacher: garbage answers are counted and dropped, a teacher
that goes away fails the job with `teacher_unavailable` naming its URL (keeping the answers made
before), and a slow teacher that keeps streaming is waited for, also by two stages at once."""

import dataclasses
import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from app.artifacts import GENERATED_ARTIFACT as GENERATED
from app.artifacts import LABELED_ARTIFACT as LABELED
from app.config import get_settings
from app.s3_storage import S3Storage
from app.specs import CurationOptions, JobSpec
from app.storage import get_storage
from tests.support.factories import load, make_job
from tests.support.faulty_proxy import Faults, FaultyProxy
from tests.support.s3 import make_bucket, s3_client, s3_server
from tests.teacher.test_teacher_client import SPAM_SPEC
from workers.pipeline import Outcome, run_job
from workers.stages.base import StageContext, StageError
from workers.stages.common import PARTIAL_ANSWERS, read_jsonl, write_jsonl
from workers.stages.label import LabelStage

TEXTS = [
    "URGENT! You have won a 1 week FREE membership in our prize jackpot! Txt CLAIM to 81010",
    "Hey, are we still meeting at the library at 4?",
    "Free entry to win a brand new iPhone, reply YES now",
    "Mum says dinner is at 7, don't be late",
    "Congratulations, your mobile number won 2000 pounds, call 09061701461 to claim",
    "Can you pick up some milk on your way home?",
]


class Progress:
    """A progress sink that notes when each report came."""

    def __init__(self) -> None:
        self.reports: list[tuple[float, int, int]] = []
        self.fractions: list[float | None] = []

    def progress(self, done: int, total: int, fraction: float | None = None) -> None:
        self.reports.append((time.monotonic(), done, total))
        self.fractions.append(fraction)

    def check_canceled(self) -> None:
        pass

    def live_metrics(self, metrics) -> None:
        pass


def context(job_id, sink=None):
    # One answer per input: these tests count the teacher's requests (votes are tested in test_curation_levers).
    spec = JobSpec(task=SPAM_SPEC["task"], labels=["spam", "ham"], teacher=get_settings().teacher_model,
                   student=get_settings().student_model, num_examples=10, curation=CurationOptions(votes=1))
    work = get_settings().work_dir / str(job_id) / "label"
    work.mkdir(parents=True, exist_ok=True)
    return StageContext(job_id=job_id, spec=spec, work_dir=work, storage=get_storage(), sink=sink,
                        results={"plan": {"task_spec": {**SPAM_SPEC, "topics": [], "styles": [], "lengths": []}}})


def label_context(texts, sink=None):
    ctx = context(make_job(task=SPAM_SPEC["task"], labels=["spam", "ham"]), sink)
    write_jsonl(ctx, GENERATED, [{"input": t, "bucket": "b"} for t in texts])
    return ctx


#: A label answer streams 5 events (role, label, stop, usage, [DONE]); held TRICKLE seconds apart
#: by the proxy, every answer takes over 4 x TRICKLE = 12 s, longer than SILENCE, while no gap is.
#: SILENCE is also the wait for the first token: 10 s leaves room for a prefill on busy CPU cores
#: (5 s was once exceeded with four requests in flight while other processes shared the cores).
TRICKLE, SILENCE = 3.0, 10


def test_garbage_answers_are_counted_and_dropped(teacher_url, settings_env):
    job_id = make_job(task=SPAM_SPEC["task"], labels=["spam", "ham"])
    with FaultyProxy(teacher_url, Faults(garbage_every=3)) as proxy:
        settings_env(TEACHER_URL=proxy.url)
        ctx = context(job_id)
        write_jsonl(ctx, GENERATED, [{"input": t, "bucket": "b"} for t in TEXTS])
        metrics = LabelStage().run(ctx)
    assert metrics["malformed_answers"] == 2 and metrics["labeled"] == 4
    rows = list(read_jsonl(ctx, LABELED))
    assert len(rows) == 4 and all(r["output"] in ("spam", "ham") for r in rows)
    assert all(abs(sum(r["label_probs"].values()) - 1) < 1e-3 for r in rows)


def test_teacher_going_away_mid_job_fails_with_its_url(teacher_url, settings_env):
    job_id = make_job(task=SPAM_SPEC["task"], labels=["spam", "ham"], until="data")
    with FaultyProxy(teacher_url, Faults(die_after=2)) as proxy:
        settings_env(TEACHER_URL=proxy.url, TEACHER_MAX_RETRIES="2")
        assert run_job(job_id) is Outcome.FAILED
    job = load(job_id)
    assert job.error_code == "teacher_unavailable" and proxy.url in job.error_message
    assert job.stage == "plan" and job.stages[0].status == "failed"


def test_a_slow_teacher_that_keeps_streaming_is_waited_for(teacher_url, settings_env):
    sink = Progress()
    with FaultyProxy(teacher_url, Faults(trickle=TRICKLE)) as proxy:
        settings_env(TEACHER_URL=proxy.url, TEACHER_TIMEOUT=str(SILENCE), TEACHER_CONCURRENCY="2")
        ctx = label_context(TEXTS[:4], sink)
        metrics = LabelStage().run(ctx)
        ended = time.monotonic()
    assert metrics["labeled"] == 4 and metrics["teacher_usage"]["retries"] == 0
    assert min(proxy.durations) > SILENCE, "each answer took longer than the timeout (a total-time limit fails)"
    assert proxy.longest_silence < SILENCE and proxy.max_in_flight == 2
    counts = [(done, total) for _, done, total in sink.reports]
    assert counts[0] == (0, 4) and counts[-1] == (4, 4) and counts == sorted(counts)
    shares = [f for f in sink.fractions[1:] if f is not None]
    assert shares == sorted(shares) and shares[-1] == 1.0, "the share done never goes back"
    assert sink.reports[1][0] < ended - TRICKLE, "progress moved while the stage ran"
    assert any(done == 0 for _, done, _ in sink.reports[1:]), "tokens of answers in flight count before one ends"


def test_two_stages_at_once_on_a_slow_teacher_both_finish(teacher_url, settings_env):
    with FaultyProxy(teacher_url, Faults(trickle=TRICKLE)) as proxy:
        settings_env(TEACHER_URL=proxy.url, TEACHER_TIMEOUT=str(SILENCE), TEACHER_CONCURRENCY="2")
        contexts = [label_context(TEXTS[:4]), label_context(TEXTS[2:])]
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(lambda ctx: LabelStage().run(ctx), contexts))
    assert [m["labeled"] for m in results] == [4, 4]
    assert all(m["teacher_usage"]["retries"] == 0 for m in results)
    assert proxy.max_in_flight <= 4, "each stage keeps at most TEACHER_CONCURRENCY requests in flight"
    assert min(proxy.durations) > SILENCE


def test_answers_made_before_the_teacher_went_away_are_kept_and_not_asked_again(teacher_url, settings_env):
    with FaultyProxy(teacher_url, Faults(die_after=3)) as proxy:
        settings_env(TEACHER_URL=proxy.url, TEACHER_MAX_RETRIES="2", TEACHER_CONCURRENCY="2")
        ctx = label_context(TEXTS)
        started = time.monotonic()
        with pytest.raises(StageError) as info:
            LabelStage().run(ctx)
        took = time.monotonic() - started
    assert info.value.code == "teacher_unavailable" and proxy.url in info.value.message
    assert took < 30, "a teacher that is gone fails the stage in seconds"
    kept = [json.loads(line) for line in (ctx.work_dir / PARTIAL_ANSWERS).read_text().splitlines()]
    assert len(kept) >= 2 and all(k["answer"]["output"] in ("spam", "ham") for k in kept)
    assert f"{len(kept)} of 6 answers are kept" in info.value.message

    sink = Progress()
    ctx.sink = sink
    with FaultyProxy(teacher_url, Faults()) as back:
        settings_env(TEACHER_URL=back.url)
        metrics = LabelStage().run(ctx)
    assert back.requests == 6 - len(kept), "the resumed stage asks only for the missing answers"
    assert metrics["labeled"] == 6 and metrics["answers_restored"] == len(kept)
    assert sink.reports[0][1:] == (len(kept), 6) and sink.reports[-1][1:] == (6, 6)
    assert [r["input"] for r in read_jsonl(ctx, LABELED)] == TEXTS


def test_answers_kept_in_the_store_are_not_asked_again_by_another_machine(teacher_url, settings_env, tmp_path):
    """With an S3 store, the partial answers go there too: the stage run again on an empty disk
    (another worker's machine) asks only for the answers the first run did not get."""
    with s3_server(tmp_path) as env:
        make_bucket(env, "partials")
        client = s3_client(env)

        def machine(name: str, ctx: StageContext) -> StageContext:
            storage = S3Storage("partials", "install", tmp_path / name / "cache", client=client)
            work = tmp_path / name / "work" / str(ctx.job_id) / "label"
            work.mkdir(parents=True)
            return dataclasses.replace(ctx, storage=storage, work_dir=work)

        local = label_context(TEXTS)
        first = machine("first", local)
        write_jsonl(first, GENERATED, [{"input": t, "bucket": "b"} for t in TEXTS])
        with FaultyProxy(teacher_url, Faults(die_after=3)) as proxy:
            settings_env(TEACHER_URL=proxy.url, TEACHER_MAX_RETRIES="2", TEACHER_CONCURRENCY="2")
            with pytest.raises(StageError):
                LabelStage().run(first)
        kept = len((first.work_dir / PARTIAL_ANSWERS).read_text().splitlines())
        assert kept >= 2

        second = machine("second", local)
        with FaultyProxy(teacher_url, Faults()) as back:
            settings_env(TEACHER_URL=back.url)
            metrics = LabelStage().run(second)
        assert back.requests == 6 - kept, "the other machine asks only for the missing answers"
        assert metrics["labeled"] == 6 and metrics["answers_restored"] == kept
