"""Opt-in smart-turn (``voice.smart_turn``): pipecat's local smart-turn v3 model decides whether the
caller finished, instead of the VAD silence alone.

The pipecat 1.14 way: a ``UserTurnProcessor`` whose stop strategy is a
``TurnAnalyzerUserTurnStopStrategy`` over a ``LocalSmartTurnAnalyzerV3``. It sits after STT (it needs
the audio, the VAD events and the transcripts) and broadcasts ``UserStartedSpeakingFrame`` /
``UserStoppedSpeakingFrame``; the DialogueProcessor then sends the transcripts of the whole turn on
``UserStoppedSpeakingFrame`` instead of each VAD segment's transcript at once. On each VAD stop the
model is asked; "incomplete" keeps the turn open until the caller speaks again or
``smart_turn_stop_secs`` of silence pass. Each decision reaches the dialogue as a ``MetricsFrame``
with ``TurnMetricsData`` (recorded in ``CallOutcome.turn_decisions``).

The analyzer keeps per-call state (the turn's audio, a one-thread executor), so it is built per
call; the ONNX session inside it (the bundled smart-turn-v3.2-cpu.onnx, ~8 MB) is loaded once per
process and shared - ``InferenceSession.run`` is thread-safe. Barge-in stays with the
DialogueProcessor (the start strategy does not interrupt).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from pipecat.audio.turn.smart_turn.base_smart_turn import BaseSmartTurn, SmartTurnParams
from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3
from pipecat.turns.user_start import VADUserTurnStartStrategy
from pipecat.turns.user_stop import TurnAnalyzerUserTurnStopStrategy
from pipecat.turns.user_turn_processor import UserTurnProcessor
from pipecat.turns.user_turn_strategies import UserTurnStrategies

from voicebot.config import VoiceConfig

log = logging.getLogger(__name__)

_lock = threading.Lock()
_session: Any = None


def smart_turn_session() -> Any:
    """The process's smart-turn ONNX session, loaded on first use (a blocking call: ~0.1 s)."""
    global _session
    with _lock:
        if _session is None:
            # pipecat's own loader (bundled model, its session options); the analyzer is dropped
            _session = LocalSmartTurnAnalyzerV3()._session
            log.info("smart-turn v3 model loaded")
        return _session


class SharedSmartTurnAnalyzer(LocalSmartTurnAnalyzerV3):
    """LocalSmartTurnAnalyzerV3 over the process's shared ONNX session (no model load per call)."""

    def __init__(self, session: Any, *, params: SmartTurnParams | None = None) -> None:
        BaseSmartTurn.__init__(self, params=params)
        self._log_data = False
        self._session = session


def smart_turn_processor(voice: VoiceConfig, session: Any | None = None) -> UserTurnProcessor:
    """The call's turn processor: a turn starts on VAD start, ends on the model's "complete"."""
    analyzer = SharedSmartTurnAnalyzer(
        session if session is not None else smart_turn_session(),
        params=SmartTurnParams(stop_secs=voice.smart_turn_stop_secs),
    )
    return UserTurnProcessor(
        user_turn_strategies=UserTurnStrategies(
            start=[VADUserTurnStartStrategy(enable_interruptions=False)],
            stop=[TurnAnalyzerUserTurnStopStrategy(turn_analyzer=analyzer)],
        ),
        # the controller's watchdog, after the analyzer's own silence fallback
        user_turn_stop_timeout=max(5.0, voice.smart_turn_stop_secs + 1.0),
    )
