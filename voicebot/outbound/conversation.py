"""The scripted outbound conversation: what the bot says on a campaign call and what came of it.

Pure: no I/O and no clock; ``today`` is injected for payment dates. The voice pipeline calls
:meth:`ScriptedConversation.opening` once the contact answered, then :meth:`~ScriptedConversation.hear`
per recognised utterance (or DTMF digits) and :meth:`~ScriptedConversation.silence` on a timeout,
speaking each returned :class:`Step`.

Understanding is keyword rules over speech-to-text output in English and Slovenian: the text is
lower-cased, contractions expanded ("can't" -> "can not"), diacritics folded ("kličite" ->
"klicite") and split into clauses at punctuation; a keyword preceded by a negation in its clause
("I can not come", "ne pridem") does not count as said.

Handoffs: with a ``handoff`` prompt in the script the call is transferred (``Step.handoff``); a
script without one has no one to transfer to, so the bot promises a call back and ends the call
(``Step.done``). Either way the outcome is ``HANDOFF`` and ``result["handoff_reason"]`` says why.
A second unusable payment date and no offered slot fitting hand off the same way; two
misunderstandings in a row end the call with a built-in apology and ``HANDOFF`` (a person follows up).

DTMF: 0 asks for a person everywhere; at the appointment question 1 confirms, 2 reschedules,
3 cancels; 1/2 choose a slot; a survey rating is the digit; yes/no is 1/2; a key pressed at a
free-text question skips it.
"""

from __future__ import annotations

import logging
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from voicebot.dialogue.slots_dates import find_date
from voicebot.errors import ConflictError
from voicebot.outbound.campaign_config import AnswerType, CampaignDefinition, CampaignKind, VoicemailAction
from voicebot.outbound.schedule import Outcome

__all__ = ["MAX_PROMISE_DAYS", "ConversationState", "ScriptedConversation", "Step", "parse_payment_date"]

logger = logging.getLogger(__name__)

# A promised payment date further ahead than this is not accepted (asked again once).
MAX_PROMISE_DAYS = 90

# The bot's own sentences: key -> language -> text. English is the fallback.
BUILTIN: dict[str, dict[str, str]] = {
    "not_understood": {"en": "Sorry, I did not catch that.", "sl": "Oprostite, tega nisem razumel."},
    "rating_hint": {
        "en": "Please answer with a number from 1 to 5.",
        "sl": "Prosim, odgovorite s številko od 1 do 5.",
    },
    "yes_no_hint": {"en": "Please answer yes or no.", "sl": "Prosim, odgovorite z da ali ne."},
    "still_there": {"en": "Are you still there?", "sl": "Ste še tam?"},
    "silence_goodbye": {
        "en": "I cannot hear you, so I will end the call now. Goodbye!",
        "sl": "Ne slišim vas, zato bom zdaj končal klic. Nasvidenje!",
    },
    "dnc": {
        "en": "I am sorry for the disturbance. We will not call you again. Goodbye!",
        "sl": "Oprostite za motnjo. Ne bomo vas več klicali. Nasvidenje!",
    },
    "callback": {
        "en": "I will ask a colleague to call you back. Goodbye!",
        "sl": "Prosil bom sodelavca, da vas pokliče nazaj. Nasvidenje!",
    },
    "give_up": {
        "en": "I am sorry, I am having trouble understanding you. A colleague will get in touch "
        "with you. Goodbye!",
        "sl": "Oprostite, težko vas razumem. Sodelavec vas bo poklical. Nasvidenje!",
    },
    "date_range": {
        "en": "I can note a payment date from today up to 90 days ahead. When can you pay?",
        "sl": "Zabeležim lahko datum plačila od danes do 90 dni naprej. Kdaj lahko plačate?",
    },
}

_WEEKDAY_NAMES = {
    "en": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
    "sl": ["ponedeljek", "torek", "sreda", "četrtek", "petek", "sobota", "nedelja"],
}
_MONTH_NAMES_EN = [
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Step:
    text: str  # what the bot says now ("" = nothing)
    done: bool = False  # the call ends after this text is spoken
    handoff: bool = False  # the call goes to a person after this text is spoken


class ConversationState(StrEnum):
    START = "start"  # dialled and answered, opening not spoken yet
    ASK_CONFIRM = "ask_confirm"  # appointment: confirm, reschedule or cancel?
    CHOOSE_SLOT = "choose_slot"  # appointment: which offered slot?
    ASK_PLAN = "ask_plan"  # payment: when will you pay?
    SURVEY_QUESTION = "survey_question"  # survey: question number ``_question`` is open
    DONE = "done"


_S = ConversationState
_TRANSITIONS: dict[ConversationState, frozenset[ConversationState]] = {
    _S.START: frozenset({_S.ASK_CONFIRM, _S.ASK_PLAN, _S.SURVEY_QUESTION}),
    _S.ASK_CONFIRM: frozenset({_S.CHOOSE_SLOT, _S.DONE}),
    _S.CHOOSE_SLOT: frozenset({_S.DONE}),
    _S.ASK_PLAN: frozenset({_S.DONE}),
    _S.SURVEY_QUESTION: frozenset({_S.SURVEY_QUESTION, _S.DONE}),
    _S.DONE: frozenset(),
}
_FIRST_STATE = {
    CampaignKind.APPOINTMENT_CONFIRMATION: _S.ASK_CONFIRM,
    CampaignKind.PAYMENT_REMINDER: _S.ASK_PLAN,
    CampaignKind.CSAT_SURVEY: _S.SURVEY_QUESTION,
}

# ---------------------------------------------------------------------------------------------
# Understanding: normalisation and keyword patterns (over folded text: no diacritics, no apostrophes)

_FOLD = str.maketrans({"č": "c", "š": "s", "ž": "z", "ć": "c", "đ": "d", "’": "'", "`": "'"})
_CONTRACTIONS = [
    (re.compile(r"\bwon'?t\b"), "will not"),
    (re.compile(r"\bcan'?t\b|\bcannot\b"), "can not"),
    (re.compile(r"\bshan'?t\b"), "shall not"),
    (re.compile(r"\b(do|does|did|is|are|was|were|would|could|should|have|has|had|must|ai)n'?t\b"), r"\1 not"),
    (re.compile(r"'ll\b"), " will"),
    (re.compile(r"'m\b"), " am"),
    (re.compile(r"'re\b"), " are"),
    (re.compile(r"'ve\b"), " have"),
    (re.compile(r"'d\b"), " would"),
    (re.compile(r"'s\b"), ""),
]
_CLAUSE_SPLIT = re.compile(r"[.,;:!?¿¡…]+(?!\d)|\b(?:but|however|ampak|vendar|toda)\b")
_NON_WORD = re.compile(r"[^a-z0-9]+")
_NEGATORS = frozenset({"not", "never", "ne", "nisem", "nikoli", "nikakor", "nobody"})
_NEGATION_WINDOW = 3  # tokens before a keyword that may negate it


def _p(pattern: str) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + pattern + r")\b")


_DNC = _p(
    r"stop (calling|ringing)|never (call|ring|phone)|take me off"
    r"|do not (ever )?(call|ring|phone) (me |us |this number )?(again|anymore|any more|ever)"
    r"|do not (ever )?(call|ring|phone) (me|us|this number)$"
    r"|remove (my|this) (phone )?number|delete my (phone )?number"
    r"|put me on (the|your) do not call|unsubscribe|ne klicite (me |nas )?(vec|nikoli)|nehajte (me )?klicati"
    r"|(odstranite|izbrisite|zbrisite) (mojo |mojo telefonsko )?stevilko|ne zelim (vec )?(vasih )?klicev"
)
_HUMAN_STRONG = _p(
    r"(speak|talk|put me through|connect me|transfer me|get me)( \w+){0,3} (to|with)"
    r" (a |an |the |some |your )?(real )?"
    r"(person|human|someone|somebody|agent|operator|colleague|representative|staff|manager)"
    r"|real person|real human|(zelim|hocem|zelel bi|zelela bi|bi) (govoriti|se pogovoriti|govorit)"
    r"|povezite me|lahko govorim (s|z)|(s|z) (clovekom|osebo|sodelav\w*|operater\w*|nekom)"
)
_HUMAN_WORD = _p(
    r"agent|human|(?<!in )person|colleague|operator|representative|someone real|manager"
    r"|clove\w*|sodelav\w*|operater\w*|osebo|oseba"
)
_CONFIRM = _p(
    r"yes|yeah|yep|yup|yea|sure|of course|certainly|definitely|absolutely|correct|confirm\w*|ok|okay"
    r"|alright|all right|fine|will be there|be there|come|coming|that works|sounds good|perfect"
    r"|da|ja|seveda|vsekakor|pridem|prisel|prisla|prisli|bom|potrjujem|potrdim|potrdi\w*|v redu|drzi|velja"
)
_RESCHEDULE = _p(
    r"move|moving|another (time|day|date|slot|appointment|termin)|other (time|day|date)"
    r"|different (time|day|date|slot)|reschedul\w*|re schedul\w*|postpon\w*"
    r"|later (date|time)|earlier (date|time)"
    r"|change (it|the (time|date|day|appointment))|can not (come|make it|attend|be there|do)"
    r"|will not (be able|make it)|not able to|unable to|prestav\w*|drug\w* (termin\w*|dan|cas|datum)"
    r"|ne morem|ne bom mogel|ne bom mogla|spremen\w*"
)
_CANCEL = _p(
    r"cancel\w*|call (it )?off|will not (come|be coming|be there|attend)|not coming|not going to come"
    r"|do not need (it|the appointment)|no longer need|odpov\w*|ne bom (prisel|prisla|prisli|prisla)?"
    r"|ne pridem|ne potrebujem"
)
_PLAIN_NO = _p(r"no|nope|nah|not really|ne")
_NEITHER = _p(r"neither|none|no|nope|nah|not really|noben\w*|nobeden|nic od tega|ne")
_FIRST = _p(r"first|1st|former|prv\w*")
_SECOND = _p(r"second|2nd|latter|drug\w*")
_SEND_INVOICE = _p(r"send|e ?mail\w*|mail|posl\w*|e ?post\w*|copy|kopij\w*")
_INVOICE_WORD = _p(r"invoice|bill|racun\w*")
_PAY_WORD = _p(r"pay\w*|plac\w*|poravna\w*")
_ALREADY_PAID = _p(r"already paid|paid (it )?already|have paid|ze (sem )?placal\w*|sem (ze )?placal\w*")
_CANT_PAY = _p(r"can not pay|unable to pay|not able to pay|no money|ne morem placati|nimam denarja")
_DECLINE = _p(
    r"not now|no time|not interested|not a good time|busy|do not have (the )?time|have no time|no thanks"
    r"|no thank you|not today|call (me )?(back )?later|nimam (casa|cas)|ne zanima|ne zdaj|ne hvala|ne, hvala"
    r"|nisem zainteresiran\w*|zaseden\w*|ne utegnem|kasneje"
)
_YES = _p(
    r"yes|yeah|yep|yup|yea|sure|of course|certainly|definitely|absolutely|i would(?! not)|i will(?! not)"
    r"|surely|da|ja|seveda|vsekakor|bi|zagotovo|gotovo|priporocil\w*"
)
_NO = _p(r"no|nope|nah|never|not really|would not|will not|probably not|ne|nikakor|nikoli")
_UNSURE = _p(r"not sure|maybe|perhaps|do not know|no idea|nisem prepric\w*|mogoce|morda|ne vem|bomo videli")
_RANGE_PHRASE = _p(
    r"(out of|from|od|izmed)( (1|one|ena|en|eno))?( (to|do))? (5|five|pet)|na lestvici|on a scale|scale"
)
_PAST_HINT = _p(r"yesterday|last|ago|vceraj|prejsnj\w*|lani")
_CARDINALS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
    "nic": 0, "nula": 0, "ena": 1, "eno": 1, "enka": 1, "dva": 2, "dve": 2, "dvojka": 2, "tri": 3,
    "trojka": 3, "stiri": 4, "stirica": 4, "pet": 5, "petica": 5, "sest": 6, "sedem": 7, "osem": 8,
    "devet": 9, "deset": 10, "enajst": 11, "dvanajst": 12,
}  # fmt: skip
_FILLERS = frozenset(
    re.findall(
        r"\w+",
        "uh um umm er erm ah eh hm hmm mm mmm well so like please the a an i think say id would it be"
        " is that take choose option number no pa torej mislim izberem prosim bo",
    )
)
_SLOT_STOPWORDS = frozenset(re.findall(r"\w+", "at on the of in a an ob ura uri h ali or and na v je"))
_WEEKDAY_WORDS = [
    re.compile(r"mon(day)?|pon\w*"),
    re.compile(r"tue(s|sday)?|tor(ek|ka|ku)"),
    re.compile(r"wed(nesday)?|sred\w"),
    re.compile(r"thu(r|rs|rsday)?|cetrt\w*"),
    re.compile(r"fri(day)?|pet(ek|ka|ku)"),
    re.compile(r"sat(urday)?|sobot\w"),
    re.compile(r"sun(day)?|nedelj\w"),
]


@dataclass(frozen=True, slots=True)
class _Heard:
    """One utterance, normalised for matching."""

    clauses: tuple[str, ...]  # folded, lower-case, words separated by single spaces

    @classmethod
    def of(cls, text: str) -> _Heard:
        folded = text.lower().translate(_FOLD)
        for pattern, replacement in _CONTRACTIONS:
            folded = pattern.sub(replacement, folded)
        folded = re.sub(r"\b(cant|wont|dont|didnt|doesnt|isnt|wouldnt|couldnt|havent)\b", _expand, folded)
        parts = (_NON_WORD.sub(" ", c).strip() for c in _CLAUSE_SPLIT.split(folded))
        return cls(tuple(p for p in parts if p))

    @property
    def tokens(self) -> list[str]:
        return [t for c in self.clauses for t in c.split()]

    def says(self, pattern: re.Pattern[str]) -> bool:
        """Whether ``pattern`` occurs somewhere without a negation just before it."""
        return any(not negated for negated in self._hits(pattern))

    def says_negated(self, pattern: re.Pattern[str]) -> bool:
        """Whether ``pattern`` occurs with a negation just before it ("not sure")."""
        return any(self._hits(pattern))

    def mentions(self, pattern: re.Pattern[str]) -> bool:
        """Whether ``pattern`` occurs at all, negated or not."""
        return bool(self._hits(pattern))

    def _hits(self, pattern: re.Pattern[str]) -> list[bool]:
        hits = []
        for clause in self.clauses:
            for match in pattern.finditer(clause):
                before = clause[: match.start()].split()[-_NEGATION_WINDOW:]
                hits.append(any(t in _NEGATORS for t in before))
        return hits

    def negated_tokens(self) -> set[int]:
        """Indexes (into :attr:`tokens`) of the two tokens after a negation in the same clause."""
        out: set[int] = set()
        start = 0
        for clause in self.clauses:
            words = clause.split()
            for i, token in enumerate(words):
                if token in _NEGATORS:
                    out.update(start + j for j in range(i + 1, min(i + 3, len(words))))
            start += len(words)
        return out


def _expand(match: re.Match[str]) -> str:
    word = match.group(0)
    return {"cant": "can not", "wont": "will not"}.get(word, word[:-2] + " not")


def _numbers(heard: _Heard) -> list[int]:
    """Numbers said (digits or number words), leaving out negated ones ("not five")."""
    negated = heard.negated_tokens()
    out = []
    for i, token in enumerate(heard.tokens):
        if i in negated:
            continue
        if token.isdigit() and len(token) <= 3:
            out.append(int(token))
        elif token in _CARDINALS:
            out.append(_CARDINALS[token])
    return out


def parse_rating(heard: _Heard) -> int | None:
    """A rating 1..5, or None when there is none, several, or one out of range."""
    cleaned = _Heard(tuple(_RANGE_PHRASE.sub(" ", c) for c in heard.clauses))
    values = set(_numbers(cleaned))
    if len(values) == 1 and 1 <= (value := values.pop()) <= 5:
        return value
    return None


def parse_yes_no(heard: _Heard) -> bool | None:
    if heard.says(_UNSURE):
        return None
    yes = heard.says(_YES)
    no = heard.says(_NO) or heard.says_negated(_YES)
    return yes if yes != no else None


def _slot_keys(text: str) -> set[str]:
    """What identifies a slot when said: weekdays, month stems, numbers (and words of 4+ letters)."""
    keys: set[str] = set()
    heard = _Heard.of(text)
    for token in heard.tokens:
        number = int(token) if token.isdigit() and len(token) <= 4 else _CARDINALS.get(token)
        if number is not None:
            if number:
                keys.add(str(number))
                if 1 <= number <= 11:  # "at two" may mean 14:00
                    keys.add(str(number + 12))
        elif (
            weekday := next((i for i, w in enumerate(_WEEKDAY_WORDS) if w.fullmatch(token)), None)
        ) is not None:
            keys.add(f"wd{weekday}")
        elif len(token) >= 3 and token not in _SLOT_STOPWORDS:
            keys.add(token[:4])
    return keys


def choose_slot(heard: _Heard, slots: list[str]) -> int | None:
    """Which of two offered slots (0 or 1) the contact picked, or None."""
    negated = heard.negated_tokens()
    tokens = heard.tokens
    first = any(_FIRST.fullmatch(t) and i not in negated for i, t in enumerate(tokens))
    second = any(_SECOND.fullmatch(t) and i not in negated for i, t in enumerate(tokens))
    if first != second:
        return 0 if first else 1
    content = [t for t in tokens if t not in _FILLERS]
    if len(content) == 1 and content[0] in {"1", "2", "one", "two", "ena", "dva", "dve", "eno"}:
        return 0 if content[0] in {"1", "one", "ena", "eno"} else 1
    # "one" is a pronoun here ("the one on Thursday"), not a number
    said = _slot_keys(" ".join(t for i, t in enumerate(tokens) if i not in negated and t != "one"))
    keys = [_slot_keys(s) for s in slots]
    scores = [len(said & (keys[0] - keys[1])), len(said & (keys[1] - keys[0]))]
    if scores[0] != scores[1] and all(slots):
        return 0 if scores[0] > scores[1] else 1
    return None


def parse_payment_date(text: str, today: date, language: str = "en") -> date | None:
    """The day a contact says they will pay, relative to ``today``, preferring future dates.

    The shared dialogue rules come first (they know Slovenian inflections such as "do 5. decembra"
    that dateparser's data misses); dateparser, in the conversation language then English, handles
    the rest and anything that looks past ("last Friday", "yesterday"), which the rules read forward.
    """
    now = datetime.combine(today, datetime.min.time()).replace(hour=12)
    if not _Heard.of(text).says(_PAST_HINT):
        found = find_date(text, now)
        if found is not None:
            return found.day
    return _dateparser_date(text, now, language)


def _dateparser_date(text: str, now: datetime, language: str) -> date | None:
    import warnings

    from dateparser.search import search_dates  # imported on first use: it costs ~0.2 s

    settings: Any = {"PREFER_DATES_FROM": "future", "RELATIVE_BASE": now, "DATE_ORDER": "DMY"}
    languages = list(dict.fromkeys([language, "en"]))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            results = search_dates(text, languages=languages, settings=settings)
    except Exception:  # dateparser raises assorted errors on odd input; no date is the answer
        return None
    for matched, value in results or []:
        if not matched.strip().isdigit():
            return value.date()
    return None


def render_date(day: date, language: str) -> str:
    """A date as spoken: "Friday 5 December 2026" (en), "petek, 5. 12. 2026" (sl)."""
    if language == "sl":
        return f"{_WEEKDAY_NAMES['sl'][day.weekday()]}, {day.day}. {day.month}. {day.year}"
    return f"{_WEEKDAY_NAMES['en'][day.weekday()]} {day.day} {_MONTH_NAMES_EN[day.month - 1]} {day.year}"


class _Blank(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""  # a missing variable leaves the sentence readable rather than raising


def _fill(template: str, values: Mapping[str, str]) -> str:
    text = string.Formatter().vformat(template, (), _Blank(values))
    text = re.sub(r"\s+([,.!?;:])", r"\1", text)  # "Hello , this" -> "Hello, this"
    return re.sub(r"\s{2,}", " ", text).strip()


class ScriptedConversation:
    """One outbound call's conversation for a campaign definition; see the module docstring."""

    def __init__(
        self,
        definition: CampaignDefinition,
        *,
        name: str | None,
        variables: Mapping[str, str],
        language: str | None,
        today: date,
    ) -> None:
        self.definition = definition
        wanted = (language or "").lower().replace("_", "-").split("-")[0]
        self.language: str = wanted if wanted in definition.script else definition.languages[0]
        self.outcome: Outcome | None = None
        self.result: dict[str, Any] = {}
        self.dnc_requested = False
        self.today = today
        self._values = {k: str(v) for k, v in variables.items() if v is not None}
        if name is not None:
            self._values["name"] = name
        self._state = ConversationState.START
        self._question = 0  # survey: index of the open question
        self._answers: dict[str, Any] = {}
        self._misunderstood = 0  # in a row
        self._silences = 0  # in a row
        self._reasked = False  # survey: the open question was re-asked with a hint
        self._bad_dates = 0

    # -- public API ------------------------------------------------------------------------

    def state(self) -> str:
        return self._state.value

    def opening(self) -> Step:
        if self._state is not ConversationState.START:
            raise ConflictError(f"the opening was already spoken (state {self._state})")
        self._to(_FIRST_STATE[self.definition.kind])
        parts = ["greeting"]
        if self.definition.kind is CampaignKind.APPOINTMENT_CONFIRMATION:
            parts += ["purpose", "ask_confirm"]
        elif self.definition.kind is CampaignKind.PAYMENT_REMINDER:
            parts += ["purpose", "ask_plan"]
        texts = [self._prompt(p) for p in parts]
        if self.definition.kind is CampaignKind.CSAT_SURVEY:
            texts.append(self._question_text())
        return Step(" ".join(t for t in texts if t))

    def hear(self, text: str, *, source: Literal["speech", "dtmf"] = "speech") -> Step:
        if self._state is ConversationState.DONE:
            return Step("", done=True)
        if self._state is ConversationState.START:
            return self.opening()  # the contact spoke first ("Hello?"): answer with the opening
        if not text.strip():
            return self.silence()  # the recogniser heard nothing usable
        self._silences = 0
        if source == "dtmf":
            return self._dtmf(text.strip()[:1])
        heard = _Heard.of(text)
        if heard.says(_DNC):
            self.dnc_requested = True
            return self._finish(Outcome.DECLINED, self._builtin("dnc"))
        in_free_text = self._state is _S.SURVEY_QUESTION and self._question_type() is AnswerType.FREE_TEXT
        if heard.says(_HUMAN_STRONG) or (not in_free_text and heard.says(_HUMAN_WORD)):
            return self._handoff("asked_for_person")
        if self._state is _S.ASK_CONFIRM:
            return self._hear_confirm(heard)
        if self._state is _S.CHOOSE_SLOT:
            return self._hear_slot(heard)
        if self._state is _S.ASK_PLAN:
            return self._hear_plan(text, heard)
        return self._hear_answer(text, heard)

    def silence(self) -> Step:
        if self._state is ConversationState.DONE:
            return Step("", done=True)
        if self._state is ConversationState.START:
            return self.opening()
        self._silences += 1
        if self._silences >= 2:
            self._to(_S.DONE)  # the outcome stays None: the campaign engine decides (e.g. retry)
            return Step(self._builtin("silence_goodbye"), done=True)
        return Step(f"{self._builtin('still_there')} {self._current_question()}")

    def voicemail_message(self) -> str | None:
        voicemail = self.definition.voicemail
        if voicemail.action is not VoicemailAction.LEAVE_MESSAGE or not voicemail.message:
            return None
        template = voicemail.message.get(self.language) or next(iter(voicemail.message.values()))
        return _fill(template, self._values)

    # -- appointment -----------------------------------------------------------------------

    def _hear_confirm(self, heard: _Heard) -> Step:
        if heard.says(_RESCHEDULE):
            return self._offer_slots()
        if heard.says(_CANCEL):
            return self._decide("cancel", Outcome.CANCELLED, "cancelled")
        if heard.says(_CONFIRM):
            return self._decide("confirm", Outcome.CONFIRMED, "confirmed")
        if heard.says(_PLAIN_NO):  # "no" to "will you come?": offer other times rather than cancel
            return self._offer_slots()
        return self._not_understood()

    def _offer_slots(self) -> Step:
        self._misunderstood = 0
        self._to(_S.CHOOSE_SLOT)
        return Step(self._prompt("offer_slots"))

    def _hear_slot(self, heard: _Heard) -> Step:
        choice = choose_slot(heard, self._slots())
        if choice is not None:
            return self._rescheduled(choice)
        if heard.says(_CANCEL):
            return self._decide("cancel", Outcome.CANCELLED, "cancelled")
        if heard.says(_NEITHER):
            self.result["decision"] = "reschedule"
            return self._handoff("no_slot_fits")
        return self._not_understood()

    def _slots(self) -> list[str]:
        return [self._values.get("slot_1", "").strip(), self._values.get("slot_2", "").strip()]

    def _rescheduled(self, index: int) -> Step:
        slot = self._slots()[index]
        if not slot:  # the contact's row had no such slot: a person arranges it
            self.result["decision"] = "reschedule"
            return self._handoff("no_slot_fits")
        self.result["new_slot"] = slot
        return self._decide("reschedule", Outcome.RESCHEDULED, "rescheduled", new_slot=slot)

    def _decide(self, decision: str, outcome: Outcome, prompt: str, **extra: str) -> Step:
        self.result["decision"] = decision
        return self._finish(outcome, self._prompt(prompt, **extra))

    # -- payment ---------------------------------------------------------------------------

    def _hear_plan(self, text: str, heard: _Heard) -> Step:
        if heard.says(_ALREADY_PAID):  # "I already paid on Monday" is no promise: a person checks
            return self._handoff("already_paid")
        promised = parse_payment_date(text, self.today, self.language)
        if promised is not None:
            if not self.today <= promised <= self.today + timedelta(days=MAX_PROMISE_DAYS):
                self._bad_dates += 1
                if self._bad_dates >= 2:  # a person agrees a date with them
                    return self._handoff("invalid_date")
                return Step(self._builtin("date_range"))
            self.result["promised_date"] = promised.isoformat()
            if self._wants_invoice(heard):
                self.result["invoice_requested"] = True  # both said: the promise is the outcome
            spoken = render_date(promised, self.language)
            return self._finish(
                Outcome.PROMISED_TO_PAY, self._prompt("promise_recorded", promised_date=spoken)
            )
        if heard.says(_ALREADY_PAID):
            return self._handoff("already_paid")
        if heard.says(_CANT_PAY):
            return self._handoff("cannot_pay")
        if self._wants_invoice(heard):
            self.result["invoice_requested"] = True
            return self._finish(Outcome.INVOICE_REQUESTED, self._prompt("invoice_sent"))
        return self._not_understood()

    @staticmethod
    def _wants_invoice(heard: _Heard) -> bool:
        """ "Send me the invoice", "e-mail it", "the invoice, please"; not "I will pay the invoice"."""
        if heard.says(_SEND_INVOICE):
            return True
        return heard.says(_INVOICE_WORD) and not heard.mentions(_PAY_WORD)

    # -- survey ----------------------------------------------------------------------------

    def _question_type(self) -> AnswerType:
        return self.definition.questions[self._question].type

    def _question_text(self) -> str:
        question = self.definition.questions[self._question]
        template = question.text.get(self.language) or next(iter(question.text.values()))
        return _fill(template, self._values)

    def _hear_answer(self, text: str, heard: _Heard) -> Step:
        if not self._answers and heard.says(_DECLINE):
            return self._finish(Outcome.DECLINED, self._prompt("declined"))
        kind = self._question_type()
        value: Any
        if kind is AnswerType.FREE_TEXT:
            value = text.strip()
        else:
            value = parse_rating(heard) if kind is AnswerType.RATING_1_5 else parse_yes_no(heard)
            if value is None and not self._reasked:
                self._reasked = True
                return Step(self._hint())
        return self._answer(value)

    def _hint(self) -> str:
        key = "rating_hint" if self._question_type() is AnswerType.RATING_1_5 else "yes_no_hint"
        return f"{self._builtin(key)} {self._question_text()}"

    def _answer(self, value: Any) -> Step:
        self._answers[self.definition.questions[self._question].id] = value
        self._reasked = False
        self._misunderstood = 0
        if self._question + 1 < len(self.definition.questions):
            self._question += 1
            self._to(_S.SURVEY_QUESTION)
            return Step(self._question_text())
        self.result["answers"] = dict(self._answers)
        return self._finish(Outcome.SURVEY_COMPLETED, self._prompt("thanks"))

    # -- DTMF ------------------------------------------------------------------------------

    def _dtmf(self, digit: str) -> Step:
        if digit == "0":
            return self._handoff("asked_for_person")
        if self._state is _S.ASK_CONFIRM:
            if digit == "1":
                return self._decide("confirm", Outcome.CONFIRMED, "confirmed")
            if digit == "2":
                return self._offer_slots()
            if digit == "3":
                return self._decide("cancel", Outcome.CANCELLED, "cancelled")
        elif self._state is _S.CHOOSE_SLOT and digit in {"1", "2"}:
            return self._rescheduled(int(digit) - 1)
        elif self._state is _S.SURVEY_QUESTION:
            kind = self._question_type()
            if kind is AnswerType.FREE_TEXT:
                return self._answer(None)  # a key instead of words: the question is skipped
            if kind is AnswerType.RATING_1_5 and digit in "12345":
                return self._answer(int(digit))
            if kind is AnswerType.YES_NO and digit in {"1", "2"}:
                return self._answer(digit == "1")
            if not self._reasked:
                self._reasked = True
                return Step(self._hint())
            return self._answer(None)
        return self._not_understood()

    # -- shared ----------------------------------------------------------------------------

    def _current_question(self) -> str:
        if self._state is _S.ASK_CONFIRM:
            return self._prompt("ask_confirm")
        if self._state is _S.CHOOSE_SLOT:
            return self._prompt("offer_slots")
        if self._state is _S.ASK_PLAN:
            return self._prompt("ask_plan")
        return self._question_text()

    def _not_understood(self) -> Step:
        self._misunderstood += 1
        if self._misunderstood >= 2:
            return self._give_up("not_understood")
        return Step(f"{self._builtin('not_understood')} {self._current_question()}")

    def _give_up(self, reason: str) -> Step:
        self.result["handoff_reason"] = reason
        return self._finish(Outcome.HANDOFF, self._builtin("give_up"))

    def _handoff(self, reason: str) -> Step:
        self.result["handoff_reason"] = reason
        self.outcome = Outcome.HANDOFF
        self._to(_S.DONE)
        if "handoff" in self._script():
            return Step(self._prompt("handoff"), handoff=True)
        return Step(self._builtin("callback"), done=True)

    def _finish(self, outcome: Outcome, text: str) -> Step:
        self.outcome = outcome
        self._to(_S.DONE)
        return Step(text, done=True)

    def _to(self, new: ConversationState) -> None:
        if new not in _TRANSITIONS[self._state]:
            raise ConflictError(f"conversation cannot go from {self._state} to {new}")
        logger.debug("outbound conversation %s -> %s", self._state, new)
        self._state = new

    def _script(self) -> dict[str, str]:
        return self.definition.script[self.language]

    def _prompt(self, name: str, **extra: str) -> str:
        template = self._script().get(name)
        return _fill(template, {**self._values, **extra}) if template else ""

    def _builtin(self, key: str) -> str:
        phrases = BUILTIN[key]
        return phrases.get(self.language, phrases["en"])
