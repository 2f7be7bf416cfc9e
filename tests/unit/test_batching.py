"""The serving batcher without a real model (a decoder that answers each prompt with its upper
case, a character a step): the window, the batch bound, joining a running batch, each request's
own options, failures kept to their requests, and one thread per student that loads it and serves until closed."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest

from app.api.openai.batching import Batcher
from app.inference import Answer, Completion, PromptTooLong, Student

EOS = 0


class CharTokenizer:
    """One token per character; a chat is its contents joined."""

    def apply_chat_template(self, messages, add_generation_prompt: bool, tokenize: bool) -> str:
        return "".join(m["content"] for m in messages)

    def __call__(self, text: str, add_special_tokens: bool) -> SimpleNamespace:
        return SimpleNamespace(input_ids=[ord(ch) for ch in text])

    def decode(self, ids, **_) -> str:
        return "".join(chr(i) for i in ids if i != EOS)


class UpperDecoder:
    """Answers a prompt with its upper case and then the end of turn, one character per step."""

    def __init__(self, student: Student, step_s: float = 0.01, fail_on: str | None = None) -> None:
        self.answers: list[Answer] = []
        self.prefills: list[int] = []  # how many prompts each prefill took
        self.step_s, self.fail_on = step_s, fail_on

    def _next(self, answer: Answer) -> bool:
        reply = [ord(ch) for ch in "".join(chr(i) for i in answer.prompt).upper()] + [EOS]
        return answer.add(reply[len(answer.ids)])

    def add_all(self, answers: list[Answer]) -> None:
        if self.fail_on is not None and any(chr(answer.prompt[0]) == self.fail_on for answer in answers):
            raise RuntimeError("prefill failed")
        self.prefills.append(len(answers))
        self.answers += [answer for answer in answers if not self._next(answer)]

    def step(self) -> list[Answer]:
        time.sleep(self.step_s)
        if self.fail_on == "step" and len(self.answers) > 1:
            raise RuntimeError("step failed")
        ended = [answer for answer in list(self.answers) if self._next(answer)]
        self.answers = [answer for answer in self.answers if answer not in ended]
        return ended

    def clear(self) -> list[Answer]:
        answers, self.answers = self.answers, []
        return answers


def student(batch_rows: int = 16) -> Student:
    return Student(model=None, tokenizer=CharTokenizer(), eos_ids=[EOS], context=200, batch_rows=batch_rows)


DECODERS: list[UpperDecoder] = []  # every decoder a batcher made, newest last


def batcher(max_batch: int = 8, window_s: float = 0.0, batch_rows: int = 16, **decoder) -> Batcher:
    loaded = student(batch_rows)

    def made(s: Student) -> UpperDecoder:
        DECODERS.append(UpperDecoder(s, **decoder))
        return DECODERS[-1]

    return Batcher(lambda: loaded, max_batch, window_s, decoder=made)


def ask(b: Batcher, text: str, **options) -> Completion:
    return b.complete([{"role": "user", "content": text}], **options)


def together(b: Batcher, texts: list[str], **options) -> list[Completion]:
    with ThreadPoolExecutor(len(texts)) as pool:
        return list(pool.map(lambda text: ask(b, text, **options), texts))


def test_requests_within_the_window_are_decoded_together():
    b = batcher(window_s=0.3)
    texts = ["abc", "hello", "x", "longer prompt"]
    answers = together(b, texts)
    assert [a.text for a in answers] == [t.upper() for t in texts]
    assert [a.completion_tokens for a in answers] == [len(t) + 1 for t in texts]
    assert all(a.finish_reason == "stop" and a.prompt_tokens == len(t) for a, t in zip(answers, texts, strict=True))
    assert max(b.batch_sizes()) == 4, "all four arrived within the window"
    assert DECODERS[-1].prefills == [4], "and were prefilled together"


def test_a_batch_never_exceeds_the_max_nor_what_the_student_allows():
    b = batcher(max_batch=2, window_s=0.1)
    texts = [f"prompt {i}" for i in range(5)]
    assert [a.text for a in together(b, texts)] == [t.upper() for t in texts]
    assert max(b.batch_sizes()) == 2
    one = batcher(max_batch=8, window_s=0.1, batch_rows=1)
    assert [a.text for a in together(one, texts)] == [t.upper() for t in texts]
    assert set(one.batch_sizes()) == {1}


def test_a_request_joins_a_running_batch_at_the_next_step():
    b = batcher(window_s=0.0, step_s=0.02)
    with ThreadPoolExecutor(2) as pool:
        long = pool.submit(ask, b, "a long answer takes many steps")
        time.sleep(0.1)
        short = pool.submit(ask, b, "hi")
        assert short.result().text == "HI"
        assert not long.done(), "the short one joined the long one's batch and ended first"
        assert long.result().text == "A LONG ANSWER TAKES MANY STEPS"
    assert b.batch_sizes()[2] >= 2


def test_each_request_keeps_its_own_max_tokens_stop_and_stream():
    b = batcher(window_s=0.2)
    pieces: list[str] = []
    with ThreadPoolExecutor(3) as pool:
        capped = pool.submit(ask, b, "abcdefgh", max_tokens=3)
        stopped = pool.submit(ask, b, "one, two", stop=[", "])
        streamed = pool.submit(ask, b, "streamed", on_text=pieces.append)
        assert capped.result() == Completion("ABC", 8, 3, "length")
        assert stopped.result() == Completion("ONE", 8, 5, "stop")
        assert streamed.result().text == "STREAMED" and "".join(pieces) == "STREAMED" and len(pieces) > 1
    assert max(b.batch_sizes()) == 3


def test_a_prompt_too_long_is_refused_in_the_callers_thread():
    b = batcher()
    with pytest.raises(PromptTooLong):
        ask(b, "x" * 150, max_tokens=100)
    assert not b.batch_sizes()


def test_a_failed_prefill_fails_only_its_request():
    b = batcher(window_s=0.2, fail_on="!")
    with ThreadPoolExecutor(3) as pool:
        bad = pool.submit(ask, b, "!boom")
        good = [pool.submit(ask, b, text) for text in ("fine", "also fine")]
        with pytest.raises(RuntimeError, match="prefill failed"):
            bad.result()
        assert [g.result().text for g in good] == ["FINE", "ALSO FINE"]
    assert DECODERS[-1].prefills == [1, 1], "the pack failed, so each prompt was prefilled on its own"


def test_a_failed_step_fails_its_batch_and_the_batcher_goes_on():
    b = batcher(window_s=0.2, fail_on="step")
    with ThreadPoolExecutor(2) as pool:
        failed = [pool.submit(ask, b, text) for text in ("one", "two")]
        for f in failed:
            with pytest.raises(RuntimeError, match="step failed"):
                f.result()
    assert ask(b, "alone").text == "ALONE"


def test_a_failing_stream_callback_fails_only_its_request():
    b = batcher(window_s=0.2)

    def broken(_: str) -> None:
        raise OSError("client gone")

    with ThreadPoolExecutor(2) as pool:
        bad = pool.submit(ask, b, "streamed", on_text=broken)
        good = pool.submit(ask, b, "plain")
        with pytest.raises(OSError):
            bad.result()
        assert good.result().text == "PLAIN"


def test_one_thread_loads_the_student_and_serves_every_burst_until_closed():
    threads: list[threading.Thread] = []
    loaded = student()

    def load() -> Student:
        threads.append(threading.current_thread())
        return loaded

    decoding: set[threading.Thread] = set()

    def decoder(s: Student) -> UpperDecoder:
        decoding.add(threading.current_thread())
        return UpperDecoder(s)

    b = Batcher(load, 8, 0.0, decoder=decoder)
    assert ask(b, "one").text == "ONE"
    time.sleep(0.1)  # idle between bursts: the thread waits instead of ending
    assert ask(b, "two").text == "TWO"
    assert b.batch_sizes() == Counter({1: 6})
    assert len(threads) == 1 and decoding == set(threads) and threads[0] is not threading.current_thread()
    b.close()
    threads[0].join(5)
    assert not threads[0].is_alive(), "closed and idle, the thread ends"
    with pytest.raises(RuntimeError, match="stopped"):
        ask(b, "three")


def test_a_failed_load_is_raised_to_every_caller():
    def load() -> Student:
        raise OSError("no such model")

    b = Batcher(load, 8, 0.0, decoder=UpperDecoder)
    for _ in range(2):
        with pytest.raises(OSError, match="no such model"):
            ask(b, "one")


class SplitPackDecoder(UpperDecoder):
    """Takes the first prompt of a pack, then fails, as a later pack's forward call would."""

    def add_all(self, answers: list[Answer]) -> None:
        super().add_all(answers[:1])
        if len(answers) > 1:
            raise RuntimeError("a later pack failed")


def test_a_prefill_that_fails_part_way_adds_each_answer_once():
    loaded = student()
    b = Batcher(lambda: loaded, 8, 0.2, decoder=SplitPackDecoder)
    texts = ["one", "two", "three"]
    assert [a.text for a in together(b, texts)] == ["ONE", "TWO", "THREE"]
    assert max(b.batch_sizes()) == 3, "decoded together, none of them twice"
