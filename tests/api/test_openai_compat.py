"""The OpenAI-compatible API over a real finished job (the bundled student standing in for a
tuned one): /v1/models, chat completions plain and streamed, OpenAI's error shape, the bounded
cache of loaded students, concurrency, and the real `openai` client against a real server."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import pytest

from app import jobs
from app.api.openai import serving
from app.artifacts import MODEL_FOLDER, save_folder
from app.db import session_scope
from app.models import JobStatus
from app.storage import get_storage
from tests.conftest import ADMIN_KEY, SCRATCH
from tests.support import http
from tests.support.factories import make_finished_job, make_job
from tests.support.live_service import LiveService
from workers.bundled_models import STUDENT, is_prepared, model_dir

STUDENT_DIR = model_dir(STUDENT)
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def student(test_database) -> str:
    """A succeeded job whose model is the bundled student; its id is the model id."""
    assert is_prepared(STUDENT), "the bundled student is not prepared: run `make models` (make test does)"
    return str(make_finished_job(model_dir=STUDENT_DIR, labels=["spam", "ham"]))


@pytest.fixture(scope="module")
def reference():
    """The bundled student loaded straight with transformers, to check answers against."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(STUDENT_DIR).eval(), AutoTokenizer.from_pretrained(STUDENT_DIR)


def greedy(reference, messages, max_new_tokens: int) -> tuple[str, int, int]:
    """Text, prompt tokens and answer tokens of a plain greedy `generate`."""
    import torch

    model, tokenizer = reference
    ids = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )["input_ids"]
    with torch.inference_mode():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens, do_sample=False)
    answer = out[0, ids.shape[1]:].tolist()
    return tokenizer.decode(answer, skip_special_tokens=True), ids.shape[1], len(answer)


def job_with_model_files(status: JobStatus, folder: Path) -> str:
    """A job in `status` that already stored a model folder (a stand-in, never loaded)."""
    job_id = make_job()
    with session_scope() as session:
        token = jobs.claim(session, job_id, 60)
        assert token is not None
        save_folder(session, get_storage(), job_id, MODEL_FOLDER, folder)
        if status == JobStatus.FAILED:
            jobs.finish(session, job_id, token, status, error_code="boom", error_message="x")
        elif status != JobStatus.RUNNING:
            jobs.finish(session, job_id, token, status)
    return str(job_id)


def chat(client, model: str, **body):
    return client.post("/v1/chat/completions", json={"model": model, "messages": QUESTION, **body})


def assert_openai_error(response, status: int, code: str | None = None, param: str | None = None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    assert error["type"] == ("invalid_request_error" if status < 500 else "server_error")
    if code is not None:
        assert error["code"] == code
    if param is not None:
        assert error["param"] == param
    return error


def sse_events(text: str) -> list[str]:
    assert text.endswith("data: [DONE]\n\n"), text[-200:]
    return [line.removeprefix("data: ") for line in text.split("\n\n") if line]


# --- /v1/models ---------------------------------------------------------------------------------


def test_models_lists_succeeded_jobs_with_a_model_only(client, student, tmp_path):
    (tmp_path / "config.json").write_text("{}")
    running = job_with_model_files(JobStatus.RUNNING, tmp_path)
    failed = job_with_model_files(JobStatus.FAILED, tmp_path)
    no_model = str(make_finished_job())

    body = client.get("/v1/models").json()
    assert body["object"] == "list"
    ids = [m["id"] for m in body["data"]]
    assert student in ids and not {running, failed, no_model} & set(ids)
    card = next(m for m in body["data"] if m["id"] == student)
    assert card["object"] == "model" and card["owned_by"] == "admin"  # the owner of the job
    assert abs(card["created"] - time.time()) < 3600

    assert client.get(f"/v1/models/{student}").json() == card
    for other in (running, failed, no_model, str(uuid.uuid4()), "not-a-job"):
        assert_openai_error(client.get(f"/v1/models/{other}"), 404, "model_not_found")


# --- chat completions ---------------------------------------------------------------------------


def test_chat_completion_is_the_greedy_answer_in_openai_shape(client, student, reference):
    started = int(time.time())
    response = chat(client, student, max_tokens=24)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"].startswith("chatcmpl-") and body["object"] == "chat.completion"
    assert body["model"] == student and started - 1 <= body["created"] <= time.time() + 1
    [choice] = body["choices"]
    assert choice["index"] == 0 and choice["message"]["role"] == "assistant"

    text, prompt_tokens, answer_tokens = greedy(reference, QUESTION, 24)
    assert choice["message"]["content"] == text and text.strip()
    assert body["usage"] == {"prompt_tokens": prompt_tokens, "completion_tokens": answer_tokens,
                             "total_tokens": prompt_tokens + answer_tokens}
    assert choice["finish_reason"] == ("length" if answer_tokens == 24 else "stop")
    # temperature 0 is the default: the same question gets the same answer
    assert chat(client, student, max_tokens=24).json()["choices"] == body["choices"]


def test_max_tokens_and_stop_end_the_answer(client, student):
    short = chat(client, student, max_tokens=3).json()
    assert short["choices"][0]["finish_reason"] == "length" and short["usage"]["completion_tokens"] == 3

    full = chat(client, student, max_tokens=24).json()["choices"][0]["message"]["content"]
    word = full.split()[2]
    cut = chat(client, student, max_tokens=24, stop=["zzz", word]).json()
    assert cut["choices"][0]["message"]["content"] == full[: full.index(word)]
    assert cut["choices"][0]["finish_reason"] == "stop"
    assert cut["usage"]["completion_tokens"] < 24


def test_system_message_and_text_parts_are_used(client, student):
    parts = [{"role": "developer", "content": "Answer in one word."},
             {"role": "user", "content": [{"type": "text", "text": "What is the capital "},
                                          {"type": "text", "text": "of France?"}]}]
    joined = [{"role": "system", "content": "Answer in one word."},
              {"role": "user", "content": "What is the capital of France?"}]
    a = client.post("/v1/chat/completions", json={"model": student, "messages": parts, "max_tokens": 8}).json()
    b = client.post("/v1/chat/completions", json={"model": student, "messages": joined, "max_tokens": 8}).json()
    assert a["choices"] == b["choices"] and a["usage"] == b["usage"]
    plain = chat(client, student, max_tokens=8).json()
    assert a["usage"]["prompt_tokens"] != plain["usage"]["prompt_tokens"]


def test_streamed_answer_equals_the_plain_one(client, student):
    plain = chat(client, student, max_tokens=16).json()
    response = chat(client, student, max_tokens=16, stream=True, stream_options={"include_usage": True})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert {c["id"] for c in chunks} == {chunks[0]["id"]} and chunks[0]["id"].startswith("chatcmpl-")
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == student for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    content = [c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]]
    assert len([c for c in content if c]) > 1, "the answer arrives in pieces"
    assert "".join(content) == plain["choices"][0]["message"]["content"]
    finals = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert finals == [plain["choices"][0]["finish_reason"]]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == plain["usage"]


def test_cancel_ends_a_generation_at_its_next_token(student):
    cancelled = threading.Event()
    story = [{"role": "user", "content": "Write a long story about a dragon."}]
    completion = serving.complete(student, story, max_tokens=64, on_text=lambda _: cancelled.set(), cancelled=cancelled)
    assert completion.text and completion.completion_tokens <= 3 and completion.finish_reason == "stop"


def test_closing_a_stream_stops_its_generation(student):
    story = [{"role": "user", "content": "Write a long story about a dragon."}]
    pieces = serving.stream(student, story, max_tokens=1000)
    assert isinstance(next(pieces), str)
    [thread] = [t for t in threading.enumerate() if t.name == f"student-{student[:8]}"]
    pieces.close()
    thread.join(timeout=20)
    assert not thread.is_alive(), "the abandoned generation went on"


def test_stream_errors_before_the_first_token_get_a_status(client, student):
    assert_openai_error(chat(client, str(uuid.uuid4()), stream=True), 404, "model_not_found")
    long = [{"role": "user", "content": "hello " * 9000}]
    response = client.post("/v1/chat/completions", json={"model": student, "messages": long, "stream": True})
    assert_openai_error(response, 400, "context_length_exceeded", "messages")


# --- errors -------------------------------------------------------------------------------------


def test_unknown_models_are_404_in_openai_shape(client, student, tmp_path):
    (tmp_path / "config.json").write_text("{}")
    running = job_with_model_files(JobStatus.RUNNING, tmp_path)
    for model in (str(uuid.uuid4()), "gpt-4o", running, str(make_finished_job())):
        error = assert_openai_error(chat(client, model), 404, "model_not_found", "model")
        assert model in error["message"]


BAD_BODIES = [
    ({"messages": QUESTION}, "model"),
    ({"model": "M"}, "messages"),
    ({"model": "M", "messages": []}, "messages"),
    ({"model": "M", "messages": "hi"}, "messages"),
    ({"model": "M", "messages": [{"role": "robot", "content": "hi"}]}, "messages.0.role"),
    ({"model": "M", "messages": [{"role": "user"}]}, "messages.0.content"),
    ({"model": "M", "messages": [{"role": "user", "content": 42}]}, "messages.0.content.str"),
    ({"model": "M", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]}, None),
    ({"model": "M", "messages": QUESTION, "max_tokens": 0}, "max_tokens"),
    ({"model": "M", "messages": QUESTION, "max_tokens": 10**6}, "max_tokens"),
    ({"model": "M", "messages": QUESTION, "max_tokens": "many"}, "max_tokens"),
    ({"model": "M", "messages": QUESTION, "temperature": -1}, "temperature"),
    ({"model": "M", "messages": QUESTION, "temperature": 3}, "temperature"),
    ({"model": "M", "messages": QUESTION, "top_p": 0}, "top_p"),
    ({"model": "M", "messages": QUESTION, "stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"model": "M", "messages": QUESTION, "stop": [""]}, "stop"),
    ({"model": "M", "messages": QUESTION, "n": 2}, "n"),
    ({"model": "M", "messages": QUESTION, "stream": [1]}, "stream"),
    # this student has no plan: it is no tool-calling or extraction student (tests/api/test_openai_tools.py)
    ({"model": "M", "messages": QUESTION, "tools": [{"type": "function"}]}, "tools"),
    ({"model": "M", "messages": QUESTION, "tool_choice": "required"}, "tool_choice"),
    ({"model": "M", "messages": QUESTION, "tool_choice": "sometimes"}, "tool_choice"),
    ({"model": "M", "messages": QUESTION, "functions": [{"name": "f"}]}, None),
    ({"model": "M", "messages": QUESTION, "logprobs": True}, None),
    ({"model": "M", "messages": QUESTION, "response_format": {"type": "json_object"}}, "response_format"),
    ({"model": "M", "messages": QUESTION, "response_format": {"type": "json_schema"}}, "response_format"),
    ({"model": "M", "messages": [{"role": "tool", "tool_call_id": "c"}]}, "messages.0.content"),
    ({"model": "M", "messages": [{"role": "user", "content": "hi", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}]}, "messages.0.tool_calls"),
]


@pytest.mark.parametrize("body,param", BAD_BODIES, ids=[str(i) for i in range(len(BAD_BODIES))])
def test_bad_bodies_are_400_in_openai_shape(client, student, body, param):
    body = json.loads(json.dumps(body).replace('"M"', f'"{student}"'))
    error = assert_openai_error(client.post("/v1/chat/completions", json=body), 400)
    if param is not None:
        assert error["param"] == param and param.split(".")[0] in error["message"]


def test_n_above_one_is_refused_clearly(client, student):
    error = assert_openai_error(chat(client, student, n=2), 400, param="n")
    assert "n=1" in error["message"]


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'"hi"', b"", b"null"])
def test_malformed_json_is_400_in_openai_shape(client, raw):
    response = client.post("/v1/chat/completions", content=raw, headers={"content-type": "application/json"})
    assert_openai_error(response, 400)


def test_prompt_beyond_the_context_is_400(client, student):
    long = [{"role": "user", "content": "hello " * 9000}]
    response = client.post("/v1/chat/completions", json={"model": student, "messages": long})
    error = assert_openai_error(response, 400, "context_length_exceeded", "messages")
    assert "8192" in error["message"]


def test_a_model_that_cannot_load_is_503(client, tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "no-such-architecture"}')
    broken = job_with_model_files(JobStatus.SUCCEEDED, tmp_path)
    error = assert_openai_error(chat(client, broken), 503, "model_unavailable")
    assert str(tmp_path) not in error["message"]
    assert broken not in serving.get_cache().loaded(), "a failed load is not kept"


def test_openapi_declares_the_openai_routes_and_shapes(client):
    doc = client.get("/openapi.json").json()
    post = doc["paths"]["/v1/chat/completions"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/ChatCompletionRequest")
    assert post["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/ChatCompletion")
    assert "text/event-stream" in post["responses"]["200"]["content"]
    error_ref = "#/components/schemas/OpenAIErrorResponse"
    for status in ("400", "404", "503", "default"):
        assert post["responses"][status]["content"]["application/json"]["schema"]["$ref"] == error_ref
    models_ok = doc["paths"]["/v1/models"]["get"]["responses"]["200"]
    assert models_ok["content"]["application/json"]["schema"]["$ref"].endswith("/ModelList")
    assert "422" not in post["responses"] and "HTTPValidationError" not in doc["components"]["schemas"]


# --- the cache of loaded students ---------------------------------------------------------------


@pytest.fixture
def fresh_cache():
    """The process-wide cache rebuilt from the settings before and after the test."""
    serving.get_cache.cache_clear()
    yield
    serving.get_cache.cache_clear()


def test_cache_keeps_serve_max_models_students(settings_env, fresh_cache, student):
    settings_env(SERVE_MAX_MODELS="1")
    other = str(make_finished_job(model_dir=STUDENT_DIR))
    first = serving.complete(student, QUESTION, max_tokens=4)
    assert serving.get_cache().loaded() == [student]
    second = serving.complete(other, QUESTION, max_tokens=4)
    assert serving.get_cache().loaded() == [other], "loading a second student unloaded the first"
    assert first == second, "same weights, same greedy answer"
    assert serving.complete(student, QUESTION, max_tokens=4) == first
    assert serving.get_cache().loaded() == [student]


# --- a real server, the real openai client ------------------------------------------------------


@pytest.fixture(scope="module")
def server(student) -> Iterator[str]:
    """The API under uvicorn on a free port, on this run's database and artifacts."""
    logs = SCRATCH / "logs" / "api-openai"
    logs.mkdir(parents=True, exist_ok=True)
    service = LiveService(logs, workers=False)
    try:
        yield service.url
    finally:
        service.stop()


def test_official_openai_client_gets_answers(server, student):
    client = openai.OpenAI(base_url=f"{server}/v1", api_key=ADMIN_KEY, max_retries=0)
    assert student in [m.id for m in client.models.list()]
    assert client.models.retrieve(student).id == student

    reply = client.chat.completions.create(model=student, messages=QUESTION, max_tokens=12)
    answer = reply.choices[0].message.content
    assert answer.strip() and reply.choices[0].message.role == "assistant"
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    assert reply.choices[0].finish_reason in ("stop", "length")

    chunks = list(client.chat.completions.create(model=student, messages=QUESTION, max_tokens=12, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == answer

    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model=str(uuid.uuid4()), messages=QUESTION)
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model=student, messages=QUESTION, n=2)
    assert bad.value.param == "n"


def test_concurrent_requests_to_one_model_all_succeed(server, student):
    prompts = ["What is the capital of France?", "Name a colour.", "Say hello.", "What is 2 + 2?"]

    def ask(prompt: str) -> dict:
        body = {"model": student, "messages": [{"role": "user", "content": prompt}], "max_tokens": 8}
        response = http.post(f"{server}/v1/chat/completions", json=body, timeout=300)
        assert response.status_code == 200, response.text
        return response.json()["choices"][0]

    with ThreadPoolExecutor(len(prompts)) as pool:
        together = list(pool.map(ask, prompts))
    alone = [ask(p) for p in prompts]
    assert together == alone, "answers do not depend on what ran at the same time"


def test_the_api_answers_while_a_student_generates(server, student):
    body = {"model": student, "messages": [{"role": "user", "content": "Write a long story about a dragon."}],
            "max_tokens": 96}
    http.post(f"{server}/v1/chat/completions", json={**body, "max_tokens": 1}, timeout=300)  # loaded
    done = threading.Event()

    def generate() -> None:
        http.post(f"{server}/v1/chat/completions", json=body, timeout=300)
        done.set()

    worker = threading.Thread(target=generate)
    worker.start()
    time.sleep(0.5)
    started = time.monotonic()
    assert http.get(f"{server}/v1/models", timeout=30).status_code == 200
    waited = time.monotonic() - started
    overlapped = not done.is_set()
    worker.join()
    assert overlapped, "the listing was answered while the completion was still running"
    assert waited < 2
