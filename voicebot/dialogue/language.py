"""Which of the tenant's languages a customer message is in.

lingua, restricted to the tenant's languages and built once with its models preloaded (high-accuracy
mode: it is what separates Slovenian from English on three-word messages, and costs ~0.05-0.2 ms a
message once loaded; low-accuracy mode gives up on 1-2 word messages). Very short messages first go
through a small lexicon of words customers say alone ("hvala", "ja", "thanks"). Text with too few
letters, or where the best language is not clearly ahead, gives ``(None, confidence)`` so the
conversation keeps its previous language.
"""

from __future__ import annotations

import re

from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

from voicebot.errors import ConfigError

__all__ = ["LanguageDetector"]

MIN_LETTERS = 3
MIN_CONFIDENCE = 0.70  # lingua's relative confidence of the best language, among the tenant's

# Words customers say on their own, per language. Words shared by several languages ("ok", "no",
# "super", "hallo") are deliberately absent: they leave the language unchanged.
_LEXICON: dict[str, set[str]] = {
    "en": {
        "yes",
        "yeah",
        "yep",
        "nope",
        "thanks",
        "thank you",
        "thx",
        "hello",
        "hi",
        "hey",
        "bye",
        "goodbye",
        "please",
        "sure",
        "sorry",
        "agent",
        "human",
        "operator",
        "cancel",
        "correct",
        "right",
        "okay then",
        "good morning",
        "good afternoon",
        "good evening",
        "of course",
    },
    "sl": {
        "ja",
        "ne",
        "hvala",
        "hvala lepa",
        "najlepša hvala",
        "prosim",
        "živjo",
        "zdravo",
        "adijo",
        "čao",
        "nasvidenje",
        "na svidenje",
        "dober dan",
        "dobro jutro",
        "dober večer",
        "pozdravljeni",
        "seveda",
        "točno",
        "tako je",
        "drži",
        "lp",
        "halo",
        "operater",
        "človek",
        "oprostite",
        "mhm ja",
        "ja ja",
        "ne hvala",
        "ja prosim",
        "v redu",
        "velja",
    },
}
_AMBIGUOUS = {"ok", "okay", "okej", "no", "super", "top", "aha", "mhm", "hmm", "hm", "hallo", "bravo", "fino"}
_WORD = re.compile(r"\w+")
_LETTER = re.compile(r"[^\W\d_]")


class LanguageDetector:
    """Built once per tenant; `detect` is thread-safe and allocation-light."""

    def __init__(self, languages: list[str]) -> None:
        if not languages:
            raise ConfigError("at least one language is needed", field="languages")
        self.languages = list(dict.fromkeys(languages))
        self._by_code: dict[str, Language] = {}
        for code in self.languages:
            try:
                self._by_code[code] = Language.from_iso_code_639_1(IsoCode639_1.from_str(code))
            except ValueError as exc:
                raise ConfigError(
                    f"language {code!r} is not supported by the detector", field="languages"
                ) from exc
        self._code_of = {lang: code for code, lang in self._by_code.items()}
        self._detector = None
        if len(self._by_code) > 1:
            self._detector = (
                LanguageDetectorBuilder.from_languages(*self._by_code.values())
                .with_preloaded_language_models()
                .build()
            )
        self._lexicon: dict[str, str] = {}
        for code in self.languages:
            for phrase in _LEXICON.get(code, ()):
                # a phrase listed for two of the tenant's languages is ambiguous: no entry
                self._lexicon[phrase] = "" if phrase in self._lexicon else code

    def detect(self, text: str) -> tuple[str | None, float]:
        """(language code, confidence) or (None, confidence) when too short or ambiguous."""
        if len(self.languages) == 1:
            return self.languages[0], 1.0
        key = " ".join(_WORD.findall(text.lower()))
        if key in _AMBIGUOUS:
            return None, 0.0
        if key in self._lexicon:
            code = self._lexicon[key]
            return (code, 1.0) if code else (None, 0.0)
        if len(_LETTER.findall(text)) < MIN_LETTERS or self._detector is None:
            return None, 0.0
        values = self._detector.compute_language_confidence_values(text[:1000])
        if not values:
            return None, 0.0
        best = values[0]
        if best.value < MIN_CONFIDENCE:
            return None, float(best.value)
        return self._code_of.get(best.language), float(best.value)
