"""KnowledgeBase mechanics on a tiny KB with the deterministic fake embedder."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fakes.embedder import FakeEmbedder
from voicebot.dialogue.types import Citation
from voicebot.knowledge.ingest import Passage
from voicebot.knowledge.retrieval import CONFIDENCE_WEIGHTS, GATE_CAP, KnowledgeBase, answer_text, confidence

PASSAGES = [
    Passage(
        "p1",
        "en/ship.md#costs",
        "Shipping › Costs",
        "Shipping costs 3.90 EUR in Slovenia.",
        "en",
        tags=("shipping",),
    ),
    Passage(
        "p2",
        "en/faq.yaml#gift",
        "Do you sell gift cards?",
        "Yes, from 20 EUR.",
        "en",
        tags=("faq",),
        questions=("Do you sell gift cards?", "Can I buy a voucher?"),
    ),
    Passage(
        "p3", "sl/dostava.md#cena", "Dostava › Cena", "Poštnina stane 3,90 EUR.", "sl", tags=("dostava",)
    ),
    Passage("p4", "en/draft.md#promo", "Promo", "Shipping is free on Black Friday.", "en", approved=False),
]


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return KnowledgeBase(PASSAGES, FakeEmbedder())


def test_drafts_are_not_indexed(kb: KnowledgeBase) -> None:
    hits = kb.search("shipping free black friday", language=None, top_k=10)
    assert "p4" not in {h.passage.id for h in hits}
    assert kb.get("p4") is not None  # kept for inspection
    assert kb.stats()["drafts"] == 1 and kb.stats()["indexed"] == 3


def test_language_and_tag_filters(kb: KnowledgeBase) -> None:
    assert {h.passage.language for h in kb.search("3.90 EUR", language="sl", top_k=10)} == {"sl"}
    assert {h.passage.id for h in kb.search("3.90 EUR", language=None, top_k=10)} == {"p1", "p2", "p3"}
    assert [h.passage.id for h in kb.search("anything", language="en", tags={"faq"}, top_k=10)] == ["p2"]
    assert kb.search("anything", language="de") == []
    assert kb.search("anything", language="en", top_k=0) == []


def test_faq_questions_are_indexed(kb: KnowledgeBase) -> None:
    top = kb.search("Can I buy a voucher?", language="en")[0]
    assert top.passage.id == "p2"
    assert top.dense == pytest.approx(1.0, abs=1e-5)  # the question row matches exactly
    assert answer_text(top) == "Yes, from 20 EUR."


def test_hits_are_sorted_and_scores_in_range(kb: KnowledgeBase) -> None:
    hits = kb.search("shipping costs", language="en", top_k=5)
    assert hits[0].passage.id == "p1"
    assert all(0.0 <= h.confidence <= 1.0 and 0.0 <= h.bm25_norm <= 1.0 for h in hits)
    assert [h.confidence for h in hits] == sorted((h.confidence for h in hits), reverse=True)


def test_shared_vector_is_used(kb: KnowledgeBase) -> None:
    embedder = FakeEmbedder()
    vector = embedder.embed(["gift cards"])[0]
    with_vector = kb.search("gift cards", language="en", vector=vector)
    assert [h.passage.id for h in with_vector] == [
        h.passage.id for h in kb.search("gift cards", language="en")
    ]
    with pytest.raises(ValueError, match="dimensions"):
        kb.search("x", language="en", vector=np.zeros(3, dtype=np.float32))


def test_citation(kb: KnowledgeBase) -> None:
    hit = kb.search("shipping costs", language="en")[0]
    assert hit.citation() == Citation(
        "p1", "en/ship.md#costs", "Shipping › Costs", hit.passage.text, hit.confidence
    )


@pytest.mark.parametrize("language", ["en", "sl", "xx"])
def test_confidence_is_monotonic_in_each_component(language: str) -> None:
    grid = np.linspace(0, 1, 11)
    for fixed in grid:
        by_dense = [confidence(d, fixed, language, coverage=fixed) for d in grid]
        by_bm25 = [confidence(fixed, b, language, coverage=fixed) for b in grid]
        by_coverage = [confidence(fixed, fixed, language, coverage=c) for c in grid]
        assert by_dense == sorted(by_dense) and by_bm25 == sorted(by_bm25)
        assert by_coverage == sorted(by_coverage)
    assert confidence(0.0, 0.0, language, coverage=0.0) < 0.05
    assert confidence(1.0, 1.0, language, coverage=1.0) > 0.98
    assert confidence(-0.5, 0.0, language) == confidence(0.0, 0.0, language)


@pytest.mark.parametrize("language", ["en", "sl", "xx"])
def test_no_shared_term_is_gated(language: str) -> None:
    assert confidence(1.0, 0.0, language, coverage=0.0) <= GATE_CAP < 0.5
    assert confidence(1.0, 0.0, language, coverage=0.5) > GATE_CAP


def test_slovenian_leans_on_bm25() -> None:
    en, sl = CONFIDENCE_WEIGHTS["en"], CONFIDENCE_WEIGHTS["sl"]
    assert sl.bm25 / sl.dense > en.bm25 / en.dense


def test_empty_kb() -> None:
    kb = KnowledgeBase([], FakeEmbedder())
    assert kb.search("hello", language="en") == [] and kb.stats()["indexed"] == 0


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300), st.sampled_from(["en", "sl", None]), st.integers(min_value=-1, max_value=10))
def test_search_never_raises(kb: KnowledgeBase, query: str, language: str | None, top_k: int) -> None:
    hits = kb.search(query, language=language, top_k=top_k)
    assert len(hits) <= max(top_k, 0)
    assert all(0.0 <= h.confidence <= 1.0 for h in hits)
