"""Native SIP calls: the receptionist answers INVITEs to any user at voicebot's SIP address.

``SipServer(runtime)`` owns one ``UserAgent`` on UDP+TCP (voicebot.sip.transport) and turns its
events into calls: access control (allowed source networks, optional digest authentication),
admission (503 with Retry-After when every line is busy), SDP offer/answer (voicebot.rtp.sdp; 488
when no codec fits or media would go outside the allowed networks), 180 then 200, and then the same
``run_call`` pipeline as every other channel over a ``SipCallTransport`` fed by the call's RTP
endpoint. Re-INVITEs (hold/resume, codec change) are answered from the same port; DTMF arrives as
RFC 4733 events or SIP INFO. Handoffs transfer with REFER (blind) or by calling the agent first and
bridging the caller (warm, voicebot.inbound.sip_bridge). Each call is recorded in the audit log
(``voice.sip_call``: SIP Call-ID, From, To, hang-up reason) next to its conversation.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import random
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from voicebot.admission import CallsFullError
from voicebot.config import SipConfig
from voicebot.dialogue.types import Reply
from voicebot.pipeline.call import CallInfo, CallResult, run_call
from voicebot.pipeline.call_dialogue import CallScript
from voicebot.pipeline.sip_transport import SIP_SAMPLE_RATE, SipCallTransport
from voicebot.rtp.endpoint import RtpEndpoint, RtpPortPool
from voicebot.rtp.errors import RtpError, SdpError
from voicebot.rtp.events import AudioReceived, ByeReceived, DtmfReceived, RtpTimeout
from voicebot.rtp.sdp import PCMA, PCMU, MediaParams, answer_offer, create_offer, parse_answer
from voicebot.sip.auth import DigestChallenger
from voicebot.sip.transport import SipTransport
from voicebot.sip.uri import NameAddr
from voicebot.sip.useragent import (
    Call,
    CallAnswered,
    CallConfirmed,
    CallEnded,
    CallProgress,
    DtmfInfo,
    IncomingCall,
    ReferStatus,
    RegistrationChanged,
    ReofferReceived,
    UaConfig,
    UaEvent,
    UserAgent,
)

__all__ = ["SIP_CALL_ACTION", "SipServer"]

log = logging.getLogger(__name__)
SIP_CALL_ACTION = "voice.sip_call"
REFER_WAIT_SECS = 30.0


def _networks(config: SipConfig) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(n, strict=False) for n in config.allowed_networks]


def _user_of(header: str) -> str | None:
    try:
        uri = NameAddr.parse(header).uri
    except Exception:
        return None
    return uri.user or uri.host


@dataclass(eq=False)
class _Leg:
    """What the server keeps per SIP call."""

    call: Call
    started: float
    endpoint: RtpEndpoint | None = None
    transport: SipCallTransport | None = None
    session_id: int = field(default_factory=lambda: random.randint(1, 2**31))
    sdp_version: int = 1
    refer: asyncio.Queue[ReferStatus] = field(default_factory=asyncio.Queue)
    outbound: asyncio.Queue[UaEvent] = field(default_factory=asyncio.Queue)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    confirmed: asyncio.Event = field(default_factory=asyncio.Event)  # ACK received
    hangup_reason: str | None = None
    bridge: _Leg | None = None  # warm transfer: the agent's leg, bridged after the pipeline ends


class SipServer:
    def __init__(
        self,
        runtime: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 5060,
        reuse_port: bool = False,
        register: bool = True,
    ) -> None:
        self.reuse_port = reuse_port
        self.register = register  # with the trunk, when one is configured
        self.runtime = runtime
        self.config: SipConfig = runtime.tenant.voice.sip
        self.host = host
        self.requested_port = port
        self.media_host = self.config.media_address or host
        self.networks = _networks(self.config)
        self.ua = UserAgent(UaConfig(host=host, port=port, user="voicebot", user_agent="voicebot"))
        self.challenger = DigestChallenger(self.config.realm, secrets.token_bytes(32))
        self.pool = RtpPortPool(self.media_host, *self.config.rtp_ports)
        self.transport: SipTransport | None = None
        self.legs: dict[int, _Leg] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.completed = 0

    # ----------------------------------------------------------------- lifecycle

    @property
    def port(self) -> int:
        return self.transport.port if self.transport else self.requested_port

    async def start(self) -> None:
        self.transport = SipTransport(
            self.ua,
            host=self.host,
            port=self.requested_port,
            on_event=self._on_event,
            reuse_port=self.reuse_port,
        )
        await self.transport.start()
        if self.transport.port != self.ua.config.port:
            self.ua.config = UaConfig(
                host=self.host, port=self.transport.port, user="voicebot", user_agent="voicebot"
            )
        trunk = self.config.trunk
        if trunk is not None and self.register:
            password = os.environ.get(trunk.password_env or "", "") if trunk.password_env else ""
            credentials = (trunk.username, password) if trunk.username else None
            self.ua.register(
                trunk.registrar, trunk.aor, self._now(), credentials=credentials, expires=trunk.expires
            )
            self.transport.flush()

    async def stop(self) -> None:
        """Hang up every call (BYE), then close the sockets."""
        for leg in list(self.legs.values()):
            self.hangup(leg, "shutdown")
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.transport is not None:
            await self.transport.close()

    def status(self) -> dict[str, int]:
        ua = self.ua.stats()
        return {
            "calls": len(self.legs),
            "dialogs": ua["dialogs"],
            "transactions": ua["transactions"],
            "rtp_ports_in_use": self.pool.in_use,
            "tasks": len(self._tasks),
            "tcp_connections": self.transport.connections if self.transport else 0,
            "completed_calls": self.completed,
        }

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _flush(self) -> None:
        if self.transport is not None:
            self.transport.flush()

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def open_media(self) -> RtpEndpoint:
        """An RTP endpoint on a fresh port pair, with the configured timeout and jitter buffer."""
        least, most = self.config.jitter_buffer_ms
        return await self.pool.open(
            allowed=self.allowed,
            timeout_s=self.config.rtp_timeout_secs,
            jitter_depth_frames=least / 20,
            jitter_max_frames=max(least, most) / 20,
        )

    def allowed(self, host: str) -> bool:
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return False  # a host name is never resolved for media
        return any(ip in net for net in self.networks)

    # ----------------------------------------------------------------- UA events

    def _on_event(self, event: UaEvent) -> None:
        if isinstance(event, IncomingCall):
            self._incoming(event.call)
            return
        if isinstance(event, RegistrationChanged):
            reg = event.registration
            log.info("SIP registration %s at %s: %s", reg.aor, reg.registrar, reg.state.value)
            return
        leg = self.legs.get(id(event.call))
        if leg is None:
            return
        if isinstance(event, CallEnded):
            leg.hangup_reason = leg.hangup_reason or event.reason
            leg.ended.set()
            if leg.transport is not None:
                self._spawn(leg.transport.disconnected(), "sip-disconnected")
        elif isinstance(event, CallConfirmed):
            leg.confirmed.set()
        elif isinstance(event, ReofferReceived):
            self._reoffer(leg, event.sdp)
        elif isinstance(event, DtmfInfo):
            if leg.transport is not None:
                self._spawn(leg.transport.feed_dtmf(event.digit), "sip-info-dtmf")
        elif isinstance(event, ReferStatus):
            leg.refer.put_nowait(event)
        elif isinstance(event, CallAnswered | CallProgress):
            leg.outbound.put_nowait(event)

    def _incoming(self, call: Call) -> None:
        now = self._now()
        if not self.allowed(call.peer.host):
            log.warning("SIP INVITE from %s refused: not in allowed networks", call.peer.host)
            self.ua.reject(call, 403, now, reason="Forbidden")
            return
        if self.config.digest_users and not self._authenticated(call, now):
            return
        admission = self.runtime.call_admission
        if admission.full:
            log.info("SIP call %s refused: all %d lines busy", call.call_id, admission.limit)
            self.ua.reject(call, 503, now, headers=[("Retry-After", str(self.config.retry_after_secs))])
            return
        if self.runtime.speech is None:
            self.ua.reject(call, 503, now, reason="Voice Not Enabled")
            return
        leg = _Leg(call, time.monotonic())
        self.legs[id(call)] = leg
        self._spawn(self._serve(leg), f"sip-call-{call.call_id[:16]}")

    def _authenticated(self, call: Call, now: float) -> bool:
        value = call.invite.headers.get("Authorization") or call.invite.headers.get("Proxy-Authorization")
        users = self.config.digest_users
        stale = False
        if value:

            def lookup(user: str) -> str | None:
                env = users.get(user)
                return os.environ.get(env) if env else None

            result = self.challenger.verify(value, method="INVITE", now=now, lookup=lookup)
            if result.ok:
                return True
            stale = result.stale
            log.info("SIP call %s: digest refused (%s)", call.call_id, result.reason)
        self.ua.reject(
            call, 401, now, headers=[("WWW-Authenticate", self.challenger.challenge(now, stale=stale))]
        )
        return False

    # ----------------------------------------------------------------- one call

    async def _serve(self, leg: _Leg) -> None:
        call = leg.call
        admission = self.runtime.call_admission
        try:
            with admission.admit():
                await self._answer_and_run(leg)
        except CallsFullError:
            self.ua.reject(
                call, 503, self._now(), headers=[("Retry-After", str(self.config.retry_after_secs))]
            )
        except Exception:
            log.exception("SIP call %s failed", call.call_id)
            leg.hangup_reason = leg.hangup_reason or "error"
            self.ua.hangup(call, self._now())
        finally:
            self._flush()
            if leg.endpoint is not None:
                await leg.endpoint.close()
            self.legs.pop(id(call), None)
            self.completed += 1

    async def _answer_and_run(self, leg: _Leg) -> None:
        call = leg.call
        try:
            endpoint = await self.open_media()
        except RtpError as exc:  # every RTP port of the range is taken
            log.warning("SIP call %s refused: %s", call.call_id, exc.reason)
            self.ua.reject(
                call, 503, self._now(), headers=[("Retry-After", str(self.config.retry_after_secs))]
            )
            leg.hangup_reason = "no_rtp_port"
            return
        leg.endpoint = endpoint
        late_offer = not call.remote_sdp.strip()
        if late_offer:  # no SDP in the INVITE: we offer in the 200, the answer comes in the ACK
            local_sdp = create_offer(
                address=self.media_host,
                port=endpoint.port,
                session_id=leg.session_id,
                version=leg.sdp_version,
            )
            params = None
        else:
            negotiated = self._negotiate(leg, call.remote_sdp, endpoint.port)
            if negotiated is None:
                return
            local_sdp, params = negotiated
        self.ua.ring(call, self._now())
        self._flush()
        if self.config.ring_secs:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(leg.ended.wait(), self.config.ring_secs)
        if call.ended:
            return  # CANCEL while ringing
        self.ua.answer(call, local_sdp.encode(), self._now())
        self._flush()
        if params is None:
            params = await self._late_answer(leg)
            if params is None:
                return
        endpoint.start(params)
        info = CallInfo(
            call_id=call.call_id,
            caller=_user_of(call.from_header),
            called=_user_of(call.to_header),
            channel="sip",
            in_sample_rate=SIP_SAMPLE_RATE,
            out_sample_rate=SIP_SAMPLE_RATE,
        )
        await self.converse(leg, info)

    async def converse(
        self, leg: _Leg, info: CallInfo, *, script: CallScript | None = None
    ) -> CallResult | None:
        """Run the voice pipeline on an established call whose RTP endpoint has started, until the
        call ends; then bridge (warm transfer) or hang up, and record the call."""
        call = leg.call
        assert leg.endpoint is not None
        transport = SipCallTransport(leg.endpoint, name=f"sip-{call.call_id[:12]}")
        leg.transport = transport
        pump = self._spawn(self._pump_media(leg), "sip-media")
        result = None
        try:
            result = await run_call(
                self.runtime,
                self.runtime.speech,
                transport,
                info,
                transfer=self._transfer_hook(leg),
                script=script,
            )
        finally:
            pump.cancel()
            if leg.bridge is not None:  # warm transfer: bridged (or the agent hung up if the caller left)
                from voicebot.inbound.sip_bridge import bridge

                await bridge(self, leg, leg.bridge)
            if not call.ended and leg.bridge is None:
                await self._drain(leg)  # the goodbye's last words are still in the RTP queue
            if not call.ended:
                leg.hangup_reason = leg.hangup_reason or (
                    "transferred" if result is not None and result.reason == "transferred" else "bot_hangup"
                )
                self.ua.hangup(call, self._now())
                self._flush()
            if result is not None:
                await self._record(leg, result.conversation_id, result.reason)
        return result

    async def _drain(self, leg: _Leg, limit_s: float = 2.0) -> None:
        endpoint = leg.endpoint
        for _ in range(int(limit_s / 0.02)):
            if endpoint is None or endpoint.queued_audio_ms <= 0 or leg.ended.is_set():
                return
            await asyncio.sleep(0.02)

    def _negotiate(self, leg: _Leg, offer: bytes, port: int) -> tuple[str, MediaParams] | None:
        """Our answer to an INVITE's offer, or None after refusing the call (488 / 400)."""
        call = leg.call
        try:
            answer, params = answer_offer(
                offer.decode("utf-8", "replace"),
                address=self.media_host,
                port=port,
                session_id=leg.session_id,
                version=leg.sdp_version,
            )
        except SdpError as exc:
            log.info("SIP call %s: offer refused (%s)", call.call_id, exc.reason)
            self.ua.reject(
                call, exc.status, self._now(), headers=[("Warning", f'399 voicebot "{exc.reason}"')]
            )
            leg.hangup_reason = "sdp_refused"
            return None
        if not self.allowed(params.remote_address):
            self.ua.reject(
                call, 488, self._now(), headers=[("Warning", '305 voicebot "media address refused"')]
            )
            leg.hangup_reason = "media_refused"
            return None
        return answer, params

    async def _late_answer(self, leg: _Leg) -> MediaParams | None:
        """The peer's answer to our offer, from its ACK; a call without a usable one is hung up."""
        call = leg.call
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(leg.confirmed.wait(), 64 * self.ua.config.timers.t1)
        if call.ended or not leg.confirmed.is_set():
            return None
        try:
            params = parse_answer(call.remote_sdp.decode("utf-8", "replace"), (PCMU, PCMA), 101)
        except SdpError as exc:
            log.info("SIP call %s: the answer in the ACK is unusable (%s)", call.call_id, exc.reason)
            params = None
        if params is None or not self.allowed(params.remote_address):
            self.hangup(leg, "sdp_refused")
            return None
        return params

    async def _pump_media(self, leg: _Leg) -> None:
        endpoint, transport = leg.endpoint, leg.transport
        assert endpoint is not None and transport is not None
        await transport.wait_started()
        while True:
            event = await endpoint.events.get()
            if isinstance(event, AudioReceived):
                await transport.feed_audio(event.pcm16)
            elif isinstance(event, DtmfReceived):
                await transport.feed_dtmf(event.digit)
            elif isinstance(event, RtpTimeout | ByeReceived):
                reason = "rtp_timeout" if isinstance(event, RtpTimeout) else "rtcp_bye"
                log.info("SIP call %s: %s, hanging up", leg.call.call_id, reason)
                self.hangup(leg, reason)
                await transport.disconnected()
                return

    def hangup(self, leg: _Leg, reason: str) -> None:
        if not leg.call.ended:
            leg.hangup_reason = leg.hangup_reason or reason
            self.ua.hangup(leg.call, self._now())
            self._flush()

    def _reoffer(self, leg: _Leg, sdp: bytes) -> None:
        now = self._now()
        endpoint = leg.endpoint
        if endpoint is None:
            self.ua.reject_reoffer(leg.call, 491, now)
            return
        leg.sdp_version += 1
        if not sdp.strip():  # an offer-less re-INVITE: we offer (same stream), the ACK answers
            offer = create_offer(
                address=self.media_host,
                port=endpoint.port,
                session_id=leg.session_id,
                version=leg.sdp_version,
            )
            self.ua.answer_reoffer(leg.call, offer.encode(), now)
            return
        try:
            answer, params = answer_offer(
                sdp.decode("utf-8", "replace"),
                address=self.media_host,
                port=endpoint.port,
                session_id=leg.session_id,
                version=leg.sdp_version,
            )
        except SdpError as exc:
            self.ua.reject_reoffer(leg.call, exc.status, now)
            return
        if not self.allowed(params.remote_address) and not _null_address(params):
            self.ua.reject_reoffer(leg.call, 488, now)
            return
        endpoint.update(params)
        self.ua.answer_reoffer(leg.call, answer.encode(), now)
        log.info(
            "SIP call %s: re-INVITE, %s%s",
            leg.call.call_id,
            params.codec.name,
            " (hold)" if params.on_hold else "",
        )

    # ----------------------------------------------------------------- transfer

    def _transfer_target(self, target: str) -> str:
        if target.startswith(("sip:", "sips:")):
            return target
        return self.config.transfer_uri.format(number=target)

    def _transfer_hook(self, leg: _Leg) -> Any:
        async def transfer(target: str, reply: Reply) -> bool:
            uri = self._transfer_target(target)
            if self.config.transfer_mode == "warm":
                from voicebot.inbound.sip_bridge import warm_transfer

                return await warm_transfer(self, leg, uri, reply)
            return await self.blind_transfer(leg, uri)

        return transfer

    async def blind_transfer(self, leg: _Leg, uri: str) -> bool:
        """REFER the caller to ``uri``; True once the transferee reports the new call answered."""
        call = leg.call
        try:
            self.ua.refer(call, uri, self._now(), referred_by=f"sip:voicebot@{self.host}")
        except Exception as exc:
            log.info("SIP call %s: cannot transfer: %s", call.call_id, exc)
            return False
        self._flush()
        deadline = time.monotonic() + REFER_WAIT_SECS
        accepted = False
        while (left := deadline - time.monotonic()) > 0:
            try:
                status = await asyncio.wait_for(leg.refer.get(), left)
            except TimeoutError:
                break
            if 200 <= status.status < 300 and not status.final:
                accepted = True
                continue
            if status.final:
                ok = 200 <= status.status < 300 and (accepted or status.status != 202)
                log.info("SIP call %s: REFER to %s -> %s", call.call_id, uri, status.status)
                if ok:
                    leg.hangup_reason = "transferred"
                return ok
        log.info("SIP call %s: REFER to %s got no final NOTIFY (accepted=%s)", call.call_id, uri, accepted)
        if accepted:
            leg.hangup_reason = "transferred"
        return accepted

    # ----------------------------------------------------------------- records

    async def _record(self, leg: _Leg, conversation_id: str, outcome: str) -> None:
        call = leg.call
        details = {
            "sip_call_id": call.call_id,
            "from": call.from_header,
            "to": call.to_header,
            "transport": call.peer.transport,
            "source": f"{call.peer.host}:{call.peer.port}",
            "hangup_reason": leg.hangup_reason or call.end_reason or "unknown",
            "outcome": outcome,
            "duration_s": round(time.monotonic() - leg.started, 3),
        }
        if leg.endpoint is not None:
            stats = leg.endpoint.stats
            details["rtp"] = {
                "packets_received": stats.packets_received,
                "packets_sent": stats.packets_sent,
                "lost": stats.lost,
            }
        try:
            await self.runtime.audit.record(
                tenant_id=self.runtime.tenant.id,
                actor="bot",
                action=SIP_CALL_ACTION,
                now=datetime.now(UTC),
                conversation_id=conversation_id,
                details=details,
            )
        except Exception:
            log.exception("SIP call %s: storing the call record failed", call.call_id)


def _null_address(params: MediaParams) -> bool:
    return params.remote_address in ("0.0.0.0", "::")
