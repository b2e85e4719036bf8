"""Phrase triggers for early handoff: explicit requests for a human and sensitive topics.

Matching is on folded text (lower case, accents removed, single spaces) at word boundaries, so
"Želim govoriti s človekom" matches the phrase "govoriti s clovekom". In inflected languages
(`INFLECTION_SUFFIX`) a phrase's last word may carry a short case ending, so the phrase "samomor"
also matches "o samomoru" and "odvetnik" matches "z odvetnikom": a missed self-harm or legal message
costs far more than an early handoff.
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


# language -> how many letters of case ending a phrase's last word may carry
INFLECTION_SUFFIX = {"sl": 2}


def _compile(phrases: list[tuple[str, str]]) -> re.Pattern[str] | None:
    """One pattern for (language, phrase) pairs, matched on folded text at word boundaries."""
    alternatives: dict[str, str] = {}
    for language, phrase in phrases:
        folded = fold(phrase)
        if not folded:
            continue
        ending = INFLECTION_SUFFIX.get(language, 0)
        suffix = f"[^\\W\\d_]{{0,{ending}}}" if ending and folded[-1].isalpha() else ""
        alternatives[folded + suffix] = re.escape(folded) + suffix
    if not alternatives:
        return None
    ordered = sorted(alternatives.items(), key=lambda item: len(item[0]), reverse=True)
    return re.compile(r"(?<!\w)(?:" + "|".join(p for _, p in ordered) + r")(?!\w)")


@dataclass(frozen=True, slots=True)
class TriggerMatch:
    kind: str  # "human" | "sensitive"
    topic: str  # the sensitive topic's name, or "human"
    phrase: str


class Triggers:
    def __init__(self, tenant: Tenant) -> None:
        languages = set(tenant.languages)
        self._human = _compile(
            [
                (lang, p)
                for lang, ps in tenant.handoff.human_request_phrases.items()
                if lang in languages
                for p in ps
            ]
        )
        self._topics = [
            (topic.name, pattern)
            for topic in tenant.handoff.sensitive_topics
            if (pattern := _compile([(lang, p) for lang, ps in topic.phrases.items() for p in ps]))
            is not None
        ]

    def match(self, text: str) -> TriggerMatch | None:
        folded = fold(text)
        for name, pattern in self._topics:
            if found := pattern.search(folded):
                return TriggerMatch("sensitive", name, found.group(0))
        if self._human is not None and (found := self._human.search(folded)):
            return TriggerMatch("human", "human", found.group(0))
        return None
