"""Fit the per-language confidence weights on the TUNING queries only; report tuning and held-out.

    .venv/bin/python -m tests.knowledge.fit_confidence

Training rows per language: for each answerable tuning query, the expected passage (label 1) and
the closest wrong passages (label 0); for each off-topic or near-miss tuning query, its closest
passages (label 0). A logistic regression on (max(cosine, 0), bm25_norm, coverage, unknown) gives
the weights; the signs are constrained so confidence rises with every match signal and falls with
the unknown share. Paste the printed `Weights` into CONFIDENCE_WEIGHTS. The held-out set is only
evaluated, never fitted.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from tests.knowledge.evaluation import LabelledSet, embed, evaluate, heldout_set, tuning_set
from voicebot.config import PACKAGE_DIR, default_models_dir
from voicebot.knowledge import retrieval
from voicebot.knowledge.embeddings import MODEL_NAME, load_embedder
from voicebot.knowledge.ingest import load_knowledge
from voicebot.knowledge.retrieval import Embedder, KnowledgeBase, Weights

HARD_NEGATIVES = 4
C = 1.0


def rows(kb: KnowledgeBase, embedder: Embedder, data: LabelledSet, language: str) -> tuple[list[list[float]], list[int]]:
    sources = [p.source for p in kb.indexed]
    x: list[list[float]] = []
    y: list[int] = []
    queries = [(q, e) for q, e in data.positives] + [(q, set()) for q in data.negatives]
    vectors = embed(embedder, [q for q, _ in queries])
    for (query, expected), vector in zip(queries, vectors, strict=True):
        f = kb.features(query, language=language, vector=vector)
        feats = np.stack([np.maximum(f.dense, 0), f.bm25_norm, f.coverage, f.unknown], axis=1)
        closeness = np.where(f.allowed, f.dense + f.bm25_norm + f.coverage, -np.inf)
        positive = [i for i, s in enumerate(sources) if s in expected and f.allowed[i]]
        if positive:
            best = max(positive, key=lambda i: closeness[i])
            x.append(feats[best].tolist())
            y.append(1)
        wrong = [int(i) for i in np.argsort(-closeness) if sources[i] not in expected and f.allowed[i]]
        for i in wrong[:HARD_NEGATIVES]:
            x.append(feats[i].tolist())
            y.append(0)
    return x, y


def fit(x: list[list[float]], y: list[int]) -> Weights:
    model = LogisticRegression(C=C, class_weight="balanced", max_iter=1000)
    model.fit(np.asarray(x), np.asarray(y))
    d, b, c, u = (float(v) for v in model.coef_[0])
    return Weights(
        dense=round(max(d, 0.0), 2),
        bm25=round(max(b, 0.0), 2),
        coverage=round(max(c, 0.0), 2),
        unknown=round(min(u, 0.0), 2),
        bias=round(float(model.intercept_[0]), 2),
    )


def main() -> None:
    embedder = load_embedder(default_models_dir())
    passages = load_knowledge([PACKAGE_DIR / "demo" / "kb"], default_language="en").passages
    cache = Path(tempfile.gettempdir()) / "voicebot-fit-confidence"
    kb = KnowledgeBase(passages, embedder, cache_dir=cache, model_name=MODEL_NAME)
    fitted = {}
    for language in ("en", "sl"):
        x, y = rows(kb, embedder, tuning_set(language), language)
        fitted[language] = fit(x, y)
        print(language, fitted[language], f"rows={len(y)} positives={sum(y)}")
    retrieval.CONFIDENCE_WEIGHTS.update(fitted)
    kb = KnowledgeBase(passages, embedder, cache_dir=cache, model_name=MODEL_NAME)
    for language in ("en", "sl"):
        for name, data in (("tuning", tuning_set(language)), ("heldout", heldout_set(language))):
            report = evaluate(kb, embedder, data, language)
            print(language, name, json.dumps(report.summary()))
            for item in report.misses + report.low + report.false_positives:
                print("   ", item)


if __name__ == "__main__":
    main()
