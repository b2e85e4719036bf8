"""SIP benchmark: start the server with SIP on 127.0.0.1, call it with SIPp and a scripted RTP caller,
print one JSON object.

    .venv/bin/python bench/sip.py [--calls 200] [--concurrent 20] [--v2v-calls 3] [--turns 3]
                                  [--sip-port P] [--url http://127.0.0.1:8080 --sip-port 5060]
                                  [--sipp-uas]

Phase 1 (SIPp, tests/data/sipp/uac_basic.xml, each call about 5.3 s of caller speech then BYE):
``--calls`` calls one at a time (``-l 1``), then ``--concurrent`` calls at once (``-l N -m N``, 100
calls/s). ``setup_p50_ms`` / ``setup_p95_ms``: INVITE -> 200 from SIPp's rtd timer over all calls
(whole ms; ``loaded_setup_p95_ms``: the concurrent ones); ``calls`` and ``failed_calls`` from SIPp's stats,
``rejected_503``: failed calls the server refused with 503 (its admission limit).

Phase 2 (a scripted caller in this file: voicebot.sip.message for INVITE/ACK/BYE over UDP, RTP with a
12-byte header): ``--v2v-calls`` calls one after another, ``--turns`` questions each (Piper-synthesized,
8 kHz mu-law, sent in real time in 20 ms packets with silence between them, as a phone does). Per turn:
the last caller speech packet sent -> the first bot RTP packet after it whose audio is not silence.
``v2v_p50_ms`` / ``v2v_p95_ms``; ``v2v_first_packet_*`` measure as bench/voice.py's ``v2v`` does (all of
the question's audio sent -> the first bot packet), for a like-for-like comparison with WebSocket calls.
The server started here allows ``--concurrent`` + 4 calls (``VOICEBOT_MAX_CALLS``) and is measured
once its TTS cache is warm.

Leaks, after the calls have ended: ``leaked_fds`` (server /proc/<pid>/fd count after - before, only
when this script started the server), ``leaked_calls`` and ``leaked_rtp_ports`` from
``GET /v1/sip/status`` (null when the server does not have it).

``--sipp-uas`` benchmarks the harness itself against SIPp's built-in UAS with RTP echo (no voicebot
server): setup times are SIPp's, v2v is the echo's. Only 127.0.0.1 anywhere.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import statistics
import struct
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.chat import api_token, bearer, percentile, start_server  # noqa: E402
from bench.voice import is_speech, wait_for_warm_cache  # noqa: E402
from tests.peers.sipp import SCENARIOS, SippResult, free_port, run_sipp, sipp_uas  # noqa: E402
from voicebot.sip import Headers, SipRequest, SipResponse, parse_message  # noqa: E402

LOOP = "127.0.0.1"
FRAME = 160  # 20 ms of 8 kHz mu-law
SILENCE = b"\xff" * FRAME
T1 = 0.5

# --- phase 2: a scripted SIP/RTP caller ---------------------------------------------------------


class _Sip(asyncio.DatagramProtocol):
    def __init__(self, caller: Caller) -> None:
        self.caller = caller

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            message = parse_message(data)
        except Exception:  # a bench tolerates a stray datagram
            return
        self.caller.on_sip(message, addr)


class _Rtp(asyncio.DatagramProtocol):
    def __init__(self, caller: Caller) -> None:
        self.caller = caller

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) >= 12 and data[0] >> 6 == 2 and data[1] & 0x7F in (0, 8):
            cc = data[0] & 0x0F
            self.caller.on_rtp(time.monotonic(), data[12 + 4 * cc :])


class Caller:
    """One call: INVITE/ACK/BYE over UDP, RTP out at 20 ms, RTP in classified speech / silence."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.call_id = f"{uuid.uuid4().hex}@{LOOP}"
        self.tag = uuid.uuid4().hex[:10]
        self.cseq = 0
        self.responses: asyncio.Queue[SipResponse] = asyncio.Queue()
        self.speech_at: list[float] = []  # arrival times of bot packets with speech
        self.packets_at: list[float] = []  # arrival times of every bot audio packet
        self.remote_tag: str | None = None
        self.remote_target = f"sip:voicebot@{target[0]}:{target[1]}"
        self.rtp_remote: tuple[str, int] | None = None
        self.bye_received = asyncio.Event()
        self.seq, self.ts, self.ssrc = (
            random.randrange(65536),
            random.randrange(2**32),
            random.randrange(2**32),
        )
        self.sending = False

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        self.sip, _ = await loop.create_datagram_endpoint(lambda: _Sip(self), local_addr=(LOOP, 0))
        self.rtp, _ = await loop.create_datagram_endpoint(lambda: _Rtp(self), local_addr=(LOOP, 0))
        self.sip_port = self.sip.get_extra_info("sockname")[1]
        self.rtp_port = self.rtp.get_extra_info("sockname")[1]

    def close(self) -> None:
        self.sip.close()
        self.rtp.close()

    # SIP ---------------------------------------------------------------------------------------

    def on_sip(self, message: SipRequest | SipResponse, addr: tuple[str, int]) -> None:
        if isinstance(message, SipResponse):
            self.responses.put_nowait(message)
            return
        if message.method == "ACK":
            return
        h = Headers()
        for name in ("Via", "From", "To", "Call-ID", "CSeq"):
            for value in message.headers.get_all(name):
                h.add(name, value)
        self.sip.sendto(bytes(SipResponse(200, "OK", h)), addr)
        if message.method == "BYE":
            self.bye_received.set()

    def request(
        self, method: str, *, cseq: int | None = None, branch: str | None = None, body: bytes = b""
    ) -> SipRequest:
        if cseq is None:
            self.cseq += 1
            cseq = self.cseq
        h = Headers()
        h.add(
            "Via",
            f"SIP/2.0/UDP {LOOP}:{self.sip_port};branch={branch or 'z9hG4bK' + uuid.uuid4().hex[:16]};rport",
        )
        h.add("Max-Forwards", "70")
        h.add("From", f'"bench" <sip:bench@{LOOP}:{self.sip_port}>;tag={self.tag}')
        to = f"<sip:voicebot@{self.target[0]}:{self.target[1]}>"
        h.add("To", to + (f";tag={self.remote_tag}" if self.remote_tag else ""))
        h.add("Call-ID", self.call_id)
        h.add("CSeq", f"{cseq} {method}")
        h.add("Contact", f"<sip:bench@{LOOP}:{self.sip_port}>")
        if body:
            h.add("Content-Type", "application/sdp")
        return SipRequest(method, self.remote_target, h, body)

    async def transact(self, request: SipRequest, timeout_s: float = 32.0) -> SipResponse:
        """Send (retransmitting on T1 doubling) until a final response; returns it."""
        deadline = time.monotonic() + timeout_s
        interval, provisional = T1, False
        self.sip.sendto(bytes(request), self.target)
        next_send = time.monotonic() + interval
        while time.monotonic() < deadline:
            try:
                wait = max(0.01, min(next_send, deadline) - time.monotonic())
                response = await asyncio.wait_for(self.responses.get(), wait)
            except TimeoutError:
                if not provisional:
                    self.sip.sendto(bytes(request), self.target)
                    interval = min(interval * 2, 4.0)
                next_send = time.monotonic() + interval
                continue
            if response.call_id != self.call_id or response.cseq.number != request.cseq.number:
                continue
            if response.status < 200:
                provisional = True
                continue
            return response
        raise TimeoutError(f"no final response to {request.method}")

    async def invite(self) -> float:
        """INVITE -> 200 -> ACK; returns the setup time in ms."""
        sdp = (
            f"v=0\r\no=bench 1 1 IN IP4 {LOOP}\r\ns=-\r\nc=IN IP4 {LOOP}\r\nt=0 0\r\n"
            f"m=audio {self.rtp_port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
            f"a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n"
        ).encode()
        request = self.request("INVITE", body=sdp)
        start = time.monotonic()
        response = await self.transact(request)
        setup = (time.monotonic() - start) * 1000
        self.remote_tag = response.to_tag
        if response.status >= 300:
            ack = self.request("ACK", cseq=request.cseq.number, branch=request.top_via.branch)
            ack.uri = request.uri
            self.sip.sendto(bytes(ack), self.target)
            raise RuntimeError(f"INVITE answered {response.status} {response.reason}")
        contact = response.headers.get("Contact")
        if contact and (m := re.search(r"<?(sips?:[^>;\s]+)", contact)):
            self.remote_target = m.group(1)
        body = response.body.decode(errors="replace")
        host = re.search(r"^c=IN IP4 (\S+)", body, re.M)
        port = re.search(r"^m=audio (\d+)", body, re.M)
        if not host or not port or host.group(1) != LOOP:
            raise RuntimeError(f"unusable SDP answer (non-loopback or missing media): {body!r}")
        self.rtp_remote = (host.group(1), int(port.group(1)))
        self.sip.sendto(bytes(self.request("ACK", cseq=request.cseq.number)), self.target)
        return setup

    async def bye(self) -> None:
        if self.bye_received.is_set():
            return
        await self.transact(self.request("BYE"), timeout_s=8.0)

    # RTP ---------------------------------------------------------------------------------------

    def on_rtp(self, at: float, payload: bytes) -> None:
        self.packets_at.append(at)
        if is_speech(payload):
            self.speech_at.append(at)

    def _packet(self, payload: bytes, marker: bool) -> bytes:
        header = struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | 0, self.seq, self.ts, self.ssrc)
        self.seq = (self.seq + 1) & 0xFFFF
        self.ts = (self.ts + FRAME) & 0xFFFFFFFF
        return header + payload

    async def say(self, ulaw: bytes) -> float:
        """Send ``ulaw`` in real time; returns the time the last packet with speech in it left."""
        self.sending = True
        assert self.rtp_remote is not None
        start, last = time.monotonic(), 0.0
        for n, i in enumerate(range(0, len(ulaw), FRAME)):
            chunk = ulaw[i : i + FRAME].ljust(FRAME, b"\xff")
            self.rtp.sendto(self._packet(chunk, n == 0), self.rtp_remote)
            if is_speech(chunk):  # the synthesized question ends in silence: time its last speech
                last = time.monotonic()
            await asyncio.sleep(max(0.0, start + (n + 1) * 0.02 - time.monotonic()))
        self.sending = False
        return last

    async def listen(self, quiet_s: float, *, since: float, timeout_s: float = 20.0) -> bool:
        """Send silence until the bot has spoken after ``since`` and then been quiet for ``quiet_s``."""
        assert self.rtp_remote is not None
        start = time.monotonic()
        n = 0
        while time.monotonic() - start < timeout_s and not self.bye_received.is_set():
            spoke = self.speech_at and self.speech_at[-1] > since
            if spoke and time.monotonic() - self.speech_at[-1] > quiet_s:
                return True
            self.rtp.sendto(self._packet(SILENCE, False), self.rtp_remote)
            n += 1
            await asyncio.sleep(max(0.0, start + n * 0.02 - time.monotonic()))
        return False


async def v2v_call(
    target: tuple[str, int], turns: int, audio: list[bytes], first: int
) -> tuple[float, list[float], list[float]]:
    """One scripted call: (setup ms, v2v ms per turn, v2v ms per turn measured as bench/voice.py's
    ``v2v``: all of the question's audio sent -> the first bot packet, silent or not)."""
    caller = Caller(target)
    await caller.open()
    v2v: list[float] = []
    frames: list[float] = []
    try:
        setup = await caller.invite()
        await caller.listen(0.8, since=0.0, timeout_s=10.0)  # the greeting, if any
        for t in range(turns):
            end = await caller.say(audio[(first + t) % len(audio)])
            sent = time.monotonic()
            await caller.listen(1.0, since=end)
            reply = next((s for s in caller.speech_at if s > end), None)
            if reply is not None:
                v2v.append((reply - end) * 1000)
            if (packet := next((p for p in caller.packets_at if p > sent), None)) is not None:
                frames.append((packet - sent) * 1000)
        await caller.bye()
        return setup, v2v, frames
    finally:
        caller.close()


# --- server and leaks -------------------------------------------------------------------------


def fd_count(pid: int | None) -> int | None:
    if pid is None:
        return None
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


async def sip_status(url: str | None) -> dict[str, Any] | None:
    if url is None:
        return None
    try:
        async with httpx.AsyncClient(base_url=url, timeout=5, headers=bearer()) as client:
            response = await client.get("/v1/sip/status")
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    data: dict[str, Any] = response.json()
    return data if data.get("enabled", True) else None


async def settled_status(url: str | None, timeout_s: float = 15.0) -> dict[str, Any] | None:
    """/v1/sip/status once calls and RTP ports have drained (or after ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    status = await sip_status(url)
    while status is not None and time.monotonic() < deadline:
        if not status.get("calls") and not status.get("rtp_ports_in_use"):
            break
        await asyncio.sleep(0.5)
        status = await sip_status(url)
    return status


def _delta(after: dict[str, Any] | None, before: dict[str, Any] | None, key: str) -> int | None:
    if after is None or key not in after:
        return None
    return int(after[key]) - int((before or {}).get(key, 0))


# --- phases ---------------------------------------------------------------------------------------


async def phase1(target: str, calls: int, concurrent: int, pause_ms: int) -> dict[str, Any]:
    scenario, keys = SCENARIOS / "uac_basic.xml", {"pause_ms": str(pause_ms)}
    runs: list[SippResult] = []
    wanted = [n for n in (calls, concurrent) if n]
    if calls:
        timeout = calls * (pause_ms / 1000 + 5) + 30
        runs.append(
            await run_sipp(
                scenario, target, calls=calls, concurrency=1, rate=10, keys=keys, timeout_s=timeout
            )
        )
    if concurrent:
        timeout = pause_ms / 1000 + 60
        runs.append(
            await run_sipp(
                scenario,
                target,
                calls=concurrent,
                concurrency=concurrent,
                rate=100,
                keys=keys,
                timeout_s=timeout,
            )
        )
    setup = [t for r in runs for t in r.rtt("1")]
    loaded = runs[-1].rtt("1") if concurrent else []
    out: dict[str, Any] = {
        "calls": calls + concurrent,
        "failed_calls": sum(n - r.successful for r, n in zip(runs, wanted, strict=True)),
        # of those, calls the server refused with 503 (admission limit): SIPp logs each as unexpected
        "rejected_503": sum(len(re.findall(r"received 'SIP/2\.0 503", r.errors)) for r in runs),
        "setup_p50_ms": round(statistics.median(setup), 1) if setup else None,
        "setup_p95_ms": round(percentile(setup, 0.95), 1) if setup else None,
        "loaded_setup_p95_ms": round(percentile(loaded, 0.95), 1) if loaded else None,
    }
    bad = [r for r in runs if not r.ok]
    if bad:
        out["sipp_errors"] = [r.explain(600)[-1200:] for r in bad][:2]
    return out


async def phase2(target: str, calls: int, turns: int, audio: list[bytes]) -> dict[str, Any]:
    host, port = target.rsplit(":", 1)
    v2v: list[float] = []
    frames: list[float] = []
    errors: list[str] = []
    for n in range(calls):
        try:
            _, turns_ms, frames_ms = await v2v_call((host, int(port)), turns, audio, n)
            v2v += turns_ms
            frames += frames_ms
        except (RuntimeError, TimeoutError, OSError) as exc:
            errors.append(repr(exc)[:300])
    out: dict[str, Any] = {
        "v2v_calls": calls,
        "v2v_turns": len(v2v),
        "v2v_p50_ms": round(statistics.median(v2v), 1) if v2v else None,
        "v2v_p95_ms": round(percentile(v2v, 0.95), 1) if v2v else None,
        "v2v_first_packet_p50_ms": round(statistics.median(frames), 1) if frames else None,
        "v2v_first_packet_p95_ms": round(percentile(frames, 0.95), 1) if frames else None,
    }
    if errors:
        out["v2v_errors"] = errors[:3]
    return out


async def drive(
    args: argparse.Namespace, target: str, url: str | None, pid: int | None, audio: list[bytes]
) -> dict[str, Any]:
    fds_before, status_before = fd_count(pid), await settled_status(url, 2.0)
    result: dict[str, Any] = {}
    result.update(await phase1(target, args.calls, args.concurrent, args.pause_ms))
    result.update(await phase2(target, args.v2v_calls, args.turns, audio))
    status_after = await settled_status(url)
    await asyncio.sleep(1.0)
    fds_after = fd_count(pid)
    result["leaked_fds"] = (
        fds_after - fds_before if fds_before is not None and fds_after is not None else None
    )
    result["leaked_calls"] = _delta(status_after, status_before, "calls")
    result["leaked_rtp_ports"] = _delta(status_after, status_before, "rtp_ports_in_use")
    if status_after is not None:
        result["sip_status_after"] = status_after
    return result


def synthesize_questions() -> list[bytes]:
    from bench.voice import synthesize
    from voicebot.config import default_models_dir

    return synthesize(default_models_dir())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=200, help="sequential SIPp calls (phase 1)")
    parser.add_argument("--concurrent", type=int, default=20, help="concurrent SIPp calls (phase 1)")
    parser.add_argument("--v2v-calls", type=int, default=3, help="scripted calls measuring voice-to-voice")
    parser.add_argument("--turns", type=int, default=3, help="questions per scripted call")
    parser.add_argument("--sip-port", type=int, default=0, help="server SIP port (0: a free one)")
    parser.add_argument("--pause-ms", type=int, default=5500, help="SIPp call length after the answer")
    parser.add_argument("--url", help="use a running server (with --sip-port) instead of starting one")
    parser.add_argument("--sipp-uas", action="store_true", help="benchmark against SIPp's echoing UAS")
    args = parser.parse_args()
    audio = synthesize_questions()

    async def against_sipp() -> dict[str, Any]:
        async with sipp_uas("uas", extra=["-rtp_echo"], timeout_s=3600) as uas:
            return await drive(args, uas.address, None, None, audio)

    if args.sipp_uas:
        result = asyncio.run(against_sipp())
    elif args.url:
        if not args.sip_port:
            raise SystemExit("--url needs --sip-port")
        result = asyncio.run(drive(args, f"{LOOP}:{args.sip_port}", args.url, None, audio))
    else:
        sip_port = args.sip_port or free_port()
        with tempfile.TemporaryDirectory(prefix="voicebot-bench-") as tmp:
            # room for the concurrent phase: no call is refused
            limit = {"VOICEBOT_MAX_CALLS": str(max(8, args.concurrent + 4))}
            proc, url = start_server(Path(tmp), 1, sip_port=sip_port, env_extra=limit)
            os.environ["VOICEBOT_API_TOKEN"] = api_token(Path(tmp))
            try:
                wait_for_warm_cache(url)
                result = asyncio.run(drive(args, f"{LOOP}:{sip_port}", url, proc.pid, audio))
            finally:
                proc.terminate()
                proc.wait(timeout=30)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
