"""voicebot.pipeline.stt_eval and `voicebot eval stt`: WER normalisation, and the phone path end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from voicebot.cli import app
from voicebot.errors import ConfigError
from voicebot.pipeline.stt_eval import normalise, read_manifest, word_errors


def test_normalise_spells_digits_and_expands_contractions() -> None:
    assert normalise("Where's my order A1001?") == [
        "where",
        "is",
        "my",
        "order",
        "a",
        "one",
        "zero",
        "zero",
        "one",
    ]
    assert normalise("It's $5, isn't it - 1,001.") == [
        "it",
        "is",
        "five",
        "is",
        "not",
        "it",
        "one",
        "zero",
        "zero",
        "one",
    ]


def test_word_errors_counts_edits_against_the_reference() -> None:
    assert word_errors("where is my order A one zero zero one", "Where's my order 1001?") == (1, 9)
    assert word_errors("what are your opening hours", "") == (5, 5)
    assert word_errors("yes", "yes yes") == (1, 1)


def test_manifest_paths_are_relative_to_the_csv(tmp_path: Path) -> None:
    (tmp_path / "m.csv").write_text("path,reference\na.wav,hello there\n/abs/b.wav,bye\n")
    assert read_manifest(tmp_path / "m.csv") == [
        (tmp_path / "a.wav", "hello there"),
        (Path("/abs/b.wav"), "bye"),
    ]
    (tmp_path / "bad.csv").write_text("only-one-column\n")
    with pytest.raises(ConfigError, match="row 1"):
        read_manifest(tmp_path / "bad.csv")


@pytest.mark.slow
def test_eval_stt_cli_on_piper_speech(piper_utterances: Path) -> None:
    result = CliRunner().invoke(
        app, ["eval", "stt", "--manifest", str(piper_utterances), "--json", "--model", "whisper-tiny-en"]
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    *files, summary = lines
    assert len(files) == summary["files"] == 3
    assert {"path", "reference", "hypothesis"} <= files[0].keys()
    assert all(f["hypothesis"] for f in files), files
    assert summary["wer"] < 0.35, lines
    assert 0 < summary["rtf"] < 2
