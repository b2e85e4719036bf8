from voicebot.config import DEMO_TENANT, load_tenant
from voicebot.dialogue.phrases import Phrasebook
from voicebot.dialogue.tone import ToneRules
from voicebot.dialogue.triggers import Triggers, fold

TENANT = load_tenant(DEMO_TENANT)


def test_fold_removes_case_and_accents() -> None:
    assert fold("Želim  govoriti s ČLOVEKOM!") == "zelim govoriti s clovekom"


def test_human_request_in_both_languages() -> None:
    triggers = Triggers(TENANT)
    for text in ("Can I talk to a human please", "I want a real person", "Želim govoriti s človekom"):
        match = triggers.match(text)
        assert match is not None and match.kind == "human", text


def test_sensitive_topics_win_over_human_request() -> None:
    match = Triggers(TENANT).match("I will sue you, get me a human")
    assert match is not None and (match.kind, match.topic) == ("sensitive", "legal")
    match = Triggers(TENANT).match("Vložil bom tožbo")
    assert match is not None and match.topic == "legal"


def test_no_trigger_inside_other_words() -> None:
    triggers = Triggers(TENANT)
    assert triggers.match("Where is my order?") is None
    assert triggers.match("humanity is great") is None  # 'human' only as a word


def test_tone_greets_signs_off_and_rewrites() -> None:
    tone = ToneRules(TENANT)
    text = tone.apply("Unfortunately it is not cheap.", "en", sign_off=True)
    assert text.startswith("I'm sorry, but it is not affordable.")
    assert text.endswith(TENANT.tone.sign_off["en"])
    assert tone.apply("ok", "sl", greet=True).startswith(TENANT.tone.greeting["sl"])


def test_phrasebook_formality_and_overrides() -> None:
    formal = Phrasebook(TENANT)
    assert "vam" in formal.text("greeting_reply", "sl")
    informal_tenant = TENANT.model_copy(deep=True)
    informal_tenant.tone.formality = informal_tenant.tone.formality.__class__("informal")
    informal_tenant.messages = {"thanks_reply": {"en": "Cheers!"}}
    informal = Phrasebook(informal_tenant)
    assert "ti" in informal.text("greeting_reply", "sl").split()
    assert informal.text("thanks_reply", "en") == "Cheers!"
    assert informal.text("thanks_reply", "de") == "Cheers!"  # unknown language: tenant's first
    assert formal.text("order_status", "en", order_id="A1", status="shipped", address="X").startswith(
        "Your order A1 is shipped"
    )
