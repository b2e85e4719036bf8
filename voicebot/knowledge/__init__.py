"""Knowledge-base ingest and hybrid retrieval.

- `voicebot.knowledge.ingest`: `load_knowledge(paths, default_language=...) -> IngestResult`,
  `Passage` (Markdown, FAQ YAML and CSV files -> passages with stable ids).
- `voicebot.knowledge.retrieval`: `KnowledgeBase(passages, embedder).search(...) -> list[Hit]`,
  `answer_text(hit)`, the documented confidence mapping (`confidence`, `CONFIDENCE_WEIGHTS`).
- `voicebot.knowledge.text`: folding, tokenising, stopwords and the light en/sl stemmers.
- `voicebot.knowledge.embeddings`: the embedding model seam.

Nothing is imported here, so importing one module does not load the others (or bm25s).
"""
