"""The call's brain in the frame flow: caller turns in, bot speech out, the call's timers.

Sits between STT and TTS. It translates pipeline frames into dialogue calls and back:

* ``ClientConnectedFrame`` (pushed by the input transport once the caller's media can flow) -> the
  opening (recording announcement, greeting) is spoken, once. Not on ``StartFrame``: a carrier
  WebSocket is connected before the pipeline starts, but a WebRTC peer usually is not, and the
  output transport drops audio written before the peer connects;
* ``VADUserStartedSpeakingFrame`` while the bot talks (or is about to) -> barge-in: broadcast an
  InterruptionFrame (TTS drops its queue, the output transport stops, the carrier serializer sends
  its "clear"); any speech resets the silence counter;
* ``VADUserStoppedSpeakingFrame`` -> the turn's latency clock starts (see call_latency);
* with ``voice.smart_turn`` (see call_turn): ``UserStartedSpeakingFrame`` opens the caller's turn,
  transcripts are collected while it is open, ``UserStoppedSpeakingFrame`` sends them as one turn;
  the smart-turn model's decisions (``MetricsFrame`` / ``TurnMetricsData``) go to
  ``outcome.turn_decisions``;
* ``TranscriptionFrame`` -> ``ChatService.send`` (one turn at a time, in a task this processor owns)
  -> ``TTSSpeakFrame(reply.text)``; the reply's action decides what follows: ``end`` hangs up after
  the goodbye is spoken; ``handoff`` asks the channel's transfer hook to move the call once the
  handoff message has been spoken (a carrier redirect drops whatever audio it still had to play),
  or at once on barge-in;
* ``InputDTMFFrame`` -> digits collected, sent as text on '#' or after ``dtmf_pause_secs``;
* ``BotStartedSpeakingFrame`` / ``BotStoppedSpeakingFrame`` (upstream from the output transport)
  -> first-audio mark of the turn; the silence timer runs only while nobody speaks.

The call ends by pushing ``EndWorkerFrame`` upstream (the worker then sends EndFrame through the
pipeline, which flushes the audio already queued). ``outcome`` says why.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    CancelFrame,
    ClientConnectedFrame,
    EndFrame,
    EndWorkerFrame,
    Frame,
    InputDTMFFrame,
    MetricsFrame,
    StartFrame,
    TranscriptionFrame,
    TTSSpeakFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.metrics.metrics import TurnMetricsData
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from voicebot.config import VoiceConfig
from voicebot.dialogue.types import Action, Reply
from voicebot.errors import VoicebotError
from voicebot.pipeline.call_latency import LATENCY_ACTION, TurnClock, TurnMarks, observe

log = logging.getLogger(__name__)

# Transfer hook: (target number, reply) -> True when the carrier took the call over.
TransferHook = Callable[[str, Reply], Awaitable[bool]]


class TurnSource(Protocol):
    """Who answers the caller's turns: the dialogue manager, or an outbound campaign's script."""

    async def reply(self, text: str, *, source: str) -> Reply: ...


class CallScript(TurnSource, Protocol):
    """An outbound call's own script: what the bot says first, then its replies (DTMF raw)."""

    def opening(self) -> list[str]: ...


class ChatTurns:
    """Inbound calls: each turn is a ChatService turn of the call's conversation."""

    def __init__(self, runtime: Any, conversation_id: str, caller: str | None) -> None:
        self._runtime = runtime
        self._conversation_id = conversation_id
        self._caller = caller

    async def reply(self, text: str, *, source: str) -> Reply:
        reply: Reply = await self._runtime.chat.send(self._conversation_id, text, caller=self._caller)
        return reply


END_GRACE_SECS = 30.0  # the longest goodbye we wait for before ending anyway


@dataclass(slots=True)
class CallOutcome:
    reason: str = "caller_hung_up"  # end_action | silence | max_duration | transferred | caller_hung_up
    turns: int = 0
    transfer_to: str | None = None
    transcript: list[tuple[str, str]] = field(default_factory=list)  # (role, text)
    latencies: list[dict[str, Any]] = field(default_factory=list)
    turn_decisions: list[dict[str, Any]] = field(default_factory=list)  # smart-turn verdicts


def localised(texts: dict[str, str], language: str | None) -> str:
    if language and language in texts:
        return texts[language]
    return texts.get("en") or next(iter(texts.values()), "")


class DialogueProcessor(FrameProcessor):
    def __init__(
        self,
        runtime: Any,
        *,
        conversation_id: str,
        caller: str | None,
        channel: str,
        opening: list[str],
        voice: VoiceConfig,
        clock: TurnClock,
        transfer: TransferHook | None = None,
        turns: TurnSource | None = None,
        dtmf_menu: dict[str, dict[str, str]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._turns = turns or ChatTurns(runtime, conversation_id, caller)
        self._dtmf_menu = voice.dtmf_menu if dtmf_menu is None else dtmf_menu
        self._runtime = runtime
        self._conversation_id = conversation_id
        self._caller = caller
        self._channel = channel
        self._opening = opening
        self._voice = voice
        self._clock = clock
        self._transfer = transfer
        self.outcome = CallOutcome()
        self._language: str | None = None
        self._bot_speaking = False
        self._tts_pending = 0  # TTSSpeakFrames pushed whose audio has not finished
        self._user_speaking = False
        self._turn_lock = asyncio.Lock()
        self._turn_tasks: set[asyncio.Task[None]] = set()
        self._digits = ""
        self._dtmf_task: asyncio.Task[None] | None = None
        self._silence_task: asyncio.Task[None] | None = None
        self._max_task: asyncio.Task[None] | None = None
        self._silent_prompts = 0
        self._opened = False
        self._ending = False
        self._ended = False
        self._end_task: asyncio.Task[None] | None = None
        self._pending_transfer: tuple[str, Reply] | None = None  # said; moved after the speech
        self._transfer_task: asyncio.Task[None] | None = None
        self._transfer_grace: asyncio.Task[None] | None = None
        self._user_turn_open = False  # smart_turn: between User{Started,Stopped}SpeakingFrame
        self._heard: list[str] = []  # smart_turn: the open turn's transcripts

    # -- frame flow -------------------------------------------------------------------------
    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, StartFrame):
            await self.push_frame(frame, direction)
            await self._on_start()
            return
        if isinstance(frame, ClientConnectedFrame):
            await self.push_frame(frame, direction)
            await self._on_connected()
            return
        if isinstance(frame, (EndFrame, CancelFrame)):
            await self._stop_tasks()
            await self.push_frame(frame, direction)
            return
        if isinstance(frame, VADUserStartedSpeakingFrame):
            await self._on_user_started()
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            self._user_speaking = False
            self._clock.current = TurnMarks(self._voice.vad_stop_secs, vad_stop=time.monotonic())
            self._arm_silence()
        elif isinstance(frame, BotStartedSpeakingFrame) and direction is FrameDirection.UPSTREAM:
            self._bot_speaking = True
            self._cancel_silence()
            self._mark_audio_out()
        elif isinstance(frame, BotStoppedSpeakingFrame) and direction is FrameDirection.UPSTREAM:
            self._bot_speaking = False
            self._tts_pending = 0
            if self._pending_transfer is not None:
                self._start_transfer()
            elif self._ending:
                await self._end_now()
            else:
                self._arm_silence()
        if self._voice.smart_turn and self._smart_turn_frame(frame, direction):
            return
        if isinstance(frame, TranscriptionFrame):
            if frame.text.strip():
                self._start_turn(frame.text.strip(), source="speech")
            return  # the dialogue owns the transcript; TTS must not speak it
        if isinstance(frame, InputDTMFFrame):
            self._on_digit(str(frame.button.value))
            return
        await self.push_frame(frame, direction)

    def _smart_turn_frame(self, frame: Frame, direction: FrameDirection) -> bool:
        """The smart-turn frames (True: consumed). The turn processor broadcasts the user turn
        frames both ways; the downstream copies come here."""
        if isinstance(frame, MetricsFrame):
            for data in frame.data:
                if isinstance(data, TurnMetricsData):
                    decision = {
                        "complete": data.is_complete,
                        "probability": round(data.probability, 3),
                        "ms": round(data.e2e_processing_time_ms, 1),
                    }
                    self.outcome.turn_decisions.append(decision)
                    log.debug("call %s: smart-turn %s", self._conversation_id, decision)
            return False
        if direction is not FrameDirection.DOWNSTREAM:
            return False
        if isinstance(frame, UserStartedSpeakingFrame):
            self._user_turn_open = True
            return True
        if isinstance(frame, UserStoppedSpeakingFrame):
            self._user_turn_open = False
            text, self._heard = " ".join(self._heard), []
            if text:
                self._start_turn(text, source="speech")
            return True
        if isinstance(frame, TranscriptionFrame) and self._user_turn_open:
            if frame.text.strip():
                self._heard.append(frame.text.strip())
            return True
        return False

    async def _on_start(self) -> None:
        self._max_task = self.create_task(self._max_duration(), name="call-max-duration")

    async def _on_connected(self) -> None:
        if self._opened:  # a WebRTC peer that reconnects is not greeted again
            return
        self._opened = True
        for text in self._opening:
            self.outcome.transcript.append(("bot", text))
            await self._say(text)

    async def _on_user_started(self) -> None:
        self._user_speaking = True
        self._silent_prompts = 0
        self._cancel_silence()
        if self._bot_speaking or self._tts_pending:
            log.info("call %s: barge-in", self._conversation_id)
            self._tts_pending = 0
            self._bot_speaking = False
            await self.broadcast_interruption()
            if self._pending_transfer is not None:
                self._start_transfer()
            elif self._ending:
                await self._end_now()

    # -- turns ------------------------------------------------------------------------------
    def _start_turn(self, text: str, *, source: str) -> None:
        if self._ending:
            return
        marks = self._clock.current
        if marks is None or marks.transcript is not None:
            marks = TurnMarks(self._voice.vad_stop_secs, vad_stop=time.monotonic(), source=source)
            if source == "dtmf":
                marks.vad_stop_secs = 0.0
            self._clock.current = marks
        marks.transcript = time.monotonic()
        marks.source = source
        task = self.create_task(self._turn(text, marks), name="call-turn")
        self._turn_tasks.add(task)
        task.add_done_callback(self._turn_tasks.discard)

    async def _turn(self, text: str, marks: TurnMarks) -> None:
        async with self._turn_lock:
            self._cancel_silence()
            self.outcome.transcript.append(("customer", text))
            try:
                reply = await self._turns.reply(text, source=marks.source)
            except VoicebotError as exc:
                log.warning("call %s: the turn failed: %s", self._conversation_id, exc.message)
                self.outcome.reason = "dialogue_error"
                self._ending = True
                await self._end_now()
                return
            self.outcome.turns += 1
            self._language = reply.language
            marks.reply = time.monotonic()
            self.outcome.transcript.append(("bot", reply.text))
            await self._say(reply.text)
            if reply.action is Action.END:
                self.outcome.reason = "end_action"
                self._begin_ending()
            elif reply.action is Action.HANDOFF:
                await self._handoff(reply)

    async def _handoff(self, reply: Reply) -> None:
        transfer = self._voice.transfer
        keys = [reply.intent, reply.handoff.reason if reply.handoff else None, "default"]
        target = next((transfer[k] for k in keys if k and k in transfer), None)
        if target is None or self._transfer is None:
            log.info("call %s: handoff without a transfer (target %s)", self._conversation_id, target)
            return
        # the transfer starts when the handoff message has been spoken (BotStoppedSpeakingFrame),
        # on barge-in, or after END_GRACE_SECS if no audio ever comes
        self._pending_transfer = (target, reply)
        self._transfer_grace = self.create_task(self._transfer_after_grace(), name="call-transfer-grace")

    async def _transfer_after_grace(self) -> None:
        await asyncio.sleep(END_GRACE_SECS)
        self._transfer_grace = None
        self._start_transfer()

    def _start_transfer(self) -> None:
        if self._pending_transfer is None:
            return
        target, reply = self._pending_transfer
        self._pending_transfer = None
        if self._transfer_grace is not None and self._transfer_grace is not asyncio.current_task():
            self._transfer_grace.cancel()
        self._transfer_grace = None
        self._transfer_task = self.create_task(self._run_transfer(target, reply), name="call-transfer")

    async def _run_transfer(self, target: str, reply: Reply) -> None:
        assert self._transfer is not None
        moved = await self._transfer(target, reply)
        self._transfer_task = None
        if moved:
            log.info("call %s: transferred to %s", self._conversation_id, target)
            self.outcome.reason = "transferred"
            self.outcome.transfer_to = target
            self._ending = True
            await self._end_now()
        else:
            log.info("call %s: the transfer to %s was not possible", self._conversation_id, target)
            self._arm_silence()

    async def _say(self, text: str) -> None:
        if not text:
            return
        self._tts_pending += 1
        await self.push_frame(TTSSpeakFrame(text))

    def _mark_audio_out(self) -> None:
        marks = self._clock.current
        if marks is None or marks.reply is None or marks.audio_out is not None:
            return
        marks.audio_out = time.monotonic()
        if marks.complete():
            parts = marks.to_dict()
            self.outcome.latencies.append(parts)
            self._clock.done.append(parts)
            observe(self._channel, parts)
            self.create_task(self._store_latency(parts), name="call-latency-store")

    async def _store_latency(self, parts: dict[str, Any]) -> None:
        try:
            await self._runtime.audit.record(
                tenant_id=self._runtime.tenant.id,
                actor="bot",
                action=LATENCY_ACTION,
                now=datetime.now(UTC),
                conversation_id=self._conversation_id,
                details=parts,
            )
        except Exception:  # a metric must never cost the call
            log.exception("call %s: storing the turn latency failed", self._conversation_id)

    # -- DTMF -------------------------------------------------------------------------------
    def _on_digit(self, digit: str) -> None:
        self._cancel_silence()
        self._silent_prompts = 0  # a key pressed is an answer, as much as speech is
        if self._dtmf_task is not None:
            self._dtmf_task.cancel()
            self._dtmf_task = None
        if digit == "#":
            self._flush_digits()
            return
        self._digits += digit
        self._dtmf_task = self.create_task(self._dtmf_pause(), name="call-dtmf-pause")

    async def _dtmf_pause(self) -> None:
        await asyncio.sleep(self._voice.dtmf_pause_secs)
        self._dtmf_task = None
        self._flush_digits()

    def _flush_digits(self) -> None:
        digits, self._digits = self._digits, ""
        if digits:
            log.info("call %s: %d DTMF digits", self._conversation_id, len(digits))
            self._clock.current = None
            option = self._dtmf_menu.get(digits)
            # a single menu key stands for the words configured for it; anything longer is data
            self._start_turn(localised(option, self._language) if option else digits, source="dtmf")

    # -- timers -----------------------------------------------------------------------------
    def _arm_silence(self) -> None:
        self._cancel_silence()
        if self._ending or self._user_speaking or self._bot_speaking or self._turn_tasks:
            return
        if self._pending_transfer is not None or self._transfer_task is not None:
            return
        self._silence_task = self.create_task(self._silence(), name="call-silence")

    def _cancel_silence(self) -> None:
        if self._silence_task is not None and self._silence_task is not asyncio.current_task():
            self._silence_task.cancel()
        self._silence_task = None

    async def _silence(self) -> None:
        await asyncio.sleep(self._voice.silence_prompt_secs)
        self._silence_task = None
        if self._silent_prompts >= self._voice.silence_prompts:
            log.info("call %s: hanging up after caller silence", self._conversation_id)
            self.outcome.reason = "silence"
            self._begin_ending()
            await self._say(localised(self._voice.goodbye, self._language))
            return
        self._silent_prompts += 1
        await self._say(localised(self._voice.silence_prompt, self._language))

    async def _max_duration(self) -> None:
        await asyncio.sleep(self._voice.max_call_secs)
        log.info("call %s: the maximum call length was reached", self._conversation_id)
        self.outcome.reason = "max_duration"
        self._begin_ending()
        await self._say(localised(self._voice.goodbye, self._language))

    def _begin_ending(self) -> None:
        """End after the audio being spoken finishes (BotStoppedSpeakingFrame), or after
        END_GRACE_SECS if no audio ever comes."""
        if self._ending:
            return
        self._ending = True
        self._end_task = self.create_task(self._end_after_grace(), name="call-end-grace")

    async def _end_after_grace(self) -> None:
        await asyncio.sleep(END_GRACE_SECS)
        await self._end_now()

    async def _end_now(self) -> None:
        if self._ended:
            return
        self._ended = True
        await self.push_frame(EndWorkerFrame(), FrameDirection.UPSTREAM)

    async def _stop_tasks(self) -> None:
        tasks = [
            self._silence_task,
            self._dtmf_task,
            self._max_task,
            self._end_task,
            self._transfer_grace,
            self._transfer_task,
        ]
        self._silence_task = self._dtmf_task = self._max_task = self._end_task = None
        self._transfer_grace = self._transfer_task = None
        self._pending_transfer = None
        current = asyncio.current_task()
        for task in [*tasks, *self._turn_tasks]:
            if task is not None and task is not current and not task.done():
                await self.cancel_task(task)
