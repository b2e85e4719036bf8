"""The demo tenant intents with the real embedding model: held-out paraphrases, calibration, cost."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicebot.config import default_models_dir
from voicebot.dialogue.nlu import IntentClassifier, load_intents_yaml
from voicebot.knowledge.embeddings import MODEL_NAME, OnnxEmbedder, load_embedder

DEMO_INTENTS = Path(__file__).resolve().parents[2] / "voicebot" / "demo" / "intents.yaml"

# Paraphrases written for this test; none of them is in the YAML.
HELD_OUT_EN = [
    ("where the heck is my parcel", "order_status"),
    ("any news on my order A1234?", "order_status"),
    ("please ship it to my new flat instead", "change_delivery"),
    ("can I get my money back for these shoes", "returns_policy"),
    ("I'd like to set up a visit for Wednesday", "book_appointment"),
    ("yes, I confirm the appointment on Thursday", "confirm_appointment"),
    ("I have to call off tomorrow's appointment", "cancel_appointment"),
    ("could we move my appointment to another day", "reschedule_appointment"),
    ("why is my invoice so expensive this month", "payment_status"),
    ("I'd rather speak with a real person", "human"),
    ("I am extremely dissatisfied and want to complain", "complaint"),
    ("I want to end my subscription with you", "cancel_contract"),
    ("hello, good morning", "greeting"),
    ("ok that's it, goodbye", "goodbye"),
    ("thank you, that was really helpful", "thanks"),
    ("until what time are you open on Friday", "opening_hours"),
    ("my birthday is 5 June 1982", "identity_info"),
    ("what will the weather be like on Saturday", "oos"),
    ("can you tell me a funny story", "oos"),
    ("has my payment gone through", "payment_status"),
]
HELD_OUT_SL = [
    ("kje za vraga je moj paket", "order_status"),
    ("kaj je novega z naročilom A1234?", "order_status"),
    ("pošljite raje na moj novi naslov", "change_delivery"),
    ("ali lahko dobim denar nazaj za te čevlje", "returns_policy"),
    ("rad bi rezerviral obisk za sredo", "book_appointment"),
    ("ja, potrjujem termin v četrtek", "confirm_appointment"),
    ("jutrišnji termin moram odpovedati", "cancel_appointment"),
    ("ali lahko moj termin prestavimo na drug dan", "reschedule_appointment"),
    ("zakaj je moj račun ta mesec tako visok", "payment_status"),
    ("raje bi govoril z resnično osebo", "human"),
    ("zelo sem nezadovoljna in se želim pritožiti", "complaint"),
    ("želim odpovedati naročnino pri vas", "cancel_contract"),
    ("živjo, dobro jutro", "greeting"),
    ("to je to, nasvidenje", "goodbye"),
    ("hvala, zelo ste mi pomagali", "thanks"),
    ("do kdaj ste odprti v petek", "opening_hours"),
    ("rojen sem 5. junija 1982", "identity_info"),
    ("kakšno vreme bo v soboto", "oos"),
    ("povej mi kakšno smešno zgodbo", "oos"),
    ("ali je moje plačilo šlo skozi", "payment_status"),
]


@pytest.fixture(scope="module")
def embedder() -> OnnxEmbedder:
    models = default_models_dir()
    if not (models / MODEL_NAME / "model.onnx").exists():
        pytest.skip("the embedding model is not installed (voicebot models install)")
    return load_embedder(models)


@pytest.fixture(scope="module")
def demo(embedder: OnnxEmbedder) -> IntentClassifier:
    return IntentClassifier.train(load_intents_yaml(DEMO_INTENTS), embedder)


def _accuracy(model: IntentClassifier, cases: list[tuple[str, str]]) -> float:
    hits = 0
    for text, gold in cases:
        p = model.predict(text)
        hits += ("oos" if p.oos else p.intent) == gold
    return hits / len(cases)


def test_held_out_english(demo: IntentClassifier) -> None:
    assert _accuracy(demo, HELD_OUT_EN) >= 0.85


def test_held_out_slovenian(demo: IntentClassifier) -> None:
    assert _accuracy(demo, HELD_OUT_SL) >= 0.85


def test_confidence_is_calibrated_in_spirit(demo: IntentClassifier) -> None:
    for text in ["where is my order", "kje je moje naročilo", "I want to talk to a human"]:
        p = demo.predict(text)
        assert 0.8 <= p.confidence <= 1.0 and not p.oos
    for text in ["asdkjh qwe zzx", "what is the capital of Peru", "kakšno vreme bo jutri"]:
        p = demo.predict(text)
        assert p.oos or p.confidence < 0.5


def test_small_real_set_without_oos(embedder: OnnxEmbedder) -> None:
    rows = [
        (t, lab)
        for t, lab in load_intents_yaml(DEMO_INTENTS, languages=["en"])
        if lab in {"greeting", "thanks", "human"}
    ]
    model = IntentClassifier.train(rows, embedder)
    assert model.threshold == 0.0
    assert model.predict("thank you so much for the help").intent == "thanks"
