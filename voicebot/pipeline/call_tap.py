"""The call's audio tap: what a supervisor hears and what the recording keeps.

``CallAudioTap`` sits at the very end of the call pipeline, after ``transport.output()``, where two
streams pass: the caller's ``InputAudioRawFrame``s (real time, continuous on every transport) and the
``OutputAudioRawFrame``s the output transport has just written (the bot's speech, or an agent's
voice during a desk transfer, paced by the transport). ``AudioMixer`` resamples nothing itself; the
tap converts each source to ``TAP_RATE`` and the mixer sums them into ``FRAME_MS`` frames of 16-bit
mono PCM, clocked by the caller's audio (a source that runs ahead by more than ``MAX_AHEAD_MS``, e.g.
while the caller's stream stalls, is emitted over silence).

Each mixed frame goes to the tap's sinks (``TapSink.write``): the listen-in publisher
(voicebot.live.listen) and the recording (voicebot.live.wav). A sink never blocks the call; one that
raises is dropped with a log line. Audio the caller does not hear but a listener should (the bot's
handoff summary to an agent) comes in through ``side_audio``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import Protocol

import numpy as np
import soxr
from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    OutputAudioRawFrame,
    StartFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

__all__ = ["FRAME_BYTES", "FRAME_MS", "TAP_RATE", "AudioMixer", "CallAudioTap", "Resampler", "TapSink"]

log = logging.getLogger(__name__)

TAP_RATE = 16000  # Hz: wideband, what WebRTC/Whisper use; 8 kHz calls are upsampled
FRAME_MS = 20
FRAME_SAMPLES = TAP_RATE * FRAME_MS // 1000
FRAME_BYTES = FRAME_SAMPLES * 2
MAX_AHEAD_MS = 300  # a non-caller source this far ahead of the caller's clock is emitted anyway


class TapSink(Protocol):
    """Receives the mixed call audio, one 20 ms frame (FRAME_BYTES of PCM16 mono) at a time."""

    def write(self, frame: bytes) -> None: ...

    def close(self) -> None: ...


class AudioMixer:
    """Sums the caller's audio and any number of other sources (all PCM16 mono at one rate) into
    fixed frames, calling ``emit`` for each. Pure: no clock, no I/O."""

    def __init__(
        self,
        emit: Callable[[bytes], None],
        *,
        frame_samples: int = FRAME_SAMPLES,
        max_ahead_ms: int = MAX_AHEAD_MS,
    ) -> None:
        self._emit = emit
        self._frame_bytes = frame_samples * 2
        self._max_ahead = max(self._frame_bytes, frame_samples * 2 * max_ahead_ms // FRAME_MS)
        self._caller = bytearray()
        self._others: dict[str, bytearray] = {}

    def caller_audio(self, pcm: bytes) -> None:
        self._caller += pcm
        while len(self._caller) >= self._frame_bytes:
            caller = bytes(self._caller[: self._frame_bytes])
            del self._caller[: self._frame_bytes]
            self._emit(self._mix(caller))

    def side_audio(self, source: str, pcm: bytes) -> None:
        buffer = self._others.setdefault(source, bytearray())
        buffer += pcm
        if len(buffer) > self._max_ahead:  # the caller's clock has stalled: do not hold audio back
            while len(buffer) > self._max_ahead // 2:
                self._emit(self._mix(b"\x00" * self._frame_bytes))

    def flush(self) -> None:
        """Emit what is left (the last partial frame padded with silence)."""
        while self._caller or any(self._others.values()):
            caller = bytes(self._caller[: self._frame_bytes])
            del self._caller[: self._frame_bytes]
            self._emit(self._mix(caller.ljust(self._frame_bytes, b"\x00")))

    def _mix(self, caller: bytes) -> bytes:
        total = np.frombuffer(caller, dtype=np.int16).astype(np.int32)
        for buffer in self._others.values():
            if not buffer:
                continue
            take = bytes(buffer[: self._frame_bytes]).ljust(self._frame_bytes, b"\x00")
            del buffer[: self._frame_bytes]
            total += np.frombuffer(take, dtype=np.int16)
        return np.clip(total, -32768, 32767).astype(np.int16).tobytes()


class Resampler:
    """One stream's PCM16 mono converted to ``out_rate`` (soxr, low latency); a new input rate
    starts a new filter."""

    def __init__(self, out_rate: int = TAP_RATE) -> None:
        self.out_rate = out_rate
        self._in_rate = 0
        self._stream: soxr.ResampleStream | None = None

    def __call__(self, pcm: bytes, in_rate: int) -> bytes:
        if in_rate == self.out_rate:
            return pcm
        if self._stream is None or in_rate != self._in_rate:
            self._in_rate = in_rate
            self._stream = soxr.ResampleStream(in_rate, self.out_rate, 1, dtype="int16", quality="LQ")
        out: np.ndarray = self._stream.resample_chunk(np.frombuffer(pcm, dtype=np.int16))
        return out.astype(np.int16).tobytes()


def _mono(frame: InputAudioRawFrame | OutputAudioRawFrame) -> bytes:
    if frame.num_channels <= 1:
        return frame.audio
    samples = np.frombuffer(frame.audio, dtype=np.int16).reshape(-1, frame.num_channels)
    return samples.mean(axis=1).astype(np.int16).tobytes()


Watcher = Callable[[], Coroutine[object, object, None]]


class CallAudioTap(FrameProcessor):
    """The last processor of a call: mixes caller and bot/agent audio for ``sinks``.

    ``watchers`` are coroutines that live as long as the call (e.g. the listen-in presence reader);
    the tap owns their tasks. Frames pass on untouched and first, so the tap adds no delay."""

    def __init__(
        self, sinks: Sequence[TapSink], *, watchers: Sequence[Watcher] = (), **kwargs: object
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._sinks = list(sinks)
        self._watchers = list(watchers)
        self._tasks: list[asyncio.Task[None]] = []
        self._mixer = AudioMixer(self._write)
        self._resamplers: dict[str, Resampler] = {}
        self._closed = False
        self.frames = 0  # mixed frames emitted

    def add_sink(self, sink: TapSink) -> None:
        self._sinks.append(sink)

    def side_audio(self, source: str, pcm: bytes, sample_rate: int) -> None:
        """Audio not in the pipeline that listeners should hear (e.g. the summary to an agent)."""
        if not self._closed:
            self._mixer.side_audio(source, self._resample(source, pcm, sample_rate))

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)
        if isinstance(frame, StartFrame):
            self._tasks = [self.create_task(w(), name="call-tap-watcher") for w in self._watchers]
        elif isinstance(frame, (EndFrame, CancelFrame)):
            await self._close()
        elif direction is FrameDirection.DOWNSTREAM and not self._closed:
            if isinstance(frame, InputAudioRawFrame):
                self._mixer.caller_audio(self._resample("caller", _mono(frame), frame.sample_rate))
            elif isinstance(frame, OutputAudioRawFrame):
                self._mixer.side_audio("out", self._resample("out", _mono(frame), frame.sample_rate))

    async def cleanup(self) -> None:
        await self._close()
        await super().cleanup()

    def _resample(self, source: str, pcm: bytes, rate: int) -> bytes:
        resampler = self._resamplers.get(source)
        if resampler is None:
            resampler = self._resamplers[source] = Resampler()
        return resampler(pcm, rate)

    def _write(self, frame: bytes) -> None:
        self.frames += 1
        for sink in list(self._sinks):
            try:
                sink.write(frame)
            except Exception:  # a listener or a full disk must never cost the call
                log.exception("call tap: the sink %s failed and is dropped", type(sink).__name__)
                self._sinks.remove(sink)

    def close_sinks(self) -> None:
        """Emit what is left and close the sinks (once; the call is over)."""
        if self._closed:
            return
        self._mixer.flush()
        self._closed = True
        for sink in self._sinks:
            try:
                sink.close()
            except Exception:
                log.exception("call tap: closing the sink %s failed", type(sink).__name__)

    async def _close(self) -> None:
        self.close_sinks()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            await self.cancel_task(task)
