"""The knowledge-base gaps report: unanswered customer questions, grouped by similarity.

`cluster(vectors, threshold)` is deterministic average-linkage agglomerative clustering: the two
groups whose questions are on average most similar (cosine of the embeddings) merge, until no two
groups reach `threshold`. Unlike a single pass, the result does not hang on which question came
first; ties break on a fixed order (the most asked wording first, then the newest).

`gaps_report(...)` reads at most `limit` questions (the newest), embeds each distinct wording
once, clusters them and describes each group: a representative question (the member closest to
the centroid), the count, example wordings, languages, the reasons, the last time it was asked,
the conversations, and whether the knowledge base answers it now (after an edit).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from voicebot.storage.reviews import GapQuestion

__all__ = ["DEFAULT_THRESHOLD", "GapGroup", "GapsReport", "cluster", "gaps_report", "normalise"]

# MiniLM cosine: paraphrases of one question measured 0.55-0.98 here, other questions on the same
# page of the shop (opening hours vs parking, shipping abroad vs on Saturdays) 0.48-0.53
DEFAULT_THRESHOLD = 0.55
MAX_EXAMPLES = 5
MAX_CONVERSATIONS = 20

Vectors = npt.NDArray[np.float32]


def normalise(text: str) -> str:
    return " ".join(text.lower().split()).strip(" ?!.")


def cluster(vectors: Vectors, threshold: float, weights: list[int] | None = None) -> list[list[int]]:
    """Average-linkage agglomerative clustering on cosine similarity (rows L2-normalised).

    The two groups with the highest average pairwise similarity merge, until no two groups reach
    `threshold`. `weights` counts how often each row was asked (a row stands for its repeats).
    Ties break on the lowest row, so the result depends on the input alone. O(n^2) memory and
    O(n^3) time at worst: callers bound n (the gaps report's `limit`).
    Returns groups of row indexes, each in ascending order, ordered by their first row."""
    n = int(vectors.shape[0])
    if n == 0:
        return []
    sizes = np.asarray(weights if weights else [1] * n, dtype=np.float64)
    similarity = vectors.astype(np.float64) @ vectors.astype(np.float64).T
    np.fill_diagonal(similarity, -np.inf)
    members: dict[int, list[int]] = {i: [i] for i in range(n)}
    while len(members) > 1:
        flat = int(np.argmax(similarity))
        i, j = divmod(flat, n)
        if similarity[i, j] < threshold:
            break
        i, j = min(i, j), max(i, j)
        # Lance-Williams update for average linkage: the merged group's average to every other group
        merged = (sizes[i] * similarity[i] + sizes[j] * similarity[j]) / (sizes[i] + sizes[j])
        similarity[i, :] = merged
        similarity[:, i] = merged
        similarity[i, i] = -np.inf
        similarity[j, :] = -np.inf
        similarity[:, j] = -np.inf
        sizes[i] += sizes[j]
        members[i] = sorted(members[i] + members.pop(j))
    return [members[i] for i in sorted(members)]


@dataclass(slots=True)
class GapGroup:
    representative: str
    count: int
    examples: list[str]
    languages: list[str]
    reasons: dict[str, int]
    last_seen: datetime
    conversation_ids: list[str]
    notes: list[str] = field(default_factory=list)
    answered_now: bool = False
    answered_confidence: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "representative": self.representative,
            "count": self.count,
            "examples": self.examples,
            "languages": self.languages,
            "reasons": self.reasons,
            "last_seen": self.last_seen.isoformat(),
            "conversation_ids": self.conversation_ids,
            "notes": self.notes,
            "answered_now": self.answered_now,
            "answered_confidence": self.answered_confidence,
        }


@dataclass(slots=True)
class GapsReport:
    groups: list[GapGroup]
    questions: int  # questions considered
    limit: int
    capped: bool  # there were more than `limit`: only the newest were considered
    threshold: float


def _describe(members: list[GapQuestion], wordings: list[str], representative: str) -> GapGroup:
    """One group: `wordings` its distinct texts (most asked first); `representative` the closest to
    the group's centroid."""
    newest = sorted(members, key=lambda q: q.at, reverse=True)
    conversations = list(dict.fromkeys(q.conversation_id for q in newest))
    return GapGroup(
        representative=representative,
        count=len(members),
        examples=wordings[:MAX_EXAMPLES],
        languages=sorted({q.language for q in members if q.language}),
        reasons=dict(sorted(Counter(q.reason for q in members).items())),
        last_seen=max(q.at for q in members),
        conversation_ids=conversations[:MAX_CONVERSATIONS],
        notes=list(dict.fromkeys(n for q in newest for n in q.notes))[:MAX_EXAMPLES],
    )


async def gaps_report(
    questions: list[GapQuestion],
    *,
    embed: Callable[[list[str]], Vectors],
    limit: int,
    capped: bool,
    threshold: float = DEFAULT_THRESHOLD,
    answers: Callable[[str, str | None, Vectors], float] | None = None,
    answer_threshold: float = 1.0,
) -> GapsReport:
    """Group `questions` (newest first, at most `limit`). `embed` is blocking (run in a thread);
    `answers(text, language, vector)` is the knowledge base's best confidence for a question now."""
    by_wording: dict[str, list[GapQuestion]] = {}
    for q in questions:
        by_wording.setdefault(normalise(q.text), []).append(q)
    # most asked wording first, then the newest: the input order that fixes the groups
    order = sorted(by_wording, key=lambda w: (-len(by_wording[w]), -by_wording[w][0].at.timestamp(), w))
    texts = [by_wording[w][0].text for w in order]
    weights = [len(by_wording[w]) for w in order]

    def embed_and_cluster() -> tuple[Vectors, list[list[int]]]:
        vectors = np.asarray(embed(texts), dtype=np.float32) if texts else np.zeros((0, 1), dtype=np.float32)
        return vectors, cluster(vectors, threshold, weights)

    # both are CPU work (inference, then up to a second of clustering at 1,000 wordings): off the loop
    vectors, clusters = await asyncio.to_thread(embed_and_cluster)
    groups: list[GapGroup] = []
    for rows in clusters:
        members = [q for r in rows for q in by_wording[order[r]]]
        centroid = np.asarray(vectors[rows], dtype=np.float64).T @ np.asarray([weights[r] for r in rows])
        closeness = vectors[rows] @ (centroid / max(float(np.linalg.norm(centroid)), 1e-12))
        best_row = rows[min(range(len(rows)), key=lambda i: (-closeness[i], i))]
        group = _describe(members, [texts[r] for r in rows], texts[best_row])
        if answers is not None:
            language = Counter(q.language for q in members).most_common(1)[0][0]
            best = answers(group.representative, language, vectors[best_row])
            group.answered_confidence = round(best, 4)
            group.answered_now = best >= answer_threshold
        groups.append(group)
    groups.sort(key=lambda g: (-g.count, -g.last_seen.timestamp(), g.representative))
    return GapsReport(groups, len(questions), limit, capped, threshold)
