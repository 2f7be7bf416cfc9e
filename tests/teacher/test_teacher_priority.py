"""Request priorities on the real vLLM teacher (started with `--scheduling-policy priority`): the
plan asks as an interactive caller, labelling as bulk work that yields wave by wave, and an
endpoint that does not know the field is used without it."""

from app.config import get_settings
from app.specs import TaskSpec
from tests.support.factories import make_job
from tests.support.faulty_proxy import Faults, FaultyProxy
from tests.teacher.test_stage_faults import TEXTS, context, label_context
from tests.teacher.test_teacher_client import SPAM_SPEC, run, with_teacher
from workers import prompts
from workers.labelling import answer_one
from workers.stages.label import LabelStage
from workers.stages.plan import PlanStage

SPEC = TaskSpec.model_validate(SPAM_SPEC)


def test_the_plan_asks_first_and_labelling_yields_wave_by_wave(teacher_url, settings_env):
    with FaultyProxy(teacher_url, Faults()) as proxy:
        settings_env(TEACHER_URL=proxy.url, TEACHER_CONCURRENCY="2")
        ctx = context(make_job(task=SPAM_SPEC["task"], labels=["spam", "ham"]))
        ctx.work_dir = ctx.work_dir.parent / "plan"
        metrics = PlanStage().run(ctx)
        assert [label["name"] for label in metrics["task_spec"]["labels"]] == ["spam", "ham"]
        assert proxy.bodies and {body["priority"] for body in proxy.bodies} == {0}
        proxy.bodies.clear()
        labelled = LabelStage().run(label_context(TEXTS))
    assert labelled["labeled"] + labelled["malformed_answers"] == len(TEXTS)
    assert sorted(body["priority"] for body in proxy.bodies) == [1, 1, 2, 2, 3, 3]


def test_an_endpoint_refusing_priority_is_used_without_it(teacher_url):
    async def work(t):
        return [await answer_one(t, SPEC, text) for text in TEXTS[:3]]

    with FaultyProxy(teacher_url, Faults(refuse="priority")) as proxy:
        answers, teacher = run(with_teacher(proxy.url, work))
    assert [a["output"] in ("spam", "ham") for a in answers] == [True] * 3
    assert ["priority" in body for body in proxy.bodies] == [True, False, False, False]
    assert all("structured_outputs" in body for body in proxy.bodies), "the guidance is kept"
    assert not teacher.send_priority and teacher.guided and teacher.usage["retries"] == 0


def test_priorities_can_be_turned_off(teacher_url):
    async def work(t):
        return await t.chat(prompts.label_messages(SPEC, TEXTS[1]), max_tokens=4, choices=["spam", "ham"])

    with FaultyProxy(teacher_url, Faults()) as proxy:
        answer, _ = run(with_teacher(proxy.url, work, priority=False))
    assert answer.text in ("spam", "ham") and "priority" not in proxy.bodies[0]
    assert get_settings().teacher_priority, "on by default"
