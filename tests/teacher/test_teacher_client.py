"""The teacher client against the real vLLM server serving the bundled teacher."""

import asyncio
import json
import time

import pytest

from app.config import get_settings
from app.specs import JobSpec, TaskSpec
from app.storage import get_storage
from tests.support.factories import make_job
from tests.support.faulty_proxy import Faults, FaultyProxy
from tests.support.teacher import SERVED_NAME
from workers import prompts
from workers.stages.base import StageContext
from workers.stages.generate import GenerateStage
from workers.teacher import Teacher, TeacherConfig, TeacherUnavailable, label_distribution

SPAM_SPEC = {
    "task": "Decide whether an SMS message is spam or a normal message",
    "task_type": "classification",
    "instruction": "Spam is unsolicited advertising, prizes or scams.",
    "labels": [{"name": "spam", "description": "unsolicited advertising, prizes or scams"},
               {"name": "ham", "description": "a normal, legitimate message"}],
}


def run(coro):
    return asyncio.run(coro)


async def with_teacher(url, work, **config):
    teacher = Teacher(TeacherConfig(url, SERVED_NAME, **config))
    try:
        return await work(teacher), teacher
    finally:
        await teacher.close()


def test_guided_choice_answers_a_label_with_a_distribution(teacher_url):
    async def work(t):
        messages = prompts.label_messages(
            TaskSpec.model_validate(SPAM_SPEC), "WINNER! Claim your free prize now, txt WIN to 80082"
        )
        return await t.chat(messages, max_tokens=8, choices=["spam", "ham"], top_logprobs=10)

    answer, teacher = run(with_teacher(teacher_url, work))
    assert answer.text in ("spam", "ham")
    probs = label_distribution(answer, ["spam", "ham"], answer.text)
    assert set(probs) == {"spam", "ham"} and sum(probs.values()) == pytest.approx(1.0, abs=1e-4)
    assert probs[answer.text] >= 0.5
    assert teacher.usage["requests"] == 1 and teacher.usage["completion_tokens"] >= 1


def test_json_schema_answer_parses(teacher_url):
    async def work(t):
        request = JobSpec(task=SPAM_SPEC["task"], teacher=SERVED_NAME, student="s")
        return await t.chat(prompts.plan_question(request, prompts.PLAN_QUESTIONS["styles"]),
                            max_tokens=60, json_schema=prompts.list_schema(1, 3))

    answer, _ = run(with_teacher(teacher_url, work))
    items = json.loads(answer.text)["items"]
    assert 1 <= len(items) <= 3 and all(isinstance(i, str) and i for i in items)


def test_503s_are_retried(teacher_url):
    async def work(t):
        return await t.chat([{"role": "user", "content": "Say OK."}], max_tokens=3)

    with FaultyProxy(teacher_url, Faults(fail_first=2)) as proxy:
        answer, teacher = run(with_teacher(proxy.url, work, backoff=0.05))
    assert answer.text and teacher.usage["retries"] == 2 and proxy.requests == 3


def test_unreachable_teacher_names_its_url_after_retries():
    async def work(t):
        return await t.chat([{"role": "user", "content": "hi"}], max_tokens=3)

    with pytest.raises(TeacherUnavailable) as info:
        run(with_teacher("http://127.0.0.1:9/v1", work, max_retries=2, backoff=0.01))
    assert info.value.code == "teacher_unavailable" and "http://127.0.0.1:9/v1" in info.value.message


def test_a_teacher_silent_longer_than_the_timeout_is_retried_then_unavailable(teacher_url):
    """The timeout bounds the silence between streamed tokens: 3 s gaps fail a 1 s limit."""

    async def work(t):
        return await t.chat([{"role": "user", "content": "Count from 1 to 5."}], max_tokens=6)

    with FaultyProxy(teacher_url, Faults(trickle=3)) as proxy:
        with pytest.raises(TeacherUnavailable) as info:
            run(with_teacher(proxy.url, work, silence_timeout=1, max_retries=1, backoff=0.05))
    assert "APITimeoutError" in info.value.message and proxy.requests == 2


class TimedProgress:
    """A progress sink that notes when each report came and the share done it gave."""

    def __init__(self) -> None:
        self.reports: list[tuple[float, int, float | None]] = []

    def progress(self, done: int, total: int, fraction: float | None = None) -> None:
        self.reports.append((time.monotonic(), done, fraction))

    def check_canceled(self) -> None:
        pass

    def live_metrics(self, metrics) -> None:
        pass


def test_generate_progress_moves_while_the_answers_stream(teacher_url, settings_env):
    """Issue 15: one wave of generate calls (all in flight at once, ending together) moves the
    stage's progress before any answer ends: answers in flight count by their streamed tokens.
    How long the bar may stand still is a timing and no test's business; the meter's curve that
    keeps a long answer moving it is unit-tested on a fake clock (tests/unit/test_answer_progress.py)."""
    settings_env(TEACHER_URL=teacher_url)
    job_id = make_job(task=SPAM_SPEC["task"], labels=["spam", "ham"])
    spec = JobSpec(task=SPAM_SPEC["task"], labels=["spam", "ham"], teacher=get_settings().teacher_model,
                   student=get_settings().student_model, num_examples=12)  # 4 calls of 5 inputs
    work = get_settings().work_dir / str(job_id) / "generate"
    work.mkdir(parents=True, exist_ok=True)
    sink = TimedProgress()
    plan = {**SPAM_SPEC, "topics": ["prizes", "family plans"], "styles": ["casual"], "lengths": ["short"]}
    ctx = StageContext(job_id=job_id, spec=spec, work_dir=work, storage=get_storage(), sink=sink,
                       results={"plan": {"task_spec": plan}})
    metrics = GenerateStage().run(ctx)
    assert metrics["generated"] > 0
    in_flight = [share for _, done, share in sink.reports if done < 4 and share is not None and share > done / 4]
    assert len(in_flight) >= 3, "answers in flight moved the progress between finished items"
    assert any(done == 0 and (share or 0) > 0 for _, done, share in sink.reports), \
        "answers in flight moved the progress before the first one finished"
    shares = [share for _, _, share in sink.reports if share is not None]
    assert shares == sorted(shares) and shares[-1] == 1.0
