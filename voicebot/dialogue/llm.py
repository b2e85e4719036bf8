"""Optional LLM, through any OpenAI-compatible endpoint (the `openai` SDK).

The LLM never decides what is true. It may (1) pick an intent among the tenant's when the offline
classifier is unsure, and (2) rephrase an answer that is already grounded in cited passages. Every
rephrasing is checked: numbers, e-mail addresses, URLs and phone numbers in the output must
appear in the original answer or its passages, and the output may not grow past twice the
original; otherwise the original stands. Timeouts and errors return None and the offline path
answers, never silence.
"""

from __future__ import annotations

import logging
import re

from openai import AsyncOpenAI, OpenAIError

from voicebot.config import LLMConfig, llm_api_key

log = logging.getLogger(__name__)

_FACT = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+|https?://\S+|\+?\d[\d\s./:,-]*\d|\d")


def facts(text: str) -> set[str]:
    """Checkable tokens: numbers (digits only), e-mail addresses, URLs."""
    return {
        re.sub(r"[\s./:,-]", "", m) if m[0].isdigit() or m[0] == "+" else m.lower().rstrip(".,;:")
        for m in _FACT.findall(text)
    }


def grounded(candidate: str, sources: list[str]) -> bool:
    allowed: set[str] = set()
    for source in sources:
        allowed |= facts(source)
    return facts(candidate) <= allowed


class LLMClient:
    def __init__(self, config: LLMConfig) -> None:
        key = llm_api_key(config)
        self._config = config
        self._client = AsyncOpenAI(
            base_url=config.base_url,
            api_key=key.get_secret_value() if key else "not-needed",
            timeout=config.timeout_s,
            max_retries=0,
        )

    async def close(self) -> None:
        await self._client.close()

    async def _complete(self, system: str, user: str, max_tokens: int) -> str | None:
        try:
            response = await self._client.chat.completions.create(
                model=self._config.model,
                messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
                max_tokens=max_tokens,
                temperature=0,
            )
        except OpenAIError as exc:
            log.warning("llm call failed, using the offline path: %s", exc)
            return None
        if not response.choices:
            return None
        return (response.choices[0].message.content or "").strip() or None

    async def pick_intent(self, text: str, intents: list[str]) -> str | None:
        system = (
            "You classify a customer-service message. Answer with exactly one label from this list, "
            "or 'none' if no label fits: " + ", ".join(intents)
        )
        answer = await self._complete(system, text, max_tokens=12)
        if answer is None:
            return None
        label = answer.strip().strip(".'\"").lower()
        return label if label in intents else None

    async def rephrase(self, answer: str, passages: list[str], language: str, formality: str) -> str | None:
        system = (
            f"Rephrase the answer for a customer, in language '{language}', {formality} register, in at most "
            "three sentences. Use only facts present in the answer or the passages. Do not add any number, "
            "date, price, address, link or promise that is not in them."
        )
        user = "Answer:\n" + answer + "\n\nPassages:\n" + "\n---\n".join(passages)
        candidate = await self._complete(system, user, max_tokens=200)
        if candidate is None:
            return None
        if len(candidate) > 2 * max(len(answer), 80) or not grounded(candidate, [answer, *passages]):
            log.info("llm rephrasing rejected: not grounded in the cited passages")
            return None
        return candidate
