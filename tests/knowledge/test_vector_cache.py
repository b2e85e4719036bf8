"""The on-disk passage-vector cache, with the counting fake embedder."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from tests.fakes.embedder import FakeEmbedder
from tests.knowledge.test_retrieval import PASSAGES
from voicebot.knowledge.retrieval import KnowledgeBase
from voicebot.knowledge.vector_cache import VectorCache

APPROVED_TEXTS = 7  # p1 and p3: passage + heading; p2: answer + 2 questions


def test_second_start_embeds_nothing(tmp_path: Path) -> None:
    first = FakeEmbedder()
    kb1 = KnowledgeBase(PASSAGES, first, cache_dir=tmp_path, model_name="fake")
    assert first.texts_embedded == APPROVED_TEXTS
    assert kb1.cache is not None and (kb1.cache.misses, kb1.cache.hits) == (APPROVED_TEXTS, 0)
    second = FakeEmbedder()
    kb2 = KnowledgeBase(PASSAGES, second, cache_dir=tmp_path, model_name="fake")
    assert second.calls == 0 and second.texts_embedded == 0
    assert kb2.stats()["vectors_cached"] == APPROVED_TEXTS
    a = kb1.search("shipping costs", language="en", top_k=3)
    b = kb2.search("shipping costs", language="en", top_k=3)
    assert [(h.passage.id, h.confidence) for h in a] == [(h.passage.id, h.confidence) for h in b]


def test_cached_vectors_equal_fresh_ones(tmp_path: Path) -> None:
    KnowledgeBase(PASSAGES, FakeEmbedder(), cache_dir=tmp_path, model_name="fake")
    cached = KnowledgeBase(PASSAGES, FakeEmbedder(), cache_dir=tmp_path, model_name="fake")
    fresh = KnowledgeBase(PASSAGES, FakeEmbedder())
    np.testing.assert_array_equal(cached._matrix, fresh._matrix)
    assert fresh.cache is None


def test_an_edited_passage_is_embedded_alone(tmp_path: Path) -> None:
    KnowledgeBase(PASSAGES, FakeEmbedder(), cache_dir=tmp_path, model_name="fake")
    edited = [dataclasses.replace(PASSAGES[0], text="Shipping costs 4.90 EUR in Slovenia.", content_hash="")]
    counting = FakeEmbedder()
    kb = KnowledgeBase(edited + PASSAGES[1:], counting, cache_dir=tmp_path, model_name="fake")
    assert counting.texts_embedded == 1  # the passage row; its heading row is unchanged
    assert kb.search("4.90", language="en")[0].passage.text.startswith("Shipping costs 4.90")
    # the file mirrors the last KB: the old text is gone, the next start is all hits
    again = FakeEmbedder()
    KnowledgeBase(edited + PASSAGES[1:], again, cache_dir=tmp_path, model_name="fake")
    assert again.texts_embedded == 0
    assert len(VectorCache(tmp_path, "fake", 64)) == APPROVED_TEXTS


def test_another_model_or_dimension_misses(tmp_path: Path) -> None:
    KnowledgeBase(PASSAGES, FakeEmbedder(), cache_dir=tmp_path, model_name="fake")
    other_model = FakeEmbedder()
    KnowledgeBase(PASSAGES, other_model, cache_dir=tmp_path, model_name="fake-v2")
    assert other_model.texts_embedded == APPROVED_TEXTS
    other_dim = FakeEmbedder(dim=32)
    KnowledgeBase(PASSAGES, other_dim, cache_dir=tmp_path, model_name="fake")
    assert other_dim.texts_embedded == APPROVED_TEXTS
    default_name = FakeEmbedder()  # without model_name the key is the embedder's class
    KnowledgeBase(PASSAGES, default_name, cache_dir=tmp_path)
    assert default_name.texts_embedded == APPROVED_TEXTS


@pytest.mark.parametrize("content", [b"", b"not a zip file", b"PK\x03\x04 truncated"])
def test_an_unreadable_file_is_rebuilt(tmp_path: Path, content: bytes) -> None:
    cache = VectorCache(tmp_path, "fake", 64)
    cache.path.write_bytes(content)
    counting = FakeEmbedder()
    KnowledgeBase(PASSAGES, counting, cache_dir=tmp_path, model_name="fake")
    assert counting.texts_embedded == APPROVED_TEXTS
    after = FakeEmbedder()
    KnowledgeBase(PASSAGES, after, cache_dir=tmp_path, model_name="fake")
    assert after.texts_embedded == 0


def test_duplicate_texts_are_embedded_once(tmp_path: Path) -> None:
    cache = VectorCache(tmp_path, "fake", 64)
    counting = FakeEmbedder()
    vectors = cache.embed(["a b", "c d", "a b"], counting.embed)
    assert counting.texts_embedded == 2 and (cache.misses, cache.hits) == (2, 1)
    np.testing.assert_array_equal(vectors[0], vectors[2])
    assert not list(tmp_path.glob(".vectors-*")), "no temporary file is left behind"


def test_an_unwritable_cache_dir_still_builds(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    counting = FakeEmbedder()
    kb = KnowledgeBase(PASSAGES, counting, cache_dir=blocker / "sub", model_name="fake")
    assert counting.texts_embedded == APPROVED_TEXTS and kb.stats()["indexed"] == 3
