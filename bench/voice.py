"""Voice benchmark: start the server, place N concurrent Twilio-protocol calls with real speech, print
one JSON object.

    .venv/bin/python bench/voice.py [--calls 4] [--turns 3] [--url http://127.0.0.1:8080]

The caller questions are synthesized once with the Piper voice (models/piper-joe), resampled to
8 kHz mu-law and sent in real time as 20 ms Twilio ``media`` events, each followed by silence. Per
turn the client measures end of caller audio (the last frame of the synthesized question sent, its
trailing silence included) -> the first bot audio frame received after it (``v2v``), and, stricter,
the last caller frame with speech in it -> the first bot frame with speech in it (``v2v_speech``:
what a caller hears as the gap; bench/sip.py's ``v2v``); the server's own per-turn parts (VAD
wait, STT, dialogue, TTS first chunk, transport) come from
``GET /v1/voice/conversations/{id}/latency``. ``cpu`` is the server process's CPU seconds over the
wall time of the call phase. Only 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import websockets

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.chat import api_token, bearer, percentile, start_server  # noqa: E402
from voicebot.pipeline.speech_audio import mulaw_encode, resample  # noqa: E402

QUESTIONS = [
    "What are your opening hours?",
    "What is your returns policy?",
    "How much does delivery to Maribor cost?",
    "Do you offer a warranty on laptops?",
]
FRAME = 160

# mu-law byte -> linear sample, to tell speech from silence in 20 ms frames
_U = ~np.arange(256, dtype=np.int32) & 0xFF
_MAG = (((_U & 0x0F) << 3) + 0x84) << ((_U >> 4) & 0x07)
ULAW_TO_LINEAR = np.where(_U & 0x80, 0x84 - _MAG, _MAG - 0x84).astype(np.int32)
SPEECH_RMS = 300.0  # comfort noise and dithered silence stay well below this


def is_speech(payload: bytes) -> bool:
    """Whether a 20 ms mu-law frame carries speech (RMS above SPEECH_RMS)."""
    if not payload:
        return False
    samples = ULAW_TO_LINEAR[np.frombuffer(payload, dtype=np.uint8)]
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) > SPEECH_RMS


def synthesize(models_dir: Path) -> list[bytes]:
    """Each question as 8 kHz mu-law bytes."""
    from piper import PiperVoice

    onnx = next((models_dir / "piper-joe").glob("*.onnx"))
    voice = PiperVoice.load(str(onnx), config_path=str(onnx) + ".json")
    out = []
    for text in QUESTIONS:
        pcm = np.concatenate([c.audio_int16_array for c in voice.synthesize(text)])
        out.append(mulaw_encode(resample(pcm, voice.config.sample_rate, 8000)))
    return out


def server_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])  # incl. children
    import os

    return ticks / os.sysconf("SC_CLK_TCK")


class Call:
    def __init__(self, ws: Any, sid: str) -> None:
        self.ws, self.sid = ws, sid
        self.media: list[float] = []
        self.speech: list[float] = []  # arrival times of frames with speech in them
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                event = json.loads(message)
                if event.get("event") == "media":
                    at = time.monotonic()
                    self.media.append(at)
                    if is_speech(base64.b64decode(event["media"]["payload"])):
                        self.speech.append(at)
        except websockets.ConnectionClosed:
            pass

    async def send(self, ulaw: bytes) -> float:
        """Send in real time; returns when the last frame with speech in it left."""
        start = last = time.monotonic()
        for n, i in enumerate(range(0, len(ulaw), FRAME)):
            chunk = ulaw[i : i + FRAME].ljust(FRAME, b"\xff")
            if is_speech(chunk):
                last = time.monotonic()
            payload = base64.b64encode(chunk).decode()
            await self.ws.send(
                json.dumps({"event": "media", "streamSid": self.sid, "media": {"payload": payload}})
            )
            await asyncio.sleep(max(0.0, start + (n + 1) * 0.02 - time.monotonic()))
        return last

    async def quiet(self, secs: float, since: float = 0.0, timeout: float = 20.0) -> None:
        """Send silence until the bot has spoken after ``since`` and then been quiet for ``secs``."""
        silence = b"\xff" * FRAME
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.media and self.media[-1] > since and time.monotonic() - self.media[-1] > secs:
                return
            await self.ws.send(
                json.dumps(
                    {
                        "event": "media",
                        "streamSid": self.sid,
                        "media": {"payload": base64.b64encode(silence).decode()},
                    }
                )
            )
            await asyncio.sleep(0.02)


async def one_call(
    base: str, n: int, turns: int, audio: list[bytes], v2v: list[float], v2v_speech: list[float]
) -> str | None:
    sid = f"MZbench{n:04d}"
    url = base.replace("http://", "ws://") + "/v1/media/twilio"
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"event": "connected"}))
        start = {"streamSid": sid, "callSid": f"CAbench{n}", "customParameters": {"From": f"+3864000{n:04d}"}}
        await ws.send(json.dumps({"event": "start", "streamSid": sid, "start": start}))
        call = Call(ws, sid)
        await call.quiet(0.8)  # the greeting
        for t in range(turns):
            last_speech = await call.send(audio[(n + t) % len(audio)])
            end = time.monotonic()
            await call.quiet(1.0, since=end)
            first = next((m for m in call.media if m > end), None)
            if first is None:
                return None
            v2v.append((first - end) * 1000)
            if (heard := next((m for m in call.speech if m > last_speech), None)) is not None:
                v2v_speech.append((heard - last_speech) * 1000)
        await ws.send(json.dumps({"event": "stop", "streamSid": sid}))
    await call.reader
    return sid


async def drive(base: str, calls: int, turns: int, audio: list[bytes], pid: int | None) -> dict[str, Any]:
    v2v: list[float] = []
    v2v_speech: list[float] = []
    cpu0, wall0 = (server_cpu(pid) if pid else 0.0), time.monotonic()
    results = await asyncio.gather(
        *(one_call(base, n, turns, audio, v2v, v2v_speech) for n in range(calls)), return_exceptions=True
    )
    wall = time.monotonic() - wall0
    cpu = (server_cpu(pid) - cpu0) / wall if pid else None
    parts: dict[str, list[float]] = {}
    async with httpx.AsyncClient(base_url=base, headers=bearer()) as client:
        await asyncio.sleep(1.0)  # the server stores a turn's latency just after its audio starts
        rows = await client.get("/v1/voice/latency", params={"limit": 10 * calls * turns})
        if rows.status_code == 200:
            for turn in rows.json()["turns"]:
                for k, v in turn.items():
                    if k.endswith("_ms"):
                        parts.setdefault(k, []).append(v)
    failed = sum(1 for r in results if not isinstance(r, str))
    out: dict[str, Any] = {
        "calls": calls,
        "turns": len(v2v),
        "failed_calls": failed,
        "v2v_p50_ms": round(statistics.median(v2v), 1) if v2v else None,
        "v2v_p95_ms": round(percentile(v2v, 0.95), 1) if v2v else None,
        "v2v_speech_p50_ms": round(statistics.median(v2v_speech), 1) if v2v_speech else None,
        "v2v_speech_p95_ms": round(percentile(v2v_speech, 0.95), 1) if v2v_speech else None,
        "cpu": round(cpu, 3) if cpu is not None else None,
        "parts_p50_ms": {k: round(statistics.median(v), 1) for k, v in parts.items()},
        "parts_p95_ms": {k: round(percentile(v, 0.95), 1) for k, v in parts.items()},
    }
    errors = [repr(r)[:200] for r in results if isinstance(r, BaseException)]
    if errors:
        out["errors"] = errors[:3]
    return out


def wait_for_warm_cache(url: str, timeout_s: float = 300) -> None:
    """A server fresh from start-up synthesizes its fixed texts in the background; measure calls
    against the steady state, as callers after the first minute meet it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        voice = httpx.get(url + "/healthz", timeout=5).json().get("voice", {})
        if voice.get("tts_cache_warm") is not False:
            return
        time.sleep(0.5)
    raise SystemExit("the TTS cache did not warm up in time")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=4)
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--url", help="use a running server instead of starting one")
    args = parser.parse_args()
    from voicebot.config import default_models_dir

    audio = synthesize(default_models_dir())
    if args.url:
        result = asyncio.run(drive(args.url, args.calls, args.turns, audio, None))
    else:
        with tempfile.TemporaryDirectory(prefix="voicebot-bench-") as tmp:
            proc, url = start_server(Path(tmp), 1)
            os.environ["VOICEBOT_API_TOKEN"] = api_token(Path(tmp))
            try:
                wait_for_warm_cache(url)
                result = asyncio.run(drive(url, args.calls, args.turns, audio, proc.pid))
            finally:
                proc.terminate()
                proc.wait(timeout=30)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
