"""A pipecat transport over one SIP call's media (voicebot.rtp), for ``run_call``.

The SIP layer (voicebot/inbound/sip.py) owns the call and its RTP endpoint and feeds this transport:
``feed_audio`` (decoded 8 kHz PCM16 frames from the jitter buffer), ``feed_dtmf`` (RFC 4733 or SIP
INFO digits) and ``disconnected`` (BYE, CANCEL, RTP timeout). Outbound, bot audio goes to
``media.send_audio`` and leaves paced at 20 ms by the RTP session; ``write_audio_frame`` waits while
more than ``MAX_LEAD_MS`` is queued, so pipecat's notion of "the bot is speaking" follows what the
caller hears and an interruption (barge-in) clears at most that much plus the RTP queue.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from pipecat.audio.dtmf.types import KeypadEntry
from pipecat.frames.frames import (
    CancelFrame,
    ClientConnectedFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InputDTMFFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    OutputDTMFFrame,
    OutputDTMFUrgentFrame,
    StartFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.transports.base_input import BaseInputTransport
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import BaseTransport, TransportParams

__all__ = ["MAX_LEAD_MS", "SIP_SAMPLE_RATE", "CallMedia", "SipCallTransport"]

SIP_SAMPLE_RATE = 8000  # G.711 narrowband; the pipeline runs at this rate for SIP calls
MAX_LEAD_MS = 60.0


class CallMedia(Protocol):
    """What the transport needs from the call's RTP endpoint."""

    def send_audio(self, pcm16: bytes) -> None: ...

    def clear_audio(self) -> None: ...

    def send_dtmf(self, digit: str) -> None: ...

    @property
    def queued_audio_ms(self) -> float: ...


class _SipInput(BaseInputTransport):
    def __init__(self, params: TransportParams, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        self._ready = False
        self.started = asyncio.Event()

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        await self.set_transport_ready(frame)
        self._ready = True
        self.started.set()
        # the call is answered before the pipeline starts: media can flow, so the bot greets now
        await self.push_frame(ClientConnectedFrame())

    async def stop(self, frame: EndFrame) -> None:
        self._ready = False
        await super().stop(frame)

    async def cancel(self, frame: CancelFrame) -> None:
        self._ready = False
        await super().cancel(frame)

    async def audio(self, pcm16: bytes) -> None:
        if self._ready:
            await self.push_audio_frame(
                InputAudioRawFrame(audio=pcm16, sample_rate=SIP_SAMPLE_RATE, num_channels=1)
            )

    async def dtmf(self, digit: str) -> None:
        if self._ready:
            try:
                entry = KeypadEntry(digit)
            except ValueError:
                return  # A-D have no keypad entry in pipecat
            await self.push_frame(InputDTMFFrame(button=entry))


class _SipOutput(BaseOutputTransport):
    def __init__(self, media: CallMedia, params: TransportParams, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        self._media = media

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        await self.set_transport_ready(frame)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InterruptionFrame):
            self._media.clear_audio()

    async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        self._media.send_audio(frame.audio)
        lead = self._media.queued_audio_ms - MAX_LEAD_MS
        if lead > 0:
            await asyncio.sleep(lead / 1000)
        return True

    def _supports_native_dtmf(self) -> bool:
        return True

    async def _write_dtmf_native(self, frame: OutputDTMFFrame | OutputDTMFUrgentFrame) -> None:
        for button in frame.buttons or ():
            self._media.send_dtmf(str(button.value))


class SipCallTransport(BaseTransport):
    """Event ``on_client_disconnected`` fires when the SIP side says the call is over."""

    def __init__(self, media: CallMedia, *, name: str | None = None) -> None:
        super().__init__(name=name)
        params = TransportParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            audio_in_sample_rate=SIP_SAMPLE_RATE,
            audio_out_sample_rate=SIP_SAMPLE_RATE,
            audio_out_10ms_chunks=2,
            audio_out_end_silence_secs=0,  # the SIP side lets the RTP queue drain before its BYE
        )
        self._input = _SipInput(params, name=f"{self.name}#input")
        self._output = _SipOutput(media, params, name=f"{self.name}#output")
        self._register_event_handler("on_client_disconnected")
        self._gone = False

    def input(self) -> FrameProcessor:
        return self._input

    def output(self) -> FrameProcessor:
        return self._output

    async def wait_started(self) -> None:
        """Until the pipeline runs: media that arrives earlier waits in the endpoint's queue."""
        await self._input.started.wait()

    async def feed_audio(self, pcm16: bytes) -> None:
        await self._input.audio(pcm16)

    async def feed_dtmf(self, digit: str) -> None:
        await self._input.dtmf(digit)

    async def disconnected(self) -> None:
        if not self._gone:
            self._gone = True
            await self._call_event_handler("on_client_disconnected", None)
