"""baresip (baresip-core 1.0) as a test peer: a softphone caller pinned to 127.0.0.1.

    async with Baresip(speech=Path("question.wav"), listen_s=8) as phone:
        await phone.dial("sip:bot@127.0.0.1:5060")
        await phone.wait_established(10)
        await phone.wait_closed(30)          # or: await phone.hangup()
    heard = phone.recording                  # WAV (16-bit 8 kHz mono) of what baresip heard

A temporary config directory holds a loopback-only ``config`` (``sip_listen 127.0.0.1:<free port>``,
``net_interface 127.0.0.1``, an RTP port range of its own, no stun/turn/ice/mdns modules; only stdio,
g711, aufile, alsa and sndfile) and an ``accounts`` file with one loopback account (PCMU/PCMA, no
registration). baresip is started with ``-f <dir> -n 127.0.0.1`` and driven over stdin
(``/dial``, ``/hangup``, ``/quit``); its stdout is parsed for "Call established" and "terminated".

Audio: the microphone is ``aufile`` (this version plays only 16-bit PCM at ``ausrc_srate``, and
hangs up when the file ends), so ``speech`` (mu-law or PCM WAV) is converted to 16-bit 8 kHz and
padded with ``listen_s`` seconds of silence, during which the caller listens. What it hears is dumped by the
``sndfile`` filter (``dump-*-dec.wav``; ``-enc.wav`` is what it sent); the speaker is ALSA's ``null``
device. baresip 1.0's aufile has no player, hence sndfile.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import shutil
import tempfile
import wave
from pathlib import Path
from types import TracebackType

from tests.peers.sipp import LOOPBACK, free_port

__all__ = ["Baresip", "BaresipError", "baresip_available", "read_wav_pcm16", "to_pcm16_wav"]


def baresip_available() -> bool:
    return shutil.which("baresip") is not None and Path("/usr/lib/baresip/modules/aufile.so").exists()


class BaresipError(RuntimeError):
    pass


def _ulaw_to_pcm16(data: bytes) -> bytes:
    out = bytearray()
    for byte in data:
        u = ~byte & 0xFF
        magnitude = (((u & 0x0F) << 3) + 0x84) << ((u >> 4) & 0x07)
        sample = 0x84 - magnitude if u & 0x80 else magnitude - 0x84
        out += sample.to_bytes(2, "little", signed=True)
    return bytes(out)


def read_wav_pcm16(path: Path) -> tuple[bytes, int]:
    """(16-bit mono PCM, sample rate) of a PCM16 or G.711 mu-law WAV."""
    raw = path.read_bytes()
    if raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        raise BaresipError(f"{path} is not a WAV file")
    pos, fmt, rate, data = 12, 0, 0, b""
    while pos + 8 <= len(raw):
        cid, size = raw[pos : pos + 4], int.from_bytes(raw[pos + 4 : pos + 8], "little")
        body = raw[pos + 8 : pos + 8 + size]
        if cid == b"fmt ":
            fmt, rate = int.from_bytes(body[0:2], "little"), int.from_bytes(body[4:8], "little")
            if int.from_bytes(body[2:4], "little") != 1:
                raise BaresipError(f"{path}: only mono WAV files are supported")
        elif cid == b"data":
            data = body
        pos += 8 + size + (size & 1)
    if fmt == 7:
        return _ulaw_to_pcm16(data), rate
    if fmt == 1:
        return data, rate
    raise BaresipError(f"{path}: unsupported WAV format {fmt}")


def to_pcm16_wav(source: Path | None, target: Path, *, silence_s: float, rate: int = 8000) -> None:
    pcm, src_rate = read_wav_pcm16(source) if source is not None else (b"", rate)
    if src_rate != rate:
        raise BaresipError(f"{source}: sample rate {src_rate}, baresip is set to {rate}")
    with wave.open(str(target), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm + b"\x00\x00" * int(silence_s * rate))


class Baresip:
    """One baresip process with a temporary loopback-only configuration (an async context manager)."""

    def __init__(
        self,
        speech: Path | None = None,
        *,
        listen_s: float = 10.0,
        record_dir: Path | None = None,
        user: str = "caller",
    ) -> None:
        """``speech``: WAV the caller says (then ``listen_s`` of silence; baresip hangs up when it
        ends). ``record_dir``: where the dumps go (default: the temporary config directory, removed
        on exit, so read ``recording`` inside the ``async with``)."""
        self.speech, self.listen_s, self.user = speech, listen_s, user
        self.record_dir = record_dir
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.folder = Path()
        self.sip_port = 0
        self.proc: asyncio.subprocess.Process | None = None
        self.lines: list[str] = []
        self._reader: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self.rec = Path()

    # --- lifecycle -----------------------------------------------------------------------------

    def _write_config(self) -> None:
        folder = self.folder
        self.rec = self.record_dir or folder / "rec"
        self.rec.mkdir(parents=True, exist_ok=True)
        to_pcm16_wav(self.speech, folder / "mic.wav", silence_s=self.listen_s)
        rtp = random.randrange(30000, 60000, 100)
        self.sip_port = free_port()
        config = f"""\
poll_method\t\tepoll
sip_listen\t\t{LOOPBACK}:{self.sip_port}
net_interface\t\t{LOOPBACK}
dns_server\t\t{LOOPBACK}:53
call_local_timeout\t120
call_max_calls\t\t4
audio_player\t\talsa,null
audio_alert\t\talsa,null
audio_source\t\taufile,{folder / "mic.wav"}
ausrc_srate\t\t8000
auplay_srate\t\t8000
ausrc_channels\t\t1
auplay_channels\t\t1
rtp_ports\t\t{rtp}-{rtp + 99}
rtcp_mux\t\tno
module_path\t\t/usr/lib/baresip/modules
module\t\t\tstdio.so
module\t\t\tg711.so
module\t\t\taufile.so
module\t\t\talsa.so
module\t\t\tsndfile.so
module_app\t\taccount.so
module_app\t\tmenu.so
snd_path\t\t{self.rec}
"""
        (folder / "config").write_text(config)
        (folder / "accounts").write_text(
            f"<sip:{self.user}@{LOOPBACK}>;regint=0;audio_codecs=PCMU,PCMA;answermode=manual\n"
        )
        (folder / "contacts").write_text("")

    async def __aenter__(self) -> Baresip:
        if not baresip_available():
            raise BaresipError("baresip is not installed")
        self._tmp = tempfile.TemporaryDirectory(prefix="baresip-")
        self.folder = Path(self._tmp.name)
        self._write_config()
        self.proc = await asyncio.create_subprocess_exec(
            "baresip", "-f", str(self.folder), "-n", LOOPBACK,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        self._reader = asyncio.create_task(self._read())
        await self._wait_for(r"baresip is ready", 10, "start")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def stop(self) -> None:
        proc = self.proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                await self.command("/quit")
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while True:
            chunk = await self.proc.stdout.readline()
            if not chunk:
                break
            # the status line redraws itself with \r; keep each piece
            for piece in chunk.decode(errors="replace").replace("\r", "\n").splitlines():
                if piece.strip():
                    self.lines.append(piece)
            self._changed.set()
        self._changed.set()

    async def _wait_for(self, pattern: str, timeout_s: float, what: str) -> re.Match[str]:
        regex = re.compile(pattern)
        seen = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            for line in self.lines[seen:]:
                if m := regex.search(line):
                    return m
            seen = len(self.lines)
            if (
                self.proc is None
                or self.proc.returncode is not None
                or (self._reader and self._reader.done())
            ):
                raise BaresipError(f"baresip exited while waiting for {what}:\n{self.output()}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                raise BaresipError(f"timed out waiting for {what}:\n{self.output()}") from None

    def output(self, lines: int = 60) -> str:
        return "\n".join(line for line in self.lines if "audio=" not in line)[-8000:] or "(no output)"

    # --- commands ------------------------------------------------------------------------------

    async def command(self, text: str) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(text.encode() + b"\n")
        await self.proc.stdin.drain()

    async def dial(self, uri: str) -> None:
        if not uri.startswith("sip:") or "127.0.0.1" not in uri:
            raise BaresipError(f"refusing to dial a non-loopback URI {uri!r}")
        await self.command(f"/dial {uri}")

    async def wait_established(self, timeout_s: float = 15.0) -> None:
        await self._wait_for(r"Call established", timeout_s, "the call to be established")

    async def wait_closed(self, timeout_s: float = 60.0) -> str:
        """Wait for the call to end; returns baresip's line saying why."""
        m = await self._wait_for(r"(terminated.*|Call failed.*|closed.*)", timeout_s, "the call to end")
        return m.group(0)

    async def hangup(self) -> None:
        await self.command("/hangup")
        await self.wait_closed(10)

    # --- results -------------------------------------------------------------------------------

    def _recorded(self, suffix: str) -> Path | None:
        found = sorted(self.rec.glob(f"dump-*-{suffix}.wav"))
        return found[-1] if found else None

    @property
    def recording(self) -> Path | None:
        """WAV of what baresip heard (decoded), or None if no call carried audio."""
        return self._recorded("dec")

    @property
    def sent(self) -> Path | None:
        """WAV of what baresip sent (the microphone file as encoded)."""
        return self._recorded("enc")
