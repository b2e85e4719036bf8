"""evaluate_intents on tiny synthetic CSVs with the fake embedder, and its input errors."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tests.dialogue.test_nlu import synthetic
from tests.fakes.embedder import FakeEmbedder
from voicebot.dialogue.evaluation import evaluate_intents
from voicebot.errors import InputError

EXPECTED_KEYS = {
    "accuracy",
    "macro_f1",
    "in_scope_accuracy",
    "oos_precision",
    "oos_recall",
    "ms_per_query",
    "train_size",
    "test_size",
    "threshold",
    "labels",
    "train_seconds",
}


def write_csv(
    path: Path, rows: list[tuple[str, str]], header: tuple[str, str] = ("text", "category")
) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


TEST_ROWS = [
    ("where is my order today", "order_status"),
    ("hello there", "greeting"),
    ("my invoice is wrong", "payment_status"),
    ("tell me a joke", "oos"),
    ("has my order shipped yet", "order_status"),
    ("what is the weather", "oos"),
]


def test_evaluates_with_oos(tmp_path: Path) -> None:
    train = write_csv(tmp_path / "train.csv", synthetic())
    test = write_csv(tmp_path / "test.csv", TEST_ROWS)
    embedder = FakeEmbedder()
    result = evaluate_intents(train, test, embedder)
    assert set(result) == EXPECTED_KEYS
    assert result["train_size"] == len(synthetic()) and result["test_size"] == len(TEST_ROWS)
    assert result["accuracy"] >= 0.8
    assert 0.0 <= result["macro_f1"] <= 1.0
    assert result["oos_recall"] is not None and result["oos_precision"] is not None
    assert result["ms_per_query"] > 0
    assert "oos" in result["labels"]
    # timing predicted >= 200 single queries one at a time, each embedded on its own
    assert embedder.calls >= 200


def test_no_oos_in_test(tmp_path: Path) -> None:
    rows = [(t, label) for t, label in synthetic() if label != "oos"]
    train = write_csv(tmp_path / "train.csv", rows)
    test = write_csv(tmp_path / "test.csv", [r for r in TEST_ROWS if r[1] != "oos"])
    result = evaluate_intents(train, test, FakeEmbedder())
    assert result["oos_recall"] is None and result["oos_precision"] is None
    assert result["threshold"] == 0.0
    assert result["in_scope_accuracy"] == result["accuracy"]


def test_input_errors(tmp_path: Path) -> None:
    train = write_csv(tmp_path / "train.csv", synthetic())
    with pytest.raises(InputError, match="does not exist"):
        evaluate_intents(train, tmp_path / "missing.csv", FakeEmbedder())
    wrong = write_csv(tmp_path / "wrong.csv", [("hi", "greeting")], header=("utterance", "label"))
    with pytest.raises(InputError, match="missing column"):
        evaluate_intents(train, wrong, FakeEmbedder())
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(InputError):
        evaluate_intents(train, empty, FakeEmbedder())
    header_only = write_csv(tmp_path / "header.csv", [])
    with pytest.raises(InputError, match="no rows"):
        evaluate_intents(header_only, train, FakeEmbedder())
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"text,category\n\xff\xfe,x\n")
    with pytest.raises(InputError, match="UTF-8"):
        evaluate_intents(train, binary, FakeEmbedder())
