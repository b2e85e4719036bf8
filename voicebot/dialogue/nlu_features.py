"""Cheap lexical features for the intent classifier: TF-IDF over words and character n-grams.

The embedding model (all-MiniLM-L6-v2) is English-only, so in-language lexical features carry the
Slovenian signal. Vocabularies and IDF weights are fitted with scikit-learn's TfidfVectorizer;
per-query features are computed here from the same analyzer with a dict lookup, which costs a few
tens of microseconds instead of sklearn's per-call validation overhead. Accents are stripped so
"narocilo" and "naročilo" match.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

# name -> TfidfVectorizer parameters (everything the analyzer depends on is here and in the saved state)
VECTORIZERS: dict[str, dict[str, Any]] = {
    "word": {"analyzer": "word", "ngram_range": (1, 2), "min_df": 1},
    "char": {"analyzer": "char_wb", "ngram_range": (2, 5), "min_df": 2, "max_features": 100_000},
    "char1": {"analyzer": "char_wb", "ngram_range": (1, 1), "min_df": 1},  # fallback, degenerate data
}
FITTED_BLOCKS = ("word", "char")
_COMMON: dict[str, Any] = {"lowercase": True, "strip_accents": "unicode", "sublinear_tf": True}

SparseRow = tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]


def _analyzer(name: str) -> Callable[[str], list[str]]:
    params = {**_COMMON, **VECTORIZERS[name]}
    params.pop("min_df", None)
    params.pop("max_features", None)
    analyzer: Callable[[str], list[str]] = TfidfVectorizer(**params).build_analyzer()
    return analyzer


@dataclass
class _Block:
    """One fitted vectorizer: its vocabulary (term -> column) and IDF weights."""

    name: str
    vocabulary: dict[str, int]
    idf: npt.NDArray[np.float32]

    def __post_init__(self) -> None:
        self.analyze = _analyzer(self.name)

    def row(self, text: str) -> SparseRow:
        counts = Counter(t for t in self.analyze(text) if t in self.vocabulary)
        if not counts:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        idx = np.fromiter((self.vocabulary[t] for t in counts), dtype=np.int64, count=len(counts))
        tf = np.fromiter((1.0 + math.log(c) for c in counts.values()), dtype=np.float32, count=len(counts))
        vals = tf * self.idf[idx]
        vals /= max(float(np.linalg.norm(vals)), 1e-12)
        return idx, vals


class LexicalFeatures:
    """Word and char n-gram TF-IDF blocks, each L2-normalised, laid side by side."""

    def __init__(self, blocks: list[_Block]) -> None:
        self._blocks = blocks
        self._offsets: list[int] = []
        total = 0
        for block in blocks:
            self._offsets.append(total)
            total += len(block.idf)
        self.dim = total

    @classmethod
    def fit(cls, texts: list[str]) -> tuple[LexicalFeatures, sp.csr_matrix]:
        """Fit on the training texts; returns the features and the training matrix."""
        blocks: list[_Block] = []
        matrices = []
        for name in FITTED_BLOCKS:
            params = dict(VECTORIZERS[name])
            # tiny training sets: min_df > 1 may leave nothing, so relax it
            if len(texts) < 50:
                params["min_df"] = 1
            vectorizer = TfidfVectorizer(**_COMMON, **params, dtype=np.float32)
            try:
                matrices.append(vectorizer.fit_transform(texts))
            except ValueError:  # empty vocabulary (e.g. only one-letter words)
                name = "char1"
                vectorizer = TfidfVectorizer(**_COMMON, **VECTORIZERS[name], dtype=np.float32)
                matrices.append(vectorizer.fit_transform(texts))
            vocabulary = {str(t): int(i) for t, i in vectorizer.vocabulary_.items()}
            blocks.append(_Block(name, vocabulary, vectorizer.idf_.astype(np.float32)))
        return cls(blocks), sp.hstack(matrices, format="csr", dtype=np.float32)

    def row(self, text: str) -> SparseRow:
        parts = [block.row(text) for block in self._blocks]
        if not parts:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        idx = np.concatenate([p[0] + off for p, off in zip(parts, self._offsets, strict=True)])
        vals = np.concatenate([p[1] for p in parts])
        return idx, vals

    def matrix(self, texts: list[str]) -> sp.csr_matrix:
        indptr = [0]
        all_idx: list[npt.NDArray[np.int64]] = []
        all_vals: list[npt.NDArray[np.float32]] = []
        for text in texts:
            idx, vals = self.row(text)
            all_idx.append(idx)
            all_vals.append(vals)
            indptr.append(indptr[-1] + len(idx))
        idx_all = np.concatenate(all_idx) if all_idx else np.zeros(0, dtype=np.int64)
        vals_all = np.concatenate(all_vals) if all_vals else np.zeros(0, dtype=np.float32)
        return sp.csr_matrix((vals_all, idx_all, np.array(indptr)), shape=(len(texts), self.dim))

    # persistence: plain JSON-able state plus arrays, no pickle
    def state(self) -> tuple[dict[str, Any], dict[str, npt.NDArray[Any]]]:
        meta = {"blocks": [{"name": b.name, "terms": _terms(b.vocabulary)} for b in self._blocks]}
        arrays = {f"idf_{i}": b.idf for i, b in enumerate(self._blocks)}
        return meta, arrays

    @classmethod
    def from_state(cls, meta: dict[str, Any], arrays: dict[str, npt.NDArray[Any]]) -> LexicalFeatures:
        blocks = []
        for i, block in enumerate(meta["blocks"]):
            vocabulary = {term: col for col, term in enumerate(block["terms"])}
            idf = np.asarray(arrays[f"idf_{i}"], dtype=np.float32)
            if len(idf) != len(vocabulary):
                raise ValueError(f"block {block['name']}: {len(vocabulary)} terms but {len(idf)} weights")
            blocks.append(_Block(str(block["name"]), vocabulary, idf))
        return cls(blocks)


def _terms(vocabulary: dict[str, int]) -> list[str]:
    terms = [""] * len(vocabulary)
    for term, col in vocabulary.items():
        terms[col] = term
    return terms
