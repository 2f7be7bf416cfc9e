"""Progress that moves while answers stream in: the meter's arithmetic and throttle, the teacher
client counting streamed tokens per item (on a fake stream), and a stage's items per minute."""

import asyncio
from types import SimpleNamespace
from typing import Any

import httpx
import openai
import pytest

from workers.answer_progress import IN_FLIGHT_CAP, KNEE, AnswerMeter, in_flight_share
from workers.progress import ItemRate
from workers.teacher import Teacher, TeacherConfig


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def meter(total: int, done: int = 0, every: float = 1.0) -> tuple[AnswerMeter, list[tuple[int, int, float]], Clock]:
    reports: list[tuple[int, int, float]] = []
    clock = Clock()
    return AnswerMeter(total, done, lambda *r: reports.append(r), every=every, clock=clock), reports, clock


def test_items_in_flight_count_by_their_tokens_against_their_budget():
    m, reports, clock = meter(4)
    a, b = m.start(), m.start()
    a.budget, a.received = 100, 50
    b.budget, b.received = 100, 10
    assert m.fraction() == pytest.approx((0.5 + 0.1) / 4)
    clock.now = 1.0
    m.tick()
    assert reports == [(0, 4, pytest.approx(0.15))]


def test_once_items_finish_their_mean_length_is_what_an_item_takes():
    m, _, _ = meter(4)
    first, second = m.start(), m.start()
    first.budget, first.received = 450, 200
    m.finish(first)
    second.budget, second.received = 450, 100
    assert m.fraction() == pytest.approx((1 + 100 / 200) / 4)
    second.received = 400  # longer than usual: still not done
    assert (1 + KNEE) / 4 < m.fraction() < (1 + IN_FLIGHT_CAP) / 4


def test_an_answer_longer_than_usual_still_moves_the_bar_with_every_report():
    """The last answer of a wave, streaming alone at three times the usual length, moves the
    progress at every report and stays short of done until it ends."""
    m, reports, clock = meter(2)
    short, long = m.start(), m.start()
    short.budget = long.budget = 450
    short.received = 100
    m.finish(short)
    for second in range(1, 31):
        clock.now = float(second)
        long.received = 100 + 10 * second
        m.tick()
    fractions = [fraction for _, _, fraction in reports]
    assert len(fractions) == 30 and all(b > a for a, b in zip(fractions, fractions[1:], strict=False))
    assert fractions[-1] < (1 + IN_FLIGHT_CAP) / 2
    m.finish(long)
    assert reports[-1] == (2, 2, 1.0)


def test_in_flight_share_is_the_ratio_then_bends_towards_the_cap():
    assert in_flight_share(0.3) == 0.3 and in_flight_share(KNEE) == pytest.approx(KNEE)
    later = [in_flight_share(r) for r in (0.8, 1.0, 2.0, 5.0)]
    assert all(KNEE < a < b < IN_FLIGHT_CAP for a, b in zip(later, later[1:], strict=False))
    slope = (in_flight_share(KNEE + 1e-6) - in_flight_share(KNEE)) / 1e-6
    assert slope == pytest.approx(1.0, rel=1e-3), "no kink where the curve starts"


def test_reports_at_most_once_a_second_but_the_last_at_once():
    m, reports, clock = meter(3)
    items = [m.start() for _ in range(3)]
    for item in items:
        item.budget = 10
    items[0].received = 5
    m.tick()
    assert reports == [], "no report within a second of the last"
    clock.now = 0.4
    m.finish(items[0])
    assert reports == []
    clock.now = 1.0
    m.tick()
    assert reports == [(1, 3, pytest.approx(1 / 3))]
    clock.now = 1.2
    m.finish(items[1])
    m.finish(items[2])
    assert reports[-1] == (3, 3, 1.0), "the end is reported at once"
    clock.now = 5.0
    m.tick()
    assert len(reports) == 2, "nothing moved, nothing reported"


def test_progress_never_goes_back():
    m, reports, clock = meter(2)
    a, b = m.start(), m.start()
    a.budget, b.budget = 1000, 1000
    a.received = 800
    clock.now = 1.0
    m.tick()
    before = reports[-1][2]
    b.received = 10
    m.finish(b)  # a short item: the usual length drops to 10 tokens, so `a` counts more, not less
    clock.now = 2.0
    a.received = 0  # a retry streams from the start again
    m.tick()
    assert all(later[2] >= before for later in reports)


def test_restored_answers_count_from_the_start():
    m, reports, clock = meter(10, done=6)
    assert m.fraction() == pytest.approx(0.6)
    clock.now = 1.0
    m.tick()
    assert reports == [], "the restored share was reported when the stage started"


def test_item_rate_counts_only_this_runs_items():
    clock = Clock()
    rate = ItemRate(clock)
    assert rate.update(30) is None, "30 restored answers at the start are the baseline"
    clock.now = 0.5
    assert rate.update(31) is None, "too short a span to tell"
    clock.now = 30.0
    assert rate.update(40) == pytest.approx(20.0)
    clock.now = 60.0
    assert rate.update(40) == pytest.approx(10.0)


# --- the teacher client on a fake stream ---------------------------------------------------------


def chunk(content: str | None = None, usage: tuple[int, int] | None = None) -> Any:
    choices = [] if content is None else [SimpleNamespace(index=0, delta=SimpleNamespace(content=content),
                                                          logprobs=None)]
    counts = None if usage is None else SimpleNamespace(prompt_tokens=usage[0], completion_tokens=usage[1])
    return SimpleNamespace(choices=choices, usage=counts)


class FakeStream:
    """An answer streamed token by token, optionally dropping the connection after `fail_after` tokens."""

    def __init__(self, tokens: list[str], gate: asyncio.Event | None, fail_after: int | None = None) -> None:
        self.tokens, self.gate, self.fail_after = tokens, gate, fail_after

    async def __aenter__(self) -> "FakeStream":
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def __aiter__(self):
        for i, token in enumerate(self.tokens):
            if self.fail_after is not None and i == self.fail_after:
                raise openai.APIConnectionError(request=httpx.Request("POST", "http://teacher"))
            if i == len(self.tokens) - 1 and self.gate is not None:
                await self.gate.wait()  # the last token waits: the item stays in flight until released
            yield chunk(token)
            await asyncio.sleep(0)
        yield chunk(usage=(5, len(self.tokens)))


class FakeCompletions:
    def __init__(self, streams: list[FakeStream]) -> None:
        self.streams = streams
        self.budgets: list[int] = []

    async def create(self, **kwargs: Any) -> FakeStream:
        self.budgets.append(kwargs["max_tokens"])
        return self.streams.pop(0)


def fake_teacher(streams: list[FakeStream]) -> Teacher:
    teacher = Teacher(TeacherConfig("http://teacher/v1", "t", concurrency=4, backoff=0.0, priority=False))
    teacher._client = SimpleNamespace(chat=SimpleNamespace(completions=FakeCompletions(streams)),  # type: ignore[assignment]
                                      close=teacher._client.close)
    return teacher


def test_streamed_tokens_move_the_meter_before_any_item_finishes():
    gate = asyncio.Event()
    streams = [FakeStream(["a"] * 10, gate), FakeStream(["b"] * 10, gate)]
    reports: list[tuple[int, int, float]] = []
    clock = Clock()
    m = AnswerMeter(2, 0, lambda *r: reports.append(r), every=0.0, clock=clock)

    async def run() -> list[Any]:
        teacher = fake_teacher(streams)

        async def call(_: int) -> str:
            return (await teacher.chat([{"role": "user", "content": "x"}], max_tokens=20)).text

        mapped = asyncio.ensure_future(teacher.map([0, 1], call, meter=m))
        for _ in range(50):  # let both streams run up to their last token
            await asyncio.sleep(0)
        m.tick()
        assert m.done == 0 and m.fraction() == pytest.approx(2 * (9 / 20) / 2)
        gate.set()
        results = await mapped
        await teacher.close()
        return results

    assert asyncio.run(run()) == ["a" * 10, "b" * 10]
    assert reports[0][:2] == (0, 2) and reports[0][2] > 0, "the tokens in flight were reported"
    assert reports[-1] == (2, 2, 1.0)


def test_a_retried_stream_takes_back_the_tokens_of_its_failed_try():
    streams = [FakeStream(["a"] * 8, None, fail_after=6), FakeStream(["a"] * 8, None)]
    m = AnswerMeter(1, 0, lambda *r: None, every=0.0)
    seen: list[int] = []

    async def run() -> None:
        teacher = fake_teacher(streams)
        original = teacher._stream

        async def watched(kwargs: dict[str, Any]) -> Any:
            try:
                return await original(kwargs)
            finally:
                seen.append(sum(c.received for c in m._flight))

        teacher._stream = watched  # type: ignore[method-assign]
        await teacher.map([0], lambda _: teacher.chat([{"role": "user", "content": "x"}], max_tokens=8), meter=m)
        await teacher.close()

    asyncio.run(run())
    assert seen == [0, 8], "the failed try's 6 tokens were taken back; the retry's 8 counted"
    assert m.done == 1
