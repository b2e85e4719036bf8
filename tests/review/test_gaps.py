"""The gaps report groups unanswered questions by meaning, with the real embedding model."""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from tests.review.seed import T0
from voicebot.knowledge.embeddings import Embedder
from voicebot.review.gaps import GapsReport, cluster, gaps_report, normalise
from voicebot.storage.reviews import GapQuestion


def question(text: str, n: int, *, conversation: str | None = None, language: str = "en") -> GapQuestion:
    return GapQuestion(
        text=text,
        conversation_id=conversation or f"c{n}",
        language=language,
        at=T0 + timedelta(minutes=n),
        reason="below_threshold",
        confidence=0.2,
    )


GIFT = [
    "Do you sell gift cards?",
    "Can I buy a gift card?",
    "do you sell gift cards",
    "Is it possible to buy a gift voucher?",
]
PARKING = ["Is there parking at your store?", "Where can I park my car near the shop?"]
LONELY = "Do you repair drones?"


async def test_similar_questions_group_and_different_ones_stay_apart(real_embedder: Embedder) -> None:
    texts = [*GIFT, *PARKING, LONELY]
    questions = [question(t, n) for n, t in enumerate(texts)]
    questions.reverse()  # newest first, as the repository returns them
    report = await gaps_report(questions, embed=real_embedder.embed, limit=100, capped=False)
    groups = {frozenset(g.examples): g for g in report.groups}
    gift = next(g for g in report.groups if "Can I buy a gift card?" in g.examples)
    assert gift.count == 4
    # the same wording twice is counted twice and shown once, as last asked
    assert set(gift.examples) == {
        "do you sell gift cards",
        "Can I buy a gift card?",
        "Is it possible to buy a gift voucher?",
    }
    assert gift.representative in gift.examples
    parking = next(g for g in report.groups if "Is there parking at your store?" in g.examples)
    assert parking.count == 2 and set(parking.examples) == set(PARKING)
    lonely = next(g for g in report.groups if LONELY in g.examples)
    assert lonely.count == 1
    assert len(groups) == 3
    assert [g.count for g in report.groups] == [4, 2, 1]  # largest first
    assert gift.last_seen == T0 + timedelta(minutes=3)
    assert gift.languages == ["en"]
    assert gift.conversation_ids == ["c3", "c2", "c1", "c0"]
    assert report.questions == 7 and not report.capped


async def test_the_report_is_deterministic_and_answers_are_checked(real_embedder: Embedder) -> None:
    questions = [question(t, n) for n, t in enumerate([*GIFT, *PARKING, LONELY])]
    asked: list[str] = []

    def answers(text: str, language: str | None, vector: np.ndarray) -> float:  # type: ignore[type-arg]
        asked.append(text)
        assert vector.shape == (real_embedder.dim,)
        return 0.9 if "park" in text else 0.1

    one = await gaps_report(
        questions, embed=real_embedder.embed, limit=7, capped=True, answers=answers, answer_threshold=0.55
    )
    two = await gaps_report(questions, embed=real_embedder.embed, limit=7, capped=True)
    assert [g.to_dict() | {"answered_now": None, "answered_confidence": None} for g in one.groups] == [
        g.to_dict() | {"answered_now": None, "answered_confidence": None} for g in two.groups
    ]
    assert one.capped
    assert [g.answered_now for g in one.groups] == [False, True, False]
    assert len(asked) == 3


def test_cluster_is_average_linkage() -> None:
    a = np.asarray([1.0, 0.0], dtype=np.float32)
    b = np.asarray([0.0, 1.0], dtype=np.float32)
    ab = np.asarray([0.8, 0.6], dtype=np.float32)
    assert cluster(np.stack([a, b, ab]), 0.7) == [[0, 2], [1]]
    assert cluster(np.stack([a, b, ab]), 0.9) == [[0], [1], [2]]
    assert cluster(np.zeros((0, 2), dtype=np.float32), 0.5) == []


async def test_the_groups_do_not_depend_on_the_order_asked(real_embedder: Embedder) -> None:
    texts = [*GIFT, *PARKING, LONELY]
    forward = [question(t, n) for n, t in enumerate(texts)]
    backward = [question(t, n) for n, t in enumerate(reversed(texts))]

    def partition(report: GapsReport) -> set[frozenset[str]]:
        return {frozenset(normalise(e) for e in g.examples) for g in report.groups}

    one = await gaps_report(forward, embed=real_embedder.embed, limit=100, capped=False)
    two = await gaps_report(backward, embed=real_embedder.embed, limit=100, capped=False)
    assert partition(one) == partition(two)
