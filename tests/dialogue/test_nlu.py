"""IntentClassifier with the deterministic fake embedder: training, calibration, persistence, cache, YAML."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from tests.fakes.embedder import FakeEmbedder
from voicebot.dialogue import nlu
from voicebot.dialogue.nlu import IntentClassifier, IntentPrediction, load_intents_yaml, load_or_train
from voicebot.dialogue.nlu_features import _COMMON, VECTORIZERS, LexicalFeatures
from voicebot.errors import ConfigError, InputError, ModelError

TEMPLATES = {
    "order_status": [
        "where is my order {}",
        "track my parcel {}",
        "has my order {} shipped",
        "status of order {}",
        "my package {} has not arrived",
        "when will order {} be delivered",
    ],
    "greeting": ["hello {}", "hi there {}", "good morning {}", "hey {}", "good afternoon {}", "hiya {}"],
    "payment_status": [
        "did you receive my payment {}",
        "question about my invoice {}",
        "my bill {} is wrong",
        "was I charged twice {}",
        "has invoice {} been paid",
        "copy of my invoice {}",
    ],
    "oos": [
        "what is the weather {}",
        "tell me a joke {}",
        "who won the match {}",
        "play some music {}",
        "capital of france {}",
        "recipe for pasta {}",
    ],
}
FILLERS = ["", "please", "today", "now", "thanks", "A1001"]


def synthetic() -> list[tuple[str, str]]:
    return [(t.format(f).strip(), label) for label, ts in TEMPLATES.items() for t in ts for f in FILLERS]


@pytest.fixture(scope="module")
def model() -> IntentClassifier:
    return IntentClassifier.train(synthetic(), FakeEmbedder())


def test_predicts_training_like_texts(model: IntentClassifier) -> None:
    cases = {
        "where is my order please": "order_status",
        "hello": "greeting",
        "question about my invoice": "payment_status",
    }
    for text, label in cases.items():
        p = model.predict(text)
        assert isinstance(p, IntentPrediction)
        assert p.intent == label and not p.oos
        assert 0.0 <= p.confidence <= 1.0
        assert p.ranking[0] == (label, p.confidence)
        assert [s for _, s in p.ranking] == sorted((s for _, s in p.ranking), reverse=True)


def test_oos_class_and_threshold(model: IntentClassifier) -> None:
    p = model.predict("tell me a joke please")
    assert p.oos and p.intent is None
    assert 0.0 <= model.threshold < 1.0
    assert model.temperature > 0


def test_gibberish_is_low_confidence(model: IntentClassifier) -> None:
    clean = model.predict("where is my order").confidence
    gibberish = model.predict("qxz vbnm pfft")
    assert gibberish.confidence < clean
    assert gibberish.confidence < 0.8 or gibberish.oos


def test_precomputed_vector_matches(model: IntentClassifier) -> None:
    embedder = FakeEmbedder()
    text = "has my order shipped"
    assert model.predict(text, embedder.embed([text])[0]) == model.predict(text)


def test_predict_batch_matches_single(model: IntentClassifier) -> None:
    texts = ["where is my order", "hi there", "my bill is wrong", "weather today"]
    batch = model.predict_batch(texts)
    for text, p in zip(texts, batch, strict=True):
        single = model.predict(text)
        assert p.intent == single.intent
        assert p.confidence == pytest.approx(single.confidence, abs=1e-5)
    assert model.predict_batch([]) == []


def test_lexical_features_match_sklearn() -> None:
    texts = [t for t, _ in synthetic()] + ["Kje je moje naročilo?", "kje je moje narocilo"]
    lexical, matrix = LexicalFeatures.fit(texts)
    rebuilt = lexical.matrix(texts)
    assert rebuilt.shape == matrix.shape
    assert np.allclose(rebuilt.toarray(), matrix.toarray(), atol=1e-5)
    # accents are stripped: the two spellings share their features
    a, b = lexical.row("naročilo"), lexical.row("narocilo")
    assert set(a[0]) == set(b[0])
    assert "strip_accents" in _COMMON and "word" in VECTORIZERS
    assert TfidfVectorizer  # the fitted vocabulary comes from sklearn


def test_wrong_vector_and_missing_embedder(model: IntentClassifier, tmp_path: Path) -> None:
    with pytest.raises(InputError):
        model.predict("hello", np.zeros(7, dtype=np.float32))
    path = tmp_path / "m.npz"
    model.save(path)
    bare = IntentClassifier.load(path)
    with pytest.raises(ModelError):
        bare.predict("hello")
    assert bare.predict("hello", FakeEmbedder().embed(["hello"])[0]).intent == "greeting"


def test_save_load_round_trip(model: IntentClassifier, tmp_path: Path) -> None:
    path = tmp_path / "sub" / "model.npz"
    model.save(path)
    loaded = IntentClassifier.load(path, FakeEmbedder())
    assert loaded.labels == model.labels
    assert loaded.threshold == model.threshold and loaded.temperature == model.temperature
    for text in ["where is my order", "hello", "joke", "invoice 12"]:
        assert loaded.predict(text) == model.predict(text)


def test_load_rejects_garbage(tmp_path: Path) -> None:
    path = tmp_path / "bad.npz"
    path.write_bytes(b"not a zip")
    with pytest.raises(ModelError):
        IntentClassifier.load(path)
    with pytest.raises(ModelError):
        IntentClassifier.load(tmp_path / "missing.npz")


def test_cache_trains_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    embedder = FakeEmbedder()
    first = load_or_train(synthetic(), embedder, tmp_path, model_name="fake")
    assert len(list(tmp_path.glob("intents-*.npz"))) == 1

    def fail(*args: object, **kwargs: object) -> IntentClassifier:
        raise AssertionError("retrained although cached")

    monkeypatch.setattr(IntentClassifier, "train", fail)
    second = load_or_train(synthetic(), embedder, tmp_path, model_name="fake")
    assert second.predict("hello") == first.predict("hello")
    monkeypatch.undo()
    load_or_train([*synthetic(), ("hey you", "greeting")], embedder, tmp_path, model_name="fake")
    load_or_train(synthetic(), embedder, tmp_path, model_name="other-model")
    assert len(list(tmp_path.glob("intents-*.npz"))) == 3


def test_corrupt_cache_is_retrained(tmp_path: Path) -> None:
    key = nlu.cache_key(synthetic(), "fake")
    (tmp_path / f"intents-{key}.npz").write_bytes(b"junk")
    model = load_or_train(synthetic(), FakeEmbedder(), tmp_path, model_name="fake")
    assert model.predict("hello").intent == "greeting"


def test_no_oos_rows_gives_zero_threshold() -> None:
    rows = [(t, label) for t, label in synthetic() if label != "oos"]
    model = IntentClassifier.train(rows, FakeEmbedder())
    assert model.threshold == 0.0
    assert not model.predict("where is my order").oos


def test_two_labels_and_tiny_data() -> None:
    rows = [
        ("hello", "greeting"),
        ("hi", "greeting"),
        ("hey there", "greeting"),
        ("where is my order", "order"),
        ("track my parcel", "order"),
        ("order status", "order"),
    ]
    model = IntentClassifier.train(rows, FakeEmbedder())
    assert model.predict("hello there").intent == "greeting"
    assert model.predict("my order status").intent == "order"


def test_training_errors() -> None:
    with pytest.raises(InputError):
        IntentClassifier.train([("a", "x"), ("b", "x")], FakeEmbedder())
    with pytest.raises(InputError):
        IntentClassifier.train([("hello", "x"), ("  ", "y")], FakeEmbedder())


def test_split_is_stratified() -> None:
    labels = ["a"] * 20 + ["b"] * 7 + ["c"] * 1
    fit, held = nlu._split(labels, 0.15, seed=0)
    assert sorted(fit + held) == list(range(len(labels)))
    held_labels = [labels[i] for i in held]
    assert held_labels.count("a") == 3 and held_labels.count("b") == 1 and "c" not in held_labels


# ---- the tenant YAML --------------------------------------------------------------------------


def test_demo_yaml_loads() -> None:
    path = Path(nlu.__file__).parent.parent / "demo" / "intents.yaml"
    rows = load_intents_yaml(path)
    labels = {label for _, label in rows}
    assert {"order_status", "human", "oos", "opening_hours", "identity_info"} <= labels
    for label in labels:
        assert 15 <= sum(1 for _, lab in rows if lab == label) // 2 <= 30
    assert len(load_intents_yaml(path, languages=["sl"])) < len(rows)


@pytest.mark.parametrize(
    ("content", "field"),
    [
        ("intents: []", "intents"),
        ("other: 1", "intents"),
        ("intents:\n  Bad-Name:\n    examples: {en: [hi]}", "intents.Bad-Name"),
        ("intents:\n  greet: hello", "intents.greet"),
        ("intents:\n  greet:\n    examples: {}", "intents.greet.examples"),
        ("intents:\n  greet:\n    examples: {english: [hi]}", "intents.greet.examples.english"),
        ("intents:\n  greet:\n    examples: {en: hi}", "intents.greet.examples.en"),
        ("intents:\n  greet:\n    examples: {en: [hi, '']}", "intents.greet.examples.en.1"),
        ("intents:\n  greet:\n    examples: {en: [hi]}\n    extra: 1", "intents.greet"),
        ("intents:\n  greet:\n    examples: {en: [hi]}\n    description: [1]", "intents.greet.description"),
    ],
)
def test_yaml_errors_name_file_and_field(tmp_path: Path, content: str, field: str) -> None:
    path = tmp_path / "intents.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_intents_yaml(path)
    assert info.value.field == field
    assert info.value.file == str(path)


def test_yaml_missing_and_invalid(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_intents_yaml(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("intents: [unclosed", encoding="utf-8")
    with pytest.raises(ConfigError, match="YAML"):
        load_intents_yaml(bad)


def test_train_cached_and_empty_tenant(tmp_path: Path) -> None:
    embedder = FakeEmbedder()
    model = IntentClassifier.train_cached(synthetic(), embedder, cache_dir=tmp_path)
    assert model.predict("hello").intent == "greeting"
    assert len(list(tmp_path.glob("intents-*.npz"))) == 1
    empty = IntentClassifier.train_cached([], embedder, cache_dir=tmp_path)
    assert empty.predict("hello") == IntentPrediction(None, 0.0, [], True)
    assert empty.predict_batch(["a", "b"]) == [IntentPrediction(None, 0.0, [], True)] * 2
