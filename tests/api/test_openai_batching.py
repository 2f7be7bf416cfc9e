"""Batched serving with the real bundled student: answers decoded together, their prompts
prefilled in one packed forward call, are the answers decoded one at a time (text, token counts,
and the logits bit for bit), and concurrent /v1 requests to one student are batched, streamed
ones included."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from app import decoding
from app.api.openai import serving
from app.api.openai.batching import Batcher
from app.inference import Student, generate, load_student
from tests.api.test_openai_compat import STUDENT_DIR, sse_events
from tests.support.decoding import record_logits
from tests.support.factories import make_finished_job

# Prompts of different lengths, each with its own max_tokens.
ASKED = [
    ("What is the capital of France?", 12),
    ("Name a colour.", 5),
    ("Write a haiku about the sea and the wind that blows over it at night, in the old style.", 20),
    ("What is 2 + 2?", 8),
    ("Tell me a short story about a dragon who lives in a cave high up in the mountains.", 24),
    ("hi", 16),
]


def chat(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


@pytest.fixture(scope="module")
def student() -> Student:
    loaded = load_student(STUDENT_DIR, batched=True)
    assert loaded.batch_rows > 1, "the bundled student is batched"
    return loaded


@pytest.fixture(scope="module")
def requests(student) -> list[dict]:
    """Each prompt's options; the story stops at a word of its own answer."""
    story, tokens = ASKED[4]
    word = generate(student, chat(story), max_tokens=tokens).text.split()[4]
    return [{"messages": chat(text), "max_tokens": tokens, "stop": [word] if text == story else []}
            for text, tokens in ASKED]


@pytest.fixture
def logits(monkeypatch) -> dict[tuple[int, ...], list]:
    """Every row of logits a token was chosen from, by answer (its prompt's ids)."""
    return record_logits(monkeypatch)


@pytest.fixture
def packs(monkeypatch) -> list[int]:
    """How many prompts each prefill's forward call took."""
    sizes: list[int] = []
    prefill = decoding.Decoder._prefill

    def recording(self, pack):
        sizes.append(len(pack))
        return prefill(self, pack)

    monkeypatch.setattr(decoding.Decoder, "_prefill", recording)
    return sizes


def test_greedy_answers_in_a_batch_are_the_answers_alone(student, requests, logits, packs):
    logits.clear()
    alone = [generate(student, **r) for r in requests]
    alone_logits = {key: list(rows) for key, rows in logits.items()}
    logits.clear()
    assert alone[4].finish_reason == "stop" and alone[4].completion_tokens < ASKED[4][1], "the stop string ended it"
    assert any(a.finish_reason == "length" for a in alone)

    packs.clear()
    batcher = Batcher(lambda: student, max_batch=8, window_s=2.0)
    with ThreadPoolExecutor(len(requests)) as pool:
        together = list(pool.map(lambda r: batcher.complete(**r), requests))
    assert together == alone, "the same texts, token counts and finish reasons"
    if student.model.prefill_rows:
        assert packs == [len(requests)], "the six prompts were prefilled in one forward call"
    else:  # no chunk size keeps a row's bits on this CPU: prompts are prefilled one by one
        assert packs == [1] * len(requests)
    assert max(batcher.batch_sizes()) == len(requests), "all six were decoded together"
    for key, rows in alone_logits.items():
        assert len(logits[key]) == len(rows)
        assert all(a.equal(b) for a, b in zip(rows, logits[key], strict=True)), "bit for bit the logits of alone"


def test_a_sampled_answer_and_a_late_joiner_leave_greedy_ones_alone(student, requests):
    alone = [generate(student, **r) for r in requests[:3]]
    batcher = Batcher(lambda: student, max_batch=4, window_s=0.0)
    with ThreadPoolExecutor(5) as pool:
        sampled = pool.submit(batcher.complete, chat("Write a poem about autumn."), max_tokens=30, temperature=0.9,
                              top_p=0.9)
        together = list(pool.map(lambda r: batcher.complete(**r), requests[:3]))
        answer = sampled.result()
    assert together == alone
    assert answer.completion_tokens >= 1 and answer.text.strip()
    assert max(batcher.batch_sizes()) > 1


def test_concurrent_v1_requests_to_one_student_are_batched_and_stream(client):
    model = str(make_finished_job(model_dir=STUDENT_DIR))
    bodies = [{"model": model, "messages": chat(text), "max_tokens": tokens} for text, tokens in ASKED + ASKED[:2]]
    streamed = {0, 5}  # two of the eight are streamed

    def ask(i: int) -> dict:
        body = {**bodies[i], "stream": True, "stream_options": {"include_usage": True}} if i in streamed else bodies[i]
        response = client.post("/v1/chat/completions", json=body)
        assert response.status_code == 200, response.text
        if i not in streamed:
            return response.json()
        chunks = [json.loads(e) for e in sse_events(response.text)[:-1]]
        text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
        [finish] = [c["choices"][0]["finish_reason"] for c in chunks
                    if c["choices"] and c["choices"][0]["finish_reason"]]
        return {"text": text, "finish": finish, "usage": chunks[-1]["usage"], "pieces": len(chunks)}

    with ThreadPoolExecutor(len(bodies)) as pool:
        together = list(pool.map(ask, range(len(bodies))))
    sizes = serving.get_cache().batch_sizes(model)
    assert max(sizes) > 1, f"eight requests at once were decoded together: {sizes}"

    for i, body in enumerate(bodies):  # one at a time, after the others
        alone = client.post("/v1/chat/completions", json=body).json()
        if i in streamed:
            got = together[i]
            assert got["text"] == alone["choices"][0]["message"]["content"]
            assert got["finish"] == alone["choices"][0]["finish_reason"] and got["usage"] == alone["usage"]
            assert got["pieces"] > 3, "the answer streamed in pieces"
        else:
            assert together[i]["choices"] == alone["choices"] and together[i]["usage"] == alone["usage"]

