"""Hybrid retrieval over the approved knowledge: BM25 per language fused with dense cosine.

`KnowledgeBase(passages, embedder, cache_dir=...)` is built once at start-up: it embeds every
approved passage (Markdown: "title: text" and the heading; FAQ: the answer and each question as
separate rows; with `cache_dir`, vectors come from `voicebot.knowledge.vector_cache` when the text
and the model are unchanged) and builds one BM25 index and one term -> passages map per language
(`voicebot.knowledge.text.analyse`: folding, stopwords, light stemming).
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
- ``coverage``: the IDF-weighted share of the query's distinct terms that occur in the passage
  (title, questions, text), in [0, 1]. ``unknown``: the IDF-weighted share of the query's terms
  the KB never uses (kept on `Hit` for diagnostics; its weight is 0, see below).
- ``z = w.dense * max(dense, 0) + w.bm25 * bm25_norm + w.coverage * coverage + w.unknown *
  unknown + w.bias`` with the per-language `Weights` in `CONFIDENCE_WEIGHTS` (`DEFAULT_WEIGHTS` for
  other languages); ``confidence = 1 / (1 + exp(-z))``. Ranking uses the same z, so the ranking
  and the confidence never disagree, and the confidence rises monotonically with each component.
- The lexical gate: a passage that shares no content term with the query (coverage 0) is capped
  at `GATE_CAP` (0.45, below the usual answer thresholds), however high its cosine.

The weights are a logistic regression fitted on the TUNING queries only
(tests/knowledge/demo_queries.py: paraphrases, off-topic questions and near misses; the fitting
script is tests/knowledge/fit_confidence.py), with the bias then set on the same tuning queries to
reject >= 90 % of their near misses at 0.55. tests/knowledge/data/heldout.yaml (50 paraphrases and
24 near misses per language, never fitted) measures them; test_heldout.py asserts the figures.
Cosine alone cannot tell "Can I bring my dog to the store?" from a click-and-collect question, so
word overlap (bm25_norm, coverage) carries much of the weight, even in English. The embedding model
is English-only, so Slovenian leans further on the words: its dense weight is lower.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import bm25s
import numpy as np
import numpy.typing as npt

from voicebot.dialogue.types import Citation
from voicebot.knowledge.ingest import TITLE_SEPARATOR, Passage
from voicebot.knowledge.text import analyse
from voicebot.knowledge.vector_cache import VectorCache

__all__ = [
    "CONFIDENCE_WEIGHTS",
    "DEFAULT_WEIGHTS",
    "GATE_CAP",
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
    """Logistic confidence over the score components (see the module docstring)."""

    dense: float  # max(cosine, 0)
    bm25: float  # bm25_norm
    coverage: float  # IDF share of the query's terms found in the passage
    unknown: float  # IDF share of the query's terms the KB never uses (<= 0: it lowers confidence)
    bias: float

    def z(self, dense: float, bm25_norm: float, coverage: float, unknown: float) -> float:
        return (
            self.dense * max(dense, 0.0)
            + self.bm25 * bm25_norm
            + self.coverage * coverage
            + self.unknown * unknown
            + self.bias
        )


# Fitted by tests/knowledge/fit_confidence.py on the TUNING queries (tests/knowledge/demo_queries.py)
# only; tests/knowledge/data/heldout.yaml checks them on queries never used for fitting.
CONFIDENCE_WEIGHTS: dict[str, Weights] = {
    "en": Weights(dense=4.45, bm25=1.55, coverage=2.36, unknown=0.0, bias=-3.55),
    "sl": Weights(dense=1.78, bm25=2.96, coverage=3.19, unknown=0.0, bias=-3.49),
}
DEFAULT_WEIGHTS = CONFIDENCE_WEIGHTS["sl"]  # the embedding model is English-only: lean on words
# The lexical gate: a passage that shares no content term with the query is capped at this
# confidence (below any sensible answer threshold), however close the embeddings are.
GATE_CAP = 0.45


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(min(z, 60.0), -60.0)))


def confidence(
    dense: float, bm25_norm: float, language: str, coverage: float = 1.0, unknown: float = 0.0
) -> float:
    """The documented mapping from score components to a confidence in [0, 1] (gate included)."""
    w = CONFIDENCE_WEIGHTS.get(language, DEFAULT_WEIGHTS)
    value = _sigmoid(w.z(dense, bm25_norm, coverage, unknown))
    return min(value, GATE_CAP) if coverage <= 0.0 else value


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
    coverage: float = 0.0  # [0, 1]: IDF share of the query's terms found in the passage
    unknown: float = 0.0  # [0, 1]: IDF share of the query's terms the KB never uses

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
    postings: dict[str, npt.NDArray[np.intp]]  # term -> positions (in _indexed) of passages using it


@dataclass(slots=True)
class Features:
    """Score components of every indexed passage for one query (rows follow KnowledgeBase order)."""

    dense: npt.NDArray[np.float64]
    bm25: npt.NDArray[np.float64]
    bm25_norm: npt.NDArray[np.float64]
    coverage: npt.NDArray[np.float64]
    unknown: npt.NDArray[np.float64]
    allowed: npt.NDArray[np.bool_]


class KnowledgeBase:
    """Approved passages, embedded and indexed once; `search` is cheap and thread-safe (read-only).

    With `cache_dir`, passage embeddings are kept on disk (`voicebot.knowledge.vector_cache`), keyed
    by `model_name` (default: the embedder's class) and each text's sha256, so a restart with an
    unchanged KB embeds nothing."""

    def __init__(
        self,
        passages: list[Passage],
        embedder: Embedder,
        *,
        cache_dir: Path | None = None,
        model_name: str | None = None,
    ) -> None:
        started = time.perf_counter()
        self._cache_dir, self._model_name = cache_dir, model_name
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
        self.cache: VectorCache | None = None
        if not texts:
            matrix = np.zeros((0, self._dim), dtype=np.float32)
        elif cache_dir is not None:
            name = model_name or f"{type(embedder).__module__}.{type(embedder).__qualname__}"
            self.cache = VectorCache(cache_dir, name, self._dim)
            matrix = self.cache.embed(texts, embed_many)
        else:
            matrix = embed_many(texts)
        self._matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        self._starts = np.asarray(starts, dtype=np.intp)
        self._languages = np.asarray([p.language for p in self._indexed])
        self._tags = [set(p.tags) for p in self._indexed]
        self._weights = np.asarray(
            [_weights_row(p.language) for p in self._indexed], dtype=np.float64
        ).reshape(-1, 5)
        self._by_language = {
            lang: self._build_language(lang) for lang in sorted({p.language for p in self._indexed})
        }
        self.build_ms = (time.perf_counter() - started) * 1000
        log.info(
            "knowledge base ready: %d passages indexed (%d drafts), %d vectors (%s) in %.0f ms",
            len(self._indexed),
            len(self.passages) - len(self._indexed),
            len(texts),
            f"{self.cache.misses} embedded, {self.cache.hits} cached" if self.cache else "embedded",
            self.build_ms,
        )

    def _build_language(self, language: str) -> _LanguageIndex:
        rows = np.flatnonzero(self._languages == language)
        corpus = [analyse(_index_text(self._indexed[i]), language) for i in rows]
        df = Counter(term for terms in corpus for term in set(terms))
        n = len(corpus)
        idf = {term: _idf(n, count) for term, count in df.items()}
        postings: dict[str, list[int]] = {}
        for row, terms in zip(rows, corpus, strict=True):
            for term in set(terms):
                postings.setdefault(term, []).append(int(row))
        model = None
        if df:
            model = bm25s.BM25(k1=BM25_K1, b=BM25_B, method="lucene")
            model.index(corpus, show_progress=False)
        return _LanguageIndex(
            rows=rows,
            bm25=model,
            idf=idf,
            oov_idf=_idf(n, 0),
            postings={t: np.asarray(r, dtype=np.intp) for t, r in postings.items()},
        )

    def rebuilt(self, passages: list[Passage]) -> KnowledgeBase:
        """A new index of `passages` with this one's embedder and vector cache (unchanged texts are
        not embedded again). Blocking: run it in a worker thread, then `adopt` it on the loop."""
        return KnowledgeBase(passages, self._embedder, cache_dir=self._cache_dir, model_name=self._model_name)

    def adopt(self, other: KnowledgeBase) -> None:
        """Serve `other`'s passages and index from now on, in one step.

        Holders of this object (the DialogueManager) see the change at once. Call it on the event
        loop thread, where searches run: a search is synchronous, so none sees half of each."""
        self.__dict__.update(other.__dict__)

    @property
    def languages(self) -> list[str]:
        return list(self._by_language)

    def get(self, passage_id: str) -> Passage | None:
        return self._by_id.get(passage_id)

    @property
    def indexed(self) -> list[Passage]:
        """The approved passages, in the row order of `features`."""
        return list(self._indexed)

    def features(
        self,
        query: str,
        *,
        language: str | None,
        vector: npt.NDArray[np.float32] | None = None,
        tags: set[str] | None = None,
    ) -> Features:
        """The score components of every indexed passage (what `search` ranks and calibrates)."""
        n = len(self._indexed)
        groups = [language] if language is not None else list(self._by_language)
        groups = [g for g in groups if g in self._by_language]
        if vector is None:
            vector = self._embed_query(query) if n and groups else np.zeros(self._dim, dtype=np.float32)
        q = np.asarray(vector, dtype=np.float32).reshape(-1)
        if q.shape[0] != self._dim:
            raise ValueError(f"query vector has {q.shape[0]} dimensions, the index has {self._dim}")
        if n:
            dense = np.maximum.reduceat(self._matrix @ q, self._starts).astype(np.float64)
        else:
            dense = np.zeros(0, dtype=np.float64)
        raw = np.zeros(n, dtype=np.float64)
        norm = np.zeros(n, dtype=np.float64)
        coverage = np.zeros(n, dtype=np.float64)
        unknown = np.zeros(n, dtype=np.float64)
        allowed = np.zeros(n, dtype=bool)
        for lang in groups:
            index = self._by_language[lang]
            allowed[index.rows] = True
            terms = analyse(query, lang)
            scores, total_idf = _bm25(index, terms)
            if scores is not None:
                raw[index.rows] = scores
                norm[index.rows] = np.clip(scores / total_idf, 0.0, 1.0)
            unique = set(terms)
            unique_idf = sum(index.idf.get(t, index.oov_idf) for t in unique)
            if unique_idf > 0:
                for term in unique:
                    rows = index.postings.get(term)
                    if rows is not None:
                        coverage[rows] += index.idf[term] / unique_idf
                missing = sum(index.oov_idf for t in unique if t not in index.idf)
                unknown[index.rows] = missing / unique_idf
        if tags:
            allowed &= np.asarray([bool(t & tags) for t in self._tags], dtype=bool)
        return Features(dense, raw, norm, np.minimum(coverage, 1.0), unknown, allowed)

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
        f = self.features(query, language=language, vector=vector, tags=tags)
        candidates = int(f.allowed.sum())
        k = min(top_k, candidates)
        if k == 0:
            return []
        w = self._weights
        z = (
            w[:, 0] * np.maximum(f.dense, 0.0)
            + w[:, 1] * f.bm25_norm
            + w[:, 2] * f.coverage
            + w[:, 3] * f.unknown
            + w[:, 4]
        )
        z[~f.allowed] = -np.inf
        top = np.argpartition(-z, k - 1)[:k] if k < len(z) else np.arange(len(z))
        top = top[np.argsort(-z[top], kind="stable")]
        hits = []
        for i in top:
            if not f.allowed[i]:
                continue
            value = _sigmoid(float(z[i]))
            if f.coverage[i] <= 0.0:
                value = min(value, GATE_CAP)
            hits.append(
                Hit(
                    passage=self._indexed[i],
                    bm25=float(f.bm25[i]),
                    bm25_norm=float(f.bm25_norm[i]),
                    dense=float(f.dense[i]),
                    confidence=value,
                    coverage=float(f.coverage[i]),
                    unknown=float(f.unknown[i]),
                )
            )
        return hits

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
            "vectors_cached": self.cache.hits if self.cache else 0,
            "languages": dict(sorted(by_language.items())),
            "sources": len({p.source.split("#", 1)[0] for p in self.passages}),
            "vocabulary": {lang: len(index.idf) for lang, index in self._by_language.items()},
            "build_ms": round(self.build_ms, 1),
        }


def _weights_row(language: str) -> tuple[float, float, float, float, float]:
    w = CONFIDENCE_WEIGHTS.get(language, DEFAULT_WEIGHTS)
    return (w.dense, w.bm25, w.coverage, w.unknown, w.bias)


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
