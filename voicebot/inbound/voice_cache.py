"""Warm the TTS cache with the texts a call is most likely to speak, after start-up.

Fixed texts (the greeting, voice prompts, the bot's own sentences, every approved knowledge-base
answer in the call language) are synthesized once, on one background thread that takes turns
with live calls sentence by sentence (the synthesis lock lives in the speech layer), so a cached
answer starts playing at once instead of waiting for Piper. `stop()` ends the thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

from voicebot.dialogue.manager import DialogueManager
from voicebot.dialogue.phrases import BUILTIN

log = logging.getLogger(__name__)

PHONE_RATE = 8000


def fixed_texts(manager: DialogueManager, passages: Iterable[Any], language: str) -> list[str]:
    """Exactly the strings the dialogue would hand to TTS for fixed replies, most likely first."""
    tenant = manager.tenant
    voice = tenant.voice
    texts = [manager.greet(language).text]
    for prompts in (
        voice.recording_announcement,
        voice.dtmf_menu_prompt,
        voice.silence_prompt,
        voice.goodbye,
    ):
        if language in prompts:
            texts.append(prompts[language])
    for key in BUILTIN:
        template = manager.phrases.text(key, language)
        if "{" not in template:
            texts.append(manager.tone.apply(template, language))
    for passage in passages:
        if passage.approved and passage.language == language:
            texts.append(manager.tone.apply(passage.text, language))
    return list(dict.fromkeys(t for t in texts if t.strip()))


class SpeechCacheWarmer:
    def __init__(self, speech: Any, texts: list[str], sample_rate: int = PHONE_RATE) -> None:
        self._speech = speech
        self._texts = texts
        self._rate = sample_rate
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="voicebot-tts-warm", daemon=True)
        self.done = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _run(self) -> None:
        started = time.perf_counter()
        try:
            for text in self._texts:
                if self._stop.is_set():
                    return
                self._speech.presynthesize([text], self._rate)
        except Exception:  # a warm cache is an optimisation; calls still synthesize on demand
            log.exception("warming the TTS cache failed")
        finally:
            self.done.set()
        log.info("TTS cache warm: %d texts in %.1f s", len(self._texts), time.perf_counter() - started)
