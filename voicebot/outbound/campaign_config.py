"""Campaign definitions as data: one YAML file per campaign type under campaigns/.

Pure: reading a file is the only I/O (in :func:`load_campaign`); calling-window arithmetic takes
the moment to judge (``when`` / ``after``) from the caller and never reads a clock. Validation
errors name the file and the field (``ConfigError("file campaigns/x.yaml, field caller_id: ...")``).
"""

from __future__ import annotations

import re
import string
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)

from voicebot.errors import ConfigError, InputError
from voicebot.outbound.contacts import normalise_phone

# The furthest next_window_start looks ahead before deciding a window never opens.
MAX_LOOKAHEAD_DAYS = 400


class CampaignKind(StrEnum):
    APPOINTMENT_CONFIRMATION = "appointment_confirmation"
    PAYMENT_REMINDER = "payment_reminder"
    CSAT_SURVEY = "csat_survey"


class Weekday(StrEnum):
    """Days in ``datetime.weekday()`` order."""

    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"

    @property
    def number(self) -> int:
        return list(Weekday).index(self)


class VoicemailAction(StrEnum):
    LEAVE_MESSAGE = "leave_message"
    HANG_UP = "hang_up"


class AnswerType(StrEnum):
    RATING_1_5 = "rating_1_5"
    YES_NO = "yes_no"
    FREE_TEXT = "free_text"


class _FieldProblem(ValueError):
    """A cross-field check that knows which field is wrong (read back by load_campaign)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _check_placeholders(text: str) -> str:
    """Placeholders must be plain ``{name}`` (a Python identifier), no conversion or format spec."""
    try:
        parts = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ValueError(f"malformed placeholder in {text!r}: {exc}") from exc
    for _literal, field_name, format_spec, conversion in parts:
        if field_name is None:
            continue
        if not field_name.isidentifier():
            raise ValueError(f"placeholder {{{field_name}}} must be a plain name like {{name}}")
        if format_spec or conversion:
            raise ValueError(f"placeholder {{{field_name}}} must not carry a conversion or format spec")
    return text


def placeholders(text: str) -> set[str]:
    """The variable names a (validated) prompt text uses."""
    return {f for _, f, _, _ in string.Formatter().parse(text) if f}


PromptText = Annotated[str, Field(min_length=1), AfterValidator(_check_placeholders)]
# Per language: {"en": "...", "sl": "..."}
LocalisedPrompt = dict[str, PromptText]


def _check_e164(value: str) -> str:
    if not isinstance(value, str) or not value.startswith("+"):
        raise ValueError("must be an E.164 number starting with '+', e.g. +38612345678")
    try:
        return normalise_phone(value, region="ZZ")  # "+" given: no default region applies
    except InputError as exc:
        raise ValueError(exc.message) from exc


E164 = Annotated[str, AfterValidator(_check_e164)]

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def _parse_hhmm(value: Any) -> time:
    if isinstance(value, time):
        return value
    if not isinstance(value, str):
        # YAML 1.1 reads an unquoted 17:30 as the number 1050
        raise ValueError("write times as quoted 'HH:MM' strings, e.g. '17:30'")
    match = _HHMM.match(value)
    if not match:
        raise ValueError(f"{value!r} is not a time as HH:MM (00:00..23:59)")
    return time(int(match.group(1)), int(match.group(2)))


# dumped back as 'HH:MM' so a stored definition validates again
ClockTime = Annotated[
    time, BeforeValidator(_parse_hhmm), PlainSerializer(lambda t: t.strftime("%H:%M"), return_type=str)
]

_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h)?\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}


def _parse_duration(value: Any) -> int:
    """Seconds as an integer, or a string like '90s', '15m', '2h'; returns seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '15m'")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return int(match.group(1)) * _UNIT_SECONDS[match.group(2) or "s"]
    raise ValueError(f"{value!r} is not a duration: seconds (e.g. 90) or '90s', '15m', '2h'")


DurationSeconds = Annotated[int, BeforeValidator(_parse_duration), Field(ge=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CallingWindow(_Strict):
    """When contacts may be called, judged in each contact's own time zone.

    A window runs from ``start`` (inclusive) to ``end`` (exclusive) on the listed days, on the same
    local day (no windows across midnight); ``holidays`` are local dates with no calls at all.
    """

    days: list[Weekday] = Field(
        default_factory=lambda: [Weekday.MON, Weekday.TUE, Weekday.WED, Weekday.THU, Weekday.FRI],
        min_length=1,
        description="Days of the week calls may be placed on (mon..sun).",
    )
    start: ClockTime = Field(description="Local time the window opens, 'HH:MM'.")
    end: ClockTime = Field(description="Local time the window closes (exclusive), 'HH:MM'.")
    holidays: list[date] = Field(default_factory=list, description="ISO dates without calls.")

    @model_validator(mode="after")
    def _start_before_end(self) -> CallingWindow:
        if self.start >= self.end:
            raise _FieldProblem("calling_window.end", "end must be later than start on the same day")
        return self


class RetryDelays(_Strict):
    """How long to wait before the next attempt, per outcome of the last one."""

    busy: DurationSeconds = Field(description="After a busy signal (486).")
    no_answer: DurationSeconds = Field(description="After ringing without an answer.")
    voicemail: DurationSeconds = Field(description="After reaching an answering machine.")
    failed: DurationSeconds = Field(description="After a network or carrier failure.")


class VoicemailPolicy(_Strict):
    action: VoicemailAction = Field(description="leave_message or hang_up on an answering machine.")
    message: LocalisedPrompt | None = Field(
        None, description="Per language, the message left (required with leave_message)."
    )

    @model_validator(mode="after")
    def _message_fits_action(self) -> VoicemailPolicy:
        if self.action is VoicemailAction.LEAVE_MESSAGE and not self.message:
            raise _FieldProblem("voicemail.message", "leave_message needs a message per language")
        if self.action is VoicemailAction.HANG_UP and self.message:
            raise _FieldProblem("voicemail.message", "hang_up leaves no message; remove it")
        return self


class SurveyQuestion(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$", description="Key the answer is stored under.")
    type: AnswerType = Field(description="rating_1_5, yes_no or free_text.")
    text: LocalisedPrompt = Field(min_length=1, description="Per language, the question asked.")


class CampaignDefinition(_Strict):
    """One campaign type file (campaigns/*.yaml)."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", description="Stable identifier.")
    name: str = Field(min_length=1, description="Shown to operators.")
    kind: CampaignKind = Field(description="appointment_confirmation, payment_reminder or csat_survey.")
    script: dict[str, dict[str, PromptText]] = Field(
        min_length=1,
        description="Per language, the named prompts the bot says; {name}-style placeholders are "
        "filled from the contact's variables. Every language has the same prompt names.",
    )
    caller_id: E164 = Field(description="The number presented to the called party, E.164.")
    calling_window: CallingWindow = Field(description="When calls may be placed.")
    max_attempts: int = Field(3, ge=1, le=20, description="Attempts per contact, the first included.")
    retry_delay: RetryDelays = Field(description="Wait before the next attempt, per outcome.")
    max_concurrent_calls: int = Field(5, ge=1, le=1000, description="Calls of this campaign at once.")
    calls_per_second: float = Field(1.0, gt=0, le=100, description="Rate new calls are started at.")
    voicemail: VoicemailPolicy = Field(description="What to do on an answering machine.")
    ring_timeout: DurationSeconds = Field(
        30, description="How long a call may ring before it counts as no_answer (e.g. 30s)."
    )
    consent_required: bool = Field(
        False,
        description="Call only contacts whose CSV row says consent=yes; the others end as dnc uncalled.",
    )
    questions: list[SurveyQuestion] = Field(
        default_factory=list, description="csat_survey only: the questions, asked in order."
    )

    @field_validator("script")
    @classmethod
    def _same_prompts_everywhere(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        languages = list(value)
        first = set(value[languages[0]])
        if not first:
            raise _FieldProblem(f"script.{languages[0]}", "a language needs at least one prompt")
        for lang in languages[1:]:
            if set(value[lang]) != first:
                missing = sorted(first ^ set(value[lang]))
                raise _FieldProblem(
                    f"script.{lang}", f"prompts differ from {languages[0]!r}: {', '.join(missing)}"
                )
        return value

    @model_validator(mode="after")
    def _cross_checks(self) -> CampaignDefinition:
        languages = set(self.script)
        if self.kind is CampaignKind.CSAT_SURVEY and not self.questions:
            raise _FieldProblem("questions", "a csat_survey needs at least one question")
        if self.kind is not CampaignKind.CSAT_SURVEY and self.questions:
            raise _FieldProblem("questions", f"only a csat_survey has questions, not {self.kind.value}")
        seen: set[str] = set()
        for i, question in enumerate(self.questions):
            if question.id in seen:
                raise _FieldProblem(f"questions.{i}.id", f"question id {question.id!r} appears twice")
            seen.add(question.id)
            if set(question.text) != languages:
                raise _FieldProblem(f"questions.{i}.text", f"needs exactly the languages {sorted(languages)}")
        if self.voicemail.message and set(self.voicemail.message) != languages:
            raise _FieldProblem("voicemail.message", f"needs exactly the languages {sorted(languages)}")
        return self

    @property
    def languages(self) -> list[str]:
        return list(self.script)

    def variables(self) -> set[str]:
        """Every per-contact variable a prompt, question or voicemail message uses."""
        texts = [t for prompts in self.script.values() for t in prompts.values()]
        texts += [t for q in self.questions for t in q.text.values()]
        texts += list((self.voicemail.message or {}).values())
        return set().union(*(placeholders(t) for t in texts))


def _field_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc)


def load_campaign(path: Path | str) -> CampaignDefinition:
    """Read and validate one campaign YAML; every error names the file and the field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError("the file does not exist", file=str(path)) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not valid YAML: {exc}", file=str(path)) from exc
    return parse_campaign(text, str(path))


def parse_campaign(text: str, source: str = "<campaign>") -> CampaignDefinition:
    """Validate one campaign given as YAML (or JSON) text; errors name ``source`` and the field."""
    path = source
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", file=str(path)) from exc
    if not isinstance(raw, dict):
        raise ConfigError("the top level must be a mapping", file=str(path))
    try:
        return CampaignDefinition.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        problem = (first.get("ctx") or {}).get("error")
        if isinstance(problem, _FieldProblem):
            raise ConfigError(str(problem), file=str(path), field=problem.field) from exc
        raise ConfigError(first["msg"], file=str(path), field=_field_path(first["loc"])) from exc


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise InputError(f"unknown time zone {tz!r}") from exc


def _aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise InputError(f"{name} must be a time-zone aware datetime")


def in_calling_window(window: CallingWindow, when: datetime, tz: str) -> bool:
    """Whether ``when`` falls inside the window in the time zone ``tz`` (the contact's)."""
    _aware(when, "when")
    local = when.astimezone(_zone(tz))
    if local.date() in window.holidays:
        return False
    if local.weekday() not in {d.number for d in window.days}:
        return False
    return window.start <= local.time() < window.end


def next_window_start(window: CallingWindow, after: datetime, tz: str) -> datetime:
    """The earliest moment at or after ``after`` inside the window, as a datetime in ``tz``.

    ``after`` itself when it is inside. A start time that does not exist on a DST day (skipped by
    the clocks going forward) moves forward by the gap, as a wall clock does (02:30 -> 03:30); of a
    repeated hour the first occurrence is taken.
    """
    _aware(after, "after")
    zone = _zone(tz)
    local_after = after.astimezone(zone)
    if in_calling_window(window, after, tz):
        return local_after
    day = local_after.date()
    for offset in range(MAX_LOOKAHEAD_DAYS):
        current = day + timedelta(days=offset)
        # fold=0 then a round trip through UTC: nonexistent local times move past the gap
        candidate = datetime.combine(current, window.start, tzinfo=zone)
        candidate = candidate.astimezone(UTC).astimezone(zone)
        # compare in UTC: within one zone Python compares wall clocks and ignores fold
        if candidate.astimezone(UTC) < after.astimezone(UTC):
            continue
        if in_calling_window(window, candidate, tz):
            return candidate
    raise InputError(f"the calling window never opens in the {MAX_LOOKAHEAD_DAYS} days after {after}")
