"""Retrieval evaluation on labelled queries: the tuning set (demo_queries.py) and the held-out set
(data/heldout.yaml). Shared by test_heldout.py and fit_confidence.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import yaml

from tests.knowledge.demo_queries import (
    EN_NEAR_MISS,
    EN_POSITIVE,
    EN_UNRELATED,
    SL_NEAR_MISS,
    SL_POSITIVE,
    SL_UNRELATED,
)
from voicebot.knowledge.retrieval import Embedder, KnowledgeBase

HELDOUT = Path(__file__).parent / "data" / "heldout.yaml"
THRESHOLD = 0.55  # the demo tenant's answer threshold

Positives = list[tuple[str, set[str]]]


@dataclass(frozen=True, slots=True)
class LabelledSet:
    positives: Positives
    negatives: list[str]  # near misses and off-topic questions: the KB does not answer them


def tuning_set(language: str) -> LabelledSet:
    if language == "en":
        return LabelledSet(EN_POSITIVE, EN_UNRELATED + EN_NEAR_MISS)
    return LabelledSet(SL_POSITIVE, SL_UNRELATED + SL_NEAR_MISS)


def heldout_set(language: str) -> LabelledSet:
    data = yaml.safe_load(HELDOUT.read_text(encoding="utf-8"))[language]
    positives = [(item["q"], set(item["expect"])) for item in data["answerable"]]
    return LabelledSet(positives, list(data["near_miss"]))


@dataclass(slots=True)
class Report:
    answerable: int = 0
    top1: int = 0
    answered: int = 0  # answerable, right passage on top, confidence >= THRESHOLD
    negatives: int = 0
    rejected: int = 0  # negative, top confidence < THRESHOLD
    misses: list[tuple[str, str, float]] = field(default_factory=list)
    low: list[tuple[str, float]] = field(default_factory=list)
    false_positives: list[tuple[str, str, float]] = field(default_factory=list)

    @property
    def top1_rate(self) -> float:
        return self.top1 / max(self.answerable, 1)

    @property
    def answered_rate(self) -> float:
        return self.answered / max(self.answerable, 1)

    @property
    def rejected_rate(self) -> float:
        return self.rejected / max(self.negatives, 1)

    def summary(self) -> dict[str, float]:
        return {
            "top1": round(self.top1_rate, 3),
            "answered>=0.55": round(self.answered_rate, 3),
            "near_miss<0.55": round(self.rejected_rate, 3),
            "n_answerable": self.answerable,
            "n_negative": self.negatives,
        }


def embed(embedder: Embedder, texts: list[str]) -> npt.NDArray[np.float32]:
    return np.asarray(embedder.embed(texts), dtype=np.float32)


def evaluate(kb: KnowledgeBase, embedder: Embedder, data: LabelledSet, language: str) -> Report:
    report = Report()
    vectors = embed(embedder, [q for q, _ in data.positives])
    for (query, expected), vector in zip(data.positives, vectors, strict=True):
        top = kb.search(query, language=language, vector=vector, top_k=1)[0]
        report.answerable += 1
        if top.passage.source in expected:
            report.top1 += 1
            if top.confidence >= THRESHOLD:
                report.answered += 1
            else:
                report.low.append((query, top.confidence))
        else:
            report.misses.append((query, top.passage.source, top.confidence))
    vectors = embed(embedder, data.negatives)
    for query, vector in zip(data.negatives, vectors, strict=True):
        top = kb.search(query, language=language, vector=vector, top_k=1)[0]
        report.negatives += 1
        if top.confidence < THRESHOLD:
            report.rejected += 1
        else:
            report.false_positives.append((query, top.passage.source, top.confidence))
    return report
