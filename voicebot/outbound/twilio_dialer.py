"""Campaign calls through Twilio's REST API: the ``Dialer`` whose answered call comes back as a media stream.

1. The call is registered under an unguessable token (``inbound.twilio.OutboundCalls``) and created
   with ``POST {api_base}/2010-04-01/Accounts/{AccountSid}/Calls.json`` (To: the contact, From: the
   campaign's caller ID, Timeout: its ``ring_timeout``, answering-machine detection
   ``DetectMessageEnd``), whose webhook and status callback are ``{public_url}/v1/twilio/outbound/
   {token}[/status]``. A refusal with Twilio's error code for a bad number (21211 ...) is
   ``invalid``; any other refusal, a 5xx or no connection is ``failed``.
2. A final status before an answer: ``busy``, ``no-answer`` / ``canceled`` (``no_answer``),
   ``failed``. Nothing for ``ring_timeout`` + ``answer_wait_s`` (detection takes up to 30 s after the
   answer): the call is cancelled, ``no_answer``.
3. The webhook of the answered call carries ``AnsweredBy``. A fax is ``invalid`` and a machine with
   the policy ``hang_up`` (or no message) ``voicemail``, both answered with ``<Hangup/>``. Otherwise
   the media stream is connected: a machine hears the voicemail message (detection already waited
   for the end of its greeting), a person (or ``unknown``) the campaign script on the voice pipeline.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

import httpx
from fastapi import WebSocket

from voicebot.inbound.twilio import (
    TWILIO_API,
    OutboundCalls,
    TwilioCallControl,
    carrier_call,
    credentials,
    speak_on_stream,
)
from voicebot.outbound.call_report import (
    conversation_for,
    conversation_report,
    on_a_line,
    voicemail_report,
)
from voicebot.outbound.call_script import ScriptTurns
from voicebot.outbound.campaign_config import VoicemailAction
from voicebot.outbound.conversation import ScriptedConversation
from voicebot.outbound.engine import CallReport, CallRequest
from voicebot.outbound.schedule import Outcome
from voicebot.pipeline.call import CallResult
from voicebot.pipeline.carrier import CarrierStart

log = logging.getLogger(__name__)

ANSWER_WAIT_SECS = 40.0  # beyond ring_timeout: machine detection (Twilio's default limit 30 s), webhook
REST_TIMEOUT_SECS = 10.0
MACHINE = frozenset({"machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other"})
# Twilio error codes of a number that cannot be called (not of our account or caller ID)
INVALID_NUMBER = frozenset({13224, 21211, 21214, 21217, 21401})
FINAL_STATUS = {
    "busy": Outcome.BUSY,
    "no-answer": Outcome.NO_ANSWER,
    "canceled": Outcome.NO_ANSWER,
    "failed": Outcome.FAILED,
}


@dataclasses.dataclass(frozen=True)
class _Stream:
    websocket: WebSocket
    start: CarrierStart


class _PendingCall:
    """One placed call as its webhooks see it (``inbound.twilio.OutboundCall``): ``settled`` becomes
    the media stream of the answered call, or the report of a call that ended without one."""

    def __init__(self, *, leave_message: bool) -> None:
        self.leave_message = leave_message
        self.settled: asyncio.Future[_Stream | CallReport] = asyncio.get_running_loop().create_future()
        self.over = asyncio.Event()  # the dialer is done with the stream
        self.call_sid: str | None = None
        self.answered_by: str | None = None

    def _settle(self, value: _Stream | CallReport) -> bool:
        if self.settled.done():  # already answered, ended or given up
            return False
        self.settled.set_result(value)
        return True

    def answer(self, params: dict[str, str]) -> bool:
        self.call_sid = params.get("CallSid") or self.call_sid
        self.answered_by = answered_by = params.get("AnsweredBy") or "unknown"
        log.info("twilio call %s answered by %s", self.call_sid, answered_by)
        if answered_by == "fax":
            self._settle(CallReport(Outcome.INVALID, detail="a fax machine answered"))
            return False
        if answered_by in MACHINE and not self.leave_message:
            self._settle(voicemail_report(f"answering machine ({answered_by}); hung up", call_id=None))
            return False
        return not self.settled.done()

    def status(self, params: dict[str, str]) -> None:
        self.call_sid = params.get("CallSid") or self.call_sid
        status = params.get("CallStatus", "")
        if status in FINAL_STATUS:
            self._settle(CallReport(FINAL_STATUS[status], detail=f"twilio {status}"))
        elif status == "completed" and self.answered_by is not None:
            self._settle(CallReport(Outcome.DECLINED, detail="hung up before the media stream started"))
        elif status == "completed":
            self._settle(CallReport(Outcome.FAILED, detail="twilio completed without an answer"))

    async def attach(self, websocket: WebSocket, start: CarrierStart) -> None:
        if self._settle(_Stream(websocket, start)):
            await self.over.wait()


class TwilioDialer:
    def __init__(
        self,
        runtime: Any,
        calls: OutboundCalls,
        http: httpx.AsyncClient,
        *,
        public_url: str,
        api_base: str = TWILIO_API,
        answer_wait_s: float = ANSWER_WAIT_SECS,
    ) -> None:
        self.runtime = runtime
        self.calls = calls
        self.http = http
        self.public_url = public_url.rstrip("/")
        self.api_base = api_base.rstrip("/")
        self.answer_wait_s = answer_wait_s

    def has_line(self) -> bool:
        return not self.runtime.call_admission.full

    async def call(self, request: CallRequest) -> CallReport:
        return await on_a_line(self.runtime.call_admission, self._call, request)

    async def _call(self, request: CallRequest) -> CallReport:
        voice = self.runtime.tenant.voice
        account_sid, auth_token = credentials(voice)
        if not account_sid or not auth_token:
            missing = f"{voice.twilio_account_sid_env} and {voice.twilio_auth_token_env}"
            return CallReport(Outcome.FAILED, detail=f"no Twilio credentials ({missing} are not set)")
        definition = request.definition
        conversation = conversation_for(request)
        leave = definition.voicemail.action is VoicemailAction.LEAVE_MESSAGE
        pending = _PendingCall(leave_message=leave and bool(conversation.voicemail_message()))
        token = self.calls.add(pending)
        try:
            hook = f"{self.public_url}/v1/twilio/outbound/{token}"
            form = {
                "To": request.contact.phone,
                "From": definition.caller_id,
                "Url": hook,
                "StatusCallback": f"{hook}/status",
                "StatusCallbackEvent": ["initiated", "ringing", "answered", "completed"],
                "Timeout": str(definition.ring_timeout),
                "MachineDetection": "DetectMessageEnd",
                "AsyncAmd": "false",
            }
            url = f"{self.api_base}/2010-04-01/Accounts/{account_sid}/Calls.json"
            try:
                response = await self.http.post(
                    url, data=form, auth=(account_sid, auth_token), timeout=REST_TIMEOUT_SECS
                )
            except httpx.HTTPError as exc:
                return CallReport(Outcome.FAILED, detail=f"twilio unreachable: {exc!r}")
            if response.status_code >= 400:
                return refused(response)
            pending.call_sid = pending.call_sid or _json(response).get("sid")
            log.info("twilio call %s placed to contact %s", pending.call_sid, request.contact.id)
            try:
                settled = await asyncio.wait_for(
                    pending.settled, float(definition.ring_timeout) + self.answer_wait_s
                )
            except TimeoutError:
                if pending.call_sid:
                    await self._control(pending.call_sid).cancel()
                return CallReport(
                    Outcome.NO_ANSWER, detail="no answer (ring timeout)", call_id=pending.call_sid
                )
            if pending.answered_by is not None:
                await request.on_answered()
            if isinstance(settled, CallReport):
                settled.call_id = pending.call_sid
                return settled
            # the call's number, not the stream's (our TwiML passes only the token)
            start = dataclasses.replace(
                settled.start, caller=request.contact.phone, called=request.contact.phone
            )
            stream = _Stream(settled.websocket, start)
            if pending.answered_by in MACHINE:
                return await self._voicemail(stream, conversation, pending)
            return await self._converse(stream, conversation, pending)
        finally:
            pending.over.set()
            self.calls.discard(token)

    def _control(self, call_sid: str) -> TwilioCallControl:
        account_sid, auth_token = credentials(self.runtime.tenant.voice)
        assert account_sid and auth_token
        return TwilioCallControl(self.http, account_sid, auth_token, call_sid, api_base=self.api_base)

    async def _converse(
        self, stream: _Stream, conversation: ScriptedConversation, pending: _PendingCall
    ) -> CallReport:
        turns = ScriptTurns(conversation, transfers=self.runtime.tenant.voice.transfer)
        result: CallResult | None = None
        try:
            result = await carrier_call(self.runtime, stream.websocket, stream.start, script=turns)
        except Exception:  # the report still says what the script got to
            log.exception("twilio campaign call %s failed", pending.call_sid)
        return conversation_report(
            conversation, result, call_id=pending.call_sid, detail=f"answered by {pending.answered_by}"
        )

    async def _voicemail(
        self, stream: _Stream, conversation: ScriptedConversation, pending: _PendingCall
    ) -> CallReport:
        message = conversation.voicemail_message()
        assert message  # a machine is streamed only to leave one
        await speak_on_stream(self.runtime, stream.websocket, stream.start, message)
        if pending.call_sid:
            await self._control(pending.call_sid).hang_up()
        detail = f"answering machine ({pending.answered_by}); message left after the greeting"
        return voicemail_report(detail, call_id=pending.call_sid, message=message)


def refused(response: httpx.Response) -> CallReport:
    """The report of a call Twilio would not create (its error JSON: code, message)."""
    error = _json(response)
    code, message = error.get("code"), error.get("message") or response.text[:200]
    detail = f"twilio refused the call: HTTP {response.status_code}, {code}: {message}"
    if response.status_code < 500 and code in INVALID_NUMBER:
        return CallReport(Outcome.INVALID, detail=detail)
    return CallReport(Outcome.FAILED, detail=detail)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
