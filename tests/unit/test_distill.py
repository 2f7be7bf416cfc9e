"""The soft-label distillation loss on hand-made distributions."""

import math

import pytest
import torch

from workers.training.distill import mix, soft_label_kl, soften


def test_kl_is_zero_when_the_student_matches_the_teacher():
    teacher = torch.tensor([[0.7, 0.2, 0.1]])
    logits = torch.log(teacher)
    assert soft_label_kl(logits, teacher, temperature=1.0).item() == pytest.approx(0.0, abs=1e-6)


def test_kl_matches_the_formula():
    teacher = torch.tensor([[0.9, 0.1]])
    student = torch.tensor([[0.6, 0.4]])
    expected = 0.9 * math.log(0.9 / 0.6) + 0.1 * math.log(0.1 / 0.4)
    got = soft_label_kl(torch.log(student), teacher, temperature=1.0).item()
    assert got == pytest.approx(expected, rel=1e-5)


def test_temperature_softens_and_scales():
    teacher = torch.tensor([[0.9, 0.1]])
    soft = soften(teacher, 2.0)[0]
    assert soft[0].item() == pytest.approx(3 / 4, rel=1e-5), "sqrt(0.9)/(sqrt(0.9)+sqrt(0.1)) = 0.75"
    student = torch.tensor([[0.0, 0.0]])
    at_t2 = soft_label_kl(student, teacher, temperature=2.0).item()
    by_hand = 4 * (0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5))
    assert at_t2 == pytest.approx(by_hand, rel=1e-5)


def test_kl_pulls_the_student_toward_the_teacher():
    teacher = torch.tensor([[0.8, 0.2], [0.3, 0.7]])
    logits = torch.zeros(2, 2, requires_grad=True)
    soft_label_kl(logits, teacher, temperature=1.0).backward()
    assert logits.grad[0, 0] < 0 < logits.grad[0, 1], "raise label 0 for row 0"
    assert logits.grad[1, 1] < 0 < logits.grad[1, 0], "raise label 1 for row 1"


def test_mix_weights():
    ce, kl = torch.tensor(2.0), torch.tensor(4.0)
    assert mix(ce, kl, 0.0).item() == 2.0 and mix(ce, kl, 1.0).item() == 4.0 and mix(ce, kl, 0.25).item() == 2.5


def test_first_answer_position_is_the_token_before_the_answer():
    from workers.training.trainer import first_answer_positions

    labels = torch.tensor([[-100, -100, -100, 7, 2], [-100, 5, 2, -100, -100], [-100, -100, -100, -100, -100]])
    assert first_answer_positions(labels).tolist() == [2, 0, -1]


def test_checkpoints_are_thinned_to_the_clock_and_skipped_at_the_last_step():
    from types import SimpleNamespace

    from workers.training.trainer import JobCallback

    def step(callback, global_step, max_steps=10):
        control = SimpleNamespace(should_save=True)
        callback.on_step_end(None, SimpleNamespace(global_step=global_step, max_steps=max_steps), control)
        if control.should_save:
            callback.on_save(None, None, control)
        return control.should_save

    ignore = lambda *a: None  # noqa: E731
    patient = JobCallback(ignore, ignore, ignore, checkpoint_seconds=3600)
    assert [step(patient, s) for s in (1, 2, 3)] == [False, False, False], "none within the hour"
    eager = JobCallback(ignore, ignore, ignore, checkpoint_seconds=0)
    assert [step(eager, s) for s in (4, 5, 10)] == [True, True, False], "never at the last step"
