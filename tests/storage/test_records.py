from __future__ import annotations

import itertools

import pytest

from voicebot.errors import ConflictError
from voicebot.storage import ConversationStatus, HandoffStatus

CS = ConversationStatus
HS = HandoffStatus

LEGAL_CONVERSATION = {
    (CS.ACTIVE, CS.HANDOFF),
    (CS.ACTIVE, CS.RESOLVED),
    (CS.ACTIVE, CS.ENDED),
    (CS.HANDOFF, CS.ACTIVE),
    (CS.HANDOFF, CS.RESOLVED),
    (CS.HANDOFF, CS.ENDED),
    (CS.RESOLVED, CS.ACTIVE),
    (CS.RESOLVED, CS.ENDED),
    (CS.RESOLVED, CS.HANDOFF),
}
LEGAL_HANDOFF = {(HS.WAITING, HS.TAKEN), (HS.WAITING, HS.CLOSED), (HS.TAKEN, HS.CLOSED)}


@pytest.mark.parametrize(("old", "new"), list(itertools.product(CS, CS)))
def test_conversation_transitions(old: CS, new: CS) -> None:
    if old == new or (old, new) in LEGAL_CONVERSATION:
        assert CS.transition(old, new) is new
    else:
        with pytest.raises(ConflictError):
            CS.transition(old, new)


def test_ended_is_terminal() -> None:
    for new in (CS.ACTIVE, CS.HANDOFF, CS.RESOLVED):
        with pytest.raises(ConflictError, match="ended"):
            CS.transition(CS.ENDED, new)


@pytest.mark.parametrize(("old", "new"), list(itertools.product(HS, HS)))
def test_handoff_transitions(old: HS, new: HS) -> None:
    if old == new or (old, new) in LEGAL_HANDOFF:
        assert HS.transition(old, new) is new
    else:
        with pytest.raises(ConflictError):
            HS.transition(old, new)


def test_transition_accepts_strings() -> None:
    assert CS.transition("active", "handoff") is CS.HANDOFF
    with pytest.raises(ValueError):
        CS.transition("active", "nonsense")
