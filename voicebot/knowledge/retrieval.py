"""Hybrid retrieval over the approved knowledge: BM25 per language fused with dense cosine.

`KnowledgeBase(passages, embedder)` is built once at start-up: it embeds every approved passage
(Markdown: "title: text"; FAQ: the answer and each question as separate rows) and builds one BM25
index per language (`voicebot.knowledge.text.analyse`: folding, stopwords, light stemming).
Drafts (``approved: false``) are kept for `stats()` and `get()` but never indexed.

`search(query, language=..., vector=...)` takes the query embedding the caller already computed
for the turn, so a search costs one matrix-vector product, one BM25 lookup and a sort.

Scores and confidence
---------------------
For each passage:

- ``dense``: cosine between the query and the passage; an FAQ entry takes the maximum over its
  answer and every question.
- ``bm25``: the raw BM25 score (bm25s, Lucene variant); ``bm25_norm`` divides it by the sum of the
  IDFs of the query's terms (a term the KB never uses counts as the rarest possible term) and clips
  to [0, 1]: about the share of the query's information the passage matches.
- ``confidence = 1 / (1 + exp(-(w.dense * max(dense, 0) + w.bm25 * bm25_norm + w.bias)))`` with
  the per-language `Weights` in `CONFIDENCE_WEIGHTS` (`DEFAULT_WEIGHTS` for other languages).
  Ranking uses the same linear score, so the ranking and the confidence never disagree, and the
  confidence rises monotonically with each component.

The weights were fitted (logistic regression, then rounded and the bias moved for margin) on the
demo KB: paraphrases of KB questions score >= 0.7 and unrelated questions (weather, jokes,
general knowledge, topics the KB does not cover) < 0.4. The embedding model is English-only, so
Slovenian leans on BM25: its dense weight is lower and its BM25 weight higher.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Protocol

import bm25s
import numpy as np
import numpy.typing as npt

from voicebot.dialogue.types import Citation
from voicebot.knowledge.ingest import TITLE_SEPARATOR, Passage
from voicebot.knowledge.text import analyse

__all__ = [
    "CONFIDENCE_WEIGHTS",
    "DEFAULT_WEIGHTS",
    "Hit",
    "KnowledgeBase",
    "Weights",
    "answer_text",
    "confidence",
]

log = logging.getLogger("voicebot.knowledge")

BM25_K1 = 1.2
BM25_B = 0.75


@dataclass(frozen=True, slots=True)
class Weights:
    """Logistic confidence: sigmoid(dense * max(cosine, 0) + bm25 * bm25_norm + bias)."""

    dense: float
    bm25: float
    bias: float


CONFIDENCE_WEIGHTS: dict[str, Weights] = {
    "en": Weights(dense=16.0, bm25=10.0, bias=-9.0),
    "sl": Weights(dense=10.0, bm25=18.0, bias=-10.0),
}
DEFAULT_WEIGHTS = CONFIDENCE_WEIGHTS["sl"]  # the embedding model is English-only: lean on BM25


def confidence(dense: float, bm25_norm: float, language: str) -> float:
    """The documented mapping from score components to a confidence in [0, 1]."""
    w = CONFIDENCE_WEIGHTS.get(language, DEFAULT_WEIGHTS)
    z = w.dense * max(dense, 0.0) + w.bm25 * bm25_norm + w.bias
    return 1.0 / (1.0 + math.exp(-z))


class Embedder(Protocol):
    dim: int

    def embed(self, texts: list[str]) -> npt.NDArray[np.float32]: ...


@dataclass(frozen=True, slots=True)
class Hit:
    passage: Passage
    bm25: float  # raw BM25 score
    bm25_norm: float  # [0, 1]: BM25 over the query's total IDF
    dense: float  # cosine, [-1, 1]
    confidence: float  # [0, 1], see the module docstring

    def citation(self) -> Citation:
        p = self.passage
        return Citation(passage_id=p.id, source=p.source, title=p.title, text=p.text, score=self.confidence)


def answer_text(hit: Hit) -> str:
    """The text to answer with: an FAQ entry's answer, or the Markdown passage itself (extractive)."""
    return hit.passage.text


@dataclass(slots=True)
class _LanguageIndex:
    rows: npt.NDArray[np.intp]  # positions of this language's passages in KnowledgeBase._indexed
    bm25: bm25s.BM25 | None  # None when no passage has a single term
    idf: dict[str, float]
    oov_idf: float


class KnowledgeBase:
    """Approved passages, embedded and indexed once; `search` is cheap and thread-safe (read-only)."""

    def __init__(self, passages: list[Passage], embedder: Embedder) -> None:
        started = time.perf_counter()
        self.passages = list(passages)
        self._by_id = {p.id: p for p in self.passages}
        self._indexed = [p for p in self.passages if p.approved]
        self._embedder = embedder
        self._dim = embedder.dim
        texts: list[str] = []
        starts: list[int] = []
        for p in self._indexed:
            starts.append(len(texts))
            if p.is_faq:
                texts.extend([p.text, *p.questions])
            else:
                heading = p.title.split(TITLE_SEPARATOR)[-1]
                texts.extend([f"{p.title.replace(TITLE_SEPARATOR, ', ')}: {p.text}", heading])
        embed_many = getattr(embedder, "embed_many", embedder.embed)
        matrix = embed_many(texts) if texts else np.zeros((0, self._dim), dtype=np.float32)
        self._matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        self._starts = np.asarray(starts, dtype=np.intp)
        self._languages = np.asarray([p.language for p in self._indexed])
        self._tags = [set(p.tags) for p in self._indexed]
        self._weights = np.asarray(
            [_weights_row(p.language) for p in self._indexed], dtype=np.float64
        ).reshape(-1, 3)
        self._by_language = {
            lang: self._build_language(lang) for lang in sorted({p.language for p in self._indexed})
        }
        self.build_ms = (time.perf_counter() - started) * 1000
        log.info(
            "knowledge base ready: %d passages indexed (%d drafts) in %.0f ms",
            len(self._indexed),
            len(self.passages) - len(self._indexed),
            self.build_ms,
        )

    def _build_language(self, language: str) -> _LanguageIndex:
        rows = np.flatnonzero(self._languages == language)
        corpus = [analyse(_index_text(self._indexed[i]), language) for i in rows]
        df = Counter(term for terms in corpus for term in set(terms))
        n = len(corpus)
        idf = {term: _idf(n, count) for term, count in df.items()}
        model = None
        if df:
            model = bm25s.BM25(k1=BM25_K1, b=BM25_B, method="lucene")
            model.index(corpus, show_progress=False)
        return _LanguageIndex(rows=rows, bm25=model, idf=idf, oov_idf=_idf(n, 0))

    @property
    def languages(self) -> list[str]:
        return list(self._by_language)

    def get(self, passage_id: str) -> Passage | None:
        return self._by_id.get(passage_id)

    def search(
        self,
        query: str,
        *,
        language: str | None,
        vector: npt.NDArray[np.float32] | None = None,
        top_k: int = 3,
        tags: set[str] | None = None,
    ) -> list[Hit]:
        """The best `top_k` approved passages in `language` (None: every language), best first.

        `vector` is the query's embedding (shape (dim,) or (1, dim)); without it the query is
        embedded here. `tags` keeps passages with at least one of the tags."""
        if top_k <= 0 or not self._indexed:
            return []
        groups = [language] if language is not None else list(self._by_language)
        groups = [g for g in groups if g in self._by_language]
        if not groups:
            return []
        if vector is None:
            vector = self._embed_query(query)
        q = np.asarray(vector, dtype=np.float32).reshape(-1)
        if q.shape[0] != self._dim:
            raise ValueError(f"query vector has {q.shape[0]} dimensions, the index has {self._dim}")
        dense_rows = self._matrix @ q
        dense = np.maximum.reduceat(dense_rows, self._starts).astype(np.float64)
        raw = np.zeros(len(self._indexed), dtype=np.float64)
        norm = np.zeros(len(self._indexed), dtype=np.float64)
        allowed = np.zeros(len(self._indexed), dtype=bool)
        for lang in groups:
            index = self._by_language[lang]
            allowed[index.rows] = True
            scores, total_idf = _bm25(index, analyse(query, lang))
            if scores is not None:
                raw[index.rows] = scores
                norm[index.rows] = np.clip(scores / total_idf, 0.0, 1.0)
        if tags:
            allowed &= np.asarray([bool(t & tags) for t in self._tags])
        w = self._weights
        z = w[:, 0] * np.maximum(dense, 0.0) + w[:, 1] * norm + w[:, 2]
        z[~allowed] = -np.inf
        candidates = int(allowed.sum())
        k = min(top_k, candidates)
        if k == 0:
            return []
        top = np.argpartition(-z, k - 1)[:k] if k < len(z) else np.arange(len(z))
        top = top[np.argsort(-z[top], kind="stable")]
        return [
            Hit(
                passage=self._indexed[i],
                bm25=float(raw[i]),
                bm25_norm=float(norm[i]),
                dense=float(dense[i]),
                confidence=float(1.0 / (1.0 + np.exp(-z[i]))),
            )
            for i in top
            if allowed[i]
        ]

    def _embed_query(self, query: str) -> npt.NDArray[np.float32]:
        return self._embedder.embed([query])[0]

    def stats(self) -> dict[str, Any]:
        by_language = Counter(p.language for p in self._indexed)
        return {
            "passages": len(self.passages),
            "indexed": len(self._indexed),
            "drafts": len(self.passages) - len(self._indexed),
            "faq": sum(p.is_faq for p in self._indexed),
            "vectors": int(self._matrix.shape[0]),
            "languages": dict(sorted(by_language.items())),
            "sources": len({p.source.split("#", 1)[0] for p in self.passages}),
            "vocabulary": {lang: len(index.idf) for lang, index in self._by_language.items()},
            "build_ms": round(self.build_ms, 1),
        }


def _weights_row(language: str) -> tuple[float, float, float]:
    w = CONFIDENCE_WEIGHTS.get(language, DEFAULT_WEIGHTS)
    return (w.dense, w.bm25, w.bias)


def _index_text(p: Passage) -> str:
    return "\n".join((p.title, *p.questions, p.text))


def _idf(n: int, df: int) -> float:
    """Lucene's BM25 IDF (what bm25s uses with method="lucene")."""
    return math.log(1.0 + (n - df + 0.5) / (df + 0.5))


def _bm25(index: _LanguageIndex, terms: list[str]) -> tuple[npt.NDArray[np.float64] | None, float]:
    """Raw BM25 scores of the language's passages and the query's total IDF (the normaliser)."""
    if not terms or index.bm25 is None:
        return None, 1.0
    total_idf = sum(index.idf.get(t, index.oov_idf) for t in terms)
    ids = index.bm25.get_tokens_ids([t for t in terms if t in index.idf])
    if not ids:
        return None, total_idf
    scores = np.asarray(index.bm25.get_scores_from_ids(ids), dtype=np.float64)
    return scores, total_idf
