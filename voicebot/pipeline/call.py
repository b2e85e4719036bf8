"""One call as a pipecat pipeline: ``run_call(runtime, speech, transport, call) -> CallResult``.

Frame flow (every channel: Twilio/Telnyx/Plivo WebSocket, WebRTC, later SIP)::

    transport.input()            carrier audio -> InputAudioRawFrame (pipeline rate), InputDTMFFrame
      -> VADProcessor(Silero)    VADUserStarted/StoppedSpeakingFrame (stop after vad_stop_secs)
      -> STT (shared Whisper)    a segmented STT: keeps ~1 s of audio before the VAD start
                                 (pre-roll), transcribes on VAD stop -> TranscriptionFrame
      -> UserTurnProcessor       (only with voice.smart_turn, see call_turn) smart-turn v3 asks
                                 "finished?" on VAD stop -> UserStarted/StoppedSpeakingFrame
      -> DialogueProcessor       ChatService.send(...) -> TTSSpeakFrame; barge-in, DTMF, timers
      -> TTS (shared Piper)      TTSAudioRawFrame chunks, resampled to the output rate
      -> LatencyTap              marks the first TTS chunk of a timed reply
      -> transport.output()      20 ms frames to the carrier; InterruptionFrame -> "clear"
      -> AudioBufferProcessor    (only when recording) stereo WAV, caller left / bot right
      -> CallAudioTap            mixed caller + bot/agent audio: listen-in, voice.record_calls WAV

call_live adds the live side: the tap, the call's entry on the live board, and the agent bridge
(HoldGate before the dialogue, BridgeProcessor before the output; see agent_bridge) that puts an
agent's browser on the call when its handoff target is "desk".

The conversation is a ChatService conversation (channel voice, caller = the caller's number, so
the CRM identifies the caller by caller ID); each turn is persisted exactly as a chat turn.
"""

from __future__ import annotations

import asyncio
import logging
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADParams
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.audio.audio_buffer_processor import AudioBufferProcessor
from pipecat.processors.audio.vad_processor import VADProcessor
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.transports.base_transport import BaseTransport
from pipecat.workers.runner import WorkerRunner

from voicebot import metrics
from voicebot.dialogue.types import Channel
from voicebot.pipeline.call_dialogue import CallScript, DialogueProcessor, TransferHook, localised
from voicebot.pipeline.call_latency import LatencyTap, TurnClock
from voicebot.pipeline.call_live import CallLive

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CallInfo:
    call_id: str  # the carrier's id (Twilio CallSid, WebRTC connection id, SIP Call-ID)
    caller: str | None  # the caller's number as received (E.164 for carriers)
    called: str | None = None
    channel: str = "twilio"  # twilio | telnyx | plivo | webrtc | sip
    in_sample_rate: int = 8000  # pipeline input rate (what the transport delivers)
    out_sample_rate: int = 8000  # pipeline output rate (what the transport sends)


@dataclass(slots=True)
class CallResult:
    call_id: str
    conversation_id: str
    reason: str
    turns: int
    duration_s: float
    transfer_to: str | None = None
    recording: Path | None = None
    transcript: list[tuple[str, str]] = field(default_factory=list)
    latencies: list[dict[str, Any]] = field(default_factory=list)


class SpeechServices(Protocol):
    """What a call needs from the speech layer: fresh per-call STT/TTS processors over shared
    models. ``PipecatSpeech`` adapts ``voicebot.pipeline.speech.SpeechModels``; tests use fakes."""

    def stt(self, *, language: str) -> FrameProcessor: ...

    def tts(self, *, sample_rate: int) -> FrameProcessor: ...


class PipecatSpeech:
    def __init__(self, models: Any) -> None:
        self.models = models

    def stt(self, *, language: str) -> FrameProcessor:
        from voicebot.pipeline.speech import SharedWhisperSTTService

        return SharedWhisperSTTService(self.models, language=language)

    def tts(self, *, sample_rate: int) -> FrameProcessor:
        from voicebot.pipeline.speech import SharedPiperTTSService

        return SharedPiperTTSService(self.models, sample_rate=sample_rate)


def speech_services(speech: Any) -> SpeechServices:
    if hasattr(speech, "stt") and hasattr(speech, "tts") and callable(speech.stt):
        return speech
    return PipecatSpeech(speech)


class Recorder:
    """Writes the AudioBufferProcessor's stereo audio (caller left, bot right) to a WAV file."""

    def __init__(self, path: Path, sample_rate: int) -> None:
        self.path = path
        self.processor = AudioBufferProcessor(sample_rate=sample_rate, num_channels=2)
        self._wav: wave.Wave_write | None = None
        self.processor.add_event_handler("on_audio_data", self._on_audio)

    async def _on_audio(self, _proc: Any, audio: bytes, sample_rate: int, num_channels: int) -> None:
        if self._wav is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._wav = wave.open(str(self.path), "wb")  # noqa: SIM115 - closed in close()
            self._wav.setnchannels(num_channels)
            self._wav.setsampwidth(2)
            self._wav.setframerate(sample_rate)
        self._wav.writeframes(audio)

    def close(self) -> Path | None:
        if self._wav is None:
            return None
        self._wav.close()
        return self.path


async def run_call(
    runtime: Any,
    speech: Any,
    transport: BaseTransport,
    call: CallInfo,
    *,
    transfer: TransferHook | None = None,
    language: str | None = None,
    script: CallScript | None = None,
) -> CallResult:
    """Answer one call on ``transport`` until it ends; returns how it went.

    ``transfer`` is the channel's way to move the call to a person (e.g. a Twilio REST redirect to
    ``<Dial>``); without one a handoff is spoken and logged, and the call continues. ``script``
    (an outbound campaign call) speaks first and answers the turns instead of the dialogue manager.
    """
    voice = runtime.tenant.voice
    started_at = time.monotonic()
    started = await runtime.chat.start(channel=Channel.VOICE, caller=call.caller, language=language)
    conversation_id = started.conversation.id
    log.info("call %s answered on %s: conversation %s", call.call_id, call.channel, conversation_id)
    opening = []
    recorder: Recorder | None = None
    if voice.recording:
        folder = voice.recordings_dir or runtime.settings.data_dir / "recordings"
        recorder = Recorder(folder / f"{conversation_id}.wav", call.out_sample_rate)
        opening.append(localised(voice.recording_announcement, started.greeting.language))
    if script is not None:
        opening += script.opening()
    else:
        opening.append(started.greeting.text)
        if voice.dtmf_menu and voice.dtmf_menu_prompt:
            opening.append(localised(voice.dtmf_menu_prompt, started.greeting.language))

    services = speech_services(speech)
    live = CallLive.open(
        runtime,
        speech,
        conversation_id=conversation_id,
        call_id=call.call_id,
        channel=call.channel,
        caller=call.caller,
    )
    clock = TurnClock()
    dialogue = DialogueProcessor(
        runtime,
        conversation_id=conversation_id,
        caller=call.caller,
        channel=call.channel,
        opening=opening,
        voice=voice,
        clock=clock,
        transfer=live.bridge.transfer_hook(transfer),
        turns=script,
        dtmf_menu={} if script is not None else None,
    )
    vad = VADProcessor(
        vad_analyzer=SileroVADAnalyzer(
            params=VADParams(
                confidence=voice.vad_confidence,
                start_secs=voice.vad_start_secs,
                stop_secs=voice.vad_stop_secs,
            )
        )
    )
    processors: list[FrameProcessor] = [
        transport.input(),
        vad,
        services.stt(language=voice.stt_language),
    ]
    if voice.smart_turn:
        from voicebot.pipeline.call_turn import smart_turn_processor, smart_turn_session

        processors.append(smart_turn_processor(voice, await asyncio.to_thread(smart_turn_session)))
    processors += [
        live.gate,
        dialogue,
        services.tts(sample_rate=call.out_sample_rate),
        LatencyTap(clock),
        live.bridge_processor,
        transport.output(),
    ]
    if recorder is not None:
        processors.append(recorder.processor)
    processors.append(live.tap)
    task = PipelineWorker(
        Pipeline(processors),
        params=PipelineParams(
            audio_in_sample_rate=call.in_sample_rate, audio_out_sample_rate=call.out_sample_rate
        ),
        idle_timeout_secs=None,
        enable_rtvi=False,
        conversation_id=conversation_id,
    )

    async def on_disconnected(_transport: Any, _client: Any) -> None:
        log.info("call %s: the caller hung up", call.call_id)
        await task.cancel(reason="caller hung up")

    transport.add_event_handler("on_client_disconnected", on_disconnected)
    if recorder is not None:
        await recorder.processor.start_recording()

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(task)
    outcome = dialogue.outcome
    live.register()
    try:
        await runner.run()
    finally:
        path = recorder.close() if recorder is not None else None
        mixed = await live.close(
            reason=outcome.reason, turns=outcome.turns, duration_s=time.monotonic() - started_at
        )
        path = path or mixed
    duration = time.monotonic() - started_at
    metrics.CALLS.labels(channel=call.channel, reason=outcome.reason).inc()
    log.info(
        "call %s ended: %s after %.1f s, %d turns", call.call_id, outcome.reason, duration, outcome.turns
    )
    return CallResult(
        call_id=call.call_id,
        conversation_id=conversation_id,
        reason=outcome.reason,
        turns=outcome.turns,
        duration_s=duration,
        transfer_to=outcome.transfer_to,
        recording=path,
        transcript=outcome.transcript,
        latencies=outcome.latencies,
    )
