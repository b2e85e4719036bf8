"""The tenant's intent file: ``intents: {name: {description: ..., examples: {en: [...], sl: [...]}}}``.

An intent answered from the knowledge base may name the KB tags of its topic
(``kb_tags: [returns, refunds]``); see DialogueManager for how they are used.

Every error is a ConfigError naming the file and the field (``intents.order_status.examples.sl.3``).
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from voicebot.errors import ConfigError

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_LANG = re.compile(r"^[a-z]{2,3}$")


def load_intents_yaml(path: Path | str, languages: list[str] | None = None) -> list[tuple[str, str]]:
    """(text, intent) pairs from a tenant intent file; `languages` keeps only those languages."""
    path = Path(path)
    file = str(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError("the file does not exist", file=file) from exc
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"not valid YAML: {exc}", file=file) from exc
    if not isinstance(raw, dict) or "intents" not in raw:
        raise ConfigError("the top level must be a mapping with an 'intents' key", file=file, field="intents")
    intents = raw["intents"]
    if not isinstance(intents, dict) or not intents:
        raise ConfigError(
            "must be a non-empty mapping of intent name -> definition", file=file, field="intents"
        )
    examples: list[tuple[str, str]] = []
    for name, spec in intents.items():
        where = f"intents.{name}"
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError(
                f"{name!r} is not a valid intent name (lower_snake_case)", file=file, field=where
            )
        if not isinstance(spec, dict):
            raise ConfigError("must be a mapping with 'examples'", file=file, field=where)
        unknown = set(spec) - {"examples", "description", "kb_tags"}
        if unknown:
            raise ConfigError(f"unknown keys {sorted(unknown)}", file=file, field=where)
        tags = spec.get("kb_tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
            raise ConfigError("must be a list of tag names", file=file, field=f"{where}.kb_tags")
        if "description" in spec and not isinstance(spec["description"], str):
            raise ConfigError("must be a string", file=file, field=f"{where}.description")
        per_language = spec.get("examples")
        if not isinstance(per_language, dict) or not per_language:
            raise ConfigError(
                "must map a language code to a list of examples", file=file, field=f"{where}.examples"
            )
        for language, texts in per_language.items():
            field = f"{where}.examples.{language}"
            if not isinstance(language, str) or not _LANG.match(language):
                raise ConfigError(f"{language!r} is not an ISO 639-1 language code", file=file, field=field)
            if not isinstance(texts, list) or not texts:
                raise ConfigError("must be a non-empty list of strings", file=file, field=field)
            for i, text in enumerate(texts):
                if not isinstance(text, str) or not text.strip():
                    raise ConfigError("must be a non-empty string", file=file, field=f"{field}.{i}")
            if languages is None or language in languages:
                examples.extend((text.strip(), name) for text in texts)
    return examples


def load_intent_kb_tags(path: Path | str) -> dict[str, set[str]]:
    """intent -> the KB tags of its topic, for intents that declare `kb_tags` (file already validated)."""
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    return {
        name: set(spec["kb_tags"])
        for name, spec in raw["intents"].items()
        if isinstance(spec, dict) and spec.get("kb_tags")
    }
