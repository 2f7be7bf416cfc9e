"""Real TRL training of the real bundled student (a few steps on real SMS messages)."""

import pytest
from safetensors.torch import load_file

from tests.support.factories import sms_training_rows
from workers.training.answers import answer_token_ids, first_answer_tokens
from workers.training.predict import LabelChooser
from workers.training.run import last_complete_checkpoint, train_student
from workers.training.student import load_student, student_source

STUDENT = "smollm2-135m-instruct"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("train")
    rows = sms_training_rows(16)
    # Half the rows carry the teacher's reason: each becomes a second, rationale example.
    rows = [{**row, "rationale": f"It reads like a {row['output']} message."} if i % 2 else row
            for i, row in enumerate(rows)]
    result = train_student(student=STUDENT, rows=rows, labels=["spam", "ham"],
                           options={"epochs": 1, "batch_size": 8}, checkpoints=out / "ck", out=out / "out")
    return result, out


def test_training_changes_the_weights_and_records_the_loss(trained):
    result, _ = trained
    m = result.metrics
    assert m["plan"]["method"] == "full" and m["steps"] == 3 and m["examples"] == 24
    assert m["rationale_examples"] == 8 and m["repeated_for_balance"] == 0
    assert [entry["step"] for entry in m["loss_history"]] == [1, 2, 3]
    # Batches mix answers and rationales: the KL term is taken over the answers among them.
    assert all(entry["loss"] > 0 and "soft_label_kl" in entry for entry in m["loss_history"])
    assert m["soft_labels"] is True and m["tokens_per_second"] > 0
    before = load_file(f"{student_source(STUDENT)}/model.safetensors")
    after = load_file(result.model_dir / "model.safetensors")
    changed = [name for name in after if not (after[name] == before[name]).all()]
    assert len(changed) > len(after) // 2, "most tensors should move under full fine-tuning"


def test_trained_folder_loads_and_has_the_chat_template(trained):
    result, _ = trained
    tuned = load_student(str(result.model_dir))
    assert tuned.tokenizer.chat_template and (result.model_dir / "generation_config.json").is_file()
    assert LabelChooser(tuned, ["spam", "ham"]).choose([{"role": "user", "content": "Hi mum"}]) in ("spam", "ham")


def test_checkpoints_are_kept_for_resuming_and_a_half_written_one_is_skipped(trained):
    _, out = trained
    newest = last_complete_checkpoint(out / "ck")
    # Three steps, a checkpoint due after each: the one at the last step is skipped (the model is
    # saved right after it anyway).
    assert newest is not None and newest.endswith("checkpoint-2")
    assert not (out / "ck" / "checkpoint-3").exists()
    (out / "ck" / "checkpoint-9").mkdir()  # a worker died while writing it: no trainer_state.json
    assert last_complete_checkpoint(out / "ck") == newest


def test_lora_trains_only_adapters_and_merges(tmp_path):
    result = train_student(student=STUDENT, rows=sms_training_rows(8), labels=["spam", "ham"],
                           options={"method": "lora", "epochs": 1, "batch_size": 8, "lora_r": 4},
                           checkpoints=tmp_path / "ck", out=tmp_path / "out")
    m = result.metrics
    assert m["plan"]["method"] == "lora" and 0 < m["trainable_parameters"] < m["parameters"] / 20
    assert (result.adapter_dir / "adapter_model.safetensors").is_file()
    merged = load_file(result.model_dir / "model.safetensors")
    assert not any("lora" in name for name in merged), "the model folder is merged, with no adapter weights"


def test_answer_tokens_follow_the_chat_template():
    tokenizer = load_student(STUDENT).tokenizer
    ids = first_answer_tokens(tokenizer, ["spam", "ham"])
    assert ids is not None and len(set(ids)) == 2
    assert tokenizer.decode(answer_token_ids(tokenizer, "spam")) == "spam"
    assert first_answer_tokens(tokenizer, ["card_arrival", "card_linking"]) is None


def test_label_chooser_answers_labels_that_share_first_tokens():
    labels = ["card_arrival", "card_linking", "cash_withdrawal"]
    chooser = LabelChooser(load_student(STUDENT), labels)
    for text in ("My card has not arrived yet", "How do I link my card?", "Can I take cash out?"):
        assert chooser.choose([{"role": "user", "content": text}]) in labels


def test_the_soft_label_collator_marks_examples_without_soft_labels_for_the_kl_term_to_skip():
    import math

    from workers.training.trainer import SoftLabelCollator

    collate = SoftLabelCollator(lambda examples: {"n": len(examples)})
    batch = collate([{"soft_labels": [0.75, 0.25]}, {"soft_labels": None}])
    assert batch["n"] == 2
    first, second = batch["soft_labels"].tolist()
    assert first == [0.75, 0.25] and all(math.isnan(v) for v in second)
    assert "soft_labels" not in collate([{"soft_labels": None}]), "no label answer in the batch: no KL term"
    assert "soft_labels" not in collate([{"x": 1}])
