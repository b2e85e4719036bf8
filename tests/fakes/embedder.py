"""A deterministic stand-in for the embedding model: hashed words and character trigrams.

Similar texts get similar vectors (shared words and trigrams), so classifiers and retrieval behave
plausibly in tests without the ONNX model. Same `Embedder` protocol: L2-normalised float32 rows.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np
import numpy.typing as npt


class FakeEmbedder:
    def __init__(self, dim: int = 64) -> None:
        self.dim = dim
        self.calls = 0
        self.texts_embedded = 0

    def _bucket(self, token: str) -> int:
        digest = hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest()
        return int.from_bytes(digest, "little") % self.dim

    def embed(self, texts: list[str]) -> npt.NDArray[np.float32]:
        self.calls += 1
        self.texts_embedded += len(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            lowered = text.lower()
            for word in re.findall(r"\w+", lowered):
                out[row, self._bucket("w:" + word)] += 1.0
            padded = f" {lowered} "
            for i in range(len(padded) - 2):
                out[row, self._bucket("c:" + padded[i : i + 3])] += 0.3
            norm = float(np.linalg.norm(out[row]))
            out[row] = out[row] / norm if norm > 0 else out[row]
        return out
