"""What a million requests cost on each model, from latencies measured in this job.

cost per 1M requests = median seconds per request x 1,000,000 / 3600 x the device's price per hour

Latencies are one request at a time (evaluate's and the export check's), so these are the costs of
an unbatched server: an upper bound, the same for every model, so the ratio is fair. Prices are
settings (`PRICE_CPU_CORE_HOUR`, `PRICE_L4_HOUR`, `PRICE_H100_HOUR`); a CPU is priced per core.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

GB = 1e9


@dataclass(frozen=True)
class Prices:
    """US$ per hour of each device kind."""

    cpu_core: float
    l4: float
    h100: float


@dataclass(frozen=True)
class Device:
    """Where a model ran: `cpu` with its cores, or a GPU kind (`l4`, `h100`, or another name)."""

    kind: str
    cores: int = 0

    def hourly(self, prices: Prices) -> float | None:
        if self.kind == "cpu":
            return prices.cpu_core * max(1, self.cores)
        return {"l4": prices.l4, "h100": prices.h100}.get(self.kind)

    @property
    def label(self) -> str:
        return f"CPU, {self.cores} cores" if self.kind == "cpu" else self.kind.upper()


def this_machine(gpu_name: str | None = None) -> Device:
    """This process's device: the named GPU (an H100 or L4 by its name; other GPUs unpriced), else
    the CPU cores it may run on."""
    if gpu_name:
        name = gpu_name.lower()
        return Device("h100" if "h100" in name else "l4" if "l4" in name else gpu_name)
    return Device("cpu", len(os.sched_getaffinity(0)))


def device_named(kind: str) -> Device:
    """A device from a setting's word (`cpu`: this machine's cores)."""
    return this_machine() if kind.strip().lower() == "cpu" else Device(kind.strip().lower())


def cost_row(name: str, runtime: str, device: Device, latency_ms: dict[str, Any] | None, size_bytes: int | None,
             prices: Prices) -> dict[str, Any]:
    """One model's line of the cost table: its median latency, device, price per hour, cost per
    million requests (None when the latency or the device's price is unknown) and size in GB."""
    p50 = (latency_ms or {}).get("p50")
    hourly = device.hourly(prices)
    cost = None if p50 is None or hourly is None else round(p50 / 1000 * 1e6 / 3600 * hourly, 2)
    return {"model": name, "runtime": runtime, "device": device.label, "price_per_hour": hourly,
            "latency_p50_ms": p50, "cost_per_million": cost,
            "size_gb": None if size_bytes is None else round(size_bytes / GB, 3)}


def cost_table(evaluate: dict[str, Any], exports: list[dict[str, Any]], student_device: Device,
               teacher_device: Device, prices: Prices) -> dict[str, Any]:
    """The report's cost table: the teacher (vLLM), the tuned student (transformers) and each
    exported file (llama.cpp on this machine), with the ratio of the teacher's cost to the
    cheapest student's."""
    teacher, student = evaluate.get("teacher") or {}, evaluate.get("student") or {}
    rows = [cost_row(teacher.get("model") or "teacher", "vLLM", teacher_device, teacher.get("latency_ms"),
                     teacher.get("size_bytes"), prices),
            cost_row("student (model/)", "transformers", student_device, student.get("latency_ms"),
                     student.get("size_bytes"), prices)]
    rows += [cost_row(e["name"], "llama.cpp", this_machine(), e.get("latency_ms"), e.get("size_bytes"), prices)
             for e in exports]
    teacher_cost = rows[0]["cost_per_million"]
    student_costs = [r["cost_per_million"] for r in rows[1:] if r["cost_per_million"]]
    saving = round(teacher_cost / min(student_costs), 1) if teacher_cost and student_costs else None
    return {"rows": rows, "teacher_over_cheapest_student": saving,
            "basis": "median latency of one request at a time x the device's price per hour"}
