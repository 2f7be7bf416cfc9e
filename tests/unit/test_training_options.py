"""Mapping a job's training options to TRL's SFTConfig."""

from workers.training.options import resolve, sft_config


def test_small_students_are_fully_fine_tuned_by_default():
    plan = resolve({}, n_params=135_000_000)
    assert plan.method == "full" and plan.learning_rate == 5e-5 and plan.epochs == 3.0
    assert plan.soft_label_weight == 0.5 and plan.temperature == 2.0


def test_big_students_get_lora_by_default():
    plan = resolve({"method": None, "epochs": None}, n_params=7_000_000_000)
    assert plan.method == "lora" and plan.learning_rate == 2e-4 and plan.lora_r == 16


def test_the_persons_options_win():
    plan = resolve({"method": "lora", "learning_rate": 1e-3, "epochs": 1, "batch_size": 4, "seed": 7}, 135_000_000)
    assert (plan.method, plan.learning_rate, plan.epochs, plan.batch_size, plan.seed) == ("lora", 1e-3, 1, 4, 7)


def test_sft_config_carries_the_plan(tmp_path):
    plan = resolve({"epochs": 2, "batch_size": 4, "max_length": 128}, 135_000_000)
    config = sft_config(plan, tmp_path, bf16=False, save_steps=10)
    assert config.num_train_epochs == 2 and config.per_device_train_batch_size == 4
    assert config.max_length == 128 and config.learning_rate == 5e-5
    assert config.completion_only_loss is True and config.logging_steps == 1
    assert config.save_steps == 10 and config.output_dir == str(tmp_path)
    assert config.report_to == [] or config.report_to == "none"
    assert config.gradient_accumulation_steps == 1 and "micro_batch" not in plan.as_dict()

    import dataclasses

    micro = dataclasses.replace(plan, micro_batch=2)
    config = sft_config(micro, tmp_path, bf16=False)
    assert config.per_device_train_batch_size == 2 and config.gradient_accumulation_steps == 2
    assert micro.as_dict()["micro_batch"] == 2


def test_small_data_sets_get_more_epochs_so_the_run_makes_enough_steps():
    from workers.training.options import MIN_STEPS, default_epochs

    assert default_epochs(1000, 8) == 3.0, "big data sets keep the usual 3 epochs"
    epochs = default_epochs(30, 8)  # 4 steps an epoch
    assert epochs == 10.0 and epochs * 4 >= MIN_STEPS
    assert default_epochs(2, 8) == 20.0, "capped"


def test_long_sequences_run_as_micro_batches_of_a_divisor_of_the_batch():
    from workers.training.options import TOKENS_PER_MICRO_BATCH, micro_batch_size

    assert micro_batch_size(8, 256) == 8  # the default fits as it is
    assert micro_batch_size(8, 650) == 2  # 3 would fit the budget but does not divide 8
    assert micro_batch_size(6, 650) == 3
    assert micro_batch_size(8, 5000) == 1
    assert micro_batch_size(7, 1024) == 1  # a prime batch has no smaller divisor that fits
    for batch in range(1, 17):
        for length in (64, 300, 700, 2100):
            micro = micro_batch_size(batch, length)
            assert batch % micro == 0 and (micro == 1 or micro * length <= TOKENS_PER_MICRO_BATCH)


def test_fit_lengths_raises_max_length_only_for_tools_in_the_prompt_and_adds_micro_batches():
    from workers.training.run import fit_lengths

    plan = resolve({"batch_size": 8, "max_length": 256}, 135_000_000)
    notes: list[str] = []
    raised = fit_lengths(plan, 650, tools_in_prompt=True, notes=notes)
    assert raised.max_length == 650 and raised.micro_batch == 2 and len(notes) == 2
    notes = []
    kept = fit_lengths(plan, 650, tools_in_prompt=False, notes=notes)
    assert kept.max_length == 256 and kept.micro_batch is None and "lose the end" in notes[0]
    assert fit_lengths(plan, 100, tools_in_prompt=True, notes=[]) == plan
