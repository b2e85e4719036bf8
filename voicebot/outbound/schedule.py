"""What happens to a contact after an attempt: pure rules, injected time, no I/O.

Outcomes that end a contact (``FINAL``) close it; the others (busy, no answer, voicemail, failed)
schedule another attempt after the campaign's delay for that outcome, moved into the contact's next
calling window, until ``max_attempts`` is spent. A contact on the do-not-call list ends ``dnc``
before it is ever dialled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from voicebot.errors import InputError
from voicebot.outbound.campaign_config import CampaignDefinition, next_window_start


class Outcome(StrEnum):
    CONFIRMED = "confirmed"
    RESCHEDULED = "rescheduled"
    CANCELLED = "cancelled"
    PROMISED_TO_PAY = "promised_to_pay"
    INVOICE_REQUESTED = "invoice_requested"  # payment reminder: the invoice is to be e-mailed
    DECLINED = "declined"
    SURVEY_COMPLETED = "survey_completed"
    HANDOFF = "handoff"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    VOICEMAIL = "voicemail"
    FAILED = "failed"
    DNC = "dnc"
    INVALID = "invalid"


RETRYABLE = frozenset({Outcome.BUSY, Outcome.NO_ANSWER, Outcome.VOICEMAIL, Outcome.FAILED})
FINAL = frozenset(Outcome) - RETRYABLE


@dataclass(frozen=True)
class NextStep:
    done: bool  # the contact ended (with ``outcome``)
    due_at: datetime | None  # the next attempt, when not done


def after_attempt(
    definition: CampaignDefinition, outcome: Outcome, attempts: int, now: datetime, timezone: str
) -> NextStep:
    """The contact's next step after its ``attempts``-th attempt ended with ``outcome`` at ``now``."""
    if attempts < 1:
        raise InputError("attempts counts the attempt just made: 1 or more")
    if outcome in FINAL or attempts >= definition.max_attempts:
        return NextStep(done=True, due_at=None)
    delay = timedelta(seconds=getattr(definition.retry_delay, outcome.value))
    return NextStep(done=False, due_at=next_window_start(definition.calling_window, now + delay, timezone))
