"""Sentence embeddings: the one seam for the offline embedding model.

`Embedder` is the protocol every consumer (intents, retrieval) uses. `OnnxEmbedder` runs
all-MiniLM-L6-v2 (int8 ONNX, assembled by `voicebot models install`) with mean pooling and L2
normalisation. `BatchingEmbedder` wraps any embedder for the server: concurrent requests in the
same instant are embedded as one batch in a worker thread (onnxruntime releases the GIL), and
recent texts are cached, so the event loop never blocks on inference.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from voicebot.errors import ModelError

Vectors = npt.NDArray[np.float32]

MODEL_NAME = "minilm-l6-int8"
MAX_TOKENS = 128  # customer messages are short; longer input is truncated for the embedding only


class Embedder(Protocol):
    dim: int

    def embed(self, texts: list[str]) -> Vectors:
        """L2-normalised vectors, one row per text (blocking)."""
        ...


class OnnxEmbedder:
    """all-MiniLM-L6-v2 on onnxruntime. Thread-safe: onnxruntime sessions allow concurrent run()."""

    dim = 384

    def __init__(self, model_dir: Path, threads: int = 1) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        model = model_dir / "model.onnx"
        tokenizer = model_dir / "tokenizer.json"
        for required in (model, tokenizer):
            if not required.exists():
                raise ModelError(f"{required} is missing: run `voicebot models install`")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self._session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
            self._tokenizer = Tokenizer.from_file(str(tokenizer))
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelError(f"cannot load the embedding model from {model_dir}: {exc}") from exc
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer.no_padding()
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._lock = threading.Lock()  # tokenizers' encode_batch is not re-entrant with truncation state

    def embed(self, texts: list[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            encodings = self._tokenizer.encode_batch(texts)
        length = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(texts), length), dtype=np.int64)
        mask = np.zeros((len(texts), length), dtype=np.int64)
        for row, enc in enumerate(encodings):
            ids[row, : len(enc.ids)] = enc.ids
            mask[row, : len(enc.ids)] = 1
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feed)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)

    def embed_many(self, texts: list[str], batch_size: int = 64) -> Vectors:
        """Large inputs in sorted-length batches (less padding); rows keep the input order."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            out[chunk] = self.embed([texts[i] for i in chunk])
        return out


def load_embedder(models_dir: Path, threads: int = 1) -> OnnxEmbedder:
    return OnnxEmbedder(models_dir / MODEL_NAME, threads=threads)


class BatchingEmbedder:
    """Async front for an Embedder: one inference thread, micro-batching, a cache of recent texts.

    One batch runs at a time on a dedicated thread (onnxruntime releases the GIL, so the event
    loop keeps the other core). Requests that arrive while a batch runs wait and form the next
    batch together, so batching grows with load and costs nothing when idle. `close()` stops the
    thread.
    """

    def __init__(self, embedder: Embedder, cache_size: int = 4096, max_batch: int = 32) -> None:
        self._embedder = embedder
        self.dim = embedder.dim
        self._cache: OrderedDict[str, Vectors] = OrderedDict()
        self._cache_size = cache_size
        self._max_batch = max_batch
        self._pending: list[tuple[str, asyncio.Future[Vectors]]] = []
        self._running = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="voicebot-embed")

    def embed(self, texts: list[str]) -> Vectors:
        """Blocking path for start-up and CLI work."""
        return self._embedder.embed(texts)

    async def embed_one(self, text: str) -> Vectors:
        cached = self._cache.get(text)
        if cached is not None:
            self._cache.move_to_end(text)
            return cached
        future: asyncio.Future[Vectors] = asyncio.get_running_loop().create_future()
        self._pending.append((text, future))
        if not self._running:
            self._start_batch()
        return await future

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        for _, future in self._pending:
            if not future.done():
                future.cancel()
        self._pending.clear()

    def _start_batch(self) -> None:
        batch, self._pending = self._pending[: self._max_batch], self._pending[self._max_batch :]
        texts = list(dict.fromkeys(text for text, _ in batch))
        self._running = True
        done = asyncio.wrap_future(self._executor.submit(self._embedder.embed, texts))
        done.add_done_callback(lambda result: self._finish_batch(batch, texts, result))

    def _finish_batch(
        self,
        batch: list[tuple[str, asyncio.Future[Vectors]]],
        texts: list[str],
        result: asyncio.Future[Vectors],
    ) -> None:
        self._running = False
        error = None if result.cancelled() else result.exception()
        if result.cancelled() or error is not None:
            for _, future in batch:
                if not future.done():
                    future.set_exception(error or ModelError("the embedding was cancelled"))
        else:
            vectors = result.result()
            by_text = {text: vectors[i] for i, text in enumerate(texts)}
            for text, future in batch:
                self._remember(text, by_text[text])
                if not future.done():
                    future.set_result(by_text[text])
        if self._pending:
            self._start_batch()

    def _remember(self, text: str, vector: Vectors) -> None:
        self._cache[text] = vector
        self._cache.move_to_end(text)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
