"""What a long piece of work reports to its job while it runs: a stage's context, the pipeline's
sink and a training run all speak this one small interface."""

from __future__ import annotations

from typing import Any, Protocol


class ProgressSink(Protocol):
    def progress(self, done: int, total: int) -> None:
        """`done` of `total` items; raises `JobCanceled` if the job was canceled meanwhile."""

    def check_canceled(self) -> None:
        """Raise `JobCanceled` if the job was canceled (cheap: reads a flag)."""

    def live_metrics(self, metrics: dict[str, Any]) -> None:
        """Metrics while the work runs (e.g. the loss so far)."""
