from __future__ import annotations

from pathlib import Path

import pytest

from voicebot.config import PACKAGE_DIR, default_models_dir
from voicebot.knowledge.embeddings import MODEL_NAME, OnnxEmbedder, load_embedder
from voicebot.knowledge.ingest import IngestResult, load_knowledge
from voicebot.knowledge.retrieval import KnowledgeBase

DEMO_KB = PACKAGE_DIR / "demo" / "kb"


@pytest.fixture(scope="session")
def demo_ingest() -> IngestResult:
    return load_knowledge([DEMO_KB], default_language="en")


@pytest.fixture(scope="session")
def real_embedder() -> OnnxEmbedder:
    models: Path = default_models_dir()
    if not (models / MODEL_NAME / "model.onnx").exists():
        pytest.skip("the embedding model is not installed: run `voicebot models install`")
    return load_embedder(models)


@pytest.fixture(scope="session")
def demo_kb(demo_ingest: IngestResult, real_embedder: OnnxEmbedder) -> KnowledgeBase:
    return KnowledgeBase(demo_ingest.passages, real_embedder)
