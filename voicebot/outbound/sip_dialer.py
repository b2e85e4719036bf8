"""Campaign calls over native SIP: the ``Dialer`` that places a call through the tenant's trunk.

1. INVITE ``voice.sip.outbound.uri`` (``{number}`` = the contact's E.164 number) from the
   campaign's caller ID, answering a 401/407 with the trunk's digest credentials, from the SIP
   server's own user agent and RTP port range. Ringing longer than the campaign's ``ring_timeout``
   is CANCELled (``no_answer``); final responses map to ``busy`` (486, 600), ``no_answer`` (408,
   480, 487, 603), ``invalid`` (404, 484, 604) or ``failed``.
2. Once answered, the first seconds of the called party's audio go to answering-machine detection
   (``amd``) before the bot says anything: a person says a short "Hello?" and waits; a machine
   plays a long greeting. On a machine the campaign's voicemail policy applies: hang up, or wait
   for the beep (or the greeting's end) and leave the message; the outcome is ``voicemail``.
3. A person gets the campaign's script on the same voice pipeline as every call
   (``SipServer.converse``); the outcome and the structured answers come from the script.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time

from voicebot.inbound.sip import SipServer, _Leg
from voicebot.inbound.sip_bridge import next_leg_event, speak
from voicebot.outbound.amd import (
    AmdConfig,
    AmdVerdict,
    AnsweringMachineDetector,
    BeepDetector,
    level_dbfs,
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
from voicebot.pipeline.call import CallInfo
from voicebot.pipeline.sip_transport import SIP_SAMPLE_RATE
from voicebot.rtp.errors import RtpError, SdpError
from voicebot.rtp.events import AudioReceived, ByeReceived, RtpTimeout
from voicebot.rtp.sdp import PCMA, PCMU, create_offer, parse_answer
from voicebot.sip.useragent import CallAnswered, CallEnded

log = logging.getLogger(__name__)

BUSY = frozenset({486, 600})
NOT_ANSWERED = frozenset({408, 480, 487, 603})
INVALID = frozenset({404, 484, 604})
BEEP_WAIT_SECS = 20.0  # a greeting with no beep: speak after this long at most
GREETING_END_SILENCE_SECS = 2.0  # ...or once the greeting has been silent this long


def final_status_outcome(status: int | None) -> Outcome:
    if status in BUSY:
        return Outcome.BUSY
    if status in NOT_ANSWERED:
        return Outcome.NO_ANSWER
    if status in INVALID:
        return Outcome.INVALID
    return Outcome.FAILED


class SipDialer:
    def __init__(self, server: SipServer, *, amd: AmdConfig | None = None) -> None:
        self.server = server
        self.amd = amd or AmdConfig()

    def has_line(self) -> bool:
        return not self.server.runtime.call_admission.full

    async def call(self, request: CallRequest) -> CallReport:
        return await on_a_line(self.server.runtime.call_admission, self._call, request)

    async def _call(self, request: CallRequest) -> CallReport:
        server = self.server
        trunk = server.config.outbound
        contact, definition = request.contact, request.definition
        try:
            endpoint = await server.open_media()
        except RtpError as exc:
            return CallReport(Outcome.FAILED, detail=f"no RTP port: {exc.reason}")
        session_id = random.randint(1, 2**31)
        offer = create_offer(address=server.media_host, port=endpoint.port, session_id=session_id, version=1)
        password = os.environ.get(trunk.password_env, "") if trunk.password_env else ""
        credentials = (trunk.username, password) if trunk.username else None
        from_host = trunk.from_domain or f"{server.host}:{server.port}"
        call = server.ua.invite(
            trunk.uri.format(number=contact.phone),
            server._now(),
            sdp=offer.encode(),
            from_uri=f"sip:{definition.caller_id}@{from_host}",
            credentials=credentials,
        )
        leg = _Leg(call, time.monotonic(), endpoint=endpoint, session_id=session_id)
        server.legs[id(call)] = leg
        server._flush()
        try:
            answered = await self._ring(leg, float(definition.ring_timeout))
            if not answered:
                if not call.ended:  # rang too long: CANCEL
                    server.hangup(leg, "ring_timeout")
                    return CallReport(
                        Outcome.NO_ANSWER, detail="no answer (ring timeout)", call_id=call.call_id
                    )
                status = call.end_status
                return CallReport(final_status_outcome(status), detail=f"SIP {status}", call_id=call.call_id)
            try:
                params = parse_answer(call.remote_sdp.decode("utf-8", "replace"), (PCMU, PCMA), 101)
            except SdpError as exc:
                server.hangup(leg, "sdp_refused")
                return CallReport(
                    Outcome.FAILED, detail=f"unusable SDP answer: {exc.reason}", call_id=call.call_id
                )
            if not server.allowed(params.remote_address):
                server.hangup(leg, "media_refused")
                return CallReport(Outcome.FAILED, detail="media address refused", call_id=call.call_id)
            endpoint.start(params)
            await request.on_answered()
            return await self._answered(leg, request)
        finally:
            if not call.ended:
                server.hangup(leg, "campaign_call_end")
            await endpoint.close()
            server.legs.pop(id(call), None)

    async def _ring(self, leg: _Leg, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            event = await next_leg_event(leg, left)
            if event is None:
                return False
            if isinstance(event, CallAnswered):
                return True
            if isinstance(event, CallEnded):
                return False
        return False

    async def _answered(self, leg: _Leg, request: CallRequest) -> CallReport:
        contact = request.contact
        call = leg.call
        conversation = conversation_for(request)
        verdict, reason = await self._detect(leg)
        if leg.ended.is_set():
            return CallReport(
                Outcome.DECLINED, detail=f"hung up during the greeting ({reason})", call_id=call.call_id
            )
        if verdict is AmdVerdict.MACHINE:
            return await self._voicemail(leg, request, conversation, reason)
        info = CallInfo(
            call_id=call.call_id,
            caller=contact.phone,
            called=contact.phone,
            channel="sip",
            in_sample_rate=SIP_SAMPLE_RATE,
            out_sample_rate=SIP_SAMPLE_RATE,
        )
        turns = ScriptTurns(conversation, transfers=self.server.runtime.tenant.voice.transfer)
        result = await self.server.converse(leg, info, script=turns)
        return conversation_report(
            conversation, result, call_id=call.call_id, detail=f"amd {verdict.value} ({reason})"
        )

    async def _detect(self, leg: _Leg) -> tuple[AmdVerdict, str]:
        """Answering-machine detection on the first seconds of audio."""
        assert leg.endpoint is not None
        detector = AnsweringMachineDetector(SIP_SAMPLE_RATE, self.amd)
        deadline = time.monotonic() + self.amd.total_analysis_s + 1.0
        while (left := deadline - time.monotonic()) > 0 and not leg.ended.is_set():
            try:
                event = await asyncio.wait_for(leg.endpoint.events.get(), left)
            except TimeoutError:
                break
            if isinstance(event, AudioReceived):
                if (verdict := detector.feed(event.pcm16)) is not None:
                    return verdict, detector.reason
            elif isinstance(event, RtpTimeout | ByeReceived):
                break
        return AmdVerdict.UNKNOWN, detector.reason or "no decision"

    async def _voicemail(
        self, leg: _Leg, request: CallRequest, conversation: ScriptedConversation, reason: str
    ) -> CallReport:
        call = leg.call
        message = conversation.voicemail_message()
        left = None
        if request.definition.voicemail.action is VoicemailAction.LEAVE_MESSAGE and message:
            waited = await self._wait_for_beep(leg)
            if not leg.ended.is_set():
                assert leg.endpoint is not None
                await speak(self.server, leg.endpoint, message)
                left = message
            detail = f"answering machine ({reason}); message left after {waited}"
        else:
            detail = f"answering machine ({reason}); hung up"
        self.server.hangup(leg, "voicemail")
        return voicemail_report(detail, call_id=call.call_id, message=left)

    async def _wait_for_beep(self, leg: _Leg) -> str:
        """Until the beep ends, the greeting falls silent, or BEEP_WAIT_SECS; which it was."""
        assert leg.endpoint is not None
        beep = BeepDetector(SIP_SAMPLE_RATE)
        silent_for = 0.0
        deadline = time.monotonic() + BEEP_WAIT_SECS
        while (left := deadline - time.monotonic()) > 0 and not leg.ended.is_set():
            try:
                event = await asyncio.wait_for(leg.endpoint.events.get(), left)
            except TimeoutError:
                break
            if not isinstance(event, AudioReceived):
                if isinstance(event, RtpTimeout | ByeReceived):
                    return "the line went quiet"
                continue
            if beep.feed(event.pcm16):
                return "the beep"
            quiet = level_dbfs(event.pcm16) < self.amd.silence_threshold_dbfs
            silent_for = silent_for + len(event.pcm16) / 2 / SIP_SAMPLE_RATE if quiet else 0.0
            if silent_for >= GREETING_END_SILENCE_SECS:
                return "the greeting ended"
        return "waiting too long for a beep"
