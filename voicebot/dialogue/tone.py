"""Brand tone: greeting, sign-off and phrase rules, applied to every reply the bot sends."""

from __future__ import annotations

import re
from collections.abc import Callable

from voicebot.config import Tenant


class ToneRules:
    def __init__(self, tenant: Tenant) -> None:
        self._tone = tenant.tone
        self._fallback = tenant.languages[0]
        # whole words only ("cheap" is not the start of "cheaper"); the replacement is literal text
        self._rules = [
            (rule.language, _phrase_pattern(rule.replace), rule.with_)
            for rule in tenant.tone.phrase_rules
            if rule.replace.strip()
        ]

    def greeting(self, language: str) -> str:
        return self._localised(self._tone.greeting, language)

    def sign_off(self, language: str) -> str:
        return self._localised(self._tone.sign_off, language)

    def apply(self, text: str, language: str, *, greet: bool = False, sign_off: bool = False) -> str:
        parts = []
        if greet and (greeting := self.greeting(language)):
            parts.append(greeting)
        parts.append(text)
        if sign_off and (closing := self.sign_off(language)):
            parts.append(closing)
        out = " ".join(p.strip() for p in parts if p.strip())
        for rule_language, pattern, replacement in self._rules:
            if rule_language in ("*", language):
                out = pattern.sub(_literal(replacement), out)
        return out

    def _localised(self, texts: dict[str, str], language: str) -> str:
        return texts.get(language) or texts.get(self._fallback) or next(iter(texts.values()), "")


def _phrase_pattern(phrase: str) -> re.Pattern[str]:
    start = r"(?<!\w)" if re.match(r"\w", phrase) else ""
    end = r"(?!\w)" if re.search(r"\w$", phrase) else ""
    return re.compile(start + re.escape(phrase) + end, re.IGNORECASE)


def _literal(text: str) -> Callable[[re.Match[str]], str]:
    """A replacement used as is (no backslash escapes or group references)."""
    return lambda _match: text
