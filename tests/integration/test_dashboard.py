"""The dashboard in real headless Chromium (Debian's, driven by Playwright) against the real API
process: the form, its errors, and a submitted job going live without a reload. The finished-job
views (data, training, report, artifacts, playground) are driven in test_whole_job.py on a job
the real stages made."""

from __future__ import annotations

import json
import re

from playwright.sync_api import expect

from tests.conftest import ADMIN_KEY
from tests.support import http
from tests.support.browser import assert_not_reloaded, browser_page, sign_in_with_form, stays_on_same_document
from tests.support.datasets import sms_spam
from tests.support.factories import make_finished_job, make_job
from workers.scoring import score_answers

# Chromium logs every 4xx/5xx answer as a console error; these are the ones the tests provoke
# (the form's validation errors; /health is 503 where no teacher runs).
EXPECTED_HTTP_ERRORS = ("status of 422", "status of 503")
# Signed out, the first /api/me is 401; a wrong key at the sign-in form too.
SIGNED_OUT_ERRORS = ("status of 401", "status of 503")


def test_sign_in_form_admin_keys_view_and_sign_out(api_service):
    bobs_job = str(make_job("bob", task="bob's private task"))
    with browser_page(key=None) as (page, errors):
        page.goto(f"{api_service.url}/#/jobs")
        expect(page.locator("#sign-in")).to_be_visible()
        expect(page.locator("#f-key")).to_be_focused()
        page.fill("#f-key", "vt_not_a_key")
        page.click("#sign-in button[type=submit]")
        expect(page.locator("#e-key")).to_contain_text("unknown or revoked")
        assert page.evaluate("document.cookie") == "", "the key never sits where page scripts can read it"

        sign_in_with_form(page, api_service.url, ADMIN_KEY)
        expect(page.locator("#who")).to_have_text("admin (admin)")
        expect(page.locator(f"[data-job='{bobs_job}']")).to_be_visible()  # an admin sees everyone's jobs
        page.click("#nav-keys")
        page.fill("#f-owner", "olga")
        page.click("#new-key-form button[type=submit]")
        expect(page.locator("#made-key")).to_have_text(re.compile(r"^vt_[A-Za-z0-9_-]{43}$"))
        olgas_key = page.locator("#made-key").text_content() or ""
        expect(page.locator("#key-rows tr", has_text="olga")).to_have_count(1)

        page.click("#sign-out")
        expect(page.locator("#sign-in")).to_be_visible()
        sign_in_with_form(page, api_service.url, olgas_key)
        expect(page.locator("#who")).to_have_text("olga")
        expect(page.locator("#nav-keys")).to_be_hidden()
        expect(page.locator("#jobs")).to_be_visible()
        expect(page.locator(f"[data-job='{bobs_job}']")).to_have_count(0)  # not olga's
        errors.assert_none(allowed=SIGNED_OUT_ERRORS)


def test_form_shows_each_api_error_next_to_its_field(api_service):
    with browser_page() as (page, errors):
        page.goto(f"{api_service.url}/#/new")
        expect(page.locator("#f-teacher option")).not_to_have_count(0)
        expect(page.locator("#f-task")).to_be_focused()
        page.fill("[name=task]", "Decide whether an SMS is spam")
        page.fill("[name=labels]", "spam")
        page.fill("[name=num_examples]", "0")
        page.fill("[name=test_set]", "input,output\nWin a prize now,maybe")
        page.click("[type=submit]")

        expect(page.locator("#e-labels")).to_contain_text("at least two labels")
        expect(page.locator("#e-num_examples")).to_contain_text("greater than 0")
        expect(page.locator("[name=labels]")).to_have_attribute("aria-invalid", "true")
        expect(page).to_have_url(re.compile(r"#/new$"))

        page.fill("[name=labels]", "spam, ham")
        page.fill("[name=num_examples]", "20")
        page.click("[type=submit]")
        expect(page.locator("#e-test_set")).to_contain_text("row 0, output: 'maybe' is not one of the labels")
        expect(page.locator("#e-labels")).to_be_hidden()

        page.fill("[name=test_set]", "text;label\nWin a prize now;spam")
        page.click("[type=submit]")
        expect(page.locator("#e-test_set")).to_contain_text("header input,output")
        errors.assert_none(allowed=EXPECTED_HTTP_ERRORS)
    assert http.get(f"{api_service.url}/api/jobs").json()["total"] >= 0  # the server survived it all


WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def test_form_for_extraction_fields_and_tool_calling_tools(api_service):
    with browser_page() as (page, errors):
        page.goto(f"{api_service.url}/#/new")
        expect(page.locator("#f-teacher option")).not_to_have_count(0)
        page.fill("[name=task]", "Pull the booking details out of restaurant emails")
        page.select_option("#f-task_type", "extraction")
        expect(page.locator("[name=labels]")).to_be_hidden()
        expect(page.locator("[name=tools]")).to_be_hidden()
        page.get_by_label("Field 1 name").fill("party_size")
        page.get_by_label("Field 1 description").fill("how many people")
        page.get_by_label("Field 1 type").select_option("integer")
        page.click("#add-field")
        expect(page.get_by_label("Field 2 name")).to_be_focused()
        page.keyboard.type("guest")
        page.get_by_label("Field 2 must appear in the text").uncheck()
        page.click("#add-field")
        page.get_by_label("Field 3 name").fill("3rd")
        seed = {"input": "Table for 4, Ada", "output": {"party_size": 4, "guest": "Ada"}}
        page.fill("[name=examples]", json.dumps(seed))  # JSON Lines, the output an object
        page.click("[type=submit]")
        expect(page.locator("#e-fields")).to_contain_text('field 3 name: "3rd" is not a field name')
        expect(page.get_by_label("Field 3 name")).to_have_attribute("aria-invalid", "true")
        page.get_by_label("Field 3 remove").click()
        page.click("[type=submit]")

        page.wait_for_url(re.compile(r"#/jobs/[0-9a-f-]{36}"))
        job_id = re.search(r"#/jobs/([0-9a-f-]{36})", page.url).group(1)
        spec = http.get(f"{api_service.url}/api/jobs/{job_id}").json()["spec"]
        http.post(f"{api_service.url}/api/jobs/{job_id}/cancel")
        assert spec["task_type"] == "extraction" and spec["labels"] is None
        assert spec["fields"] == [
            {"name": "party_size", "description": "how many people", "type": "integer", "span": True},
            {"name": "guest", "description": "", "type": "string", "span": False}]
        assert spec["examples"] == [{"input": "Table for 4, Ada", "output": '{"party_size":4,"guest":"Ada"}'}]

        page.goto(f"{api_service.url}/#/new")
        page.fill("[name=task]", "Answer weather questions with the weather tool")
        page.select_option("#f-task_type", "tool_calling")
        expect(page.locator("#fields-editor")).to_be_hidden()
        page.fill("[name=tools]", '[{"type": "function",')
        page.locator("[name=tools]").blur()  # checked for JSON syntax as soon as it is left
        expect(page.locator("#e-tools")).to_contain_text("not valid JSON")
        page.fill("[name=tools]", json.dumps([WEATHER, WEATHER]))
        page.click("[type=submit]")
        expect(page.locator("#e-tools")).to_have_text("tools.1.function.name: duplicate tool name 'get_weather'")
        expect(page.locator("[name=tools]")).to_have_attribute("aria-invalid", "true")
        expect(page).to_have_url(re.compile(r"#/new$"))
        errors.assert_none(allowed=EXPECTED_HTTP_ERRORS)


def scored(kind: str, expected: list[str], answers: dict[str, list[str | None]], **extra) -> dict:
    """The evaluate stage's metrics for `answers` (per model), scored by the real rule of `kind`."""
    return {"evaluate": {**{model: score_answers(expected, predicted, kind, **extra)
                            for model, predicted in answers.items()}, "verdict": "retune", "ratio": 0.5}}


def test_report_tab_of_extraction_qa_and_tool_calling_jobs(api_service):
    bookings = [json.dumps({"party_size": 4, "guest": "Ada"}), json.dumps({"party_size": 2, "guest": "Bo"})]
    extraction = make_finished_job(task="pull booking details (report)", fields="party_size::integer,guest",
                                   metrics=scored("extraction", bookings, {
                                       "teacher": bookings, "base_student": [None, None],
                                       "student": [json.dumps({"party_size": 4, "guest": "Ada"}), "oops"]}))
    qa = make_finished_job(task="answer from the passage (report)", task_type="qa", metrics=scored(
        "qa", ["Paris", "the blue whale"], {"teacher": ["paris", "blue whale"], "student": ["Lyon", "a whale"]}))
    calls = [json.dumps({"name": "get_weather", "arguments": {"city": "Paris"}}), ""]
    tools = make_finished_job(task="weather questions (report)", tools=[WEATHER], metrics=scored(
        "tool_calling", calls, {"teacher": calls, "student": ['{"name": "get_weather", "arguments": {"city": "Lyon"}}',
                                                            "No tool needed."]}, tools=[WEATHER]))
    with browser_page() as (page, errors):
        page.goto(f"{api_service.url}/#/jobs/{extraction}/report")
        guest = page.locator("#per-field tr[data-field-name=guest]")
        expect(guest.locator("[data-model=teacher][data-metric=f1]")).to_have_text("1.000")
        expect(guest.locator("[data-model=student][data-metric=recall]")).to_have_text("0.500")
        expect(page.locator("#per-field thead")).to_contain_text("Untuned student")
        expect(page.locator("#side-by-side")).to_contain_text("Parsed")
        expect(page.locator("#side-by-side tbody tr").nth(2)).to_contain_text("50.0%")  # the tuned student parses 1/2
        expect(page.locator("#per-label")).to_have_count(0)

        page.goto(f"{api_service.url}/#/jobs/{qa}/report")
        expect(page.locator("#side-by-side thead")).to_contain_text("Exact match (EM)")
        expect(page.locator("#side-by-side tbody tr").nth(1)).to_contain_text("0.333")  # the tuned student's F1

        page.goto(f"{api_service.url}/#/jobs/{tools}/report")
        for header in ("Call accuracy", "Valid calls", "No-call accuracy"):
            expect(page.locator("#side-by-side thead")).to_contain_text(header)
        rows = page.locator("#mismatches tbody tr")
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text('get_weather({"city":"Paris"})')
        expect(rows.first).to_contain_text('{"name": "get_weather", "arguments": {"city": "Lyon"}}')
        expect(rows.first).to_contain_text("wrong value for city")
        page.select_option("#mismatch-model", "teacher")
        expect(page.locator("#mismatches")).to_contain_text("Every call was right")
        # No predictions file was stored for these made-up jobs: the wrong-rows card's request is a 404.
        errors.assert_none(allowed=(*EXPECTED_HTTP_ERRORS, "status of 404"))


def test_pages_fit_a_phone_screen_and_work_from_the_keyboard(api_service):
    with browser_page(width=390, height=844) as (page, errors):
        for route in ("#/new", "#/jobs"):
            page.goto(f"{api_service.url}/{route}")
            page.wait_for_load_state("networkidle") if route == "#/new" else page.wait_for_selector("#job-rows td")
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{route} is {overflow}px wider than a phone screen"
        page.goto(f"{api_service.url}/#/new")
        page.keyboard.type("Sort support tickets into billing, shipping and technical")
        page.keyboard.press("Tab")
        expect(page.locator("#f-task_type")).to_be_focused()
        page.keyboard.press("Tab")
        page.keyboard.type("billing, shipping")
        expect(page.locator("[name=labels]")).to_have_value("billing, shipping")
        for kind in ("extraction", "tool_calling"):  # the fields editor and the tools box fit too
            page.select_option("#f-task_type", kind)
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"the {kind} form is {overflow}px wider than a phone screen"
        errors.assert_none(allowed=EXPECTED_HTTP_ERRORS)


def test_a_submitted_job_shows_up_and_changes_status_without_reloading(live_service, tmp_path):
    test_csv = tmp_path / "test.csv"
    rows = sms_spam(per_class=5)
    test_csv.write_text("input,output\n" + "".join(f'"{r["input"].replace(chr(34), chr(34) * 2)}",{r["output"]}\n'
                                                   for r in rows))
    with browser_page() as (page, errors):
        page.goto(f"{live_service.url}/#/new")
        stays_on_same_document(page)
        expect(page.locator("#f-teacher option")).not_to_have_count(0)
        page.fill("[name=task]", "Decide whether an SMS text message is spam or a normal message")
        page.fill("[name=labels]", "spam, ham")
        page.set_input_files("[data-upload=test_set]", str(test_csv))
        expect(page.locator("[name=test_set]")).to_have_value(re.compile(r"^input,output\n"))
        page.fill("[name=num_examples]", "20")
        page.check("[name=until]")
        page.click("[type=submit]")

        page.wait_for_url(re.compile(r"#/jobs/[0-9a-f-]{36}"))
        job_id = re.search(r"#/jobs/([0-9a-f-]{36})", page.url).group(1)
        job = http.get(f"{live_service.url}/api/jobs/{job_id}").json()
        assert job["spec"]["until"] == "data" and job["spec"]["labels"] == ["spam", "ham"]
        assert len(job["spec"]["test_set"]) == len(rows) and job["spec"]["num_examples"] == 20

        # The worker picks the job up and the page follows it over Server-Sent Events.
        expect(page.locator("#job-status .badge")).to_have_text("running", timeout=60_000)
        expect(page.locator("[data-stage=plan]")).not_to_have_attribute("data-status", "pending", timeout=60_000)

        page.click("[data-nav=jobs]")
        row = page.locator(f"[data-job='{job_id}']")
        expect(row).to_contain_text("running")
        http.post(f"{live_service.url}/api/jobs/{job_id}/cancel")  # changed elsewhere: the list follows
        expect(row).to_contain_text("canceled", timeout=20_000)

        row.get_by_role("link").click()
        page.click("#resume")
        expect(page.locator("#job-status .badge")).to_have_text(re.compile("queued|running"))
        page.click("#cancel")
        expect(page.locator("#job-status .badge")).to_have_text("canceled", timeout=20_000)
        expect(page.locator("#resume")).to_be_visible()
        assert_not_reloaded(page)
        errors.assert_none()
    assert http.get(f"{live_service.url}/api/jobs/{job_id}").json()["status"] == "canceled"


def test_csv_reader_handles_quotes_commas_newlines_and_column_order(api_service):
    """The dashboard's own CSV reader (frontend/js/csv.js), run in the browser."""
    text = ('\ufeffoutput,input,notes\r\n'
            'spam,"WIN a ""free"" prize, call now",x\r\n'
            'ham,"see you at 6\nbring the keys",\r\n'
            '\r\n'
            'ham,plain,\n')
    with browser_page() as (page, errors):
        page.goto(f"{api_service.url}/#/new")
        parsed = page.evaluate("async (text) => (await import('/js/csv.js')).parseExamples(text)", text)
        assert parsed == [
            {"input": 'WIN a "free" prize, call now', "output": "spam"},
            {"input": "see you at 6\nbring the keys", "output": "ham"},
            {"input": "plain", "output": "ham"},
        ]
        for bad, message in (("input,output\n\"never closed,spam", "never closed"),
                             ("text,label\nhi,ham", "header input,output"),
                             ("input,output,extra\nonly-one-column", "line 2 has 1 column")):
            error = page.evaluate("""async (text) => {
                try { (await import('/js/csv.js')).parseExamples(text); return null; }
                catch (err) { return err.message; } }""", bad)
            assert error and message in error, (bad, error)
        assert page.evaluate("async () => (await import('/js/csv.js')).parseExamples('  ')") == []
        errors.assert_none(allowed=EXPECTED_HTTP_ERRORS)
