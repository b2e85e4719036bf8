"""What every dialer does the same way: a line of the process for each call, and once a campaign call
is answered, the contact's scripted conversation and the ``CallReport`` of a call that reached a person
or a machine."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from voicebot.admission import CallAdmission, CallsFullError
from voicebot.outbound.conversation import ScriptedConversation
from voicebot.outbound.engine import CallReport, CallRequest
from voicebot.outbound.schedule import Outcome

if TYPE_CHECKING:
    from voicebot.pipeline.call import CallResult

# how a call that reached a person but ended without the script's outcome is counted
ENDED_WITHOUT_OUTCOME = {
    "silence": (Outcome.NO_ANSWER, "the person said nothing"),
    "transferred": (Outcome.HANDOFF, "transferred to a person"),
    "caller_hung_up": (Outcome.DECLINED, "hung up before an answer"),
}


async def on_a_line(
    admission: CallAdmission, place: Callable[[CallRequest], Awaitable[CallReport]], request: CallRequest
) -> CallReport:
    """``place(request)`` holding one of the process's lines (a campaign call counts against
    ``max_calls`` like an inbound one); with every line busy the attempt fails without dialling."""
    try:
        with admission.admit():
            return await place(request)
    except CallsFullError:
        return CallReport(Outcome.FAILED, detail="every line of this process is busy")


def conversation_for(request: CallRequest) -> ScriptedConversation:
    """The campaign's script, filled in for this contact (language from the CSV column ``language``)."""
    contact = request.contact
    return ScriptedConversation(
        request.definition,
        name=contact.name,
        variables={k: str(v) for k, v in contact.variables.items()},
        language=str(contact.variables.get("language") or "") or None,
        today=request.attempt.planned_at.astimezone(ZoneInfo(contact.timezone)).date(),  # the contact's day
    )


def conversation_report(
    conversation: ScriptedConversation, result: CallResult | None, *, call_id: str | None, detail: str
) -> CallReport:
    """A call that reached a person: the script's outcome, else how the call ended (``result`` is
    None when the pipeline failed); ``detail`` says how the dialer got there."""
    transcript = [{"role": role, "text": text} for role, text in (result.transcript if result else [])]
    detail = f"{detail}; ended: {result.reason if result else 'error'}"
    outcome = conversation.outcome
    if outcome is None:
        outcome, why = ENDED_WITHOUT_OUTCOME.get(result.reason if result else "", (Outcome.FAILED, "error"))
        detail += f"; {why}"
    return CallReport(
        outcome,
        detail=detail,
        call_id=call_id,
        conversation_id=result.conversation_id if result else None,
        transcript=transcript,
        result=dict(conversation.result),
        dnc_requested=conversation.dnc_requested,
    )


def voicemail_report(detail: str, *, call_id: str | None, message: str | None = None) -> CallReport:
    """An answering machine: the message left (if any) is the transcript."""
    transcript = [{"role": "bot", "text": message}] if message else []
    return CallReport(Outcome.VOICEMAIL, detail=detail, call_id=call_id, transcript=transcript)
