"""After an attempt: end the contact, or the next attempt after the outcome's delay, inside the window."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from voicebot.errors import InputError
from voicebot.outbound.campaign_config import in_calling_window, load_campaign
from voicebot.outbound.schedule import FINAL, RETRYABLE, Outcome, after_attempt

DEFINITION = load_campaign(
    Path(__file__).resolve().parents[2] / "campaigns" / "appointment-confirmation.yaml"
)
TZ = "Europe/Ljubljana"
MONDAY_10 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # 10:00 in Ljubljana


def test_final_outcomes_end_the_contact() -> None:
    for outcome in FINAL:
        step = after_attempt(DEFINITION, outcome, 1, MONDAY_10, TZ)
        assert step.done and step.due_at is None


def test_retryable_outcomes_wait_their_delay_inside_the_window() -> None:
    busy = after_attempt(DEFINITION, Outcome.BUSY, 1, MONDAY_10, TZ)
    assert not busy.done and busy.due_at == datetime(2026, 11, 23, 9, 15, tzinfo=UTC)
    # 4 h after 16:00 local is outside the 09:00-18:00 window: the next morning at 09:00
    late = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
    voicemail = after_attempt(DEFINITION, Outcome.VOICEMAIL, 1, late, TZ)
    assert voicemail.due_at == datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    # on a Friday evening the next attempt is on Monday
    friday = datetime(2026, 11, 27, 16, 30, tzinfo=UTC)
    monday = after_attempt(DEFINITION, Outcome.NO_ANSWER, 1, friday, TZ).due_at
    assert monday is not None and monday.date().isoformat() == "2026-11-30"
    for outcome in RETRYABLE:
        due = after_attempt(DEFINITION, outcome, 1, friday, TZ).due_at
        assert due is not None and in_calling_window(DEFINITION.calling_window, due, TZ)


def test_attempts_run_out() -> None:
    last = after_attempt(DEFINITION, Outcome.BUSY, DEFINITION.max_attempts, MONDAY_10, TZ)
    assert last.done
    with pytest.raises(InputError):
        after_attempt(DEFINITION, Outcome.BUSY, 0, MONDAY_10, TZ)
