"""Conversation review: search and filter conversations, the marks reviewers put on bot answers,
and the unanswered questions behind the knowledge-base gaps report.

Search is one indexed query per page: conversations of the tenant newest first (index
``tenant_id, created_at``), keyset-paged by ``(created_at, id)``, each turn-level filter an EXISTS
on the conversation's turns (index ``conversation_id, id``). The page's summaries (first customer
message, lowest bot confidence, handoff reason, marks) come from a few queries on the page's ids.
Text search is a case-insensitive substring match on the turns of each candidate conversation;
it stays bounded by the page size but scans when the text is rare (no full-text index yet).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, delete, exists, func, insert, or_, select
from sqlalchemy.exc import IntegrityError

from voicebot.errors import ConflictError, InputError, NotFoundError
from voicebot.storage import tables
from voicebot.storage._common import utc
from voicebot.storage.conversations import conversation_record, turn_record
from voicebot.storage.db import Database
from voicebot.storage.records import ConversationRecord, ConversationStatus, TurnRecord, TurnRole

__all__ = [
    "ConversationFilter",
    "ConversationPage",
    "ConversationSummary",
    "GapQuestion",
    "MarkRecord",
    "ReviewRepository",
    "Verdict",
]

_C = tables.conversations
_T = tables.turns
_H = tables.handoffs
_R = tables.answer_reviews

# bot replies that mean "the knowledge base had no answer" (voicebot.dialogue.manager._low_confidence)
GAP_REASONS = ("below_threshold", "low_confidence", "failed_turns")
MAX_PAGE = 200


class Verdict(StrEnum):
    RIGHT = "right"
    WRONG = "wrong"


@dataclass(frozen=True, slots=True)
class ConversationFilter:
    text: str | None = None  # a substring of any turn (case-insensitive)
    channel: str | None = None
    status: ConversationStatus | None = None
    resolved_without_human: bool | None = None
    handoff_reason: str | None = None  # exact, or a family: "sensitive" matches "sensitive:legal"
    intent: str | None = None  # of a bot turn (with the confidence range, the same turn)
    min_confidence: float | None = None
    max_confidence: float | None = None
    marked: Verdict | None = None  # has a bot answer marked so
    since: datetime | None = None  # created at or after
    until: datetime | None = None  # created before


@dataclass(frozen=True, slots=True)
class ConversationSummary:
    conversation: ConversationRecord
    first_question: str | None
    lowest_confidence: float | None
    handoff_reason: str | None
    marks: dict[str, int]  # verdict -> count


@dataclass(frozen=True, slots=True)
class ConversationPage:
    items: list[ConversationSummary]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class MarkRecord:
    id: str
    conversation_id: str
    turn_id: int
    verdict: Verdict
    note: str
    reviewer: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class GapQuestion:
    """A customer question the bot could not answer (or answered wrongly, by a reviewer's mark)."""

    text: str
    conversation_id: str
    language: str | None
    at: datetime
    reason: str  # the bot's reason, or "marked_wrong"
    confidence: float | None
    notes: tuple[str, ...] = field(default=())


def _cursor(created_at: datetime, conversation_id: str) -> str:
    raw = f"{utc(created_at).isoformat()}|{conversation_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _parse_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, conversation_id = raw.split("|", 1)
        return utc(datetime.fromisoformat(at)), conversation_id
    except (ValueError, binascii.Error, UnicodeDecodeError, InputError):
        raise InputError("cursor: not a cursor this API returned") from None


def _escape(text: str) -> str:
    """``text`` as a literal inside a LIKE pattern with escape character backslash."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _like(text: str) -> str:
    return f"%{_escape(text)}%"


def mark_record(row: Any) -> MarkRecord:
    return MarkRecord(
        id=row["id"],
        conversation_id=row["conversation_id"],
        turn_id=int(row["turn_id"]),
        verdict=Verdict(row["verdict"]),
        note=row["note"] or "",
        reviewer=row["reviewer"],
        created_at=row["created_at"],
    )


class ReviewRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    # ----------------------------------------------------------------- search

    def _conditions(self, tenant_id: str, f: ConversationFilter) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = [_C.c.tenant_id == tenant_id]
        if f.channel:
            where.append(_C.c.channel == f.channel)
        if f.status is not None:
            where.append(_C.c.status == f.status.value)
        if f.resolved_without_human is not None:
            where.append(_C.c.resolved_without_human.is_(f.resolved_without_human))
        if f.since is not None:
            where.append(_C.c.created_at >= utc(f.since))
        if f.until is not None:
            where.append(_C.c.created_at < utc(f.until))
        if f.text:
            where.append(
                exists().where(_T.c.conversation_id == _C.c.id, _T.c.text.ilike(_like(f.text), escape="\\"))
            )
        bot: list[ColumnElement[bool]] = []
        if f.intent:
            bot.append(_T.c.intent == f.intent)
        if f.min_confidence is not None:
            bot.append(_T.c.confidence >= f.min_confidence)
        if f.max_confidence is not None:
            bot.append(_T.c.confidence <= f.max_confidence)
        if bot:
            where.append(
                exists().where(_T.c.conversation_id == _C.c.id, _T.c.role == TurnRole.BOT.value, *bot)
            )
        if f.handoff_reason:
            reason = f.handoff_reason
            where.append(
                exists().where(
                    _H.c.conversation_id == _C.c.id,
                    or_(_H.c.reason == reason, _H.c.reason.like(_escape(reason) + ":%", escape="\\")),
                )
            )
        if f.marked is not None:
            where.append(exists().where(_R.c.conversation_id == _C.c.id, _R.c.verdict == f.marked.value))
        return where

    async def search(
        self, tenant_id: str, f: ConversationFilter, *, limit: int = 50, cursor: str | None = None
    ) -> ConversationPage:
        if not 1 <= limit <= MAX_PAGE:
            raise InputError(f"limit: between 1 and {MAX_PAGE}")
        where = self._conditions(tenant_id, f)
        if cursor:
            at, after_id = _parse_cursor(cursor)
            where.append(or_(_C.c.created_at < at, and_(_C.c.created_at == at, _C.c.id < after_id)))
        query: Select[Any] = (
            select(_C).where(*where).order_by(_C.c.created_at.desc(), _C.c.id.desc()).limit(limit + 1)
        )
        async with self._db.reader.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
            page = [conversation_record(r) for r in rows[:limit]]
            items = await self._summaries(conn, page)
        more = len(rows) > limit
        next_cursor = _cursor(page[-1].created_at, page[-1].id) if more and page else None
        return ConversationPage(items, next_cursor)

    async def _summaries(self, conn: Any, page: Sequence[ConversationRecord]) -> list[ConversationSummary]:
        ids = [c.id for c in page]
        if not ids:
            return []
        first_ids = (
            select(func.min(_T.c.id))
            .where(_T.c.conversation_id.in_(ids), _T.c.role == TurnRole.CUSTOMER.value)
            .group_by(_T.c.conversation_id)
        )
        first = dict(
            (await conn.execute(select(_T.c.conversation_id, _T.c.text).where(_T.c.id.in_(first_ids)))).all()
        )
        lowest = dict(
            (
                await conn.execute(
                    select(_T.c.conversation_id, func.min(_T.c.confidence))
                    .where(_T.c.conversation_id.in_(ids), _T.c.role == TurnRole.BOT.value)
                    .group_by(_T.c.conversation_id)
                )
            ).all()
        )
        reasons: dict[str, str] = {}
        handoffs = select(_H.c.conversation_id, _H.c.reason).where(_H.c.conversation_id.in_(ids))
        for cid, reason in (await conn.execute(handoffs.order_by(_H.c.created_at))).all():
            reasons[cid] = reason  # the latest handoff wins
        marks: dict[str, dict[str, int]] = {}
        counted = (
            select(_R.c.conversation_id, _R.c.verdict, func.count())
            .where(_R.c.conversation_id.in_(ids))
            .group_by(_R.c.conversation_id, _R.c.verdict)
        )
        for cid, verdict, count in (await conn.execute(counted)).all():
            marks.setdefault(cid, {})[verdict] = int(count)
        return [
            ConversationSummary(c, first.get(c.id), lowest.get(c.id), reasons.get(c.id), marks.get(c.id, {}))
            for c in page
        ]

    # ----------------------------------------------------------------- one conversation

    async def conversation(
        self, tenant_id: str, conversation_id: str
    ) -> tuple[ConversationRecord, list[TurnRecord], list[MarkRecord], list[dict[str, Any]]]:
        """The conversation, its turns (oldest first), the marks on them and its handoffs."""
        async with self._db.reader.connect() as conn:
            row = (
                (
                    await conn.execute(
                        select(_C).where(_C.c.id == conversation_id, _C.c.tenant_id == tenant_id)
                    )
                )
                .mappings()
                .first()
            )
            if row is None:
                raise NotFoundError(f"conversation {conversation_id} does not exist")
            turns = (
                (
                    await conn.execute(
                        select(_T).where(_T.c.conversation_id == conversation_id).order_by(_T.c.id)
                    )
                )
                .mappings()
                .all()
            )
            marks = (
                (
                    await conn.execute(
                        select(_R).where(_R.c.conversation_id == conversation_id).order_by(_R.c.created_at)
                    )
                )
                .mappings()
                .all()
            )
            handoffs = (
                (
                    await conn.execute(
                        select(_H.c.id, _H.c.reason, _H.c.status, _H.c.created_at, _H.c.taken_by)
                        .where(_H.c.conversation_id == conversation_id)
                        .order_by(_H.c.created_at)
                    )
                )
                .mappings()
                .all()
            )
        return (
            conversation_record(row),
            [turn_record(t) for t in turns],
            [mark_record(m) for m in marks],
            [dict(h) for h in handoffs],
        )

    # ----------------------------------------------------------------- marks

    async def mark(
        self, tenant_id: str, turn_id: int, *, verdict: Verdict, note: str, reviewer: str, now: datetime
    ) -> MarkRecord:
        """Mark a bot answer right or wrong; the reviewer's earlier mark on it is replaced."""
        now = utc(now)
        async with self._db.engine.begin() as conn:
            turn = (
                await conn.execute(
                    select(_T.c.conversation_id, _T.c.role)
                    .join(_C, _C.c.id == _T.c.conversation_id)
                    .where(_T.c.id == turn_id, _C.c.tenant_id == tenant_id)
                )
            ).first()
            if turn is None:
                raise NotFoundError(f"turn {turn_id} does not exist")
            if turn.role != TurnRole.BOT.value:
                raise ConflictError(
                    f"turn {turn_id} is the {turn.role}'s; only the bot's answers can be marked"
                )
            values = {
                "id": tables.new_id(),
                "tenant_id": tenant_id,
                "conversation_id": turn.conversation_id,
                "turn_id": turn_id,
                "verdict": verdict.value,
                "note": note,
                "reviewer": reviewer,
                "created_at": now,
            }
            await conn.execute(delete(_R).where(_R.c.turn_id == turn_id, _R.c.reviewer == reviewer))
            try:
                await conn.execute(insert(_R), [values])
            except IntegrityError as exc:  # the same reviewer marking twice at the same instant
                raise ConflictError("this answer was just marked; reload and try again") from exc
        return mark_record(values)

    async def unmark(self, tenant_id: str, turn_id: int, *, reviewer: str) -> None:
        async with self._db.engine.begin() as conn:
            gone = await conn.execute(
                delete(_R).where(
                    _R.c.turn_id == turn_id, _R.c.reviewer == reviewer, _R.c.tenant_id == tenant_id
                )
            )
        if not gone.rowcount:
            raise NotFoundError(f"{reviewer} has no mark on turn {turn_id}")

    # ----------------------------------------------------------------- gaps

    async def unanswered(
        self, tenant_id: str, *, since: datetime, until: datetime, limit: int
    ) -> tuple[list[GapQuestion], bool]:
        """The ``limit`` questions of the newest conversations started in [since, until) that the bot
        could not answer (a reply with a GAP_REASONS reason) or whose answer a reviewer marked
        wrong; and whether there were more than ``limit``."""
        bot = _T.alias("bot")
        customer = _T.alias("customer")
        question = (
            select(customer.c.text)
            .where(
                customer.c.conversation_id == bot.c.conversation_id,
                customer.c.role == TurnRole.CUSTOMER.value,
                customer.c.id < bot.c.id,
            )
            .order_by(customer.c.id.desc())
            .limit(1)
            .scalar_subquery()
        )
        wrong = (
            select(func.count())
            .where(_R.c.turn_id == bot.c.id, _R.c.verdict == Verdict.WRONG.value)
            .scalar_subquery()
        )
        notes_of = select(_R.c.turn_id, _R.c.note).where(_R.c.verdict == Verdict.WRONG.value)
        query = (
            select(
                bot.c.id,
                bot.c.conversation_id,
                bot.c.reason,
                bot.c.confidence,
                bot.c.created_at,
                _C.c.language,
                question.label("question"),
                wrong.label("wrong"),
            )
            .join(_C, _C.c.id == bot.c.conversation_id)
            .where(
                _C.c.tenant_id == tenant_id,
                _C.c.created_at >= utc(since),
                _C.c.created_at < utc(until),
                bot.c.role == TurnRole.BOT.value,
                or_(
                    bot.c.reason.in_(GAP_REASONS),
                    exists().where(_R.c.turn_id == bot.c.id, _R.c.verdict == Verdict.WRONG.value),
                ),
            )
            # newest conversations first: walks the (tenant_id, created_at) index and stops at the limit
            .order_by(_C.c.created_at.desc(), bot.c.id.desc())
            .limit(limit + 1)
        )
        async with self._db.reader.connect() as conn:
            rows = (await conn.execute(query)).mappings().all()
            kept = rows[:limit]
            marked = [r["id"] for r in kept if r["wrong"]]
            notes: dict[int, list[str]] = {}
            if marked:
                for turn_id, note in (await conn.execute(notes_of.where(_R.c.turn_id.in_(marked)))).all():
                    if note:
                        notes.setdefault(int(turn_id), []).append(note)
        questions = [
            GapQuestion(
                text=r["question"],
                conversation_id=r["conversation_id"],
                language=r["language"],
                at=r["created_at"],
                reason="marked_wrong" if r["wrong"] else (r["reason"] or ""),
                confidence=r["confidence"],
                notes=tuple(notes.get(int(r["id"]), ())),
            )
            for r in kept
            if r["question"]
        ]
        return questions, len(rows) > limit
