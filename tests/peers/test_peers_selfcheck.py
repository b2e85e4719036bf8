"""The SIP test peers work without voicebot's SIP server.

SIPp UAC scenarios run against SIPp UAS (built-in ``-sn uas`` and the uas_answer scenario) and a small
scripted UAS below (built on voicebot.sip.message and voicebot.sip.auth) that plays each role the bot
will play: answer, ring until cancelled, refuse with 503, challenge, hold, transfer, hang up. baresip
calls a SIPp UAS and records what it hears. Only 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import itertools
import struct
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import pytest
import pytest_asyncio

from tests.peers.baresip import Baresip, baresip_available, read_wav_pcm16
from tests.peers.sipp import SCENARIOS, SippResult, run_sipp, sipp_available, sipp_uas
from voicebot.sip import Headers, SipRequest, SipResponse, parse_message
from voicebot.sip.auth import DigestChallenger

pytestmark = pytest.mark.skipif(not sipp_available(), reason="sipp (Debian sip-tester) is not installed")
AUDIO = SCENARIOS / "caller_question_ulaw.wav"
LOOP = "127.0.0.1"


class StubUas(asyncio.DatagramProtocol):
    """A scripted UAS on 127.0.0.1 (UDP) with one RTP socket that counts what it receives."""

    def __init__(self, mode: str, *, challenge_status: int = 401) -> None:
        self.mode, self.challenge_status = mode, challenge_status
        self.transport: asyncio.DatagramTransport | None = None
        self.received: list[SipRequest | SipResponse] = []
        self.rtp_packets: list[bytes] = []
        self.auth = DigestChallenger("voicebot-test", b"selfcheck-secret")
        self.cseq = itertools.count(1)
        self.port = self.rtp_port = 0
        self.tasks: set[asyncio.Task[None]] = set()
        self.loop = asyncio.get_running_loop()

    # --- plumbing --------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        message = parse_message(data)
        self.received.append(message)
        if isinstance(message, SipRequest):
            self.on_request(message, addr)

    def send(self, message: SipRequest | SipResponse, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(bytes(message), addr)

    def later(self, delay: float, fn: object, *args: object) -> None:
        async def run() -> None:
            await asyncio.sleep(delay)
            fn(*args)  # type: ignore[operator]

        task = asyncio.create_task(run())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def response(self, req: SipRequest, status: int, reason: str, *extra: tuple[str, str]) -> SipResponse:
        h = Headers()
        for v in req.headers.get_all("Via"):
            h.add("Via", v)
        h.add("From", req.headers.get("From") or "")
        to = req.headers.get("To") or ""
        h.add("To", to if ";tag=" in to or status == 100 else to + ";tag=stub1")
        h.add("Call-ID", req.call_id)
        h.add("CSeq", str(req.cseq))
        for name, value in extra:
            h.add(name, value)
        return SipResponse(status, reason, h)

    def sdp(self, offer: bytes) -> bytes:
        direction = "sendrecv"
        if b"a=sendonly" in offer:
            direction = "recvonly"
        elif b"a=recvonly" in offer:
            direction = "sendonly"
        return (
            f"v=0\r\no=stub 1 1 IN IP4 {LOOP}\r\ns=-\r\nc=IN IP4 {LOOP}\r\nt=0 0\r\n"
            f"m=audio {self.rtp_port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
            f"a=rtpmap:101 telephone-event/8000\r\na={direction}\r\n"
        ).encode()

    def answer(self, req: SipRequest, addr: tuple[str, int]) -> None:
        ok = self.response(req, 200, "OK", ("Contact", f"<sip:stub@{LOOP}:{self.port}>"))
        ok.headers.add("Content-Type", "application/sdp")
        ok.body = self.sdp(req.body)
        self.send(ok, addr)

    def in_dialog(
        self, invite: SipRequest, method: str, *extra: tuple[str, str], body: bytes = b""
    ) -> SipRequest:
        contact = (invite.headers.get("Contact") or "").strip("<>")
        h = Headers()
        h.add("Via", f"SIP/2.0/UDP {LOOP}:{self.port};branch=z9hG4bKstub{next(self.cseq)}{method}")
        h.add("From", (invite.headers.get("To") or "") + ";tag=stub1")
        h.add("To", invite.headers.get("From") or "")
        h.add("Call-ID", invite.call_id)
        h.add("CSeq", f"{next(self.cseq)} {method}")
        h.add("Max-Forwards", "70")
        for name, value in extra:
            h.add(name, value)
        return SipRequest(method, contact.split(";")[0], h, body)

    # --- behaviour -------------------------------------------------------------------------------

    def on_request(self, req: SipRequest, addr: tuple[str, int]) -> None:
        method = req.method
        if method == "OPTIONS":
            self.send(
                self.response(req, 200, "OK", ("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS, REFER, NOTIFY")),
                addr,
            )
        elif method == "INVITE" and req.to_tag:  # re-INVITE
            self.answer(req, addr)
        elif method == "INVITE":
            self.invite = req
            self.send(self.response(req, 100, "Trying"), addr)
            if self.mode == "busy":
                self.send(self.response(req, 503, "Service Unavailable", ("Retry-After", "30")), addr)
                return
            if self.mode == "digest":
                header = "Authorization" if self.challenge_status == 401 else "Proxy-Authorization"
                credentials = req.headers.get(header)
                if credentials is None:
                    name = "WWW-Authenticate" if self.challenge_status == 401 else "Proxy-Authenticate"
                    challenge = self.auth.challenge(self.loop.time())
                    self.send(
                        self.response(req, self.challenge_status, "Unauthorized", (name, challenge)), addr
                    )
                    return
                result = self.auth.verify(
                    credentials, method="INVITE", now=self.loop.time(), uri=req.uri,
                    lookup={"alice": "wonderland"}.get,
                )  # fmt: skip
                if not result.ok:
                    self.send(self.response(req, 403, "Forbidden"), addr)
                    return
            self.send(self.response(req, 180, "Ringing"), addr)
            if self.mode != "ring":
                self.later(0.05, self.answer, req, addr)
        elif method == "CANCEL":
            self.send(self.response(req, 200, "OK"), addr)
            self.send(self.response(self.invite, 487, "Request Terminated"), addr)
        elif method == "ACK" and req.cseq.number == 1:
            if self.mode == "refer":
                refer = self.in_dialog(
                    self.invite, "REFER", ("Refer-To", f"<sip:agent@{LOOP}:5999>"),
                    ("Referred-By", f"<sip:stub@{LOOP}>"),
                )  # fmt: skip
                self.later(0.3, self.send, refer, addr)
            elif self.mode == "bye":
                self.later(0.5, self.send, self.in_dialog(self.invite, "BYE"), addr)
        elif method == "NOTIFY":
            self.send(self.response(req, 200, "OK"), addr)
            self.later(0.1, self.send, self.in_dialog(self.invite, "BYE"), addr)
        elif method == "BYE":
            self.send(self.response(req, 200, "OK"), addr)

    def requests(self, method: str) -> list[SipRequest]:
        return [m for m in self.received if isinstance(m, SipRequest) and m.method == method]


class _Rtp(asyncio.DatagramProtocol):
    def __init__(self, sink: list[bytes]) -> None:
        self.sink = sink

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.sink.append(data)


@pytest_asyncio.fixture
async def stub() -> AsyncIterator[object]:
    loop = asyncio.get_running_loop()
    made: list[tuple[asyncio.BaseTransport, StubUas]] = []

    async def start(mode: str, **kw: int) -> StubUas:
        uas = StubUas(mode, **kw)
        sip, _ = await loop.create_datagram_endpoint(lambda: uas, local_addr=(LOOP, 0))
        rtp, _ = await loop.create_datagram_endpoint(lambda: _Rtp(uas.rtp_packets), local_addr=(LOOP, 0))
        uas.port = sip.get_extra_info("sockname")[1]
        uas.rtp_port = rtp.get_extra_info("sockname")[1]
        made.append((sip, uas))
        made.append((rtp, uas))
        return uas

    yield start
    for transport, uas in made:
        transport.close()
        for task in list(uas.tasks):
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def check(result: SippResult) -> None:
    assert result.ok, result.explain()


# --- SIPp against SIPp -------------------------------------------------------------------------


@pytest.mark.slow
async def test_uac_basic_against_sipp_builtin_uas() -> None:
    async with sipp_uas("uas") as uas:
        started = asyncio.get_running_loop().time()
        result = await run_sipp(
            SCENARIOS / "uac_basic.xml",
            uas.address,
            calls=2,
            concurrency=2,
            rate=10,
            keys={"pause_ms": "1000"},
        )
        elapsed = asyncio.get_running_loop().time() - started
    check(result)
    assert elapsed < 6, "the pause_ms key did not shorten the call"
    assert result.successful == 2
    assert len(result.rtt("1")) == 2 and all(0 <= t < 2000 for t in result.rtt("1")), result.rtts_ms


@pytest.mark.slow
async def test_uac_basic_against_uas_answer_over_tcp() -> None:
    async with sipp_uas(SCENARIOS / "uas_answer.xml", transport="t1") as uas:
        result = await run_sipp(SCENARIOS / "uac_basic.xml", uas.address, transport="t1")
        uas_result = await uas.wait(15)
    check(result)
    assert result.rtt("1")[0] >= 400  # uas_answer rings for 0.5 s before answering
    assert uas_result.successful == 1, uas_result.explain()


async def test_failure_is_reported_with_logs() -> None:
    async with sipp_uas("uas") as uas:  # the built-in UAS does not answer OPTIONS
        result = await run_sipp(SCENARIOS / "uac_options.xml", uas.address, timeout_s=5)
    assert not result.ok
    assert "OPTIONS" in result.explain()


# --- SIPp against the scripted UAS --------------------------------------------------------------


def target(uas: StubUas) -> str:
    return f"{LOOP}:{uas.port}"


async def test_options(stub) -> None:  # type: ignore[no-untyped-def]
    uas = await stub("answer")
    result = await run_sipp(SCENARIOS / "uac_options.xml", target(uas), calls=3, rate=50)
    check(result)
    assert result.successful == 3 and len(result.rtt("1")) == 3
    assert uas.requests("OPTIONS")[0].uri.startswith("sip:voicebot@127.0.0.1")


async def test_busy_needs_retry_after(stub) -> None:  # type: ignore[no-untyped-def]
    uas = await stub("busy")
    result = await run_sipp(SCENARIOS / "uac_busy.xml", target(uas))
    check(result)
    ack = uas.requests("ACK")[0]
    assert ack.top_via.branch == uas.requests("INVITE")[0].top_via.branch
    assert "Retry-After: 30" in result.logs


async def test_cancel(stub) -> None:  # type: ignore[no-untyped-def]
    uas = await stub("ring")
    result = await run_sipp(SCENARIOS / "uac_cancel.xml", target(uas))
    check(result)
    invite, cancel, ack = uas.requests("INVITE")[0], uas.requests("CANCEL")[0], uas.requests("ACK")[0]
    assert cancel.top_via.branch == invite.top_via.branch == ack.top_via.branch
    assert ack.to_tag == "stub1"


@pytest.mark.slow
@pytest.mark.parametrize("status", [401, 407])
async def test_digest(stub, status: int) -> None:  # type: ignore[no-untyped-def]
    uas = await stub("digest", challenge_status=status)
    result = await run_sipp(SCENARIOS / "uac_digest.xml", target(uas), auth=("alice", "wonderland"))
    check(result)
    invites = uas.requests("INVITE")
    assert len(invites) == 2 and invites[0].call_id == invites[1].call_id
    header = "Authorization" if status == 401 else "Proxy-Authorization"
    assert invites[1].headers.get(header), invites[1]
    assert len(uas.requests("BYE")) == 1


@pytest.mark.slow
async def test_digest_wrong_password_fails(stub) -> None:  # type: ignore[no-untyped-def]
    uas = await stub("digest")
    result = await run_sipp(SCENARIOS / "uac_digest.xml", target(uas), auth=("alice", "nope"), timeout_s=5)
    assert not result.ok and "403" in result.explain()


@pytest.mark.slow
async def test_basic_sends_caller_audio(stub) -> None:  # type: ignore[no-untyped-def]
    uas = await stub("answer")
    result = await run_sipp(SCENARIOS / "uac_basic.xml", target(uas))
    check(result)
    audio = [p for p in uas.rtp_packets if len(p) > 12 and p[1] & 0x7F == 0]
    assert len(audio) >= 250, len(uas.rtp_packets)  # 5.3 s of 20 ms PCMU packets
    assert all(len(p) == 172 for p in audio)


@pytest.mark.slow
async def test_dtmf_pcap(stub) -> None:  # type: ignore[no-untyped-def]
    uas = await stub("answer")
    result = await run_sipp(SCENARIOS / "uac_dtmf.xml", target(uas))
    check(result)
    events = [p for p in uas.rtp_packets if len(p) >= 16 and p[1] & 0x7F == 101]
    assert events, f"{len(uas.rtp_packets)} RTP packets, none telephone-event"
    assert {struct.unpack("!B", p[12:13])[0] for p in events} == {1}


@pytest.mark.slow
async def test_reinvite_hold(stub) -> None:  # type: ignore[no-untyped-def]
    uas = await stub("answer")
    result = await run_sipp(SCENARIOS / "uac_reinvite_hold.xml", target(uas))
    check(result)
    invites = uas.requests("INVITE")
    assert [i.cseq.number for i in invites] == [1, 2, 3]
    assert b"a=sendonly" in invites[1].body and invites[2].to_tag == "stub1"


@pytest.mark.slow
async def test_reinvite_hold_fails_when_hold_is_not_answered(stub) -> None:  # type: ignore[no-untyped-def]
    uas = await stub("answer")
    uas.sdp = lambda offer: StubUas.sdp(uas, offer.replace(b"a=sendonly", b"a=sendrecv"))  # type: ignore[method-assign]
    result = await run_sipp(SCENARIOS / "uac_reinvite_hold.xml", target(uas), timeout_s=10)
    assert not result.ok


@pytest.mark.slow
async def test_refer(stub) -> None:  # type: ignore[no-untyped-def]
    uas = await stub("refer")
    result = await run_sipp(SCENARIOS / "uac_refer.xml", target(uas))
    check(result)
    assert "Refer-To: <sip:agent@127.0.0.1:5999>" in result.logs
    notify = uas.requests("NOTIFY")[0]
    assert notify.body.startswith(b"SIP/2.0 200 OK")
    assert notify.headers.get("Event") == "refer" and notify.to_tag == "stub1"
    assert any(isinstance(m, SipResponse) and m.status == 202 for m in uas.received)


@pytest.mark.slow
async def test_bye_from_bot(stub) -> None:  # type: ignore[no-untyped-def]
    uas = await stub("bye")
    result = await run_sipp(SCENARIOS / "uac_bye_from_bot.xml", target(uas))
    check(result)
    assert any(isinstance(m, SipResponse) and m.cseq.method == "BYE" for m in uas.received)


# --- baresip ------------------------------------------------------------------------------------


def rms(pcm: bytes) -> float:
    samples = struct.unpack(f"<{len(pcm) // 2}h", pcm[: len(pcm) // 2 * 2])
    return (sum(s * s for s in samples) / max(1, len(samples))) ** 0.5


@pytest.mark.slow
@pytest.mark.skipif(not baresip_available(), reason="baresip (baresip-core) is not installed")
async def test_baresip_calls_sipp_uas_and_records(tmp_path: Path) -> None:
    async with sipp_uas(SCENARIOS / "uas_answer.xml") as uas:
        async with Baresip(AUDIO, listen_s=1.0, record_dir=tmp_path) as phone:
            await phone.dial(f"sip:voicebot@{uas.address}")
            await phone.wait_established(10)
            reason = await phone.wait_closed(20)  # baresip hangs up when its microphone file ends
        uas_result = await uas.wait(10)
    assert "terminated" in reason
    assert uas_result.successful == 1, uas_result.explain()
    heard = phone.recording
    assert heard is not None and heard.exists(), list(tmp_path.iterdir())
    with wave.open(str(heard)) as w:
        assert w.getframerate() == 8000 and w.getnframes() > 8000 * 3
    pcm, _ = read_wav_pcm16(heard)
    assert rms(pcm) > 300  # SIPp's streamed question, not silence
