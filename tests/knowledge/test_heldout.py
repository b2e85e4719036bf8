"""Held-out retrieval quality: queries never used to fit the confidence weights.

Figures at the time of writing (demo KB, all-MiniLM-L6-v2 int8, threshold 0.55):

| set | top-1 | answerable >= 0.55 | near miss < 0.55 |
|---|---|---|---|
| en tuning (32 / 25) | 0.97 | 0.81 | 0.96 |
| en held-out (50 / 24) | 0.88 | 0.68 | 0.96 |
| sl tuning (32 / 25) | 0.94 | 0.78 | 0.96 |
| sl held-out (50 / 24) | 0.84 | 0.44 | 0.96 |

The floors below sit a few queries under those figures, so a regression fails the test.
"""

from __future__ import annotations

import pytest

from tests.knowledge.evaluation import THRESHOLD, evaluate, heldout_set, tuning_set
from voicebot.knowledge.embeddings import OnnxEmbedder
from voicebot.knowledge.retrieval import KnowledgeBase

# language -> (top-1, answered at >= THRESHOLD, near misses rejected)
HELDOUT_FLOORS = {"en": (0.82, 0.60, 0.90), "sl": (0.78, 0.38, 0.90)}
TUNING_FLOORS = {"en": (0.93, 0.75, 0.92), "sl": (0.90, 0.72, 0.92)}


def test_heldout_set_is_large_enough_and_disjoint_from_tuning() -> None:
    for language in ("en", "sl"):
        held, tuning = heldout_set(language), tuning_set(language)
        assert len(held.positives) >= 40 and len(held.negatives) >= 20
        tuning_queries = {q.casefold() for q, _ in tuning.positives}
        tuning_queries |= {q.casefold() for q in tuning.negatives}
        held_queries = [q.casefold() for q, _ in held.positives] + [q.casefold() for q in held.negatives]
        assert not tuning_queries & set(held_queries)
        assert len(set(held_queries)) == len(held_queries)


def test_heldout_sources_exist(demo_kb: KnowledgeBase) -> None:
    sources = {p.source for p in demo_kb.indexed}
    for language in ("en", "sl"):
        for query, expected in heldout_set(language).positives:
            assert expected <= sources, (query, expected - sources)


@pytest.mark.parametrize("language", ["en", "sl"])
def test_heldout_figures(demo_kb: KnowledgeBase, real_embedder: OnnxEmbedder, language: str) -> None:
    report = evaluate(demo_kb, real_embedder, heldout_set(language), language)
    top1, answered, rejected = HELDOUT_FLOORS[language]
    details = (report.summary(), report.misses, report.low, report.false_positives)
    assert report.top1_rate >= top1, details
    assert report.answered_rate >= answered, details
    assert report.rejected_rate >= rejected, details


@pytest.mark.parametrize("language", ["en", "sl"])
def test_tuning_figures(demo_kb: KnowledgeBase, real_embedder: OnnxEmbedder, language: str) -> None:
    report = evaluate(demo_kb, real_embedder, tuning_set(language), language)
    top1, answered, rejected = TUNING_FLOORS[language]
    details = (report.summary(), report.misses, report.low, report.false_positives)
    assert report.top1_rate >= top1, details
    assert report.answered_rate >= answered, details
    assert report.rejected_rate >= rejected, details


# The two English false positives reported against the old weights (0.92 and 0.88) are lower now
# but still above 0.55: "bring" and "store"/"discount" occur in the passages they hit, so they look
# like partial matches. Their held-out siblings ("...dog into the shop", "discounts to students")
# are rejected. The ceilings record where they are, so a change that raises them fails.
@pytest.mark.parametrize(
    ("query", "language", "ceiling"),
    [
        ("Can I bring my dog to the store?", "en", 0.65),  # 0.58 now
        ("Do you offer a student discount?", "en", 0.72),  # 0.67 now
        ("Ali lahko psa pripeljem v trgovino?", "sl", THRESHOLD),
        ("Ali imate študentski popust?", "sl", THRESHOLD),
    ],
)
def test_reported_false_positives(
    demo_kb: KnowledgeBase, real_embedder: OnnxEmbedder, query: str, language: str, ceiling: float
) -> None:
    top = demo_kb.search(query, language=language, vector=real_embedder.embed([query])[0])[0]
    assert top.confidence < ceiling, top


def test_no_shared_word_means_no_confident_answer(demo_kb: KnowledgeBase) -> None:
    # a query vector identical to a passage's own question, but no content word in common
    query = "Is there click and collect?"
    row = [p.source for p in demo_kb.indexed].index("en/faq.yaml#click-and-collect")
    vector = demo_kb._matrix[demo_kb._starts[row] + 2]  # rows: answer, then each question
    top = demo_kb.search("zebra xylophone", language="en", vector=vector)[0]
    assert top.dense > 0.99 and top.coverage == 0.0 and top.confidence < THRESHOLD
    assert demo_kb.search(query, language="en", vector=vector)[0].confidence >= THRESHOLD
