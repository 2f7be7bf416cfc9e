"""Finding and loading a student model: a bundled name, a local folder, or a hub id."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from workers import bundled_models
from workers.errors import StageError

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


def student_source(name: str) -> str:
    """Where `from_pretrained` should load the student `name` from.

    A bundled name must have been prepared (`make models`); a local folder is used as is;
    anything else is taken as a hub id (which needs network access or a filled HF cache).
    """
    bundled = bundled_models.BUNDLED.get(name)
    if bundled is not None:
        if not bundled_models.is_prepared(bundled):
            raise StageError("student_unavailable",
                             f"the bundled student {name!r} is not prepared; run `make models`")
        return str(bundled_models.model_dir(bundled))
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise StageError("student_unavailable", f"{name} is a folder without config.json, not a model")
        return str(path)
    return name


def load_student(name: str, dtype: Any = None) -> tuple["PreTrainedModel", "PreTrainedTokenizerBase"]:
    """The student model and its tokenizer (a pad token is set when the tokenizer has none)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = student_source(name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype)
    except OSError as exc:
        raise StageError("student_unavailable", f"cannot load the student {name!r}: {exc}") from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def parameter_count(model: "PreTrainedModel") -> int:
    return sum(p.numel() for p in model.parameters())


def folder_size(path: str | Path) -> int | None:
    """Bytes on disk of a model folder (None when it is not a local folder)."""
    folder = Path(path)
    if not folder.is_dir():
        return None
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def train_dtype() -> Any:
    """bfloat16 where the hardware computes in it natively (CUDA with bf16), else float32."""
    import torch

    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32
