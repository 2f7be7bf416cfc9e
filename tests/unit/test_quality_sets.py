"""The benchmark sets of bench/quality.py (bench/quality_sets.py): valid job bodies built from the
real test splits only, expected outputs that parse and score perfectly, and the benchmark's own
scoring and results on a fake service (no network)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.answer_shapes import check_call
from app.schemas import JobCreate
from workers.scoring import normalize_answer, parse_call, score_answers, score_calls

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import quality  # noqa: E402
import quality_bfcl  # noqa: E402
import quality_rows  # noqa: E402
import quality_sets as qsets  # noqa: E402

DATA = qsets.DATA
needs_data = pytest.mark.skipif(not (DATA / "restaurant8k" / "test.json").is_file(),
                                reason="the shared data sets are not on this machine")

#: The only files the builders may read: test / dev splits (BFCL is evaluation-only; ori_pqal.json
#: holds both PubMedQA pools, so its ids are checked against the test ids below).
TEST_FILES = [
    "sst2/test_labeled.tsv", "banking77/categories.json", "banking77/test.csv",
    "tweeteval_sentiment/test_text.txt", "tweeteval_sentiment/test_labels.txt",
    # One file with no split: no job trains on any of it (the teacher writes the training data).
    "sms_spam/SMSSpamCollection.tsv",
    qsets.RESTAURANT_FILE, qsets.WNUT_FILE, *qsets.PUBMEDQA_FILES, *quality_bfcl.BFCL_FILES,
]


@pytest.fixture(scope="module")
def test_only_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder holding links to the test-split files only: no training file to read."""
    root = tmp_path_factory.mktemp("test_splits")
    for name in TEST_FILES:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).symlink_to(DATA / name)
    return root


@pytest.fixture(scope="module")
def built(test_only_data: Path) -> dict[str, qsets.QualitySet]:
    return {name: qsets.build(name, data=test_only_data) for name in qsets.SETS}


@needs_data
@pytest.mark.parametrize("name", list(qsets.SETS))
def test_every_set_is_a_valid_job_body(built: dict[str, qsets.QualitySet], name: str) -> None:
    qs = built[name]
    job = JobCreate.model_validate({**qs.body, "num_examples": 150})
    assert "\n" not in qs.body["task"] and qs.body["task"] == job.task
    assert (job.task_type.value if job.task_type else "classification") == qs.task_type
    assert len(qs.rows) == qsets.DEFAULT_N.get(name, 60) == len(qs.meta)
    assert len({r["input"] for r in qs.rows}) == len(qs.rows), "a test row is repeated"
    assert "num_examples" not in qs.body


@needs_data
@pytest.mark.parametrize("name", list(qsets.SETS))
def test_expected_outputs_parse_and_score_perfectly(built: dict[str, qsets.QualitySet], name: str) -> None:
    qs = built[name]
    expected = [r["output"] for r in qs.rows]
    body = qs.body
    if qs.task_type == "classification":
        assert set(expected) <= set(body["labels"])
    elif qs.task_type == "extraction":
        names = [f["name"] for f in body["fields"]]
        for row in qs.rows:
            value = json.loads(row["output"])
            assert list(value) == names, "every field present, in order"
            for v in value.values():
                items = [] if v is None else v if isinstance(v, list) else [v]
                assert all(isinstance(i, str) and i and i.lower() in row["input"].lower() for i in items)
                assert v != []
    elif qs.task_type == "qa":
        assert set(expected) <= {"yes", "no", "maybe"}
    else:
        for text in expected:
            if text:
                assert check_call(text, body["tools"]).problems == []
                assert parse_call(text) is not None
    scores = score_answers(expected, expected, qs.task_type, body.get("labels") or (), tools=body.get("tools") or ())
    assert scores["accuracy"] == 1.0
    if qs.task_type == "extraction":
        assert scores["parse_rate"] == 1.0 and scores["micro"]["f1"] in (1.0, None)


@needs_data
def test_sampling_is_seeded_and_n_configurable(test_only_data: Path) -> None:
    for name in ("restaurant8k_extraction", "wnut17_extraction", "pubmedqa", "restaurant8k_booking"):
        a = qsets.build(name, n=25, seed=3, data=test_only_data)
        assert a.body == qsets.build(name, n=25, seed=3, data=test_only_data).body
        assert len(a.rows) == 25
        assert a.rows != qsets.build(name, n=25, seed=4, data=test_only_data).rows


@needs_data
def test_rows_come_from_the_test_splits(built: dict[str, qsets.QualitySet]) -> None:
    records = json.loads((DATA / qsets.RESTAURANT_FILE).read_text())
    for name in ("restaurant8k_extraction", "restaurant8k_booking"):
        for row, meta in zip(built[name].rows, built[name].meta, strict=True):
            assert records[meta["index"]]["userInput"]["text"].strip() == row["input"]
            assert not (records[meta["index"]].get("context") or {}).get("requestedSlots")
    test_ids = json.loads((DATA / "pubmedqa" / "test_ground_truth.json").read_text())
    items = json.loads((DATA / "pubmedqa" / "ori_pqal.json").read_text())
    for row, meta in zip(built["pubmedqa"].rows, built["pubmedqa"].meta, strict=True):
        assert meta["pmid"] in test_ids, "a PubMedQA row of the train/dev pool"
        assert row["output"] == test_ids[meta["pmid"]]
        assert row["input"].endswith("\n\nQuestion: " + items[meta["pmid"]]["QUESTION"].strip())
        assert row["input"].startswith(items[meta["pmid"]]["CONTEXTS"][0].strip())
        assert meta["long_answer"] == items[meta["pmid"]]["LONG_ANSWER"]
    sentences = qsets.wnut17_sentences()
    for row, meta in zip(built["wnut17_extraction"].rows, built["wnut17_extraction"].meta, strict=True):
        assert sentences[meta["sentence"]]["text"] == row["input"]
    train = (DATA / "wnut17" / "wnut17train.conll").read_text(encoding="utf-8").split("\n\n")
    train_texts = {" ".join(line.split("\t")[0] for line in block.splitlines() if line.strip()) for block in train}
    assert not {r["input"] for r in built["wnut17_extraction"].rows} & train_texts


@needs_data
def test_real_inputs_are_unlabeled_train_utterances_never_test_rows(tmp_path: Path, test_only_data: Path) -> None:
    with_train = tmp_path / "data"
    for name in (qsets.RESTAURANT_FILE, qsets.RESTAURANT_TRAIN_FILE):
        (with_train / name).parent.mkdir(parents=True, exist_ok=True)
        (with_train / name).symlink_to(DATA / name)
    qs = qsets.build("restaurant8k_booking", n=30, data=with_train, real_inputs=40)
    train_texts = {r["userInput"]["text"].strip() for r in json.loads((DATA / qsets.RESTAURANT_TRAIN_FILE).read_text())}
    assert len(qs.body["inputs"]) == len(set(qs.body["inputs"])) == 40
    assert set(qs.body["inputs"]) <= train_texts
    assert all(isinstance(text, str) for text in qs.body["inputs"]), "text only: labels never travel"
    assert not set(qs.body["inputs"]) & {row["input"] for row in qs.rows}
    assert qs.rows == qsets.build("restaurant8k_booking", n=30, data=test_only_data).rows, "same test rows"
    assert "inputs" not in qsets.build("restaurant8k_booking", n=30, data=test_only_data).body
    JobCreate.model_validate({**qs.body, "num_examples": 60})
    assert "train_0.json imported as real inputs" in qs.notes


@needs_data
def test_seed_examples_are_labelled_train_rows_never_test_rows(tmp_path: Path, test_only_data: Path) -> None:
    with_train = tmp_path / "data"
    for name in (qsets.RESTAURANT_FILE, qsets.RESTAURANT_TRAIN_FILE, qsets.WNUT_FILE, qsets.WNUT_TRAIN_FILE):
        (with_train / name).parent.mkdir(parents=True, exist_ok=True)
        (with_train / name).symlink_to(DATA / name)
    booking = qsets.build("restaurant8k_booking", n=30, data=with_train, examples=8)
    train = {u["text"]: u["slots"] for u in qsets.restaurant8k_utterances(DATA, qsets.RESTAURANT_TRAIN_FILE)}
    assert len(booking.body["examples"]) == 8
    for example in booking.body["examples"][:4]:
        call = parse_call(example["output"])
        assert call is not None and call["arguments"] == train[example["input"]] != {}, "calls with their labels"
    for example in booking.body["examples"][4:]:
        assert example["output"] == qsets.BOOKING_REPLY and train[example["input"]] == {}, "no detail: a reply"
    wnut = qsets.build("wnut17_extraction", n=30, data=with_train, examples=6)
    train_texts = {t["text"]: t["entities"] for t in qsets.wnut17_sentences(DATA, qsets.WNUT_TRAIN_FILE)}
    for example in wnut.body["examples"]:
        found = {k: v for k, v in json.loads(example["output"]).items() if v}
        assert found == train_texts[example["input"]] and found
    extraction = qsets.build("restaurant8k_extraction", n=30, data=with_train, examples=5)
    for qs in (booking, wnut, extraction):
        assert not {e["input"] for e in qs.body["examples"]} & {row["input"] for row in qs.rows}
        assert qs.rows == qsets.build(qs.name, n=30, data=test_only_data).rows, "same test rows"
        assert "seed examples" in qs.notes
        JobCreate.model_validate({**qs.body, "num_examples": 60})
    assert "examples" not in qsets.build("wnut17_extraction", n=30, data=test_only_data).body


@needs_data
def test_bfcl_calls_pass_their_tools_and_bfcl_acceptable_scoring(test_only_data: Path) -> None:
    qs = qsets.build("bfcl_simple_python", data=test_only_data, irrelevant=5)
    tools = qs.body["tools"]
    names = [t["function"]["name"] for t in tools]
    assert len(names) == len(set(names)) == 20
    calls = [r for r in qs.rows if r["output"]]
    assert len(calls) == 20 and len(qs.rows) == 25
    for row in calls:
        call = parse_call(row["output"])
        assert call is not None and call["name"] in names
        assert check_call(row["output"], [tools[names.index(call["name"])]]).problems == []
    function_of = {q["id"]: q["tool"]["function"]["name"] for q in quality_bfcl.bfcl_questions(test_only_data)}
    for row, meta in zip(qs.rows, qs.meta, strict=True):
        if not row["output"]:
            assert meta["ground_truth"] is None and function_of[meta["id"]] not in names
    ground_truth = [m["ground_truth"] or "" for m in qs.meta]
    scores = score_calls(ground_truth, [r["output"] for r in qs.rows], tools, acceptable_lists=True)
    assert scores["accuracy"] == 1.0
    assert qsets.build("bfcl_simple_python", n=50, data=test_only_data).body["tools"].__len__() == 20


@needs_data
def test_every_bfcl_question_has_a_valid_expected_call() -> None:
    questions = quality_bfcl.bfcl_questions()
    assert len(questions) == 400
    for q in questions:
        assert check_call(q["call"], [q["tool"]]).problems == [], q["id"]


def test_bfcl_expected_call_takes_the_first_acceptable_value() -> None:
    tool = {"type": "function", "function": {"name": "f", "description": "", "parameters": {
        "type": "object", "required": ["a", "b"],
        "properties": {"a": {"type": "integer"}, "b": {"type": "number"}, "c": {"type": "string"},
                       "d": {"type": "object", "properties": {"x": {"type": "string"}}},
                       "e": {"type": "array", "items": {"type": "object"}}}}}}
    truth: dict[str, Any] = {"f": {"a": [1, 2], "b": ["", 2.5], "c": ["", "x"], "d": [{"x": ["p", "q"]}],
                                   "e": [[{"k": ["v"]}]]}}
    assert quality_bfcl.bfcl_expected_call(truth, tool) == {
        "name": "f", "arguments": {"a": 1, "b": 2.5, "d": {"x": "p"}, "e": [{"k": "v"}]}}


@needs_data
def test_booking_calls_hold_exactly_the_labelled_slots(built: dict[str, qsets.QualitySet]) -> None:
    extraction, booking = built["restaurant8k_extraction"], built["restaurant8k_booking"]
    assert [r["input"] for r in extraction.rows] == [r["input"] for r in booking.rows]
    assert "required" not in booking.body["tools"][0]["function"]["parameters"]
    for ext, call in zip(extraction.rows, booking.rows, strict=True):
        slots = {k: v for k, v in json.loads(ext["output"]).items() if v is not None}
        if slots:
            assert parse_call(call["output"]) == {"name": "book_table", "arguments": slots}
        else:
            assert call["output"] == ""
    assert any(not r["output"] for r in booking.rows) and any(r["output"] for r in booking.rows)


def test_wnut_entities_join_bio_tokens(tmp_path: Path) -> None:
    conll = tmp_path / qsets.WNUT_FILE
    conll.parent.mkdir(parents=True)
    conll.write_text("I\tO\nlove\tO\nNew\tB-location\nYork\tI-location\nand\tO\nThe\tB-creative-work\n"
                     "Wire\tI-creative-work\nBob\tB-person\nAnn\tB-person\n\nnothing\tO\nhere\tO\n\n"
                     "Bob\tI-person\n", encoding="utf-8")
    sentences = qsets.wnut17_sentences(tmp_path)
    assert [s["text"] for s in sentences] == ["I love New York and The Wire Bob Ann", "nothing here", "Bob"]
    assert sentences[0]["entities"] == {"location": ["New York"], "creative_work": ["The Wire"],
                                        "person": ["Bob", "Ann"]}
    assert sentences[1]["entities"] == {} and sentences[2]["entities"] == {"person": ["Bob"]}


def test_wilson_interval() -> None:
    low, high = quality.wilson(45, 60) or [0.0, 0.0]
    assert 0.627 < low < 0.629 and 0.840 < high < 0.843
    assert quality.wilson(0, 10) == [0.0, pytest.approx(0.2775, abs=1e-4)]
    assert quality.wilson(0, 0) is None


def test_bootstrap_interval_brackets_the_estimate() -> None:
    values = [1.0] * 30 + [0.0] * 30
    low, high = quality.bootstrap(lambda idx: sum(values[i] for i in idx) / len(idx), len(values)) or [0.0, 0.0]
    assert low < 0.5 < high and high - low < 0.35


def _normalised(answer: str | None, kind: str) -> str | None:
    # What the evaluate stage writes to the predictions artifact.
    return None if answer is None else normalize_answer(answer, kind)


def _fake_service(qs: qsets.QualitySet, answers: dict[str, list[str | None]]) -> httpx.MockTransport:
    """A service that runs every job to success at once, with these answers per model."""
    expected = [r["output"] for r in qs.rows]
    kind, tools = qs.task_type, qs.body.get("tools") or ()
    report: dict[str, Any] = {name: score_answers(expected, a, kind, qs.body.get("labels") or (), tools=tools)
              for name, a in answers.items()}
    report |= {"verdict": "deploy", "ratio": 1.0, "reference": "test_set"}
    stages = [{"name": "train", "status": "succeeded", "started_at": "2025-01-01T00:00:00+00:00",
               "finished_at": "2025-01-01T00:01:30+00:00"}]
    job = {"id": "j1", "status": "succeeded", "error": None, "stages": stages}
    predictions = [{"index": i, "input": r["input"], "expected": normalize_answer(r["output"], kind),
                    **{name: _normalised(a[i], kind) for name, a in answers.items()}}
                   for i, r in enumerate(qs.rows)]

    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "POST" and path == "/api/jobs":
            assert json.loads(request.content)["num_examples"] == 10
            return httpx.Response(201, json={"id": "j1"})
        if path == "/api/jobs/j1":
            return httpx.Response(200, json=job)
        if path == "/api/jobs/j1/report":
            return httpx.Response(200, json=report)
        if path == "/api/jobs/j1/predictions":
            offset, limit = int(request.url.params["offset"]), int(request.url.params["limit"])
            return httpx.Response(200, json={"items": predictions[offset:offset + limit], "total": len(predictions)})
        return httpx.Response(404, json={})

    return httpx.MockTransport(handle)


@needs_data
def test_measure_scores_a_finished_job(built: dict[str, qsets.QualitySet]) -> None:
    qs = built["wnut17_extraction"]
    expected: list[str | None] = [r["output"] for r in qs.rows]
    nulls = json.dumps(dict.fromkeys(qsets.WNUT_TYPES))
    answers: dict[str, list[str | None]] = {"teacher": expected, "base_student": [None] * len(expected),
                                            "student": expected[:30] + [nulls] * 30}
    with httpx.Client(base_url="http://fake", transport=_fake_service(qs, answers)) as client:
        result = quality.measure(client, qs, num_examples=10, seed=0)
    models = result["models"]
    assert result["status"] == "succeeded" and result["stages_s"] == {"train": 90.0}
    assert models["teacher"]["accuracy"] == 1.0 and models["teacher"]["micro_f1_rescored"] == 1.0
    assert models["base_student"]["accuracy"] == 0.0 and models["base_student"]["accuracy_ci95"][0] == 0.0
    low, high = models["student"]["micro_f1_ci95"]
    assert low <= models["student"]["micro_f1"] <= high
    assert models["student"]["micro_f1_rescored"] == models["student"]["micro_f1"]
    assert models["student"]["fields"] and models["student"]["parse_rate"] == 1.0
    row = quality_rows.markdown_row(result)
    assert row.startswith("| wnut17_extraction | extraction | 60 | 1.000 (0.94–1.00) |") and "micro_f1" in row


@needs_data
def test_measure_rescores_bfcl_with_acceptable_lists(test_only_data: Path) -> None:
    qs = qsets.build("bfcl_simple_python", data=test_only_data)
    expected: list[str | None] = [r["output"] for r in qs.rows]
    # An answer with the second of an argument's acceptable values: wrong by the first-value rule
    # of the job's own scoring, right by BFCL's acceptable lists.
    found = [(i, arg, values) for i, m in enumerate(qs.meta) for arg, values in
             next(iter(m["ground_truth"].values())).items() if len([v for v in values if v != ""]) >= 2]
    assert found, "no sampled question with two acceptable values"
    index, arg, values = found[0]
    call = json.loads(str(expected[index]))
    call["arguments"][arg] = [v for v in values if v != ""][1]
    student = list(expected)
    student[index] = json.dumps(call)
    answers: dict[str, list[str | None]] = {"teacher": expected, "base_student": expected, "student": student}
    with httpx.Client(base_url="http://fake", transport=_fake_service(qs, answers)) as client:
        result = quality.measure(client, qs, num_examples=10, seed=0)
    assert result["models"]["student"]["accuracy"] == 0.95
    assert result["bfcl_acceptable"]["student"]["accuracy"] == 1.0
    assert result["bfcl_acceptable"]["teacher"]["accuracy"] == 1.0


@needs_data
def test_a_later_training_seed_joins_its_sets_earlier_run(tmp_path: Path) -> None:
    qs = qsets.QualitySet("wnut17_extraction", {"task": "t", "test_set": []})
    alone = quality.parse_args(["--set", "wnut17_extraction", "--tag", "seeds8", "--results-dir", str(tmp_path)])
    assert quality.results_path(alone, qs, 0).name == "quality_wnut17_extraction_seeds8.json"
    later = quality.parse_args(["--set", "wnut17_extraction", "--tag", "seeds8", "--first-seed", "1",
                                "--results-dir", str(tmp_path)])
    assert quality.results_path(later, qs, 1).name == "quality_wnut17_extraction_seeds8_s1.json"
    with pytest.raises(SystemExit):
        quality.parse_args(["--set", "sst2", "--examples", "4"])


def test_dry_run_needs_no_service(capsys: pytest.CaptureFixture[str]) -> None:
    assert quality.main(["--set", "pubmedqa,bfcl_simple_python", "--n", "5", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.count('"body": "valid"') == 2 and '"n": 5' in out
