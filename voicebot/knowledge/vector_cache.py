"""On-disk cache of passage embeddings, so an unchanged KB is never embedded twice.

Building the knowledge base is almost all embedding (seconds on 2 cores); the index itself takes
milliseconds. `VectorCache(cache_dir, model_name, dim)` keeps one ``.npz`` file per embedding model
under `cache_dir` (``vectors-<model>-<dim>.npz``): the sha256 of every embedded text and its vector.
A vector is reused only when the model name, the dimension and the exact text all match, so
editing a passage re-embeds that passage alone, and switching models starts a new file.

`VectorCache.embed(texts, embed)` returns one row per text, calling `embed` only for the misses,
then rewrites the file (atomically: a temporary file, then `os.replace`) if anything changed. The
file mirrors the last KB built with it: vectors of texts no longer in the KB are dropped. A file
that cannot be read (truncated, another format) is logged and ignored; it is rebuilt on save.
Plain arrays only (``allow_pickle=False``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = ["FORMAT_VERSION", "VectorCache", "text_key"]

log = logging.getLogger("voicebot.knowledge")

FORMAT_VERSION = 1
Vectors = npt.NDArray[np.float32]


def text_key(text: str) -> bytes:
    """The cache key of one embedded text: its sha256, hex, as bytes (fixed width 64)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest().encode("ascii")


class VectorCache:
    """Embeddings of texts for one model, loaded from and saved to `cache_dir`."""

    def __init__(self, cache_dir: Path, model_name: str, dim: int) -> None:
        self.model_name = model_name
        self.dim = dim
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", model_name).strip("._") or "model"
        self.path = Path(cache_dir) / f"vectors-{safe}-{dim}.npz"
        self.hits = 0
        self.misses = 0
        self._vectors: dict[bytes, Vectors] = self._load()

    def __len__(self) -> int:
        return len(self._vectors)

    def _load(self) -> dict[bytes, Vectors]:
        if not self.path.exists():
            return {}
        try:
            with open(self.path, "rb") as fh, np.load(fh, allow_pickle=False) as data:
                version = int(data["format"])
                model = str(data["model"])
                keys = data["keys"]
                vectors = np.asarray(data["vectors"], dtype=np.float32)
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
            log.warning("vector cache %s unreadable (%s); it will be rebuilt", self.path, exc)
            return {}
        if version != FORMAT_VERSION or model != self.model_name or vectors.ndim != 2:
            log.info("vector cache %s is for another model or format; it will be rebuilt", self.path)
            return {}
        if vectors.shape != (len(keys), self.dim):
            log.warning("vector cache %s has shape %s; it will be rebuilt", self.path, vectors.shape)
            return {}
        return {bytes(k): vectors[i] for i, k in enumerate(keys)}

    def embed(self, texts: list[str], embed: Callable[[list[str]], Vectors]) -> Vectors:
        """One row per text: cached rows as they are, the misses embedded (once each) by `embed`."""
        keys = [text_key(t) for t in texts]
        missing: dict[bytes, str] = {}
        for key, text in zip(keys, texts, strict=True):
            if key not in self._vectors and key not in missing:
                missing[key] = text
        self.misses += len(missing)
        self.hits += len(texts) - len(missing)  # texts served without embedding
        if missing:
            fresh = np.asarray(embed(list(missing.values())), dtype=np.float32)
            if fresh.shape != (len(missing), self.dim):
                expected = (len(missing), self.dim)
                raise ValueError(f"the embedder returned shape {fresh.shape}, expected {expected}")
            for i, key in enumerate(missing):
                self._vectors[key] = fresh[i]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, key in enumerate(keys):
            out[row] = self._vectors[key]
        current = set(keys)
        if missing or len(self._vectors) != len(current):
            self._vectors = {k: v for k, v in self._vectors.items() if k in current}
            self.save()
        return out

    def save(self) -> None:
        """Write the cache atomically; a failure to write is logged, never raised."""
        keys = np.asarray(sorted(self._vectors), dtype="S64")
        vectors = (
            np.stack([self._vectors[bytes(k)] for k in keys]).astype(np.float32)
            if len(keys)
            else np.zeros((0, self.dim), dtype=np.float32)
        )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".vectors-", suffix=".npz")
            try:
                with os.fdopen(fd, "wb") as fh:
                    np.savez(
                        fh,
                        format=np.asarray(FORMAT_VERSION),
                        model=np.asarray(self.model_name),
                        keys=keys,
                        vectors=vectors,
                    )
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            log.warning("cannot write the vector cache %s: %s", self.path, exc)
