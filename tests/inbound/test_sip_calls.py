"""SIP calls end to end against real SIP peers (SIPp) on 127.0.0.1: every scenario in tests/data/sipp
is run against a SipServer with fake speech, and what the bot did is checked on our side too."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest

from tests.auth_helpers import staff_client
from tests.fakes.speech import FakeSpeech
from tests.peers.sipp import run_sipp, sipp_available

SCENARIOS = Path(__file__).resolve().parents[1] / "data" / "sipp"
pytestmark = [
    pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.slow,
    pytest.mark.skipif(not sipp_available(), reason="SIPp (Debian sip-tester) is not installed"),
]


async def call_record(url: str, runtime: Any) -> dict[str, Any]:
    """The newest SIP call record, read over the API (written as the call winds down)."""
    for _ in range(100):
        rows = await runtime.audit.recent_actions(runtime.tenant.id, "voice.sip_call", 10)
        if rows:
            break
        await asyncio.sleep(0.05)
    assert rows, "no SIP call was recorded"
    async with await staff_client(url, runtime) as http:
        record = (await http.get(f"/v1/voice/conversations/{rows[0].conversation_id}/call")).json()
    return dict(record["sip"])


async def settled(server: Any, timeout: float = 5.0) -> dict[str, int]:
    """The server's counters once its calls have wound down (BYE/ACK exchanges finish async)."""
    for _ in range(int(timeout / 0.05)):
        status = server.status()
        if status["calls"] == 0 and status["rtp_ports_in_use"] == 0:
            return dict(status)
        await asyncio.sleep(0.05)
    return dict(server.status())


async def test_basic_call_with_caller_speech_is_answered_and_recorded(sip_server: Any) -> None:
    speech = FakeSpeech(["What are your opening hours?"])
    server, runtime, url = await sip_server(speech=speech)
    result = await run_sipp(
        SCENARIOS / "uac_basic.xml", f"127.0.0.1:{server.port}", keys={"pause_ms": "7000"}
    )
    assert result.ok, result.explain()
    assert speech.segments, "the caller's RTP audio never reached STT"
    assert any("open" in s.lower() for s in speech.spoken), speech.spoken
    record = await call_record(url, runtime)
    assert record["hangup_reason"] == "remote_bye" and record["transport"] == "udp"
    assert record["sip_call_id"] and "sipp" in record["from"]
    assert record["rtp"]["packets_received"] > 100 and record["rtp"]["packets_sent"] > 10
    status = await settled(server)
    assert status["calls"] == 0 and status["rtp_ports_in_use"] == 0


async def test_call_over_tcp(sip_server: Any) -> None:
    speech = FakeSpeech(["What are your opening hours?"])
    server, runtime, url = await sip_server(speech=speech)
    result = await run_sipp(
        SCENARIOS / "uac_basic.xml", f"127.0.0.1:{server.port}", transport="t1", keys={"pause_ms": "7000"}
    )
    assert result.ok, result.explain()
    record = await call_record(url, runtime)
    assert record["transport"] == "tcp" and record["hangup_reason"] == "remote_bye"
    assert (await settled(server))["calls"] == 0


async def test_cancel_while_ringing(sip_server: Any) -> None:
    server, _, _ = await sip_server(sip={"ring_secs": 5.0})
    result = await run_sipp(SCENARIOS / "uac_cancel.xml", f"127.0.0.1:{server.port}")
    assert result.ok, result.explain()
    status = await settled(server)
    assert status["calls"] == 0 and status["rtp_ports_in_use"] == 0


async def test_hold_and_resume_with_reinvite(sip_server: Any) -> None:
    server, _, _ = await sip_server()
    result = await run_sipp(SCENARIOS / "uac_reinvite_hold.xml", f"127.0.0.1:{server.port}")
    assert result.ok, result.explain()
    assert (await settled(server))["calls"] == 0


async def test_handoff_is_a_blind_transfer_with_refer(sip_server: Any) -> None:
    speech = FakeSpeech(["I want to talk to a human"])
    server, runtime, url = await sip_server(speech=speech)
    result = await run_sipp(SCENARIOS / "uac_refer.xml", f"127.0.0.1:{server.port}")
    assert result.ok, result.explain()
    assert "sip:+38640999000@127.0.0.1:5080" in result.messages
    record = await call_record(url, runtime)
    assert record["hangup_reason"] == "transferred" and record["outcome"] == "transferred"


async def test_digest_authentication_for_inbound_calls(
    sip_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOICEBOT_TEST_SIP_PASSWORD", "s3cret")
    server, _, _ = await sip_server(sip={"digest_users": {"alice": "VOICEBOT_TEST_SIP_PASSWORD"}})
    target = f"127.0.0.1:{server.port}"
    good = await run_sipp(
        SCENARIOS / "uac_digest.xml", target, auth=("alice", "s3cret"), keys={"pause_ms": "500"}
    )
    assert good.ok, good.explain()
    bad = await run_sipp(SCENARIOS / "uac_digest.xml", target, auth=("alice", "wrong"), timeout_s=15)
    assert not bad.ok
    assert (await settled(server))["calls"] == 0


async def test_rfc4733_dtmf_reaches_the_dialogue(sip_server: Any) -> None:
    speech = FakeSpeech()
    server, _, _ = await sip_server(speech=speech, dtmf_menu={"1": {"en": "Where is my order?"}})
    result = await run_sipp(SCENARIOS / "uac_dtmf.xml", f"127.0.0.1:{server.port}")
    assert result.ok, result.explain()
    # key 1 says "Where is my order?" for the caller: order status asks who is calling first
    assert len(speech.spoken) >= 2 and "account" in speech.spoken[1], speech.spoken


async def test_options_keepalive(sip_server: Any) -> None:
    server, _, _ = await sip_server()
    result = await run_sipp(SCENARIOS / "uac_options.xml", f"127.0.0.1:{server.port}")
    assert result.ok, result.explain()


async def test_503_with_retry_after_when_every_line_is_busy(sip_server: Any) -> None:
    server, _, _ = await sip_server(max_calls=1)
    target = f"127.0.0.1:{server.port}"
    first = asyncio.create_task(run_sipp(SCENARIOS / "uac_basic.xml", target, keys={"pause_ms": "4000"}))
    for _ in range(200):
        if server.status()["calls"]:
            break
        await asyncio.sleep(0.05)
    busy = await run_sipp(SCENARIOS / "uac_busy.xml", target)
    assert busy.ok, busy.explain()
    assert (await first).ok


async def test_the_bot_hangs_up_with_bye(sip_server: Any) -> None:
    server, runtime, url = await sip_server(silence_prompt_secs=1.0, silence_prompts=0)
    result = await run_sipp(SCENARIOS / "uac_bye_from_bot.xml", f"127.0.0.1:{server.port}")
    assert result.ok, result.explain()
    record = await call_record(url, runtime)
    assert record["hangup_reason"] == "bot_hangup"


def exchange(port: int, data: bytes) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5)
        sock.sendto(data, ("127.0.0.1", port))
        return sock.recv(65535)


def invite(sdp: str, branch: str) -> bytes:
    body = sdp.replace("\n", "\r\n").encode()
    head = (
        "INVITE sip:bot@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK{branch}\r\n"
        "From: <sip:raw@127.0.0.1>;tag=r1\r\nTo: <sip:bot@127.0.0.1>\r\n"
        f"Call-ID: raw-{branch}\r\nCSeq: 1 INVITE\r\nContact: <sip:raw@127.0.0.1:5999>\r\n"
        f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def first_final(port: int, data: bytes) -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5)
        sock.sendto(data, ("127.0.0.1", port))
        while True:
            line = sock.recv(65535).split(b"\r\n", 1)[0].decode()
            if not line.startswith("SIP/2.0 1"):
                return line


G729_ONLY = "v=0\no=- 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio 40000 RTP/AVP 18\n"
FOREIGN_MEDIA = "v=0\no=- 1 1 IN IP4 127.0.0.1\ns=-\nc=IN IP4 192.0.2.10\nt=0 0\nm=audio 40000 RTP/AVP 0\n"


async def test_refusals_over_the_wire(sip_server: Any) -> None:
    server, _, _ = await sip_server()
    port = server.port
    assert (await asyncio.to_thread(first_final, port, invite(G729_ONLY, "g729"))).startswith("SIP/2.0 488")
    # media may only go to allowed networks: 192.0.2.10 is refused, and nothing is sent there
    assert (await asyncio.to_thread(first_final, port, invite(FOREIGN_MEDIA, "foreign"))).startswith(
        "SIP/2.0 488"
    )
    garbage = await asyncio.to_thread(
        exchange, port, invite(G729_ONLY, "bad").replace(b"CSeq: 1 INVITE", b"CSeq: x")
    )
    assert garbage.startswith(b"SIP/2.0 400")
    assert (await settled(server))["calls"] == 0


async def test_callers_outside_the_allowed_networks_are_refused(sip_server: Any) -> None:
    server, _, _ = await sip_server(sip={"allowed_networks": ["10.0.0.0/8"]})
    reply = await asyncio.to_thread(first_final, server.port, invite(G729_ONLY, "acl"))
    assert reply.startswith("SIP/2.0 403")


async def test_warm_transfer_calls_the_agent_briefs_them_then_bridges(sip_server: Any) -> None:
    from tests.peers.sipp import sipp_uas

    speech = FakeSpeech(["I want to talk to a human"])
    async with sipp_uas(SCENARIOS / "uas_answer.xml", calls=1) as agent:
        server, runtime, url = await sip_server(
            speech=speech, sip={"transfer_mode": "warm", "transfer_uri": f"sip:{{number}}@{agent.address}"}
        )
        caller = await run_sipp(
            SCENARIOS / "uac_basic.xml", f"127.0.0.1:{server.port}", keys={"pause_ms": "9000"}
        )
        assert caller.ok, caller.explain()
        agent_result = await agent.stop()
    assert agent_result.successful == 1, agent_result.explain()
    briefing = next(s for s in speech.spoken if s.startswith("Incoming transfer"))
    assert "Connecting you now" in briefing
    record = await call_record(url, runtime)
    assert record["outcome"] == "transferred"
    status = await settled(server)
    assert status["calls"] == 0 and status["rtp_ports_in_use"] == 0


async def test_late_offer_invite_without_sdp_gets_our_offer_and_the_ack_answers(sip_server: Any) -> None:
    server, _, _ = await sip_server()
    loop = asyncio.get_running_loop()

    def call() -> tuple[str, str]:
        with (
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock,
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as media,
        ):
            sock.bind(("127.0.0.1", 0))
            media.bind(("127.0.0.1", 0))
            sock.settimeout(5)
            media.settimeout(5)
            port, media_port = sock.getsockname()[1], media.getsockname()[1]
            head = (
                f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKlate1\r\n"
                "From: <sip:late@127.0.0.1>;tag=l1\r\nTo: <sip:bot@127.0.0.1>\r\nCall-ID: late-offer-1\r\n"
            )
            sock.sendto(
                (
                    f"INVITE sip:bot@127.0.0.1 SIP/2.0\r\n{head}CSeq: 1 INVITE\r\n"
                    f"Contact: <sip:late@127.0.0.1:{port}>\r\nContent-Length: 0\r\n\r\n"
                ).encode(),
                ("127.0.0.1", server.port),
            )
            while True:
                reply = sock.recv(65535).decode()
                if reply.startswith("SIP/2.0 200"):
                    break
            offer = reply.split("\r\n\r\n", 1)[1]
            tag = reply.split("To: ", 1)[1].split("tag=", 1)[1].split("\r\n", 1)[0]
            answer = (
                f"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                f"m=audio {media_port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
            )
            dialog = head.replace("branch=z9hG4bKlate1", "branch=z9hG4bKlate2").replace(
                "To: <sip:bot@127.0.0.1>", f"To: <sip:bot@127.0.0.1>;tag={tag}"
            )
            sock.sendto(
                (
                    f"ACK sip:voicebot@127.0.0.1:{server.port} SIP/2.0\r\n{dialog}CSeq: 1 ACK\r\n"
                    f"Content-Type: application/sdp\r\nContent-Length: {len(answer)}\r\n\r\n{answer}"
                ).encode(),
                ("127.0.0.1", server.port),
            )
            media.recv(2048)  # the bot's greeting arrives at the address of our answer
            bye = dialog.replace("branch=z9hG4bKlate2", "branch=z9hG4bKlate3")
            sock.sendto(
                (
                    f"BYE sip:voicebot@127.0.0.1:{server.port} SIP/2.0\r\n{bye}"
                    "CSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
                ).encode(),
                ("127.0.0.1", server.port),
            )
            return offer, sock.recv(65535).decode().split("\r\n", 1)[0]

    offer, bye_status = await loop.run_in_executor(None, call)
    assert "m=audio" in offer and "PCMU" in offer
    assert bye_status == "SIP/2.0 200 OK"
    assert (await settled(server))["calls"] == 0


@pytest.mark.parametrize(("password", "state"), [("pw", "registered"), ("wrong", "failed")])
async def test_trunk_registration_with_digest(
    sip_server: Any, monkeypatch: pytest.MonkeyPatch, password: str, state: str
) -> None:
    from tests.peers.sipp import sipp_uas

    monkeypatch.setenv("VOICEBOT_TEST_TRUNK_PASSWORD", password)
    keys = {"user": "bot", "password": "pw", "expires": "120"}
    async with sipp_uas(SCENARIOS / "uas_registrar.xml", calls=1, keys=keys) as registrar:
        trunk = {
            "registrar": f"sip:{registrar.address}",
            "aor": "sip:reception@127.0.0.1",
            "username": "bot",
            "password_env": "VOICEBOT_TEST_TRUNK_PASSWORD",
            "expires": 120,
        }
        server, _, _ = await sip_server(sip={"trunk": trunk})
        for _ in range(200):
            regs = server.ua._registrations
            if regs and regs[0].state.value in ("registered", "failed"):
                break
            await asyncio.sleep(0.05)
        reg = server.ua._registrations[0]
        assert reg.state.value == state
        if state == "registered":
            assert reg.granted == 120 and reg.refresh_at is not None


async def test_rtp_timeout_hangs_up(sip_server: Any) -> None:
    # the caller's audio stops after its question; with no RTP for 1.5 s the bot hangs up
    server, runtime, url = await sip_server(sip={"rtp_timeout_secs": 1.5}, silence_prompt_secs=60.0)
    result = await run_sipp(SCENARIOS / "uac_bye_from_bot.xml", f"127.0.0.1:{server.port}")
    assert result.ok, result.explain()
    record = await call_record(url, runtime)
    assert record["hangup_reason"] == "rtp_timeout"
    assert (await settled(server))["rtp_ports_in_use"] == 0


async def test_baresip_softphone_calls_the_bot_and_hears_it(sip_server: Any, tmp_path: Path) -> None:
    import numpy as np

    from tests.fakes.speech import TONE_HZ
    from tests.peers.baresip import Baresip, baresip_available, read_wav_pcm16

    if not baresip_available():
        pytest.skip("baresip (Debian baresip-core) is not installed")
    speech = FakeSpeech(["What are your opening hours?"])
    server, runtime, url = await sip_server(speech=speech)
    async with Baresip(SCENARIOS / "caller_question_ulaw.wav", listen_s=4.0, record_dir=tmp_path) as phone:
        await phone.dial(f"sip:reception@127.0.0.1:{server.port}")
        await phone.wait_established(10)
        await phone.wait_closed(40)  # baresip hangs up when its microphone file ends
    heard = phone.recording
    assert heard is not None and heard.exists(), list(tmp_path.iterdir())
    pcm, rate = read_wav_pcm16(heard)
    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float32)
    # the fake TTS speaks a 300 Hz tone: the softphone must have heard it (greeting and answer)
    spectrum = np.abs(np.fft.rfft(samples))
    freqs = np.fft.rfftfreq(samples.size, 1 / rate)
    peak = freqs[np.argmax(spectrum[freqs > 100]) + np.count_nonzero(freqs <= 100)]
    assert abs(peak - TONE_HZ) < 10, peak
    assert len(speech.spoken) >= 2 and "open" in speech.spoken[1].lower(), speech.spoken
    record = await call_record(url, runtime)
    assert record["hangup_reason"] == "remote_bye" and "reception" in record["to"]
