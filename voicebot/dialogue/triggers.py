"""Phrase triggers for early handoff: explicit requests for a human and sensitive topics.

Matching is on folded text (lower case, accents removed, single spaces) at word boundaries, so
"Želim govoriti s človekom" matches the phrase "govoriti s clovekom".
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from voicebot.config import Tenant


def fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w@.+-]+", " ", stripped).split())


def _compile(phrases: list[str]) -> re.Pattern[str] | None:
    folded = sorted({fold(p) for p in phrases if fold(p)}, key=len, reverse=True)
    if not folded:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(re.escape(p) for p in folded) + r")(?!\w)")


@dataclass(frozen=True, slots=True)
class TriggerMatch:
    kind: str  # "human" | "sensitive"
    topic: str  # the sensitive topic's name, or "human"
    phrase: str


class Triggers:
    def __init__(self, tenant: Tenant) -> None:
        languages = set(tenant.languages)
        self._human = _compile(
            [p for lang, ps in tenant.handoff.human_request_phrases.items() if lang in languages for p in ps]
        )
        self._topics = [
            (topic.name, pattern)
            for topic in tenant.handoff.sensitive_topics
            if (pattern := _compile([p for ps in topic.phrases.values() for p in ps])) is not None
        ]

    def match(self, text: str) -> TriggerMatch | None:
        folded = fold(text)
        for name, pattern in self._topics:
            if found := pattern.search(folded):
                return TriggerMatch("sensitive", name, found.group(0))
        if self._human is not None and (found := self._human.search(folded)):
            return TriggerMatch("human", "human", found.group(0))
        return None
