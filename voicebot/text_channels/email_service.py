"""The e-mail channel at work: mail in (IMAP, the SMTP listener), decided, replies out, drafts decided.

Flow of one message: ``receive`` parses it and stores it (exactly once, see
:mod:`voicebot.storage.email`) -> a decide worker ``claim``s it -> loop guards (our own address,
noise, the per-sender rate limit) -> the thread's conversation is found (In-Reply-To/References of a
message we stored, from the same sender) -> :class:`EmailBot` decides -> one transaction stores the
outcome with the queued reply or the draft and the audit row -> the sender hands queued replies to
SMTP. Approving a draft queues its reply the same way.

A decision that raises is tried again (30 s, then 2 min), then marked ``failed`` with the error; a
reply SMTP does not take is retried with growing delays (30 s doubling up to 1 h) for about a day.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from voicebot.config import EmailConfig
from voicebot.errors import InputError, ProviderError
from voicebot.storage.email import AuditEntry, DraftValues, EmailRepository, MailRecord
from voicebot.storage.records import (
    ConversationStatus,
    DraftStatus,
    EmailDraftRecord,
    EmailMessageRecord,
    InboundStatus,
)
from voicebot.text_channels.email_bot import EmailBot, EmailDecision, EmailPolicy
from voicebot.text_channels.email_message import ParsedEmail, compose_reply, parse_email, reply_headers
from voicebot.text_channels.email_smtp import Mailer, MailRejected

log = logging.getLogger(__name__)

CLAIM_LEASE = timedelta(minutes=5)  # a claim older than this belongs to a process that died
DECIDE_RETRIES = (timedelta(seconds=30), timedelta(minutes=2))
SEND_RETRY_FIRST = timedelta(seconds=30)
SEND_RETRY_MAX = timedelta(hours=1)
SEND_ATTEMPTS = 30
IDLE_CHECK_SECS = 30.0  # workers look for due retries this often even when nothing wakes them
MAX_REPLY_CHARS = 20000


def dedupe_key(parsed: ParsedEmail, raw: bytes) -> str:
    """The Message-ID when there is one, else a hash of the bytes."""
    if parsed.message_id:
        return parsed.message_id
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def mail_record(parsed: ParsedEmail, raw: bytes) -> MailRecord:
    return MailRecord(
        raw=raw,
        dedupe_key=dedupe_key(parsed, raw),
        subject=parsed.subject,
        text=parsed.text,
        message_id=parsed.message_id,
        in_reply_to=parsed.in_reply_to,
        thread_refs=tuple(parsed.references),
        from_address=parsed.from_address or None,
        to_addresses=tuple(parsed.to + parsed.cc),
        attachments=tuple(asdict(a) for a in parsed.attachments),
    )


class EmailService:
    def __init__(
        self,
        runtime: Any,
        config: EmailConfig,
        *,
        mailer: Mailer,
        repository: EmailRepository | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.runtime = runtime
        self.config = config
        self.mailer = mailer
        self.repo = repository or EmailRepository(runtime.db)
        self.clock: Callable[[], datetime] = clock or runtime.clock
        self.tenant_id: str = runtime.tenant.id
        self.bot = EmailBot(runtime, EmailPolicy.from_config(config))
        self.from_name = config.display_name or runtime.tenant.name
        self._decide_wake = asyncio.Event()
        self._send_wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.watchers: list[Any] = []
        self.listener: Any = None

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self, *, mailboxes: bool = True, reuse_port: bool = False) -> None:
        """Start the decide workers and the sender; with ``mailboxes``, the IMAP watchers and the
        SMTP listener of the configuration."""
        for i in range(self.config.workers):
            self._spawn(self._decide_loop(), f"email-decide-{i}")
        self._spawn(self._send_loop(), "email-send")
        if mailboxes:
            from voicebot.text_channels.email_imap import ImapWatcher

            for box in self.config.imap:
                watcher = ImapWatcher(
                    box,
                    start_mailbox=self._mailbox_starter(box.source),
                    deliver=self._imap_deliverer(box.source),
                )
                self.watchers.append(watcher)
                self._spawn(watcher.run(), f"email-imap-{box.source}")
            if self.config.listener.enabled:
                from voicebot.text_channels.email_listener import SmtpListenerServer

                self.listener = SmtpListenerServer(self.config, self._deliver_listener, reuse_port=reuse_port)
                await self.listener.start()
        self._decide_wake.set()
        self._send_wake.set()

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(_log_crash)
        self._tasks.append(task)

    async def stop(self) -> None:
        if self.listener is not None:
            await self.listener.stop()
            self.listener = None
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.watchers.clear()
        await self.mailer.close()

    # --- mail in --------------------------------------------------------------------------------

    async def receive(
        self, raw: bytes, *, source: str, uidvalidity: int | None = None, uid: int | None = None
    ) -> EmailMessageRecord | None:
        """Store one message to be decided; None when it was taken in before."""
        parsed = parse_email(raw)
        record = await self.repo.intake(
            self.tenant_id, source, mail_record(parsed, raw), self.clock(), uidvalidity=uidvalidity, uid=uid
        )
        if record is not None:
            self._decide_wake.set()
        return record

    def _mailbox_starter(self, source: str) -> Callable[[int], Awaitable[int]]:
        async def start_mailbox(uidvalidity: int) -> int:
            return await self.repo.start_mailbox(self.tenant_id, source, uidvalidity, self.clock())

        return start_mailbox

    def _imap_deliverer(self, source: str) -> Callable[[bytes, int, int], Awaitable[None]]:
        async def deliver(raw: bytes, uidvalidity: int, uid: int) -> None:
            await self.receive(raw, source=source, uidvalidity=uidvalidity, uid=uid)

        return deliver

    async def _deliver_listener(self, raw: bytes) -> None:
        await self.receive(raw, source="smtp-listener")

    # --- deciding -------------------------------------------------------------------------------

    async def _decide_loop(self) -> None:
        while True:
            self._decide_wake.clear()
            try:
                claimed = await self.repo.claim(self.tenant_id, self.clock(), CLAIM_LEASE)
            except Exception:
                log.exception("could not claim an e-mail to decide")
                claimed = None
            if claimed is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._decide_wake.wait(), IDLE_CHECK_SECS)
                continue
            await self._decide_one(claimed)

    async def process_pending(self) -> int:
        """Decide every message waiting now, in this task (no workers needed); how many."""
        count = 0
        while (claimed := await self.repo.claim(self.tenant_id, self.clock(), CLAIM_LEASE)) is not None:
            await self._decide_one(claimed)
            count += 1
        return count

    async def _decide_one(self, message: EmailMessageRecord) -> None:
        try:
            raw = await self.repo.raw(message.id)
            await self.decide(message, parse_email(raw))
        except Exception as exc:  # any failure is recorded on the message and retried
            log.exception("deciding e-mail %s failed", message.id)
            attempt = message.attempts  # already counted by the claim
            retry_at = self.clock() + DECIDE_RETRIES[attempt - 1] if attempt <= len(DECIDE_RETRIES) else None
            await self.repo.retry_later(
                message.id, error=f"{type(exc).__name__}: {exc}", now=self.clock(), retry_at=retry_at
            )

    async def decide(self, message: EmailMessageRecord, parsed: ParsedEmail) -> EmailMessageRecord:
        """Decide one claimed message and store the outcome; returns the message as stored."""
        now = self.clock()
        guard = await self._guard(parsed, now)
        if guard is not None:
            stored, _, _ = await self.repo.finish(
                message.id,
                status=InboundStatus.IGNORED,
                now=now,
                reasons=(guard,),
                claimed_at=message.claimed_at,
            )
            log.info("e-mail %s from %s ignored: %s", message.id, parsed.from_address or "?", guard)
            return stored
        conversation_id, with_human = await self._thread(parsed)
        held = "conversation_with_human" if with_human else await self._over_rate_limit(parsed, now)
        if held is not None:
            # a person reads it; the bot neither answers nor adds turns to the conversation
            to_address = parsed.reply_to or parsed.from_address
            decision = EmailDecision("draft", None, [held], "", None, conversation_id, to_address)
        else:
            decision = await self.bot.decide(parsed, conversation_id=conversation_id)
        if decision.action == "ignore":
            stored, _, _ = await self.repo.finish(
                message.id, status=InboundStatus.IGNORED, now=now, reasons=tuple(decision.reasons),
                conversation_id=decision.conversation_id, claimed_at=message.claimed_at,
            )  # fmt: skip
            return stored
        customer_id = (decision.customer or {}).get("id")
        details = {"message_id": parsed.message_id, "from": parsed.from_address, "reasons": decision.reasons,
                   "intent": decision.intent}  # fmt: skip
        if decision.action == "reply":
            reply = self._reply_record(parsed, decision.reply_text, decision.to_address)
            stored, _, _ = await self.repo.finish(
                message.id, status=InboundStatus.REPLIED, now=now, conversation_id=decision.conversation_id,
                intent=decision.intent, reply=reply, claimed_at=message.claimed_at,
                audit=AuditEntry("email.replied", "bot", customer_id, details | {"to": decision.to_address}),
            )  # fmt: skip
            self._send_wake.set()
            return stored
        draft = DraftValues(
            to_address=decision.to_address,
            subject=self._reply_subject(parsed),
            proposed_text=decision.reply_text,
            reasons=tuple(decision.reasons),
            intent=decision.intent,
            customer=decision.customer,
            answers=tuple(decision.answers),
        )
        stored, _, _ = await self.repo.finish(
            message.id, status=InboundStatus.DRAFTED, now=now, conversation_id=decision.conversation_id,
            intent=decision.intent, reasons=tuple(decision.reasons), draft=draft,
            claimed_at=message.claimed_at, audit=AuditEntry("email.drafted", "bot", customer_id, details),
        )  # fmt: skip
        return stored

    async def _guard(self, parsed: ParsedEmail, now: datetime) -> str | None:
        """Why a message must not be answered at all (loops, noise, floods), else None."""
        sender = parsed.from_address
        if not sender:
            return "no_sender"
        own = {a.lower() for a in [self.config.address, *self.config.recipients]}
        if sender.lower() in own:
            return "own_address"
        if parsed.noise:
            return f"noise:{parsed.noise}"
        return None

    async def _over_rate_limit(self, parsed: ParsedEmail, now: datetime) -> str | None:
        """``rate_limited`` when the sender already had its answers for this hour: a robot that
        answers every answer stops getting any, and a person's flood waits for a person."""
        answered = await self.repo.replied_to(self.tenant_id, parsed.from_address, now - timedelta(hours=1))
        return "rate_limited" if answered >= self.config.rate_limit_per_hour else None

    async def _thread(self, parsed: ParsedEmail) -> tuple[str | None, bool]:
        """The conversation this message continues (same sender, not ended), and whether a person
        has it now."""
        ids = [i for i in [parsed.in_reply_to, *reversed(parsed.references)] if i]
        conversation_id = await self.repo.thread_conversation(self.tenant_id, ids)
        if conversation_id is None:
            return None, False
        record = await self.runtime.conversations.get(conversation_id)
        if (record.email or "").lower() != parsed.from_address.lower():
            return None, False  # someone else quoting a thread does not join it
        if record.status == ConversationStatus.ENDED:
            return None, False
        return conversation_id, record.status == ConversationStatus.HANDOFF

    def _reply_subject(self, parsed: ParsedEmail) -> str:
        return reply_headers(parsed, domain=self.config.domain)["Subject"]

    def _compose(self, parsed: ParsedEmail, text: str) -> Any:
        return compose_reply(
            parsed,
            text=text,
            from_address=self.config.address,
            from_name=self.from_name,
            domain=self.config.domain,
            now=self.clock(),
        )

    def _reply_record(self, parsed: ParsedEmail, text: str, to_address: str | None) -> MailRecord:
        message = self._compose(parsed, text)
        raw = message.as_bytes()
        message_id = str(message["Message-ID"])
        refs = str(message.get("References", "")).split()
        return MailRecord(
            raw=raw,
            dedupe_key=message_id,
            subject=str(message["Subject"]),
            text=text,
            message_id=message_id,
            in_reply_to=parsed.message_id,
            thread_refs=tuple(refs),
            from_address=self.config.address,
            to_addresses=(to_address or parsed.reply_to or parsed.from_address,),
        )

    # --- drafts ---------------------------------------------------------------------------------

    async def approve(self, draft_id: str, *, agent: str, text: str | None = None) -> EmailDraftRecord:
        """Send a draft (as proposed, or ``text`` as edited by the agent), threaded; audited."""
        draft = await self.repo.draft(draft_id)
        final = draft.proposed_text if text is None else text
        if not final.strip():
            raise InputError("the reply is empty: write the text to send, or reject the draft")
        if len(final) > MAX_REPLY_CHARS:
            raise InputError(f"the reply is {len(final)} characters long; the limit is {MAX_REPLY_CHARS}")
        if not draft.to_address:
            raise InputError("the message has no address to reply to; reject the draft")
        parsed = parse_email(await self.repo.raw(draft.message_id))
        reply = self._reply_record(parsed, final, draft.to_address)
        decided, _ = await self.repo.decide_draft(
            draft_id,
            status=DraftStatus.APPROVED,
            agent=agent,
            now=self.clock(),
            final_text=final,
            reply=reply,
            audit=AuditEntry(
                "email.draft_approved",
                agent,
                (draft.customer or {}).get("id"),
                {"draft_id": draft_id, "edited": final != draft.proposed_text, "to": draft.to_address},
            ),
        )
        self._send_wake.set()
        return decided

    async def reject(self, draft_id: str, *, agent: str, note: str | None = None) -> EmailDraftRecord:
        draft = await self.repo.draft(draft_id)
        decided, _ = await self.repo.decide_draft(
            draft_id,
            status=DraftStatus.REJECTED,
            agent=agent,
            now=self.clock(),
            note=note,
            audit=AuditEntry(
                "email.draft_rejected",
                agent,
                (draft.customer or {}).get("id"),
                {"draft_id": draft_id, "note": note},
            ),
        )
        return decided

    # --- mail out -------------------------------------------------------------------------------

    async def _send_loop(self) -> None:
        while True:
            self._send_wake.clear()
            try:
                sent_any = await self.send_due()
            except Exception:
                log.exception("sending queued e-mail failed")
                sent_any = False
            if sent_any:
                continue
            timeout = IDLE_CHECK_SECS
            with contextlib.suppress(Exception):
                retry_at = await self.repo.next_retry_at(self.tenant_id)
                if retry_at is not None:
                    timeout = min(timeout, max(0.5, (retry_at - self.clock()).total_seconds()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._send_wake.wait(), timeout)

    async def send_due(self) -> bool:
        """Hand every queued reply that is due to SMTP; True when there were any."""
        due = await self.repo.claim_outbound(self.tenant_id, self.clock(), CLAIM_LEASE)
        for message, raw in due:
            recipients = list(message.to_addresses)
            try:
                await self.mailer.send(raw, sender=self.config.address, recipients=recipients)
            except ProviderError as exc:
                attempts = message.attempts + 1
                give_up = isinstance(exc, MailRejected) or attempts >= SEND_ATTEMPTS
                delay = min(SEND_RETRY_MAX, SEND_RETRY_FIRST * (2 ** (attempts - 1)))
                retry_at = None if give_up else self.clock() + delay
                log.warning("reply %s to %s not sent (%s)%s", message.id, recipients, exc.message,
                            "; giving up" if give_up else f"; retrying in {delay}")  # fmt: skip
                await self.repo.send_failed(
                    message.id, error=exc.message, now=self.clock(), retry_at=retry_at
                )
                continue
            await self.repo.mark_sent(message.id, self.clock())
            log.info("reply %s sent to %s", message.id, ", ".join(recipients))
        return bool(due)

    # --- status ---------------------------------------------------------------------------------

    async def status(self) -> dict[str, Any]:
        counts = await self.repo.counts(self.tenant_id)
        return {
            "enabled": True,
            "address": self.config.address,
            "auto_reply": self.config.auto_reply,
            "mailboxes": [
                {"source": w.config.source, "connected": w.connected.is_set(), "last_error": w.last_error}
                for w in self.watchers
            ],
            "listener": {"host": self.listener.config.host, "port": self.listener.port}
            if self.listener
            else None,
            "messages": counts,
        }


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("e-mail task %s stopped: %r", task.get_name(), task.exception())
