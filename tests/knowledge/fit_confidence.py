"""Fit the per-language confidence weights on the TUNING queries only; report tuning and held-out.

    .venv/bin/python -m tests.knowledge.fit_confidence

Training rows per language: for each answerable tuning query, the expected passage (label 1) and
the closest wrong passages (label 0); for each off-topic or near-miss tuning query, its closest
passages (label 0). A logistic regression on (max(cosine, 0), bm25_norm, coverage) gives the
weights (signs constrained to >= 0, so confidence rises with every match signal); then the bias is
moved, on the tuning set again, to the value that answers the most tuning paraphrases while still
rejecting >= 90 % of the tuning near misses at the 0.55 threshold. The `unknown` share was tried as
a fourth feature: its fitted coefficient came out positive (no signal on this data), so its weight
is 0. Paste the printed `Weights` into CONFIDENCE_WEIGHTS. The held-out set is only evaluated,
never fitted.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from tests.knowledge.evaluation import THRESHOLD, LabelledSet, embed, evaluate, heldout_set, tuning_set
from voicebot.config import PACKAGE_DIR, default_models_dir
from voicebot.knowledge import retrieval
from voicebot.knowledge.embeddings import MODEL_NAME, load_embedder
from voicebot.knowledge.ingest import load_knowledge
from voicebot.knowledge.retrieval import Embedder, KnowledgeBase, Weights

HARD_NEGATIVES = 4
C = 1.0
MIN_TUNING_REJECTION = 0.9


Query = tuple[np.ndarray, np.ndarray, bool]  # features of the allowed passages, correct?, answerable


def collect(kb: KnowledgeBase, embedder: Embedder, data: LabelledSet, language: str) -> list[Query]:
    sources = np.asarray([p.source for p in kb.indexed])
    out: list[Query] = []
    queries = [(q, e) for q, e in data.positives] + [(q, set()) for q in data.negatives]
    vectors = embed(embedder, [q for q, _ in queries])
    for (query, expected), vector in zip(queries, vectors, strict=True):
        f = kb.features(query, language=language, vector=vector)
        idx = np.flatnonzero(f.allowed)
        feats = np.stack([np.maximum(f.dense, 0), f.bm25_norm, f.coverage], axis=1)[idx]
        correct = np.asarray([s in expected for s in sources[idx]])
        out.append((feats, correct, bool(expected)))
    return out


def fit(queries: list[Query]) -> tuple[np.ndarray, float]:
    x: list[np.ndarray] = []
    y: list[int] = []
    for feats, correct, answerable in queries:
        closeness = feats.sum(axis=1)
        if answerable:
            positive = np.flatnonzero(correct)
            x.append(feats[positive[np.argmax(closeness[positive])]])
            y.append(1)
        wrong = [i for i in np.argsort(-closeness) if not correct[i]][:HARD_NEGATIVES]
        x.extend(feats[i] for i in wrong)
        y.extend(0 for _ in wrong)
    model = LogisticRegression(C=C, class_weight="balanced", max_iter=1000)
    model.fit(np.asarray(x), np.asarray(y))
    return np.maximum(model.coef_[0], 0.0), float(model.intercept_[0])


def rates(queries: list[Query], w: np.ndarray, bias: float) -> tuple[float, float]:
    """(share of answerable queries answered correctly at >= THRESHOLD, share of negatives rejected)"""
    answered = rejected = answerable = 0
    for feats, correct, is_answerable in queries:
        z = feats @ w + bias
        top = int(np.argmax(z))
        value = 1.0 / (1.0 + np.exp(-z[top]))
        if feats[top, 2] <= 0.0:
            value = min(value, retrieval.GATE_CAP)
        if is_answerable:
            answerable += 1
            answered += bool(correct[top]) and value >= THRESHOLD
        else:
            rejected += value < THRESHOLD
    return answered / answerable, rejected / max(len(queries) - answerable, 1)


def tune_bias(queries: list[Query], w: np.ndarray, bias: float) -> float:
    best = (-1.0, bias)
    for shift in np.arange(-3.0, 3.0001, 0.05):
        answered, rejected = rates(queries, w, bias + shift)
        score = answered + rejected if rejected >= MIN_TUNING_REJECTION else rejected - 1.0
        if score > best[0] + 1e-9:
            best = (score, bias + shift)
    return best[1]


def main() -> None:
    embedder = load_embedder(default_models_dir())
    passages = load_knowledge([PACKAGE_DIR / "demo" / "kb"], default_language="en").passages
    cache = Path(tempfile.gettempdir()) / "voicebot-fit-confidence"
    kb = KnowledgeBase(passages, embedder, cache_dir=cache, model_name=MODEL_NAME)
    fitted = {}
    for language in ("en", "sl"):
        queries = collect(kb, embedder, tuning_set(language), language)
        w, bias = fit(queries)
        bias = tune_bias(queries, w, bias)
        d, b, c = (round(float(v), 2) for v in w)
        fitted[language] = Weights(dense=d, bm25=b, coverage=c, unknown=0.0, bias=round(float(bias), 2))
        print(language, fitted[language])
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
