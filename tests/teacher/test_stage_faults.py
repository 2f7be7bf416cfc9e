"""Teacher stages on a misbehaving teacher: garbage answers are counted and dropped, a teacher
that goes away fails the job with `teacher_unavailable` naming its URL."""

from app.artifacts import GENERATED_ARTIFACT as GENERATED
from app.artifacts import LABELED_ARTIFACT as LABELED
from app.config import get_settings
from app.specs import JobSpec
from app.storage import get_storage
from tests.support.factories import load, make_job
from tests.support.faulty_proxy import Faults, FaultyProxy
from tests.teacher.test_teacher_client import SPAM_SPEC
from workers.pipeline import Outcome, run_job
from workers.stages.base import StageContext
from workers.stages.common import read_jsonl, write_jsonl
from workers.stages.label import LabelStage

TEXTS = [
    "URGENT! You have won a 1 week FREE membership in our prize jackpot! Txt CLAIM to 81010",
    "Hey, are we still meeting at the library at 4?",
    "Free entry to win a brand new iPhone, reply YES now",
    "Mum says dinner is at 7, don't be late",
    "Congratulations, your mobile number won 2000 pounds, call 09061701461 to claim",
    "Can you pick up some milk on your way home?",
]


def context(job_id):
    spec = JobSpec(task=SPAM_SPEC["task"], labels=["spam", "ham"], teacher=get_settings().teacher_model,
                   student=get_settings().student_model, num_examples=10)
    work = get_settings().work_dir / str(job_id) / "label"
    work.mkdir(parents=True, exist_ok=True)
    return StageContext(job_id=job_id, spec=spec, work_dir=work, storage=get_storage(),
                        results={"plan": {"task_spec": {**SPAM_SPEC, "topics": [], "styles": [], "lengths": []}}})


def test_garbage_answers_are_counted_and_dropped(teacher_url, settings_env):
    job_id = make_job(task=SPAM_SPEC["task"], labels=["spam", "ham"])
    with FaultyProxy(teacher_url, Faults(garbage_every=3)) as proxy:
        settings_env(TEACHER_URL=proxy.url)
        ctx = context(job_id)
        write_jsonl(ctx, GENERATED, [{"input": t, "bucket": "b"} for t in TEXTS])
        metrics = LabelStage().run(ctx)
    assert metrics["malformed_answers"] == 2 and metrics["labeled"] == 4
    rows = list(read_jsonl(ctx, LABELED))
    assert len(rows) == 4 and all(r["output"] in ("spam", "ham") for r in rows)
    assert all(abs(sum(r["label_probs"].values()) - 1) < 1e-3 for r in rows)


def test_teacher_going_away_mid_job_fails_with_its_url(teacher_url, settings_env):
    job_id = make_job(task=SPAM_SPEC["task"], labels=["spam", "ham"], until="data")
    with FaultyProxy(teacher_url, Faults(die_after=2)) as proxy:
        settings_env(TEACHER_URL=proxy.url, TEACHER_MAX_RETRIES="2")
        assert run_job(job_id) is Outcome.FAILED
    job = load(job_id)
    assert job.error_code == "teacher_unavailable" and proxy.url in job.error_message
    assert job.stage == "plan" and job.stages[0].status == "failed"
