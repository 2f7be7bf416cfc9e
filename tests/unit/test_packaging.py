"""The packaging texts: chat template → Ollama template, the Modelfile, the model card, report.json."""

import json

import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment

from workers.packaging.card import PackageInfo, model_card, modelfile, report_json, results_table
from workers.packaging.chat_check import render_ollama_prompt
from workers.packaging.template import CHATML_TEMPLATE, ChatFormat, ollama_chat_format, read_chat_template

SMOLLM = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SMOLLM_CONFIG = {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>"}
LLAMA3 = (
    "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    " + message['content'] + '<|eot_id|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
LLAMA3_CONFIG = {"bos_token": {"content": "<|begin_of_text|>"}, "eos_token": "<|eot_id|>"}
NO_SYSTEM = (
    "{{ bos_token }}"
    "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
    "{% for message in messages %}<start_of_turn>{{ 'model' if message['role'] == 'assistant' else message['role'] }}\n"
    "{{ message['content'] }}<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)


def jinja(template: str, messages: list[dict[str, str]], **tokens: str) -> str:
    def fail(message: str) -> None:
        raise ValueError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = fail
    return env.from_string(template).render(messages=messages, add_generation_prompt=True, **tokens)


def test_chatml_student_format_is_derived_from_its_template():
    chat = ollama_chat_format(SMOLLM, SMOLLM_CONFIG)
    assert chat is not None and chat.derived and chat.stop == ("<|im_end|>",)
    assert chat.template.endswith("{{ .Prompt }}<|im_end|>\n<|im_start|>assistant\n{{ .Response }}<|im_end|>\n")
    bare = [{"role": "user", "content": "WIN a prize"}]
    assert render_ollama_prompt(chat.template, "", "WIN a prize") == jinja(SMOLLM, bare)
    with_system = [{"role": "system", "content": "Be brief."}, *bare]
    assert render_ollama_prompt(chat.template, "Be brief.", "WIN a prize") == jinja(SMOLLM, with_system)


@pytest.mark.parametrize("adds_bos", [True, False])
def test_a_leading_bos_is_left_to_the_runtime_that_adds_one(adds_bos):
    chat = ollama_chat_format(LLAMA3, LLAMA3_CONFIG, adds_bos=adds_bos)
    assert chat is not None and chat.stop == ("<|eot_id|>",)
    expected = jinja(LLAMA3, [{"role": "user", "content": "hi"}], bos_token="<|begin_of_text|>")
    rendered = render_ollama_prompt(chat.template, "", "hi")
    assert rendered == (expected.removeprefix("<|begin_of_text|>") if adds_bos else expected)


def test_a_template_without_a_system_role_gets_no_system_branch():
    chat = ollama_chat_format(NO_SYSTEM, {"bos_token": "<bos>", "eos_token": "<eos>"}, adds_bos=True)
    assert chat is not None and ".System" not in chat.template
    expected = "<start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n"
    assert render_ollama_prompt(chat.template, "", "hi") == expected
    assert chat.stop == ("<end_of_turn>", "<eos>")


def test_template_braces_in_text_are_escaped():
    template = ("{% for m in messages %}{% if m['role'] == 'assistant' %}=>{{ m['content'] }}\n"
                "{% else %}{{ '{{' + m['content'] + '}}' }}\n{% endif %}{% endfor %}"
                "{% if add_generation_prompt %}=>{% endif %}")
    chat = ollama_chat_format(template, {})
    assert chat is not None
    assert render_ollama_prompt(chat.template, "", "x") == "{{x}}\n=>"


def test_fallbacks():
    broken_chatml = "<|im_start|>{{ messages | no_such_filter }}"
    chat = ollama_chat_format(broken_chatml, {})
    assert chat == ChatFormat(CHATML_TEMPLATE, ("<|im_end|>",), derived=False)
    assert ollama_chat_format("{{ messages | no_such_filter }}", {}) is None
    assert ollama_chat_format(None, {}) is None and ollama_chat_format("", {}) is None


def test_read_chat_template_from_each_place(tmp_path):
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"eos_token": "<e>", "chat_template": "A"}))
    assert read_chat_template(tmp_path) == ("A", {"eos_token": "<e>", "chat_template": "A"})
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(
        {"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]}))
    assert read_chat_template(tmp_path)[0] == "D"
    (tmp_path / "chat_template.jinja").write_text("J")
    assert read_chat_template(tmp_path)[0] == "J"
    assert read_chat_template(tmp_path / "missing") == (None, {})


def test_modelfile():
    chat = ChatFormat("{{ .Prompt }}->{{ .Response }}", ("<|im_end|>", 'say "stop"'), derived=True)
    assert modelfile(chat) == (
        'FROM ./student.gguf\n\nTEMPLATE """{{ .Prompt }}->{{ .Response }}"""\n\n'
        'PARAMETER stop "<|im_end|>"\nPARAMETER stop "say \\"stop\\""\nPARAMETER temperature 0\n'
    )
    assert modelfile(None) == "FROM ./student.gguf\n\nPARAMETER temperature 0\n"


INFO = PackageInfo(
    job_id="0123456789abcdef",
    task_spec={"task": "Sort tickets | billing or not", "task_type": "classification",
               "labels": [{"name": "billing", "description": "about money"}, {"name": "other", "description": ""}]},
    train={"method": "lora", "plan": {"epochs": 2, "lora_r": 16, "nested": {"x": 1}}, "train_loss": 0.5},
    evaluate={"teacher": {"accuracy": 0.8, "n": 20, "latency_ms": {"p50": 100.0, "p95": 200.0}},
              "base_student": None, "student": {"accuracy": 0.75, "macro_f1": None, "n": 20},
              "verdict": "retune", "reference": "validation"},
    gguf={"architecture": "llama", "file_type": "MOSTLY_F16", "tensor_count": 272, "size_bytes": 270_885_856},
    student="HuggingFaceTB/SmolLM2-135M-Instruct", teacher="big-teacher", has_adapter=True,
)


def test_model_card_shows_what_was_measured_and_marks_what_was_not():
    card = model_card(INFO)
    assert card.startswith("---\n") and 'base_model: "HuggingFaceTB/SmolLM2-135M-Instruct"' in card
    assert "# vibetune-01234567: Sort tickets \\| billing or not" in card
    assert "| `billing` | about money |" in card and "- Type: classification" in card
    assert "LoRA" in card and "epochs 2, lora_r 16." in card and "nested" not in card and "0.5000" in card
    assert "| teacher (`big-teacher`) | 0.800 | – | 100.0 ms | 200.0 ms | – |" in card
    assert "| untuned student | – | – | – | – | – |" in card
    assert "| **tuned student** | 0.750 | – | – | – | – |" in card
    assert "**Verdict: retune**" in card and "validation split" in card and "20 examples" in card
    assert "llama, MOSTLY_F16, 272 tensors, 270.9 MB" in card and "`adapter/`" in card
    assert '"model": "0123456789abcdef"' in card and "ollama create vibetune-01234567 -f Modelfile" in card


def test_model_card_without_scores_or_hub_id():
    info = PackageInfo(job_id="abc", task_spec={"task": "x" * 300}, student="/models/local", teacher=None)
    card = model_card(info)
    assert "base_model" not in card and "Not measured" in card
    title = next(line for line in card.splitlines() if line.startswith("# "))
    assert len(title) < 110 and title.endswith("…")
    assert "`adapter/`" not in card
    assert results_table({})[2:] == ["| teacher | – | – | – | – | – |", "| untuned student | – | – | – | – | – |",
                                     "| **tuned student** | – | – | – | – | – |"]


def test_report_json_holds_everything():
    report = json.loads(report_json(INFO))
    assert report["evaluate"] == INFO.evaluate and report["train"] == INFO.train
    assert report["task_spec"] == INFO.task_spec and report["gguf"]["tensor_count"] == 272
    assert report["student"] == INFO.student and report["teacher"] == "big-teacher"
