"""The campaign callees work: each SIPp UAS scenario tests/data/sipp/uas_campaign_*.xml (and the
benchmark's bench/sipp/campaign_callees.xml) is called by a tiny UAC built on voicebot's own SIP
stack (voicebot.sip UserAgent + SipTransport) and RTP endpoint, the way the campaign dialer calls.

Checked: the SIP answers (486, 180 then 487 after our CANCEL, 407 then 200 with credentials, 603),
the SDP answer, that the callee's audio arrives and is speech (utterances counted on the received
frames, answering-machine detection says person or machine, the voicemail greeting ends in a beep),
RFC 4733 digits, and that a BYE from us gets 200. Only 127.0.0.1; no wall-clock assertions (pauses
are shortened through the scenarios' keys so a run takes seconds).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio

from tests.peers.sipp import SCENARIOS, SippProcess, sipp_available, sipp_uas
from voicebot.outbound.amd import AmdVerdict, AnsweringMachineDetector, BeepDetector
from voicebot.rtp import PCMA, PCMU, AudioReceived, DtmfReceived, create_offer, parse_answer
from voicebot.rtp.endpoint import RtpEndpoint, RtpPortPool
from voicebot.sip import SipRequest, SipResponse
from voicebot.sip.auth import digest_response, parse_credentials
from voicebot.sip.transaction import Peer
from voicebot.sip.transport import SipTransport
from voicebot.sip.useragent import (
    Call,
    CallAnswered,
    CallEnded,
    CallProgress,
    DtmfInfo,
    UaConfig,
    UaEvent,
    UserAgent,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sipp_available(), reason="sipp (Debian sip-tester) is not installed"),
]
LOOP = "127.0.0.1"
BENCH = Path(__file__).resolve().parents[2] / "bench" / "sipp" / "campaign_callees.xml"
NUMBER = "+38640111222"
PASSWORD = "trunk-secret"  # any: SIPp cannot verify it (see uas_campaign_digest.xml); the test does
FRAME_BYTES = 320  # 20 ms of 8 kHz 16-bit PCM
VOICED_RMS = 300.0  # about -40 dBFS, the answering-machine detector's silence threshold
GAP_FRAMES = 30  # 0.6 s of silence ends an utterance (pauses inside a sentence are shorter)
MIN_VOICED = 5  # 100 ms
# pauses just longer than the utterance before them (each WAV ends in 1-1.5 s of silence)
SHORT = {"ring_ms": "200", "answer_pause_ms": "2500", "slot_pause_ms": "3500", "question_pause_ms": "3000"}


class RecordingUserAgent(UserAgent):
    """A UserAgent that keeps every message it receives (the UA hides some: the 487 after our
    CANCEL, the 407 it answers with credentials itself, the 200 to our BYE)."""

    def __init__(self, config: UaConfig) -> None:
        super().__init__(config)
        self.received: list[SipRequest | SipResponse] = []

    def receive_message(self, message: SipRequest | SipResponse, peer: Peer, now: float) -> None:
        self.received.append(message)
        super().receive_message(message, peer, now)

    def responses(self, method: str, call: Call | None = None) -> list[int]:
        return [
            m.status
            for m in self.received
            if isinstance(m, SipResponse)
            and m.cseq.method == method
            and (call is None or m.call_id == call.call_id)
        ]


@dataclass(eq=False)
class Leg:
    """One outbound call: its SIP events, and once answered its media."""

    call: Call
    events: asyncio.Queue[UaEvent] = field(default_factory=asyncio.Queue)
    endpoint: RtpEndpoint | None = None
    frames: list[bytes] = field(default_factory=list)
    digits: list[str] = field(default_factory=list)
    info_digits: list[str] = field(default_factory=list)
    media_task: asyncio.Task[None] | None = None

    async def next_event(self, timeout_s: float = 20.0) -> UaEvent:
        return await asyncio.wait_for(self.events.get(), timeout_s)

    @property
    def pcm(self) -> bytes:
        return b"".join(self.frames)

    def voiced(self) -> list[bool]:
        out = []
        for frame in self.frames:
            samples = np.frombuffer(frame, dtype="<i2").astype(np.float64)
            out.append(bool(samples.size) and float(np.sqrt(np.mean(samples**2))) >= VOICED_RMS)
        return out

    def utterances(self) -> list[float]:
        """Durations in seconds of the stretches of speech: voiced frames, split at GAP_FRAMES of
        silence, the last one only once GAP_FRAMES of silence followed it. Stretches with fewer
        than MIN_VOICED voiced frames are clicks (SIPp 3.6 streams the WAV header as 5 ms of noise)."""
        runs: list[float] = []
        start = end = count = 0
        for i, loud in enumerate(self.voiced()):
            if loud:
                if not count:
                    start = i
                count, end = count + 1, i
            elif count and i - end >= GAP_FRAMES:
                if count >= MIN_VOICED:
                    runs.append((end + 1 - start) * 0.02)
                count = 0
        return runs


class Uac:
    """voicebot's SIP user agent on a free loopback port, placing calls with an SDP offer of PCMU,
    PCMA and telephone-event 101 (what the campaign dialer offers)."""

    def __init__(self) -> None:
        self.ua = RecordingUserAgent(UaConfig(host=LOOP, port=0, user="voicebot"))
        self.pool = RtpPortPool(LOOP, 41000, 43999)
        self.legs: dict[int, Leg] = {}
        self.transport: SipTransport | None = None
        self.loop = asyncio.get_running_loop()

    async def start(self) -> None:
        self.transport = SipTransport(self.ua, host=LOOP, port=0, on_event=self._on_event, tcp=False)
        await self.transport.start()
        self.ua.config = UaConfig(host=LOOP, port=self.transport.port, user="voicebot")

    async def close(self) -> None:
        for leg in self.legs.values():
            if leg.media_task is not None:
                leg.media_task.cancel()
                await asyncio.gather(leg.media_task, return_exceptions=True)
            if leg.endpoint is not None:
                await leg.endpoint.close()
        if self.transport is not None:
            await self.transport.close()

    def _on_event(self, event: UaEvent) -> None:
        call = getattr(event, "call", None)
        leg = self.legs.get(id(call))
        if leg is None:
            return
        if isinstance(event, DtmfInfo):
            leg.info_digits.append(event.digit)
        leg.events.put_nowait(event)

    def flush(self) -> None:
        assert self.transport is not None
        self.transport.flush()

    async def dial(
        self, address: str, number: str = NUMBER, credentials: tuple[str, str] | None = None
    ) -> Leg:
        endpoint = await self.pool.open(allowed=lambda _host: True)
        offer = create_offer(address=LOOP, port=endpoint.port, session_id=1, version=1)
        call = self.ua.invite(
            f"sip:{number}@{address}", self.loop.time(), sdp=offer.encode(), display="voicebot",
            credentials=credentials,
        )  # fmt: skip
        leg = Leg(call, endpoint=endpoint)
        self.legs[id(call)] = leg
        self.flush()
        return leg

    async def answered(self, leg: Leg, timeout_s: float = 20.0) -> list[int]:
        """Wait for the answer and start the media; returns the provisional statuses seen."""
        provisional: list[int] = []
        while True:
            event = await leg.next_event(timeout_s)
            if isinstance(event, CallProgress):
                provisional.append(event.status)
            elif isinstance(event, CallAnswered):
                break
            elif isinstance(event, CallEnded):
                raise AssertionError(f"the call ended unanswered: {event.reason} {event.status}")
        params = parse_answer(leg.call.remote_sdp.decode(), (PCMU, PCMA), 101)
        assert leg.endpoint is not None
        leg.endpoint.start(params)
        leg.media_task = asyncio.create_task(self._media(leg, leg.endpoint))
        return provisional

    async def _media(self, leg: Leg, endpoint: RtpEndpoint) -> None:
        while True:
            event = await endpoint.events.get()
            if isinstance(event, AudioReceived):
                leg.frames.append(event.pcm16)
            elif isinstance(event, DtmfReceived):
                leg.digits.append(event.digit)

    async def ended(self, leg: Leg, timeout_s: float = 20.0) -> CallEnded:
        while True:
            event = await leg.next_event(timeout_s)
            if isinstance(event, CallEnded):
                return event

    def hangup(self, leg: Leg) -> None:
        self.ua.hangup(leg.call, self.loop.time())
        self.flush()

    async def response(
        self, method: str, status: int, call: Call | None = None, timeout_s: float = 10.0
    ) -> None:
        """Wait until a ``status`` response to ``method`` (in ``call``) has been received."""
        async with asyncio.timeout(timeout_s):
            while status not in self.ua.responses(method, call):
                await asyncio.sleep(0.02)


async def until(predicate: Callable[[], bool], timeout_s: float = 30.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():
            await asyncio.sleep(0.05)


@pytest_asyncio.fixture
async def uac() -> AsyncIterator[Uac]:
    agent = Uac()
    await agent.start()
    try:
        yield agent
    finally:
        await agent.close()


async def finished(callee: SippProcess, calls: int = 1) -> None:
    result = await callee.wait(15)
    assert result.successful == calls and result.failed == 0, result.explain()


def amd_verdict(pcm: bytes) -> AmdVerdict | None:
    detector = AnsweringMachineDetector(8000)
    for i in range(0, len(pcm), FRAME_BYTES):
        if (verdict := detector.feed(pcm[i : i + FRAME_BYTES])) is not None:
            return verdict
    return None


def sdp_answer_ok(leg: Leg) -> None:
    sdp = leg.call.remote_sdp.decode()
    assert "RTP/AVP 0 8 101" in sdp and "telephone-event/8000" in sdp, sdp


# --- people who answer -------------------------------------------------------------------------


async def talk(uac: Uac, callee: SippProcess, utterances: int, **kw: object) -> Leg:
    """Call, take the answer, listen until the callee has said ``utterances`` things, hang up."""
    leg = await uac.dial(callee.address, **kw)  # type: ignore[arg-type]
    provisional = await uac.answered(leg)
    assert 180 in provisional
    sdp_answer_ok(leg)
    await until(lambda: len(leg.utterances()) >= utterances)
    uac.hangup(leg)
    await uac.response("BYE", 200, leg.call)
    return leg


async def test_confirm(uac: Uac) -> None:
    async with sipp_uas(SCENARIOS / "uas_campaign_confirm.xml", calls=1, keys=SHORT) as callee:
        leg = await talk(uac, callee, 2)
        await finished(callee)
    hello, yes = leg.utterances()[:2]
    assert hello < 0.9 < yes  # "Hello?", then "Yes, I will come."
    assert amd_verdict(leg.pcm) is AmdVerdict.HUMAN


async def test_reschedule(uac: Uac) -> None:
    async with sipp_uas(SCENARIOS / "uas_campaign_reschedule.xml", calls=1, keys=SHORT) as callee:
        leg = await talk(uac, callee, 3)
        await finished(callee)
    hello, move_it, first_one = leg.utterances()[:3]
    assert hello < 0.9 and move_it > 1.5 and first_one > 0.9


async def test_survey_by_voice(uac: Uac) -> None:
    async with sipp_uas(SCENARIOS / "uas_campaign_survey_voice.xml", calls=1, keys=SHORT) as callee:
        leg = await talk(uac, callee, 4)
        await finished(callee)
    hello, four, yes, comment = leg.utterances()[:4]
    assert hello < 0.9 and four < 0.9 and yes > 0.8 and comment > 1.2
    assert not leg.digits


async def test_survey_by_keypad(uac: Uac) -> None:
    async with sipp_uas(SCENARIOS / "uas_campaign_survey_dtmf.xml", calls=1, keys=SHORT) as callee:
        leg = await talk(uac, callee, 2)  # "Hello?" ... "Nothing, thank you."
        await finished(callee)
    assert leg.digits == ["4", "1"]  # RFC 4733 telephone-events between the two
    assert not leg.info_digits
    hello, nothing = leg.utterances()[:2]
    assert hello < 0.9 < nothing


async def test_digest(uac: Uac) -> None:
    async with sipp_uas(SCENARIOS / "uas_campaign_digest.xml", calls=1, keys=SHORT) as callee:
        leg = await talk(uac, callee, 2, credentials=("voicebot", PASSWORD))
        await finished(callee)
        logged = callee.result().logs
    assert uac.ua.responses("INVITE")[:2] == [100, 407] and 200 in uac.ua.responses("INVITE")
    challenge = next(
        m for m in uac.ua.received if isinstance(m, SipResponse) and m.status == 407
    ).headers.get("Proxy-Authenticate")
    assert challenge is not None and 'realm="trunk"' in challenge
    # SIPp cannot check a Proxy-Authorization response: check the one it logged
    credentials = parse_credentials(logged.split("Proxy-Authorization: ", 1)[1].splitlines()[0])
    expected = digest_response(
        algorithm="MD5", method="INVITE", uri=credentials["uri"], nonce=credentials["nonce"],
        ha1=hashlib.md5(f"voicebot:trunk:{PASSWORD}".encode()).hexdigest(), qop=credentials["qop"],
        nc=credentials["nc"], cnonce=credentials["cnonce"],
    )  # fmt: skip
    assert credentials["response"] == expected
    assert len(leg.utterances()) >= 2


async def test_digest_with_the_wrong_user_is_forbidden(uac: Uac) -> None:
    async with sipp_uas(SCENARIOS / "uas_campaign_digest.xml", calls=1, keys=SHORT) as callee:
        leg = await uac.dial(callee.address, credentials=("mallory", PASSWORD))
        ended = await uac.ended(leg)
        result = await callee.wait(15)
    assert (ended.reason, ended.status) == ("rejected", 403)
    assert result.failed == 1, result.explain()


# --- nobody to talk to -------------------------------------------------------------------------


async def test_busy(uac: Uac) -> None:
    async with sipp_uas(SCENARIOS / "uas_campaign_busy.xml", calls=1) as callee:
        leg = await uac.dial(callee.address)
        ended = await uac.ended(leg)
        await finished(callee)  # it got the ACK
    assert (ended.reason, ended.status) == ("rejected", 486)


async def test_no_answer_until_cancelled(uac: Uac) -> None:
    async with sipp_uas(SCENARIOS / "uas_campaign_no_answer.xml", calls=1) as callee:
        leg = await uac.dial(callee.address)
        progress = await leg.next_event()
        assert isinstance(progress, CallProgress) and progress.status == 180
        uac.hangup(leg)  # the dialer's ring timeout: CANCEL
        await uac.response("CANCEL", 200)
        await uac.response("INVITE", 487)
        await finished(callee)  # it got the ACK for the 487
    assert uac.ua.responses("INVITE") == [100, 180, 487]


async def test_no_answer_gives_up_without_a_cancel(uac: Uac) -> None:
    keys = {"cancel_wait_ms": "1000"}
    async with sipp_uas(SCENARIOS / "uas_campaign_no_answer.xml", calls=1, keys=keys) as callee:
        leg = await uac.dial(callee.address)
        ended = await uac.ended(leg)
        await finished(callee)
    assert (ended.reason, ended.status) == ("rejected", 480)


async def test_voicemail(uac: Uac) -> None:
    async with sipp_uas(SCENARIOS / "uas_campaign_voicemail.xml", calls=1, keys=SHORT) as callee:
        leg = await uac.dial(callee.address)
        await uac.answered(leg)
        beep, heard_beep = beep_watch(leg)
        await until(heard_beep)
        at_beep = sum(leg.voiced())
        uac.hangup(leg)  # (the bot would leave its message here)
        await uac.response("BYE", 200)
        await finished(callee)
    assert amd_verdict(leg.pcm) is AmdVerdict.MACHINE
    assert at_beep * 0.02 > 3.0  # several seconds of greeting before the tone
    assert beep.frequency_hz is not None and abs(beep.frequency_hz - 1000) < 20
    assert beep.duration_s is not None and 0.35 < beep.duration_s < 0.65


def beep_watch(leg: Leg) -> tuple[BeepDetector, Callable[[], bool]]:
    """A beep detector and a function that feeds it the frames received since its last call and
    says whether a beep has ended."""
    detector = BeepDetector(8000)
    fed = 0

    def heard() -> bool:
        nonlocal fed
        new = leg.frames[fed:]
        fed += len(new)
        return detector.feed(b"".join(new))

    return detector, heard


# --- the benchmark's callees: behaviour by the number's last digit ---------------------------------


async def bench_call(uac: Uac, address: str, digit: int, *, hang_up_first: bool = False) -> str:
    """Place one call to a number ending in ``digit`` and play the dialer's part (``hang_up_first``:
    hang up on a person at once); returns what the called party did."""
    leg = await uac.dial(address, f"+3864011100{digit}")
    call = leg.call
    if digit in (4, 5, 9):
        ended = await uac.ended(leg)
        assert ended.reason == "rejected", ended
        return {486: "busy", 603: "declined"}[ended.status or 0]
    if digit in (6, 7):
        while not isinstance(event := await leg.next_event(), CallProgress):
            assert not isinstance(event, CallEnded | CallAnswered), event
        assert event.status == 180
        uac.hangup(leg)  # ring timeout
        await uac.response("CANCEL", 200, call)
        await uac.response("INVITE", 487, call)
        return "no answer"
    await uac.answered(leg)
    sdp_answer_ok(leg)
    if digit == 8:
        _, heard_beep = beep_watch(leg)
        await until(heard_beep)
        assert amd_verdict(leg.pcm) is AmdVerdict.MACHINE
        uac.hangup(leg)  # after the bot's message
        await uac.response("BYE", 200, call)
        return "voicemail"
    if hang_up_first:
        uac.hangup(leg)
        await uac.response("BYE", 200, call)
        return "hung up on"
    ended = await uac.ended(leg)  # the person hangs up after "Hello?"
    assert ended.reason == "remote_bye", ended
    assert len(leg.utterances()) == 1 and amd_verdict(leg.pcm) is AmdVerdict.HUMAN
    return "hung up after hello"


async def test_bench_callees_by_last_digit(uac: Uac) -> None:
    digits = [0, 4, 6, 8, 9, 3, 5, 7, 1, 2]
    async with sipp_uas(BENCH) as callee:
        outcomes = await asyncio.gather(
            *(bench_call(uac, callee.address, d, hang_up_first=d == 2) for d in digits)
        )
        result = await callee.stop()
    assert outcomes == [
        "hung up after hello", "busy", "no answer", "voicemail", "declined",
        "hung up after hello", "busy", "no answer", "hung up after hello", "hung up on",
    ]  # fmt: skip
    assert result.successful == len(digits) and result.failed == 0, result.explain()


async def test_bench_callees_many_at_once(uac: Uac) -> None:
    digits = [d for d in range(10) for _ in range(3)]
    async with sipp_uas(BENCH, calls=len(digits)) as callee:
        outcomes = await asyncio.gather(*(bench_call(uac, callee.address, d) for d in digits))
        result = await callee.wait(15)
    assert outcomes.count("hung up after hello") == 12 and outcomes.count("voicemail") == 3
    assert result.successful == len(digits) and result.failed == 0, result.explain()
