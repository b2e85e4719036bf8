"""Brand tone: greeting, sign-off and phrase rules, applied to every reply the bot sends."""

from __future__ import annotations

import re

from voicebot.config import Tenant


class ToneRules:
    def __init__(self, tenant: Tenant) -> None:
        self._tone = tenant.tone
        self._fallback = tenant.languages[0]
        self._rules = [
            (rule.language, re.compile(re.escape(rule.replace), re.IGNORECASE), rule.with_)
            for rule in tenant.tone.phrase_rules
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
                out = pattern.sub(replacement, out)
        return out

    def _localised(self, texts: dict[str, str], language: str) -> str:
        return texts.get(language) or texts.get(self._fallback) or next(iter(texts.values()), "")
