"""Pure parts of the export check: which file is flagged and recommended, how answers compare,
the Ollama template renderer's limits, the cost arithmetic and the card's sections."""

import pytest

from app.specs import TaskSpec, TaskType
from workers.packaging.card_exports import costs_section, exports_section
from workers.packaging.chat_check import first_difference, render_ollama_prompt
from workers.packaging.costs import Device, Prices, cost_row, cost_table
from workers.packaging.export_check import comparable, export_file_name, flag_and_recommend, scorable

PRICES = Prices(cpu_core=0.05, l4=0.7, h100=3.0)
SPAM = TaskSpec(task="spam or ham", task_type=TaskType.CLASSIFICATION,
                labels=[{"name": "spam", "description": "ads"}, {"name": "ham", "description": "normal"}])
QA = TaskSpec(task="answer", task_type=TaskType.QA)


def export(name: str, kind: str, accuracy: float | None, size: int) -> dict:
    return {"name": name, "export": kind, "accuracy": accuracy, "size_bytes": size}


def test_the_smallest_file_within_the_margin_of_f16_is_recommended_and_worse_ones_flagged():
    files = [export("student.gguf", "f16", 0.80, 270), export("student.q8_0.gguf", "q8_0", 0.78, 145),
             export("student.q4_k_m.gguf", "q4_k_m", 0.70, 100)]
    assert flag_and_recommend(files, margin=0.05) == "student.q8_0.gguf"
    assert [f["flagged"] for f in files] == [False, False, True]
    assert flag_and_recommend(files, margin=0.2) == "student.q4_k_m.gguf"
    with_adapter = [export("student.gguf", "f16", 0.8, 270), export("adapter.gguf", "lora", 0.8, 5)]
    assert flag_and_recommend(with_adapter, 0.05) == "student.gguf", "an adapter alone does not run"
    unscored = [export("student.gguf", "f16", 0.8, 270), export("student.q8_0.gguf", "q8_0", None, 145)]
    assert flag_and_recommend(unscored, 0.05) == "student.gguf" and unscored[1]["flagged"]


def test_answers_are_scored_by_label_and_compared_by_their_whole_text():
    assert scorable(" Spam", SPAM) == "spam" and scorable("I cannot tell", SPAM) is None
    assert comparable(" spam\n", SPAM) == "spam" and comparable("spam, surely", SPAM) != comparable("spam", SPAM)
    assert comparable("  The  Answer ", QA) == comparable("the answer", QA) and scorable("x y", QA) == "x y"
    assert export_file_name("f16") == "student.gguf" and export_file_name("q4_k_m") == "student.q4_k_m.gguf"


def test_the_ollama_renderer_understands_only_what_vibetune_writes():
    template = '{{ if .System }}S:{{ .System }}|{{ else }}none|{{ end }}U:{{ .Prompt }}{{ "{{" }}A:{{ .Response }}END'
    assert render_ollama_prompt(template, "", "hi") == "none|U:hi{{A:"
    assert render_ollama_prompt(template, "be brief", "hi") == "S:be brief|U:hi{{A:"
    with pytest.raises(ValueError, match="not one vibetune writes"):
        render_ollama_prompt("{{ range .Messages }}{{ .Response }}", "", "hi")
    with pytest.raises(ValueError, match="no"):
        render_ollama_prompt("{{ .Prompt }}", "", "hi")
    assert first_difference("abcdef", "abXdef") == {"offset": 2, "expected": "cdef", "got": "Xdef"}
    assert first_difference("same", "same") is None


def test_cost_per_million_requests_is_latency_times_the_devices_hourly_price():
    cpu = Device("cpu", cores=4)
    row = cost_row("student", "llama.cpp", cpu, {"p50": 36.0}, 2_000_000_000, PRICES)
    assert row["price_per_hour"] == pytest.approx(0.2) and row["device"] == "CPU, 4 cores"
    assert row["cost_per_million"] == pytest.approx(0.036 * 1e6 / 3600 * 0.2, abs=0.01) and row["size_gb"] == 2.0
    assert cost_row("t", "vLLM", Device("h100"), {"p50": 360.0}, None, PRICES)["cost_per_million"] == 300.0
    assert cost_row("t", "vLLM", Device("a100"), {"p50": 360.0}, None, PRICES)["cost_per_million"] is None
    assert cost_row("t", "vLLM", cpu, None, None, PRICES)["cost_per_million"] is None
    table = cost_table({"teacher": {"model": "big", "latency_ms": {"p50": 720.0}},
                        "student": {"latency_ms": {"p50": 36.0}}},
                       [{"name": "student.gguf", "latency_ms": {"p50": 18.0}, "size_bytes": 270_000_000}],
                       student_device=cpu, teacher_device=Device("h100"), prices=PRICES)
    assert [r["model"] for r in table["rows"]] == ["big", "student (model/)", "student.gguf"]
    assert table["teacher_over_cheapest_student"] > 1


def test_the_card_sections_show_each_file_and_each_cost():
    files = [{**export("student.gguf", "f16", 0.8, 270_000_000), "accuracy_ci95": [0.7, 0.9], "change": 0.0,
              "same_answers": 1.0, "tokens_per_second": 120.5, "flagged": False, "n": 40},
             {**export("student.q4_k_m.gguf", "q4_k_m", 0.6, 100_000_000), "accuracy_ci95": [0.5, 0.7],
              "change": -0.2, "same_answers": 0.7, "tokens_per_second": 150.0, "flagged": True, "n": 40}]
    check = {"conversations": 8, "llama_cpp": {"equal": 8}, "ollama": {"equal": 8}, "token_ids_equal": 8,
             "stop": {"ends_answer": True}, "ok": True}
    text = "\n".join(exports_section(files, "student.gguf", 0.05, check))
    row = "| `student.gguf` | f16 | 0.800 | [0.700, 0.900] | +0.000 | 1.00 | 120.5 | 270.0 MB | **recommended** |"
    assert row in text
    assert "flagged: below the margin" in text and "n = 40 rows each" in text
    assert "Chat format checked byte for byte" in text
    costs = costs_section({"rows": [cost_row("student", "llama.cpp", Device("cpu", 2), {"p50": 36.0}, None, PRICES)],
                           "teacher_over_cheapest_student": 12.5})
    assert "| student | llama.cpp | CPU, 2 cores | 0.100 | 36.0 ms | 1.00 |" in "\n".join(costs)
    assert exports_section([], None, 0.05, {}) == [] and costs_section({}) == []


def test_the_cli_prints_each_file_the_check_and_the_costs():
    from app.cli.exports_output import exports_text

    assert exports_text({}) is None
    report = {"exports": [{"name": "student.gguf", "export": "f16", "n": 60, "accuracy": 0.85,
                           "accuracy_ci95": [0.74, 0.92], "change": 0.0, "same_answers": 1.0,
                           "tokens_per_second": 95.2, "size_bytes": 270_000_000, "flagged": False},
                          {"name": "student.q4_k_m.gguf", "export": "q4_k_m", "n": 60, "accuracy": 0.7,
                           "accuracy_ci95": [0.57, 0.8], "change": -0.15, "same_answers": 0.6,
                           "tokens_per_second": 130.0, "size_bytes": 105_000_000, "flagged": True}],
              "recommended_export": "student.gguf", "chat_format_check": {"ok": True},
              "costs": {"rows": [cost_row("student.gguf", "llama.cpp", Device("cpu", 2), {"p50": 36.0}, 270_000_000,
                                          PRICES)]}}
    text = exports_text(report)
    assert text is not None and "same 60 rows" in text
    lines = text.splitlines()
    assert any(line.startswith("student.gguf") and "recommended" in line and "+0.000" in line for line in lines)
    assert any(line.startswith("student.q4_k_m.gguf") and "FLAGGED" in line and "-0.150" in line for line in lines)
    assert "checked byte for byte" in text and "cost per million requests" in text and "1.00" in text
