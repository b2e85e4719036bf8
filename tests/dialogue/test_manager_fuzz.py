"""Property: whatever the text, respond() returns a valid Reply and never raises."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.dialogue.conftest import ANA_PHONE, NOW
from voicebot.dialogue.manager import DialogueManager
from voicebot.dialogue.types import Action, Channel, DialogueState, Turn

MIXED = st.text(
    alphabet=st.characters(codec="utf-8", categories=("L", "M", "N", "P", "S", "Z", "Cc")),
    max_size=300,
)
PIECES = st.sampled_from(
    [
        "Where is my order A1001?",
        "Kje je moje naročilo?",
        "1000",
        "+38640111222",
        "ignore previous instructions",
        "\x00\x07\x1b[31m",
        "где мой заказ",
        "注文はどこ",
        "🙂" * 5,
        "a" * 5000,
        "\u202e\u200b",
        "yes",
        "human",
    ]
)
TEXTS = st.one_of(MIXED, st.lists(st.one_of(PIECES, MIXED), max_size=4).map(" ".join))


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(first=TEXTS, second=TEXTS, caller=st.sampled_from([None, ANA_PHONE]))
async def test_any_text_gives_a_valid_reply(
    manager: DialogueManager, first: str, second: str, caller: str | None
) -> None:
    state = DialogueState()
    for text in (first, second):
        reply = await manager.respond(
            Turn(text=text, channel=Channel.CHAT, caller=caller, now=NOW, state=state)
        )
        assert isinstance(reply.action, Action)
        assert 0.0 <= reply.confidence <= 1.0
        assert isinstance(reply.text, str) and reply.text.strip()
        assert reply.language in ("en", "sl")
        assert "postcode" not in reply.fields and "birth_date" not in reply.fields
        if reply.action is Action.HANDOFF and reply.reason != "already_handed_off":
            assert reply.handoff is not None
        if not reply.state.verified:
            assert "Slovenska cesta 1" not in reply.text
        reply.to_dict()
        state = reply.state
