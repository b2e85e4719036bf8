"""Warm (attended) transfer for SIP calls: the bot calls the agent, tells the agent, then bridges.

1. The bot places a call to the agent (UAC INVITE from its own RTP endpoint) while the caller waits.
2. When the agent answers, the bot speaks the handoff summary to the agent only (who is calling,
   what they want, what was collected), synthesized with the call's TTS voice.
3. The caller's pipeline ends (outcome ``transferred``) and the two legs are bridged: decoded audio
   and DTMF are relayed between the caller's and the agent's RTP endpoints until either side hangs
   up, and then the other leg gets a BYE. voicebot stays in the media path (a B2BUA), so this works
   with any phone or PBX, without REFER/Replaces support.

If the agent does not answer (busy, no answer within ``AGENT_ANSWER_SECS``, failure), the transfer
reports failure and the caller stays with the bot.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from voicebot.dialogue.types import Reply
from voicebot.rtp.errors import SdpError
from voicebot.rtp.events import AudioReceived, ByeReceived, DtmfReceived, RtpEvent, RtpTimeout
from voicebot.rtp.sdp import PCMA, PCMU, create_offer, parse_answer
from voicebot.sip.useragent import CallAnswered, CallEnded, CallProgress

if TYPE_CHECKING:
    from voicebot.inbound.sip import SipServer, _Leg
    from voicebot.rtp.endpoint import RtpEndpoint

__all__ = ["AGENT_ANSWER_SECS", "agent_briefing", "bridge", "next_leg_event", "speak", "warm_transfer"]

log = logging.getLogger(__name__)
AGENT_ANSWER_SECS = 30.0
BRIEFING_SAMPLE_RATE = 8000


def agent_briefing(reply: Reply) -> str:
    """What the agent hears before the caller is connected."""
    handoff = reply.handoff
    if handoff is None:
        return "Transferring a caller to you now."
    parts = ["Incoming transfer from the voice assistant."]
    customer = handoff.customer or {}
    if name := customer.get("name"):
        parts.append(f"The caller is {name}.")
    if handoff.summary:
        parts.append(handoff.summary.rstrip(".") + ".")
    fields = {k: v for k, v in handoff.fields.items() if v not in (None, "")}
    if fields:
        parts.append("Collected: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in fields.items()) + ".")
    parts.append("Connecting you now.")
    return " ".join(parts)


async def speak(server: SipServer, endpoint: RtpEndpoint, text: str) -> None:
    """Synthesize ``text`` with the call TTS voice and play it on ``endpoint`` to its end."""
    speech = server.runtime.speech
    synthesize = getattr(speech, "synthesize", None)
    if synthesize is None:
        return
    chunks = await asyncio.to_thread(lambda: list(synthesize(text, BRIEFING_SAMPLE_RATE)))
    for chunk in chunks:
        endpoint.send_audio(chunk)
    while endpoint.queued_audio_ms > 0:  # the agent hears all of it before the caller joins
        await asyncio.sleep(0.02)


async def warm_transfer(server: SipServer, leg: _Leg, uri: str, reply: Reply) -> bool:
    from voicebot.inbound.sip import _Leg

    endpoint = await server.open_media()
    offer = create_offer(
        address=server.media_host, port=endpoint.port, session_id=leg.session_id + 1, version=1
    )
    call = server.ua.invite(uri, server._now(), sdp=offer.encode(), display="voicebot")
    agent = _Leg(call, time.monotonic(), endpoint=endpoint)
    server.legs[id(call)] = agent
    server._flush()
    answered = False
    try:
        deadline = time.monotonic() + AGENT_ANSWER_SECS
        while (left := deadline - time.monotonic()) > 0 and not answered:
            event = await next_leg_event(agent, left)
            if event is None or isinstance(event, CallEnded):
                break
            if isinstance(event, CallAnswered):
                answered = True
            elif isinstance(event, CallProgress):
                log.info("warm transfer to %s: %s", uri, event.status)
        if not answered:
            log.info("warm transfer to %s: the agent did not answer (%s)", uri, call.end_status)
            return False
        try:
            params = parse_answer(call.remote_sdp.decode("utf-8", "replace"), (PCMU, PCMA), 101)
        except SdpError as exc:
            log.warning("warm transfer to %s: unusable answer: %s", uri, exc.reason)
            return False
        if not server.allowed(params.remote_address):
            log.warning("warm transfer to %s: agent media address %s refused", uri, params.remote_address)
            return False
        endpoint.start(params)
        await speak(server, endpoint, agent_briefing(reply))
        if agent.ended.is_set() or leg.call.ended:
            return False
        leg.bridge = agent  # the caller's leg bridges once its pipeline has ended
        leg.hangup_reason = "transferred"
        return True
    finally:
        if leg.bridge is not agent:
            server.hangup(agent, "transfer_failed")
            await endpoint.close()
            server.legs.pop(id(call), None)


async def next_leg_event(agent: _Leg, timeout: float) -> Any:
    """The leg's next call event (answer, progress), CallEnded if it ended, None after ``timeout``."""
    waiter = asyncio.ensure_future(agent.outbound.get())
    ended = asyncio.ensure_future(agent.ended.wait())
    try:
        done, _ = await asyncio.wait({waiter, ended}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for fut in (waiter, ended):
            if not fut.done():
                fut.cancel()
    if waiter in done:
        return waiter.result()
    if ended in done:
        return CallEnded(agent.call, agent.call.end_reason or "ended", agent.call.end_status)
    return None


async def bridge(server: SipServer, caller: _Leg, agent: _Leg) -> None:
    """Relay audio and DTMF both ways until either leg ends; then hang up the other."""
    assert caller.endpoint is not None and agent.endpoint is not None
    a, b = caller.endpoint, agent.endpoint

    async def relay(src: RtpEndpoint, dst: RtpEndpoint) -> str:
        while True:
            event: RtpEvent = await src.events.get()
            if isinstance(event, AudioReceived):
                dst.send_audio(event.pcm16)
            elif isinstance(event, DtmfReceived):
                dst.send_dtmf(event.digit)
            elif isinstance(event, RtpTimeout | ByeReceived):
                return "rtp_timeout"

    tasks = [
        asyncio.ensure_future(relay(a, b)),
        asyncio.ensure_future(relay(b, a)),
        asyncio.ensure_future(caller.ended.wait()),
        asyncio.ensure_future(agent.ended.wait()),
    ]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        server.hangup(caller, "transferred")
        server.hangup(agent, "bridge_ended")
        await agent.endpoint.close()
        server.legs.pop(id(agent.call), None)
        log.info("bridge %s <-> %s ended", caller.call.call_id, agent.call.call_id)
