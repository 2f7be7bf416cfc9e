"""The curation levers on the real teacher: self-consistency votes in the label stage, and a
curate stage that drops what the teacher is unsure of, tops up the label short of its share,
trains on the person's seeds and holds data that still lacks a label; and the person's imported
real inputs, shown to generation, labelled and curated into the train split."""

import dataclasses
import re

from app.artifacts import DATASET_ARTIFACT as DATASET
from app.artifacts import GENERATED_ARTIFACT as GENERATED
from app.artifacts import LABELED_ARTIFACT as LABELED
from app.config import get_settings
from app.specs import CurationOptions, JobSpec, Row
from app.storage import get_storage
from tests.support.factories import make_job
from tests.support.faulty_proxy import Faults, FaultyProxy
from tests.teacher.test_teacher_client import SPAM_SPEC
from workers.stages.base import StageContext
from workers.stages.common import read_jsonl, write_jsonl
from workers.stages.curate import CurateStage
from workers.stages.generate import GenerateStage
from workers.stages.label import LabelStage

SPAM = ["URGENT! You have won a 1 week FREE membership in our prize jackpot! Txt CLAIM to 81010",
        "Free entry to win a brand new iPhone, reply YES now",
        "Congratulations, your mobile number won 2000 pounds, call 09061701461 to claim",
        "SALE! 50% off all ringtones this weekend only, text TONE to 85000",
        "You have been selected for a cash prize of 500 pounds. Call now 09050000301",
        "Exclusive offer: cheap loans approved in minutes, reply LOAN",
        "Win a holiday to Spain! Text SUN to 87121 now, 1.50 per msg",
        "Your account has a reward waiting, click the link to claim your gift card"]
HAM = ["Hey, are we still meeting at the library at 4?", "Mum says dinner is at 7, don't be late"]
PLAN = {**SPAM_SPEC, "topics": ["everyday life"], "styles": ["casual text"], "lengths": ["one short sentence"],
        "label_topics": {"ham": ["plans with friends", "family errands"], "spam": ["prize draws"]}}


def context(stage: str, curation: CurationOptions, num_examples: int = 10,
            examples: list[Row] | None = None, inputs: list[str] | None = None,
            test_set: list[Row] | None = None) -> StageContext:
    spec = JobSpec(task=SPAM_SPEC["task"], labels=["spam", "ham"], teacher=get_settings().teacher_model,
                   student=get_settings().student_model, num_examples=num_examples, curation=curation,
                   examples=examples or [], inputs=inputs or [], test_set=test_set or [])
    job_id = make_job(task=SPAM_SPEC["task"], labels=["spam", "ham"])
    work = get_settings().work_dir / str(job_id) / stage
    work.mkdir(parents=True, exist_ok=True)
    return StageContext(job_id=job_id, spec=spec, work_dir=work, storage=get_storage(), sink=None,
                        results={"plan": {"task_spec": PLAN}})


def test_votes_ask_each_input_in_several_phrasings_and_keep_the_majority(teacher_url, settings_env):
    ctx = context("label", CurationOptions(votes=3))
    write_jsonl(ctx, GENERATED, [{"input": t, "bucket": "b", "intended_label": "spam"} for t in SPAM[:3]]
                + [{"input": t, "bucket": "b", "intended_label": "ham"} for t in HAM])
    with FaultyProxy(teacher_url, Faults()) as proxy:
        settings_env(TEACHER_URL=proxy.url)
        metrics = LabelStage().run(ctx)
    assert proxy.requests == 3 * 5, "three phrasings of each of the five inputs"
    assert metrics["votes"] == 3 and metrics["labeled"] == 5
    rows = list(read_jsonl(ctx, LABELED))
    assert all(r["votes"] == 3 and round(r["agreement"], 2) in (0.33, 0.67, 1.0) for r in rows), rows
    assert all(abs(sum(r["label_probs"].values()) - 1) < 1e-3 for r in rows), "averaged soft labels stay a distribution"
    assert metrics["unanimous"] == sum(r["agreement"] == 1.0 for r in rows)
    by_text = {r["input"]: r["output"] for r in rows}
    assert [by_text[t] for t in SPAM[:3]] == ["spam"] * 3, "the teacher's majority on plain spam"


def test_curate_drops_distrusted_rows_tops_up_the_short_label_and_trains_on_seeds(teacher_url, settings_env):
    seeds = [Row(input="Can you grab bread on the way back?", output="ham"),
             Row(input="WIN cash now!!! txt PRIZE to 80808", output="spam")]
    ctx = context("curate", CurationOptions(votes=1, top_up_rounds=1, seed_copies=2, min_label_share=0.0),
                  num_examples=10, examples=seeds)
    sure = {"agreement": 1.0, "votes": 3}
    labelled = [{"input": t, "bucket": "b", "intended_label": "spam", "output": "spam",
                 "label_probs": {"spam": 0.95, "ham": 0.05}, **sure} for t in SPAM[:6]]
    labelled += [{"input": HAM[0], "bucket": "b", "intended_label": "ham", "output": "ham",
                  "label_probs": {"spam": 0.1, "ham": 0.9}, **sure},
                 # Written as ham, labelled spam without conviction.
                 {"input": HAM[1], "bucket": "b", "intended_label": "ham", "output": "spam",
                  "label_probs": {"spam": 0.55, "ham": 0.45}, **sure},
                 # The phrasings disagreed.
                 {"input": SPAM[6], "bucket": "b", "intended_label": "spam", "output": "spam",
                  "label_probs": {"spam": 0.6, "ham": 0.4}, "agreement": 1 / 3, "votes": 3}]
    write_jsonl(ctx, LABELED, labelled)
    with FaultyProxy(teacher_url, Faults()) as proxy:
        settings_env(TEACHER_URL=proxy.url)
        metrics = CurateStage().run(ctx)
    # Counted over the first round's rows and the top-up's alike.
    assert metrics["dropped"]["intent_mismatch"] >= 1 and metrics["dropped"]["low_agreement"] >= 1
    top_up = metrics["top_up"]
    assert top_up["rounds"] == 1 and top_up["short"]["1"] == {"ham": 4}, top_up
    assert top_up["written"] >= 5 and proxy.requests >= 1 + top_up["written"], \
        "the short label got new inputs, written and each labelled"
    dataset = list(read_jsonl(ctx, DATASET))
    assert not {HAM[1], SPAM[6]} & {r["input"] for r in dataset}, "the distrusted rows are gone"
    # How many of the new inputs the teacher labels ham is the teacher's skill (bench/levers.py
    # measures it): the small test teacher sometimes labels all five spam.
    topped = [r for r in dataset if r["bucket"] not in ("b", "seed")]
    assert all("label=ham" in r["bucket"] for r in topped), "the new inputs were written for the short label"
    assert {r["output"] for r in dataset if r["bucket"] != "seed"} == {"spam", "ham"}
    seeded = [r for r in dataset if r["bucket"] == "seed"]
    assert sorted(r["input"] for r in seeded) == sorted([s.input for s in seeds] * 2)
    assert all(r["split"] == "train" for r in seeded), "seeds are trained on, never validated on"
    assert metrics["seed_rows"] == 2 and "hold" not in metrics


def test_a_label_left_short_holds_the_data_with_a_reason(teacher_url, settings_env):
    ctx = context("curate", CurationOptions(votes=1, top_up_rounds=0, seed_copies=0, min_label_share=0.5),
                  num_examples=10)
    write_jsonl(ctx, LABELED, [{"input": t, "bucket": "b", "intended_label": "spam", "output": "spam",
                                "label_probs": {"spam": 0.95, "ham": 0.05}} for t in SPAM])
    metrics = CurateStage().run(ctx)
    assert metrics["hold"]["code"] == "label_short" and "'ham' (0% of its share)" in metrics["hold"]["message"]
    assert metrics["label_shares"] == {"spam": 1.6, "ham": 0.0}
    assert [w["code"] for w in metrics["warnings"]] == ["label_short"]


def test_a_committee_of_teachers_shares_the_votes_and_each_ones_agreement_is_reported(teacher_url, settings_env):
    """COMMITTEE_TEACHERS: here a second endpoint in front of the same server (its own proxy)."""
    ctx = context("label", CurationOptions(votes=3))
    write_jsonl(ctx, GENERATED, [{"input": t, "bucket": "b", "intended_label": "spam"} for t in SPAM[:2]])
    with FaultyProxy(teacher_url, Faults()) as main, FaultyProxy(teacher_url, Faults()) as other:
        settings_env(TEACHER_URL=main.url, COMMITTEE_TEACHERS=other.url)
        metrics = LabelStage().run(ctx)
    assert (main.requests, other.requests) == (4, 2), "votes 1 and 3 to the job's teacher, vote 2 to the other"
    assert set(metrics["teacher_agreement"]) == {f"{ctx.spec.teacher}@{main.url}", f"{ctx.spec.teacher}@{other.url}"}
    assert all(0 <= share <= 1 for share in metrics["teacher_agreement"].values())
    assert metrics["teacher_usage"]["requests"] == 6, "usage counts the whole committee"


#: Real messages a person imports: unlabeled, one of them also in the test set.
REAL = ["Congratulations! You won a 500 pound voucher, call 09061234567 to claim",
        "FREE entry into our weekly draw, text WIN to 80085 now",
        "Your mobile bill is overdue, pay now at http://pay-fast.example to avoid charges",
        "Are you still at the office? I'll wait downstairs",
        "Happy birthday! Dinner on me this weekend",
        "Can you send me the photos from Saturday?"]


def test_imported_inputs_guide_generation_and_are_labelled_into_the_train_split_only(teacher_url):
    tests = [Row(input=REAL[5].upper(), output="ham")]  # the same message once normalised
    options = CurationOptions(votes=1, top_up_rounds=0, seed_copies=0, min_label_share=0.0)
    ctx = context("generate", options, num_examples=4, inputs=REAL, test_set=tests)
    generated = GenerateStage().run(ctx)
    assert generated["guide_inputs"] == 5, "every import but the test row's twin may be shown to the teacher"
    assert generated["generated"] >= 5
    label = dataclasses.replace(ctx, work_dir=ctx.work_dir.parent / "label")
    label.work_dir.mkdir(parents=True, exist_ok=True)
    labelled = LabelStage().run(label)
    assert labelled["imported"] == 6 and labelled["imported_repeats"] == 0
    rows = list(read_jsonl(label, LABELED))
    imported = [r for r in rows if r.get("source") == "imported"]
    assert sorted(r["input"] for r in imported) == sorted(REAL)
    assert all(r["output"] in ("spam", "ham") and r["label_probs"] for r in imported), imported
    curate = dataclasses.replace(ctx, work_dir=ctx.work_dir.parent / "curate")
    curate.work_dir.mkdir(parents=True, exist_ok=True)
    metrics = CurateStage().run(curate)
    assert metrics["dropped"]["input_in_test_set"] == 1
    assert metrics["imported"]["rows"] == 6 and metrics["imported"]["kept"] >= 3, metrics
    dataset = list(read_jsonl(curate, DATASET))
    real = [r for r in dataset if r.get("source") == "imported"]
    assert len(real) == metrics["imported"]["kept"] and all(r["split"] == "train" for r in real)
    assert REAL[5] not in {r["input"] for r in dataset}, "a test row is never trained on"
    assert any(r.get("source") != "imported" for r in dataset), "the generated rows are there too"


def test_rationales_give_each_answer_its_teachers_reason_and_reach_the_data_set(teacher_url, settings_env):
    options = CurationOptions(votes=1, rationales=True, top_up_rounds=0, seed_copies=0, min_label_share=0.0)
    ctx = context("label", options)
    write_jsonl(ctx, GENERATED, [{"input": SPAM[0], "bucket": "b", "intended_label": "spam"},
                                 {"input": HAM[0], "bucket": "b", "intended_label": "ham"}])
    with FaultyProxy(teacher_url, Faults()) as proxy:
        settings_env(TEACHER_URL=proxy.url)
        metrics = LabelStage().run(ctx)
    assert proxy.requests == 2 * 2, "an answer, then the reason for it, for each input"
    assert metrics["rationales"] == 2
    rows = list(read_jsonl(ctx, LABELED))
    for row in rows:
        reason = row["rationale"]
        assert isinstance(reason, str) and 3 <= len(reason.split()) and "\n" not in reason, row
        assert not re.search(r"[.!?]\s", reason) and len(reason) <= 300, "cut to its first sentence"
    curate = dataclasses.replace(ctx, work_dir=ctx.work_dir.parent / "curate")
    curate.work_dir.mkdir(parents=True, exist_ok=True)
    CurateStage().run(curate)
    dataset = list(read_jsonl(curate, DATASET))
    assert {r["input"]: r["rationale"] for r in dataset} == {r["input"]: r["rationale"] for r in rows}
