"""Fixtures for tests/pipeline. Speech fixtures: the REAL local models, loaded once per session."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import soundfile as sf

from voicebot.config import default_models_dir

if TYPE_CHECKING:
    from voicebot.pipeline.speech import SpeechModels

# --- speech fixtures (voicebot.pipeline.speech) -------------------------------------------------

SPEECH_UTTERANCES = (
    ("Where is my order A1001?", "where is my order A one zero zero one"),
    ("What are your opening hours?", "what are your opening hours"),
    ("I would like to speak to a person.", "I would like to speak to a person"),
)


def speech_models_or_skip(stt_model: str) -> SpeechModels:
    from voicebot.pipeline.speech import load_speech_models

    models_dir = default_models_dir()
    for name in (stt_model, "piper-joe"):
        if not (models_dir / name).is_dir():
            pytest.skip(f"model {name} is not installed: run `voicebot models install`")
    return load_speech_models(models_dir, stt_model=stt_model, cpu_threads=2)


@pytest.fixture(scope="session")
def speech_models() -> Iterator[SpeechModels]:
    """SpeechModels with whisper-tiny-en (the fast one) and the Piper joe voice."""
    models = speech_models_or_skip("whisper-tiny-en")
    yield models
    models.close()


@pytest.fixture(scope="session")
def piper_utterances(speech_models: SpeechModels, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of Piper-voiced caller questions (22,050 Hz WAV) and its manifest.csv
    (path,reference); returns the manifest's path."""
    folder = tmp_path_factory.mktemp("utterances")
    rows = []
    for i, (text, reference) in enumerate(SPEECH_UTTERANCES):
        pcm = np.frombuffer(b"".join(speech_models.synthesize(text, 22050)), np.int16)
        sf.write(str(folder / f"u{i}.wav"), pcm, 22050)
        rows.append((f"u{i}.wav", reference))
    manifest = folder / "manifest.csv"
    with manifest.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([("path", "reference"), *rows])
    return manifest
