"""Intent classification: sentence embedding + TF-IDF features, a calibrated linear model, OOS threshold.

Training (`IntentClassifier.train`) holds out a stratified calibration split, fits a multinomial
logistic regression on the rest, fits a softmax temperature on the held-out split (so a confidence of
0.8 means right about 80 % of the time), picks the out-of-scope threshold that maximises accuracy on
that split (below it the prediction counts as out of scope), then refits on all the data keeping the
temperature and threshold. Out-of-scope examples (``oos_label``) are trained as a class of their own.

Per query, beyond the embedding the caller may already hold, the cost is a dict lookup of n-grams and
one small matrix product (well under a millisecond). Models are saved as one ``.npz`` (arrays plus a
JSON header, no pickle); `load_or_train` caches them keyed by a hash of the examples and settings.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.optimize import minimize_scalar
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from voicebot.dialogue.nlu_data import load_intents_yaml
from voicebot.dialogue.nlu_features import LexicalFeatures
from voicebot.errors import InputError, ModelError
from voicebot.knowledge.embeddings import Embedder

__all__ = ["IntentClassifier", "IntentPrediction", "load_intents_yaml", "load_or_train"]

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
C = 10.0  # inverse L2 strength; chosen by cross-validation on Banking77's *training* data
MAX_ITER = 1000
RANKING_SIZE = 5
EMBED_BATCH = 64

Matrix = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class IntentPrediction:
    intent: str | None  # None when out of scope
    confidence: float  # calibrated probability of the top label, in [0, 1]
    ranking: list[tuple[str, float]] = field(default_factory=list)  # best first, oos label included
    oos: bool = False


def _embed(embedder: Embedder, texts: list[str]) -> Matrix:
    embed_many = getattr(embedder, "embed_many", None)
    if callable(embed_many):
        return np.asarray(embed_many(texts, EMBED_BATCH), dtype=np.float32)
    chunks = [embedder.embed(texts[i : i + EMBED_BATCH]) for i in range(0, len(texts), EMBED_BATCH)]
    return np.vstack(chunks).astype(np.float32) if chunks else np.zeros((0, embedder.dim), np.float32)


def _softmax(logits: Matrix) -> Matrix:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    out: Matrix = e / e.sum(axis=-1, keepdims=True)
    return out


def _split(labels: list[str], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Stratified split: per label, round(fraction*n) rows held out, at least one kept for training."""
    by_label: dict[str, list[int]] = defaultdict(list)
    for i, label in enumerate(labels):
        by_label[label].append(i)
    rng = random.Random(seed)
    fit, held = [], []
    for label in sorted(by_label):
        rows = by_label[label]
        rng.shuffle(rows)
        n_held = min(len(rows) - 1, max(1, round(fraction * len(rows)))) if fraction > 0 else 0
        held.extend(rows[:n_held])
        fit.extend(rows[n_held:])
    return sorted(fit), sorted(held)


def _fit_temperature(logits: Matrix, gold: npt.NDArray[np.int64]) -> float:
    def nll(log_t: float) -> float:
        z = logits / np.exp(log_t)
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        return float(-logp[np.arange(len(gold)), gold].mean())

    result = minimize_scalar(nll, bounds=(-3.0, 3.0), method="bounded")
    return float(np.exp(result.x))


def _pick_threshold(
    confidence: Matrix,
    top_is_gold: npt.NDArray[np.bool_],
    gold_oos: npt.NDArray[np.bool_],
    top_oos: npt.NDArray[np.bool_],
) -> float:
    """The threshold that maximises accuracy when below-threshold predictions count as out of scope."""
    values = np.unique(confidence)
    candidates = np.concatenate([[0.0], (values[:-1] + values[1:]) / 2, [values[-1] + 1e-6]])
    best_acc, best = -1.0, [0.0]
    for t in candidates:
        predicted_oos = top_oos | (confidence < t)
        correct = np.where(predicted_oos, gold_oos, top_is_gold & ~gold_oos)
        acc = float(correct.mean())
        if acc > best_acc + 1e-12:
            best_acc, best = acc, [float(t)]
        elif abs(acc - best_acc) <= 1e-12:
            best.append(float(t))
    if not gold_oos.any():
        return 0.0  # nothing out of scope to separate: never refuse in-scope questions for free
    return min(best[len(best) // 2], 0.99)


class IntentClassifier:
    """A trained classifier. Build it with `train`, `load` or `load_or_train`."""

    def __init__(
        self,
        labels: list[str],
        lexical: LexicalFeatures,
        coef_embed: Matrix,
        coef_lex: Matrix,
        intercept: Matrix,
        temperature: float,
        threshold: float,
        oos_label: str,
    ) -> None:
        self.labels = labels
        self.lexical = lexical
        self.embed_dim = coef_embed.shape[1]
        self._coef_embed = np.ascontiguousarray(coef_embed, dtype=np.float32)  # (K, dim)
        self._coef_lex_t = np.ascontiguousarray(coef_lex, dtype=np.float32)  # (D_lex, K), rows gathered
        self._intercept = intercept.astype(np.float32)
        self.temperature = temperature
        self.threshold = threshold
        self.oos_label = oos_label
        self.embedder: Embedder | None = None

    # ---- training -------------------------------------------------------------------------------
    @classmethod
    def train(
        cls,
        examples: list[tuple[str, str]],
        embedder: Embedder,
        *,
        oos_label: str = "oos",
        calibration_fraction: float = 0.15,
        seed: int = 0,
    ) -> IntentClassifier:
        texts = [t for t, _ in examples]
        labels = [lab for _, lab in examples]
        classes = sorted(set(labels))
        if len(classes) < 2:
            raise InputError(f"intent training needs at least two labels, got {classes}")
        if any(not t.strip() for t in texts):
            raise InputError("intent training examples must not be empty")
        vectors = _embed(embedder, texts)
        fit_rows, held_rows = _split(labels, calibration_fraction, seed)
        temperature, threshold = 1.0, 0.0
        if held_rows:
            part = cls._fit(
                [texts[i] for i in fit_rows],
                [labels[i] for i in fit_rows],
                vectors[fit_rows],
                classes,
                oos_label,
                seed,
            )
            logits = part._logits_batch([texts[i] for i in held_rows], vectors[held_rows])
            gold = np.array([classes.index(labels[i]) for i in held_rows], dtype=np.int64)
            temperature = _fit_temperature(logits, gold)
            probs = _softmax(logits / temperature)
            top = probs.argmax(axis=1)
            oos_index = classes.index(oos_label) if oos_label in classes else -1
            threshold = _pick_threshold(probs.max(axis=1), top == gold, gold == oos_index, top == oos_index)
            log.info(
                "intent calibration on %d rows: temperature %.3f, oos threshold %.3f",
                len(held_rows),
                temperature,
                threshold,
            )
        model = cls._fit(texts, labels, vectors, classes, oos_label, seed)
        model.temperature, model.threshold = temperature, threshold
        model.embedder = embedder
        return model

    @classmethod
    def _fit(
        cls,
        texts: list[str],
        labels: list[str],
        vectors: Matrix,
        classes: list[str],
        oos_label: str,
        seed: int,
    ) -> IntentClassifier:
        lexical, lex_matrix = LexicalFeatures.fit(texts)
        x = sp.hstack([sp.csr_matrix(vectors), lex_matrix], format="csr")
        lr = LogisticRegression(C=C, max_iter=MAX_ITER, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            lr.fit(x, labels)
        weights = np.asarray(lr.coef_, dtype=np.float32)
        biases = np.asarray(lr.intercept_, dtype=np.float32)
        if len(lr.classes_) == 2:  # sklearn keeps one row (class 1 vs class 0): softmax of (0, z)
            weights = np.vstack([np.zeros_like(weights), weights])
            biases = np.concatenate([np.zeros(1, dtype=np.float32), biases])
        coef = np.zeros((len(classes), x.shape[1]), dtype=np.float32)
        intercept = np.full(len(classes), -1e4, dtype=np.float32)  # a class absent from a split never wins
        for row, label in enumerate(lr.classes_):
            coef[classes.index(label)] = weights[row]
            intercept[classes.index(label)] = biases[row]
        dim = vectors.shape[1]
        return cls(classes, lexical, coef[:, :dim], coef[:, dim:].T, intercept, 1.0, 0.0, oos_label)

    # ---- prediction -----------------------------------------------------------------------------
    def features(
        self, text: str, vector: npt.NDArray[np.floating[Any]] | None = None
    ) -> tuple[Matrix, tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]]:
        """The embedding (computed if not given) and the sparse lexical features of one text."""
        if vector is None:
            if self.embedder is None:
                raise ModelError("this IntentClassifier has no embedder: pass vector= or attach one")
            vector = self.embedder.embed([text])[0]
        v = np.asarray(vector, dtype=np.float32).reshape(-1)
        if v.shape[0] != self.embed_dim:
            raise InputError(f"embedding has {v.shape[0]} dimensions, the model expects {self.embed_dim}")
        return v, self.lexical.row(text)

    def _logits(self, text: str, vector: npt.NDArray[np.floating[Any]] | None) -> Matrix:
        v, (idx, vals) = self.features(text, vector)
        logits: Matrix = self._coef_embed @ v + self._intercept
        if len(idx):
            logits = logits + vals @ self._coef_lex_t[idx]
        return logits

    def _logits_batch(self, texts: list[str], vectors: Matrix) -> Matrix:
        lex = self.lexical.matrix(texts)
        out: Matrix = vectors @ self._coef_embed.T + np.asarray(lex @ self._coef_lex_t) + self._intercept
        return out

    def _prediction(self, logits: Matrix) -> IntentPrediction:
        if not self.labels:  # a tenant without intents: everything is out of scope
            return IntentPrediction(None, 0.0, [], True)
        probs = _softmax(logits / self.temperature)
        order = np.argsort(-probs)
        ranking = [(self.labels[i], float(probs[i])) for i in order[:RANKING_SIZE]]
        top_label, confidence = ranking[0]
        oos = top_label == self.oos_label or confidence < self.threshold
        return IntentPrediction(None if oos else top_label, confidence, ranking, oos)

    def predict(self, text: str, vector: npt.NDArray[np.floating[Any]] | None = None) -> IntentPrediction:
        return self._prediction(self._logits(text, vector))

    def predict_batch(self, texts: list[str], vectors: Matrix | None = None) -> list[IntentPrediction]:
        if not texts:
            return []
        if vectors is None:
            if self.embedder is None:
                raise ModelError("this IntentClassifier has no embedder: pass vectors= or attach one")
            vectors = _embed(self.embedder, texts)
        logits = self._logits_batch(texts, np.asarray(vectors, dtype=np.float32))
        return [self._prediction(row) for row in logits]

    @classmethod
    def train_cached(
        cls,
        examples: list[tuple[str, str]],
        embedder: Embedder,
        *,
        cache_dir: Path,
        model_name: str | None = None,
        oos_label: str = "oos",
        calibration_fraction: float = 0.15,
        seed: int = 0,
    ) -> IntentClassifier:
        """`load_or_train` as a constructor; no examples gives a model that finds everything out of scope.

        `model_name` defaults to the embedder's ``model_name`` attribute, else its class name and dim.
        """
        if not examples:
            empty = cls(
                [],
                LexicalFeatures([]),
                np.zeros((0, embedder.dim), np.float32),
                np.zeros((0, 0), np.float32),
                np.zeros(0, np.float32),
                1.0,
                0.0,
                oos_label,
            )
            empty.embedder = embedder
            return empty
        name = model_name or str(getattr(embedder, "model_name", f"{type(embedder).__name__}-{embedder.dim}"))
        return load_or_train(
            examples,
            embedder,
            cache_dir,
            model_name=name,
            oos_label=oos_label,
            calibration_fraction=calibration_fraction,
            seed=seed,
        )

    # ---- persistence ----------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        lex_meta, lex_arrays = self.lexical.state()
        meta = {
            "version": FORMAT_VERSION,
            "labels": self.labels,
            "oos_label": self.oos_label,
            "temperature": self.temperature,
            "threshold": self.threshold,
            "lexical": lex_meta,
        }
        header = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        arrays: dict[str, npt.NDArray[Any]] = {
            "meta": header,
            "coef_embed": self._coef_embed,
            "coef_lex_t": self._coef_lex_t,
            "intercept": self._intercept,
            **lex_arrays,
        }
        np.savez(tmp, allow_pickle=False, **arrays)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path, embedder: Embedder | None = None) -> IntentClassifier:
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
            meta = json.loads(arrays.pop("meta").tobytes().decode("utf-8"))
            if meta.get("version") != FORMAT_VERSION:
                raise ValueError(f"format version {meta.get('version')}, expected {FORMAT_VERSION}")
            lexical = LexicalFeatures.from_state(meta["lexical"], arrays)
            model = cls(
                list(meta["labels"]),
                lexical,
                arrays["coef_embed"],
                arrays["coef_lex_t"],
                arrays["intercept"],
                float(meta["temperature"]),
                float(meta["threshold"]),
                str(meta["oos_label"]),
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"cannot load the intent model {path}: {exc}") from exc
        if model._coef_lex_t.shape[0] != lexical.dim:
            raise ModelError(f"cannot load the intent model {path}: lexical weights do not match")
        model.embedder = embedder
        return model


def cache_key(
    examples: list[tuple[str, str]],
    model_name: str,
    *,
    oos_label: str = "oos",
    calibration_fraction: float = 0.15,
    seed: int = 0,
) -> str:
    payload = json.dumps(
        {
            "v": FORMAT_VERSION,
            "C": C,
            "model": model_name,
            "oos": oos_label,
            "cal": calibration_fraction,
            "seed": seed,
            "examples": examples,
        },
        ensure_ascii=False,
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:24]


def load_or_train(
    examples: list[tuple[str, str]],
    embedder: Embedder,
    cache_dir: Path,
    *,
    model_name: str,
    oos_label: str = "oos",
    calibration_fraction: float = 0.15,
    seed: int = 0,
) -> IntentClassifier:
    """The cached model for these examples and embedding model, trained (and cached) if missing."""
    key = cache_key(
        examples, model_name, oos_label=oos_label, calibration_fraction=calibration_fraction, seed=seed
    )
    path = cache_dir / f"intents-{key}.npz"
    if path.exists():
        try:
            model = IntentClassifier.load(path, embedder)
            if model.embed_dim == embedder.dim:
                log.info("intent model loaded from cache %s", path)
                return model
        except ModelError as exc:
            log.warning("intent model cache %s unusable (%s); retraining", path, exc.message)
    model = IntentClassifier.train(
        examples, embedder, oos_label=oos_label, calibration_fraction=calibration_fraction, seed=seed
    )
    model.save(path)
    log.info("intent model trained on %d examples, cached at %s", len(examples), path)
    return model
