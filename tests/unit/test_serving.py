"""The student cache without real models: LRU bound, one load under concurrent first requests,
one batcher per model, failed loads not kept; stop strings cut while streaming."""

from __future__ import annotations

import io
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from app.api.openai import serving
from app.inference import _TextWatch
from app.storage import get_storage


def stored_model() -> str:
    """A model id whose `model/config.json` exists in storage (never really loaded here)."""
    model_id = str(uuid.uuid4())
    get_storage().put_stream(f"{model_id}/model/config.json", io.BytesIO(b"{}"))
    return model_id


class FakeLoads:
    """Stands in for loading and a model's batcher: counts loads and batchers, notes overlapping requests."""

    def __init__(self, fail: bool = False, delay: float = 0.0) -> None:
        self.loads: list[Path] = []
        self.fail, self.delay = fail, delay
        self.active = 0
        self.most_active = 0
        self.batchers = 0
        self.made: list[FakeBatcher] = []
        self.lock = threading.Lock()

    def load(self, folder: Path) -> serving.Student:
        time.sleep(self.delay)
        self.loads.append(folder)
        if self.fail:
            raise serving.StudentUnavailable("broken")
        return serving.Student(model=folder, tokenizer=None, eos_ids=[], context=None)

    def batcher(self, load) -> FakeBatcher:
        with self.lock:
            self.batchers += 1
            self.made.append(FakeBatcher(self, load))
            return self.made[-1]

    def cache(self, max_models: int) -> serving.StudentCache:
        return serving.StudentCache(max_models, load=self.load, batcher=self.batcher)  # type: ignore[arg-type]


class FakeBatcher:
    def __init__(self, loads: FakeLoads, load) -> None:
        self.loads, self.load = loads, load
        self.closed = False

    def ready(self) -> serving.Student:
        self.student = self.load()
        return self.student

    def close(self) -> None:
        self.closed = True

    def complete(self, messages, **options) -> serving.Completion:
        loads = self.loads
        with loads.lock:
            loads.active += 1
            loads.most_active = max(loads.most_active, loads.active)
        time.sleep(loads.delay)
        with loads.lock:
            loads.active -= 1
        return serving.Completion(str(self.student.model), 1, 1, "stop")


@pytest.fixture
def fake():
    return FakeLoads(delay=0.05)


def test_least_recently_used_student_is_unloaded(fake):
    cache = fake.cache(2)
    a, b, c = stored_model(), stored_model(), stored_model()
    for model in (a, b, a, c):
        cache.complete(model, [])
    assert cache.loaded() == [a, c], "b was used least recently"
    assert [batcher.closed for batcher in fake.made] == [False, True, False], "b's batcher thread may end"
    cache.complete(b, [])
    assert cache.loaded() == [c, b] and len(fake.loads) == 4


def test_concurrent_first_requests_load_once_and_share_one_batcher(fake):
    cache = fake.cache(2)
    model = stored_model()
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: cache.complete(model, []), range(6)))
    assert len(fake.loads) == 1 and len(set(answers)) == 1
    assert fake.batchers == 1
    assert fake.most_active > 1, "the requests reach the batcher together: no lock around the answering"


def test_different_models_run_in_parallel(fake):
    cache = fake.cache(2)
    a, b = stored_model(), stored_model()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda m: cache.complete(m, []), [a, b, a, b]))
    assert fake.most_active >= 2


def test_failed_load_is_not_kept():
    broken = FakeLoads(fail=True)
    cache = broken.cache(2)
    model = stored_model()
    for _ in range(2):
        with pytest.raises(serving.StudentUnavailable):
            cache.complete(model, [])
    assert cache.loaded() == [] and len(broken.loads) == 2


@pytest.mark.parametrize("model_id", ["not-a-uuid", str(uuid.uuid4())])
def test_unknown_model_is_refused_before_loading(fake, model_id):
    cache = fake.cache(2)
    with pytest.raises(serving.UnknownStudent):
        cache.complete(model_id, [])
    assert fake.loads == [] and cache.loaded() == []


def test_a_rewritten_model_folder_is_loaded_again(fake):
    cache = fake.cache(2)
    model = stored_model()
    cache.complete(model, [])
    time.sleep(0.01)
    get_storage().put_stream(f"{model}/model/config.json", io.BytesIO(b'{"v": 2}'))
    cache.complete(model, [])
    assert len(fake.loads) == 2


class CharTokenizer:
    """Decodes token ids as characters, for driving the text watch by hand."""

    def decode(self, ids, **_):
        return "".join(chr(i) for i in ids)


def watch_text(text: str, stop: list[str]) -> tuple[list[str], str, bool]:
    pieces: list[str] = []
    watch = _TextWatch(CharTokenizer(), stop, pieces.append)
    ids = [ord(ch) for ch in text]
    for n in range(1, len(ids) + 1):
        if watch.stopped:
            break
        watch.update(ids[:n], final=False)
    if not watch.stopped:
        watch.update(ids, final=True)
    assert "".join(pieces) == watch.text
    return pieces, watch.text, watch.stopped


def test_text_watch_cuts_at_the_first_stop_and_never_sends_part_of_one():
    pieces, text, stopped = watch_text("abc END more", ["END", "xyz"])
    assert text == "abc " and stopped
    assert all("E" not in p for p in pieces)
    pieces, text, stopped = watch_text("abc EN", ["END"])
    assert text == "abc EN" and not stopped and pieces[-1].endswith("EN")
    _, text, _ = watch_text("no stop here", [])
    assert text == "no stop here"


def test_text_watch_holds_back_incomplete_characters():
    pieces, text, _ = watch_text("ab\ufffd", [])
    assert pieces[:-1] == ["a", "b"] and text == "ab\ufffd"
