"""Offline evaluation of the intent classifier on a labelled CSV (`text,category`; `oos` = out of scope).

`evaluate_intents` trains exactly as a tenant does (`IntentClassifier.train`, calibration split taken
from the training data only: the test file never influences a choice), predicts the test set in
batches for the accuracy figures, and times single-query predictions (embedding included) on a fixed
sample of at least 200 test queries, one at a time, as the dialogue runs them.
"""

from __future__ import annotations

import csv
import random
import time
from pathlib import Path
from typing import Any

from sklearn.metrics import f1_score

from voicebot.dialogue.nlu import IntentClassifier
from voicebot.errors import InputError
from voicebot.knowledge.embeddings import Embedder

__all__ = ["evaluate_intents", "read_intent_csv"]

OOS = "oos"
TIMING_SAMPLE = 200


def read_intent_csv(path: Path) -> list[tuple[str, str]]:
    """(text, category) rows; InputError names the file for anything unusable."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            columns = reader.fieldnames or []
            missing = [c for c in ("text", "category") if c not in columns]
            if missing:
                raise InputError(
                    f"{path}: missing column(s) {', '.join(missing)} (found {columns or 'none'})"
                )
            rows = [(str(r["text"] or "").strip(), str(r["category"] or "").strip()) for r in reader]
    except FileNotFoundError as exc:
        raise InputError(f"{path}: the file does not exist") from exc
    except (UnicodeDecodeError, csv.Error, IsADirectoryError) as exc:
        raise InputError(f"{path}: not a readable UTF-8 CSV: {exc}") from exc
    rows = [(text, label) for text, label in rows if text and label]
    if not rows:
        raise InputError(f"{path}: no rows with both text and category")
    return rows


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def evaluate_intents(train_csv: Path, test_csv: Path, embedder: Embedder, *, seed: int = 0) -> dict[str, Any]:
    train = read_intent_csv(Path(train_csv))
    test = read_intent_csv(Path(test_csv))
    started = time.perf_counter()
    model = IntentClassifier.train(train, embedder, oos_label=OOS, seed=seed)
    train_seconds = time.perf_counter() - started
    texts = [t for t, _ in test]
    gold = [label for _, label in test]
    predicted = [OOS if p.oos or p.intent is None else p.intent for p in model.predict_batch(texts)]

    correct = sum(g == p for g, p in zip(gold, predicted, strict=True))
    in_scope = [(g, p) for g, p in zip(gold, predicted, strict=True) if g != OOS]
    gold_oos = sum(g == OOS for g in gold)
    predicted_oos = sum(p == OOS for p in predicted)
    both_oos = sum(g == OOS and p == OOS for g, p in zip(gold, predicted, strict=True))
    labels = sorted(set(gold) | set(predicted))

    rng = random.Random(seed)
    order = list(range(len(texts)))
    rng.shuffle(order)
    sample = [texts[order[i % len(order)]] for i in range(max(TIMING_SAMPLE, min(len(order), 300)))]
    model.predict(sample[0])  # warm-up
    start = time.perf_counter()
    for text in sample:
        model.predict(text)
    ms_per_query = (time.perf_counter() - start) * 1000 / len(sample)

    return {
        "accuracy": correct / len(test),
        "macro_f1": float(f1_score(gold, predicted, labels=labels, average="macro", zero_division=0)),
        "in_scope_accuracy": _ratio(sum(g == p for g, p in in_scope), len(in_scope)),
        "oos_precision": _ratio(both_oos, predicted_oos) if gold_oos or predicted_oos else None,
        "oos_recall": _ratio(both_oos, gold_oos),
        "ms_per_query": ms_per_query,
        "train_size": len(train),
        "test_size": len(test),
        "threshold": model.threshold,
        "labels": model.labels,
        "train_seconds": round(train_seconds, 1),  # embedding the training set included
    }
