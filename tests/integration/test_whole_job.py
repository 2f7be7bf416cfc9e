"""A whole job end to end, the way people run one: the real API process, real default and gpu
workers with the real stages, the real vLLM teacher and real TRL training, on 60 real SMS
messages as the test set.

The terminal starts it: `vibetune tune ... --until data` stops after the data. The browser then
reviews the data, presses "Train the student" and follows the training live to the report, the
artifacts (the bundle downloaded and checked) and the playground. The terminal fetches the
finished model, verifying checksums. One data run serves both halves."""

import hashlib
import json
import re
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from tests.support import http
from tests.support.browser import assert_not_reloaded, browser_page, stays_on_same_document
from tests.support.datasets import sms_spam
from workers import curation

NUM_EXAMPLES = 30
TASK = "Decide whether an SMS text message is spam or a normal personal message"
BIN = Path(sys.executable).parent / "vibetune"
WHOLE_JOB_SECONDS = 2400


@pytest.fixture(scope="module")
def data_job():
    """The id of the data job, once the first test has run it (shared with the model tests)."""
    return {}


def vibetune(service, *args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([BIN, *args, "--url", service.url], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout)


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    import csv

    with path.open("w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=["input", "output"])
        writer.writeheader()
        writer.writerows({"input": r["input"], "output": r["output"]} for r in rows)
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


TEST_SET = sms_spam(per_class=30)
SEEDS = [{"input": "Are we still on for lunch tomorrow? I can pick you up at 12", "output": "ham"},
         {"input": "Sorry, running late, be there in ten minutes", "output": "ham"},
         {"input": "WINNER! You have been selected for a 1000 pound prize. Call 09061234567 now", "output": "spam"},
         {"input": "FREE entry to our weekly draw! Text WIN to 80086 to claim your reward", "output": "spam"}]


def test_cli_tunes_a_data_job_on_the_bundled_teacher(client, live_service, data_job, tmp_path):
    test_set = TEST_SET
    # The small test teacher labels nearly every message spam: the seeds, trained on, keep both
    # labels in the data, and no share is required (tests/teacher covers the hold).
    result = vibetune(live_service, "tune", TASK, "--labels", "spam,ham", "--test",
                      str(write_csv(tmp_path / "test.csv", test_set)), "--num-examples", str(NUM_EXAMPLES),
                      "--examples", str(write_csv(tmp_path / "seeds.csv", SEEDS)),
                      "--curation", "min_label_share=0",
                      "--until", "data", "--out", str(tmp_path / "data"), cwd=tmp_path, timeout=WHOLE_JOB_SECONDS)
    assert result.returncode == 0, (result.stdout, result.stderr, live_service.output())
    job_id = re.search(r"submitted job ([0-9a-f-]{36})", result.stdout).group(1)
    job = client.get(f"/api/jobs/{job_id}").json()
    assert job["status"] == "succeeded", job
    data_job["id"] = job["id"]
    for stage in ("plan", "generate", "label", "curate", "teacher_check"):
        assert re.search(rf"^\s*{stage}\b.*\b(done|succeeded|100%)", result.stdout, re.M), (stage, result.stdout)
    downloaded = tmp_path / "data" / "dataset.jsonl"
    artifacts = {a["name"]: a for a in client.get(f"/api/jobs/{job_id}/artifacts").json()["items"]}
    assert sha256(downloaded) == artifacts["dataset.jsonl"]["sha256"]

    plan = job["plan"]
    assert plan["task_type"] == "classification" and [label["name"] for label in plan["labels"]] == ["spam", "ham"]
    assert all(label["description"] for label in plan["labels"]) and plan["topics"]

    raw = client.get(f"/api/jobs/{job['id']}/dataset")
    assert raw.status_code == 200
    rows = [json.loads(line) for line in raw.text.splitlines()]
    assert len(rows) >= 0.8 * NUM_EXAMPLES
    assert {r["output"] for r in rows} == {"spam", "ham"}, "both classes appear"
    for row in rows:
        assert row["split"] in ("train", "validation") and row["bucket"]
        assert set(row["label_probs"]) == {"spam", "ham"}
        assert sum(row["label_probs"].values()) == pytest.approx(1.0, abs=1e-3)
    assert {r["split"] for r in rows} == {"train", "validation"}
    seeds = [r for r in rows if r["bucket"] == "seed"]
    assert sorted(r["input"] for r in seeds) == sorted([s["input"] for s in SEEDS] * 2), "each seed, twice (its weight)"
    normalized = [curation.normalize(r["input"]) for r in rows if r["bucket"] != "seed"]
    assert len(set(normalized)) == len(normalized), "no duplicates"
    held_out = curation.NearDuplicateIndex(0.7)
    for row in test_set:
        held_out.add(row["input"])
    assert all(held_out.find(r["input"]) is None for r in rows), "no test overlap"
    assert not {curation.normalize(t["input"]) for t in test_set} & set(normalized)

    artifacts = {a["name"]: a for a in client.get(f"/api/jobs/{job['id']}/artifacts").json()["items"]}
    assert artifacts["dataset.jsonl"]["sha256"] == hashlib.sha256(raw.content).hexdigest()

    report = client.get(f"/api/jobs/{job['id']}/report").json()
    teacher = report["teacher"]
    assert teacher["n"] == 60 and 0 <= teacher["accuracy"] <= 1
    assert set(teacher["per_label"]) == {"spam", "ham"}
    assert report["student"] is None and report["verdict"] is None
    curate = next(s for s in job["stages"] if s["name"] == "curate")["metrics"]
    assert curate["kept"] == len(rows) and isinstance(curate["dropped"], dict)
    weak = [w for w in job["warnings"] if w["code"] == "weak_teacher"]
    assert bool(weak) == (teacher["accuracy"] < 0.6)
    print(f"\nteacher accuracy {teacher['accuracy']}, kept {len(rows)}/{NUM_EXAMPLES}, dropped {curate['dropped']}, "
          f"stage seconds {[(s['name'], s['started_at'], s['finished_at']) for s in job['stages']]}")


def test_cli_edits_the_data_and_copies_it_for_another_job(client, live_service, data_job, tmp_path):
    """`vibetune data export`, three outputs changed and a row deleted in the file, `vibetune data
    import` saves them as one revision; `vibetune retrain --until data` copies that revision to a
    new job with no teacher call."""
    if "id" not in data_job:
        pytest.skip("the data job did not finish")
    job_id = data_job["id"]
    exported = vibetune(live_service, "data", "export", job_id, cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    rows = [json.loads(line) for line in exported.stdout.splitlines()]
    assert [r["index"] for r in rows] == list(range(len(rows))) and rows[0]["output"] in ("spam", "ham")
    flip = {"spam": "ham", "ham": "spam"}
    for row in rows[:3]:
        row["output"] = flip[row["output"]]
    deleted = rows.pop()
    edited = tmp_path / "rows.jsonl"
    edited.write_text("".join(json.dumps(r) + "\n" for r in rows))
    dry = vibetune(live_service, "data", "import", job_id, str(edited), "--dry-run", cwd=tmp_path)
    assert "would change (dry run): 3 updated, 1 deleted" in dry.stdout, (dry.stdout, dry.stderr)
    imported = vibetune(live_service, "data", "import", job_id, str(edited), cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    assert f"revision 1: 3 updated, 1 deleted, 0 restored, 0 added; {len(rows)} rows" in imported.stdout
    history = vibetune(live_service, "data", "history", job_id, cwd=tmp_path)
    assert "revision 1 is the newest" in history.stdout and "3 updated, 1 deleted" in history.stdout
    page = client.get(f"/api/jobs/{job_id}/examples", params={"limit": 500}).json()
    assert page["revision"] == 1 and page["items"][deleted["index"]]["deleted"] is True
    assert [page["items"][i]["output"] for i in range(3)] == [r["output"] for r in rows[:3]]

    copied = vibetune(live_service, "retrain", job_id, "--until", "data", "--detach", cwd=tmp_path)
    assert copied.returncode == 0, copied.stderr
    copy_id = re.search(r"submitted job ([0-9a-f-]{36})", copied.stdout).group(1)
    assert f"on the data of job {job_id} (revision 1)" in copied.stdout
    copy = http.wait_for_job(client, copy_id, timeout=120)
    assert copy["status"] == "succeeded" and copy["spec"]["from_job"] == job_id
    assert all(s["metrics"]["copied_from"] == job_id for s in copy["stages"])
    assert client.get(f"/api/jobs/{copy_id}/dataset").text == client.get(f"/api/jobs/{job_id}/dataset").text
    data_job["cli_revision"] = 1


MODEL_ARTIFACTS = {"model/config.json", "model/model.safetensors", "model/tokenizer.json", "student.gguf",
                   "student.q8_0.gguf", "Modelfile", "README.md", "report.json", "reports/predictions.jsonl",
                   "dataset.jsonl"}


def test_dashboard_reviews_the_data_then_trains_and_reports_live(live_service, data_job, tmp_path):
    """The browser takes the data job on: data view, "Train the student", the loss curve while it
    trains, then the report, the artifacts (the bundle downloaded and checked) and the playground."""
    if "id" not in data_job:
        pytest.skip("the data job did not finish")
    job_id, base = data_job["id"], live_service.url
    with browser_page() as (page, errors):
        page.goto(f"{base}/#/jobs/{job_id}/data")
        stays_on_same_document(page)
        check_data_view(page, base, job_id)
        revision = edit_three_rows(page, base, job_id, data_job.get("cli_revision", 0))
        expect(page.locator("#resume")).to_contain_text(f"revision {revision}")

        page.click("#resume")  # "Train on this data (revision N)"
        expect(page.locator("#job-status .badge")).to_have_text(re.compile("queued|running"))
        page.click("#tab-training")
        page.keyboard.press("ArrowRight")  # the tab list is keyboard driven
        expect(page.locator("#tab-report")).to_have_attribute("aria-selected", "true")
        page.keyboard.press("ArrowLeft")
        page.locator("#training svg polyline").first.wait_for(timeout=WHOLE_JOB_SECONDS * 1000)
        train_state = page.locator("[data-stage=train]").get_attribute("data-status")
        expect(page.locator("#job-status .badge")).to_have_text(
            re.compile("succeeded|failed"), timeout=WHOLE_JOB_SECONDS * 1000)
        job = http.get(f"{base}/api/jobs/{job_id}").json()
        assert job["status"] == "succeeded", (job, live_service.output())
        data_job["model_ok"] = True
        train = next(s for s in job["stages"] if s["name"] == "train")["metrics"]
        assert train["data_revision"] == revision, "the model records the revision it learned from"

        check_report_view(page, base, job_id)
        check_bundle_download(page, base, job_id, tmp_path / "bundle.tar")
        page.click("#tab-playground")
        page.fill("#prompt", TEST_SET[0]["input"])
        page.click("form button[type=submit]")
        expect(page.locator("#chat .msg.assistant")).to_have_text(re.compile(r"^\s*(spam|ham)\s*$"), timeout=120_000)
        assert_not_reloaded(page)
        errors.assert_none(allowed=("status of 422",))  # the refused edit of row 6
    print(f"\nloss curve first seen while train was {train_state}")


def edit_three_rows(page, base: str, job_id: str, revision: int) -> int:
    """Change three rows' labels in place from the keyboard; each save is a revision the page shows
    and the API stores. Returns the revision reached."""
    flip = {"spam": "ham", "ham": "spam"}
    page.select_option("#label-filter", "")  # every label again
    for index in (3, 4, 5):
        before = http.get(f"{base}/api/jobs/{job_id}/examples", params={"offset": index, "limit": 1}).json()
        output = before["items"][0]["output"]
        page.click(f'#examples tbody tr[data-row-index="{index}"] td[data-output]')
        page.fill(".output-editor", flip[output])
        page.keyboard.press("Enter")
        revision += 1
        expect(page.locator("#data-revision")).to_have_attribute("data-revision", str(revision))
        expect(page.locator("#data-save-status")).to_contain_text("Saved")
        after = http.get(f"{base}/api/jobs/{job_id}/examples", params={"offset": index, "limit": 1}).json()
        assert after["items"][0]["output"] == flip[output] and after["items"][0]["edited"] is True
    page.click('#examples tbody tr[data-row-index="6"] td[data-output]')
    page.fill(".output-editor", "maybe")
    page.keyboard.press("Enter")
    expect(page.locator("#row-error-6")).to_contain_text("not one of the labels")
    page.keyboard.press("Escape")
    assert http.get(f"{base}/api/jobs/{job_id}/examples").json()["revision"] == revision
    return revision


def test_dashboard_trains_another_student_on_the_same_data_and_compares(live_service, data_job):
    """From the trained job's page, "Train another student" (other options) makes a job on the
    same data with no teacher call; once trained, the compare view puts the two side by side."""
    if not data_job.get("model_ok"):
        pytest.skip("the whole job did not finish")
    job_id, base = data_job["id"], live_service.url
    with browser_page() as (page, errors):
        page.goto(f"{base}/#/jobs/{job_id}")
        page.click("#train-another")
        page.fill("#rt-epochs", "1")
        page.click("#retrain-submit")
        expect(page.locator("#source-job")).to_be_visible(timeout=30_000)
        other = page.locator("#source-job").get_attribute("data-source-job")
        assert other == job_id
        new_id = re.search(r"#/jobs/([0-9a-f-]{36})", page.url).group(1)
        expect(page.locator("#job-status .badge")).to_have_text(
            re.compile("succeeded|failed"), timeout=WHOLE_JOB_SECONDS * 1000)
        job = http.get(f"{base}/api/jobs/{new_id}").json()
        assert job["status"] == "succeeded", (job, live_service.output())
        assert job["spec"]["from_job"] == job_id and job["spec"]["training"]["epochs"] == 1
        assert all(s["metrics"].get("copied_from") == job_id for s in job["stages"][:5])
        data_job["retrained"] = new_id

        page.goto(f"{base}/#/jobs")
        page.check(f'input[data-compare="{job_id}"]')
        page.check(f'input[data-compare="{new_id}"]')
        page.click("#compare-selected")
        expect(page.locator("#compare-table")).to_be_visible(timeout=30_000)
        comparison = http.get(f"{base}/api/compare", params={"jobs": f"{job_id},{new_id}"}).json()
        expect(page.locator("#compare-rows-note")).to_have_attribute("data-same-rows", "true")
        for item in comparison["jobs"]:
            accuracy = item["scores"]["accuracy"]
            expect(page.locator(f'#compare-table td[data-job="{item["id"]}"]').first).to_be_visible()
            expect(page.locator("#compare-table")).to_contain_text(f"{accuracy * 100:.1f}%")
        expect(page.locator("#compare-differing-count")).to_have_attribute(
            "data-total", str(comparison["differing_total"]))
        errors.assert_none()


def check_data_view(page, base: str, job_id: str) -> None:
    """Label chart, curation counts, paging and the label filter agree with the data set."""
    dataset = [json.loads(line) for line in http.get(f"{base}/api/jobs/{job_id}/dataset").text.splitlines()]
    expect(page.locator("#label-chart")).to_contain_text("spam")
    expect(page.locator("#label-chart")).to_contain_text("ham")
    live = [r for r in dataset if not r.get("deleted")]  # the CLI's import deleted a row
    expect(page.locator("#curation")).to_contain_text(f"{len(live)} kept")
    expect(page.locator("#examples-range")).to_have_text(f"1–{min(20, len(dataset))} of {len(dataset)}")
    page.select_option("#label-filter", "spam")
    spam = sum(r["output"] == "spam" for r in dataset)
    expect(page.locator("#examples-range")).to_have_text(f"1–{min(20, spam)} of {spam}")
    outputs = page.locator("#examples tbody td:nth-child(3)").all_inner_texts()
    assert outputs and set(outputs) == {"spam"}
    expect(page.locator("#examples .prob.top").first).to_be_visible()


def check_report_view(page, base: str, job_id: str) -> None:
    """The report tab shows the API's report: verdict, the three models, per label, confusion,
    and as many wrong rows as the predictions say."""
    report = http.get(f"{base}/api/jobs/{job_id}/report").json()
    page.click("#tab-report")
    expect(page.locator("#verdict")).to_contain_text(report["verdict"])
    comparison = page.locator("#model-comparison")
    for name in ("Teacher", "Untuned student", "Tuned student"):
        expect(comparison).to_contain_text(name)
    expect(comparison).to_contain_text(f"{report['student']['accuracy'] * 100:.1f}%")
    low, high = report["student"]["accuracy_ci95"]
    expect(page.locator("#side-by-side")).to_contain_text(f"({low * 100:.1f}%–{high * 100:.1f}%)")
    expect(page.locator("#per-label")).to_contain_text("spam")
    expect(page.locator("#confusion")).to_contain_text("ham")
    wrong = http.get(f"{base}/api/jobs/{job_id}/predictions", params={"wrong": "student"}).json()["total"]
    expect(page.locator("#wrong-examples")).to_contain_text(f"of {wrong} wrong" if wrong else "got every row right")
    expect(page.locator("#exports")).to_contain_text("student.q8_0.gguf")
    expect(page.locator("#exports")).to_contain_text(report["recommended_export"])
    expect(page.locator("#chat-format-check")).to_contain_text("checked byte for byte")
    expect(page.locator("#costs")).to_contain_text("llama.cpp")


def check_bundle_download(page, base: str, job_id: str, bundle: Path) -> None:
    """Every artifact is listed with its checksum; the bundle button downloads a tar whose
    SHA256SUMS covers every artifact and matches every file in it."""
    artifacts = http.get(f"{base}/api/jobs/{job_id}/artifacts").json()["items"]
    page.click("#tab-artifacts")
    expect(page.locator("#artifacts tbody tr")).to_have_count(len(artifacts))
    for artifact in artifacts:
        expect(page.locator("#artifacts")).to_contain_text(artifact["sha256"])
    with page.expect_download(timeout=300_000) as download:
        page.click("#download-bundle")
    download.value.save_as(bundle)
    with tarfile.open(bundle) as tar:
        def member(name: str) -> bytes:
            file = tar.extractfile(f"{job_id}/{name}")
            assert file is not None, name
            return file.read()

        sums = {name: digest for digest, name in
                (line.split("  ", 1) for line in member("SHA256SUMS").decode().splitlines())}
        assert set(sums) == {a["name"] for a in artifacts}
        for name, digest in sums.items():
            assert hashlib.sha256(member(name)).hexdigest() == digest, name


def test_trained_student_is_evaluated_packaged_and_served(client, live_service, data_job):
    if not data_job.get("model_ok"):
        pytest.skip("the whole job did not finish")
    job_id = data_job["id"]
    job = client.get(f"/api/jobs/{job_id}").json()
    stages = {s["name"]: s for s in job["stages"]}
    train = stages["train"]["metrics"]
    assert train["steps"] > 0 and len(train["loss_history"]) == train["steps"] and train["soft_labels"] is True

    report = client.get(f"/api/jobs/{job_id}/report").json()
    for name in ("teacher", "base_student", "student"):
        part = report[name]
        assert part["n"] == len(TEST_SET) and 0 <= part["accuracy"] <= 1 and part["macro_f1"] is not None
        assert set(part["per_label"]) == {"spam", "ham"} and part["confusion"]
        assert part["latency_ms"]["p50"] > 0 and part["latency_ms"]["p95"] >= part["latency_ms"]["p50"]
        assert part["size_bytes"] > 0
    # Whether 30 examples from the CPU teacher (0.6-0.75 on these messages) make a *better*
    # classifier is noise at 60 test rows (seen: tuned 0.58 and 0.40 against untuned 0.50 in two
    # runs of this test); bench/quality.py measures quality with 150 examples. What must hold here:
    # the student learned its data and answers in the task's format.
    losses = [entry["loss"] for entry in train["loss_history"]]
    assert min(losses[-5:]) < 0.5 * losses[0], f"training did not fit its data: {losses}"
    assert report["student"]["free_generation"]["valid_label_rate"] >= 0.9, report["student"]["free_generation"]
    # Every score carries its 95% interval, and the verdict follows it and the gap closed.
    for model in ("teacher", "base_student", "student"):
        low, high = report[model]["accuracy_ci95"]
        assert low <= report[model]["accuracy"] <= high, report[model]
        assert "macro_f1_ci95" in report[model]
    tuned, teacher, untuned = (report[m]["accuracy"] for m in ("student", "teacher", "base_student"))
    reaches = report["student"]["accuracy_ci95"][1] >= teacher
    closed = (tuned - untuned) / (teacher - untuned) if teacher > untuned else None
    assert report["closed"] == (None if closed is None else round(closed, 4))
    assert report["verdict"] == ("deploy" if reaches or (closed is not None and closed >= 0.8) else "retune")
    assert report["verdict_reason"] == ("reaches_teacher" if reaches else "closed_gap" if report["verdict"] == "deploy"
                                        else "behind_teacher")

    # Issue 16: the default exports (f16, q8_0) each answered the test rows in llama.cpp; the f16
    # file as the student did in transformers; the chat format equal byte for byte; costs priced.
    exports = {e["export"]: e for e in report["exports"]}
    assert set(exports) == {"f16", "q8_0"} and all(e["n"] == len(TEST_SET) for e in exports.values())
    assert exports["f16"]["same_answers"] >= 0.95, exports["f16"]
    assert report["recommended_export"] in {e["name"] for e in exports.values()}
    assert report["chat_format_check"]["ok"], report["chat_format_check"]
    assert [r["runtime"] for r in report["costs"]["rows"]] == ["vLLM", "transformers", "llama.cpp", "llama.cpp"]

    artifacts = {a["name"]: a for a in client.get(f"/api/jobs/{job_id}/artifacts").json()["items"]}
    assert MODEL_ARTIFACTS <= set(artifacts)
    for name in artifacts:
        digest = hashlib.sha256()
        with client.stream("GET", f"/api/jobs/{job_id}/artifacts/{name}") as response:
            assert response.status_code == 200
            for chunk in response.iter_bytes():
                digest.update(chunk)
        assert digest.hexdigest() == artifacts[name]["sha256"], name

    with client.stream("GET", f"/api/jobs/{job_id}/bundle") as response:
        assert response.status_code == 200
        members = {m.name.split("/", 1)[1]: m.size for m in tarfile.open(fileobj=_Reader(response), mode="r|")}
    assert {n: a["size"] for n, a in artifacts.items()}.items() <= members.items() and "SHA256SUMS" in members

    from transformers import AutoModelForCausalLM

    from app.artifacts import MODEL_FOLDER, folder_path

    # Read from the store, as any other machine would.
    model = AutoModelForCausalLM.from_pretrained(folder_path(live_service.storage(), uuid.UUID(job_id), MODEL_FOLDER))
    assert model.num_parameters() > 0

    answers = []
    for row in TEST_SET[:20]:
        response = client.post("/v1/chat/completions", json={
            "model": job_id, "messages": [{"role": "user", "content": row["input"]}], "max_tokens": 8})
        assert response.status_code == 200, response.text
        answers.append(response.json()["choices"][0]["message"]["content"].strip())
    labelled = sum(answer in ("spam", "ham") for answer in answers)
    assert labelled >= 18, answers
    print(f"\nteacher {report['teacher']['accuracy']}, untuned {report['base_student']['accuracy']}, "
          f"tuned {report['student']['accuracy']}, verdict {report['verdict']}, served labels {labelled}/20, "
          f"exports {[(e['name'], e['accuracy'], e['same_answers']) for e in report['exports']]}, "
          f"stages {[(s['name'], s['started_at'], s['finished_at']) for s in job['stages']]}")


def test_cli_shows_the_report_and_downloads_the_checked_model(client, live_service, data_job, tmp_path):
    if not data_job.get("model_ok"):
        pytest.skip("the whole job did not finish")
    job_id = data_job["id"]
    if "retrained" in data_job:
        compared = vibetune(live_service, "compare", job_id, data_job["retrained"], cwd=tmp_path)
        assert compared.returncode == 0, compared.stderr
        assert job_id[:8] in compared.stdout and data_job["retrained"][:8] in compared.stdout
        assert "epochs" in compared.stdout, "the differing training option is shown"
    report = client.get(f"/api/jobs/{job_id}/report").json()
    status = vibetune(live_service, "status", job_id, cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert "succeeded" in status.stdout and f"verdict: {report['verdict']}" in status.stdout
    assert f"{report['student']['accuracy']:.3f}" in status.stdout
    assert f"{report['teacher']['accuracy']:.3f}" in status.stdout

    result = vibetune(live_service, "download", job_id, "--out", "model-files", cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr
    artifacts = client.get(f"/api/jobs/{job_id}/artifacts").json()["items"]
    for artifact in artifacts:
        assert sha256(tmp_path / "model-files" / artifact["name"]) == artifact["sha256"], artifact["name"]
    assert (tmp_path / "model-files" / "model" / "config.json").is_file()
    assert (tmp_path / "model-files" / "student.gguf").is_file()


class _Reader:
    """A file-like view of a streamed response body, for tarfile's stream mode."""

    def __init__(self, response):
        self.chunks, self.buffer = response.iter_bytes(), b""

    def read(self, size=-1):
        while size < 0 or len(self.buffer) < size:
            chunk = next(self.chunks, None)
            if chunk is None:
                break
            self.buffer += chunk
        size = len(self.buffer) if size < 0 else size
        out, self.buffer = self.buffer[:size], self.buffer[size:]
        return out


def test_packaged_student_folder_is_served_by_vllm(live_service, data_job, tmp_path):
    """The `model/` folder a person downloads runs in vLLM as it is (the real vLLM server)."""
    if not data_job.get("model_ok"):
        pytest.skip("the whole job did not finish")
    from app.artifacts import MODEL_FOLDER, folder_path
    from tests.support.processes import Process, free_port
    from workers.teacher_server import server_command, server_env

    folder = folder_path(live_service.storage(), uuid.UUID(data_job["id"]), MODEL_FOLDER)
    port = free_port()
    server = Process(server_command(folder, "student", port), tmp_path / "vllm-student.log", env=server_env())
    base = f"http://127.0.0.1:{port}/v1"
    try:
        server.wait_for(lambda: _answers(f"{base}/models"), timeout=900, what="vLLM serving the student")
        labelled = 0
        for row in TEST_SET[:10]:
            reply = http.post(f"{base}/chat/completions", timeout=60, json={
                "model": "student", "messages": [{"role": "user", "content": row["input"]}],
                "max_tokens": 8, "temperature": 0})
            assert reply.status_code == 200, reply.text
            labelled += reply.json()["choices"][0]["message"]["content"].strip() in ("spam", "ham")
    finally:
        server.stop(timeout=30)
    assert labelled >= 9, server.output()[-2000:]


def _answers(url: str) -> bool:
    try:
        return http.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
