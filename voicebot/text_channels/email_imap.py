"""Reading one IMAP mailbox for the e-mail bot (aioimaplib): IDLE where offered, polling otherwise.

A session logs in, selects the mailbox, notes its UIDVALIDITY and asks for every UID above the last
one taken in (kept in the database, see :mod:`voicebot.storage.email`). Each new message is fetched
with ``BODY.PEEK[]`` (the mailbox's \\Seen flags are left to people) and handed to ``deliver``, which
stores it and advances the mailbox in one transaction, so a crash between two messages loses none
and repeats none. Then the session waits: in IDLE until the server reports a change (re-entered every
few minutes, below the 29-minute limit of RFC 2177), or ``poll_secs``. A dropped connection or a
failed command starts a new session after a growing pause (1 s up to 60 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from collections.abc import Awaitable, Callable
from typing import Any

import aioimaplib

from voicebot.config import ImapMailbox
from voicebot.errors import ConfigError, ProviderUnavailable
from voicebot.text_channels.email_smtp import tls_context

log = logging.getLogger(__name__)

Deliver = Callable[[bytes, int, int], Awaitable[None]]  # raw, uidvalidity, uid
StartMailbox = Callable[[int], Awaitable[int]]  # uidvalidity -> last UID taken in

IDLE_RENEW_SECS = 5 * 60
MAX_BACKOFF_SECS = 60.0
_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]", re.I)
_FETCH_HEAD = re.compile(rb"^\d+ FETCH \(.*\{(\d+)\}$", re.S)
_UID_IN_FETCH = re.compile(rb"\bUID (\d+)\b")


def _ok(response: Any, what: str) -> list[bytes]:
    result, lines = response
    if result != "OK":
        detail = b" ".join(bytes(x) for x in lines[-1:]).decode("utf-8", "replace")
        raise ProviderUnavailable(f"IMAP {what} failed: {result} {detail}")
    return [bytes(x) for x in lines]


def parse_uidvalidity(lines: list[bytes]) -> int:
    for line in lines:
        match = _UIDVALIDITY.search(line)
        if match:
            return int(match.group(1))
    raise ProviderUnavailable("the IMAP server did not report the mailbox's UIDVALIDITY")


def parse_search(lines: list[bytes]) -> list[int]:
    """UIDs of a ``UID SEARCH`` answer: aioimaplib gives the untagged data lines without their
    ``* SEARCH`` prefix, then the tagged status text last."""
    uids: list[int] = []
    for line in lines[:-1]:
        words = line.split()
        if words and words[0].upper() == b"SEARCH":
            words = words[1:]
        uids.extend(int(x) for x in words if x.isdigit())
    return uids


def parse_fetch(lines: list[bytes]) -> bytes | None:
    """The message literal of a one-message ``UID FETCH ... BODY.PEEK[]`` answer."""
    for i, line in enumerate(lines[:-1]):
        match = _FETCH_HEAD.match(line)
        if match:
            return bytes(lines[i + 1])
    return None


class ImapWatcher:
    """Runs sessions against one mailbox until stopped."""

    def __init__(self, config: ImapMailbox, *, start_mailbox: StartMailbox, deliver: Deliver) -> None:
        self.config = config
        self._start_mailbox = start_mailbox
        self._deliver = deliver
        password = os.environ.get(config.password_env)
        if password is None:
            raise ConfigError(
                f"environment variable {config.password_env} (the IMAP password of {config.username}) "
                "is not set",
                field="email.imap.password_env",
            )
        self._password = password
        self.connected = asyncio.Event()  # set while a session is selected and in sync
        self._exists_since_search = False
        self.last_error: str | None = None
        self.sessions = 0

    async def run(self) -> None:
        backoff = 1.0
        while True:
            client: aioimaplib.IMAP4 | None = None
            try:
                client = await self._open()
                backoff = 1.0
                await self._session(client)
            except asyncio.CancelledError:
                raise
            except (ProviderUnavailable, aioimaplib.Abort, aioimaplib.CommandTimeout, OSError,
                    TimeoutError, ConnectionError) as exc:  # fmt: skip
                self.last_error = str(exc) or type(exc).__name__
                log.warning(
                    "mailbox %s: %s; reconnecting in %.0f s", self.config.source, self.last_error, backoff
                )
            finally:
                self.connected.clear()
                if client is not None:
                    await _logout(client)
            await asyncio.sleep(backoff)
            backoff = min(MAX_BACKOFF_SECS, backoff * 2)

    async def _open(self) -> aioimaplib.IMAP4:
        config = self.config
        if config.security == "ssl":
            client: aioimaplib.IMAP4 = aioimaplib.IMAP4_SSL(
                host=config.host,
                port=config.resolved_port,
                ssl_context=tls_context(config.ca_file),
                timeout=30,
            )
        else:
            client = aioimaplib.IMAP4(host=config.host, port=config.resolved_port, timeout=30)
        await client.wait_hello_from_server()
        if client.protocol is None or client.get_state() not in ("NONAUTH", "AUTH"):
            raise ProviderUnavailable(f"no IMAP greeting from {config.host}:{config.resolved_port}")
        _ok(await client.login(config.username, self._password), f"LOGIN as {config.username}")
        self._watch_exists(client)
        return client

    def _watch_exists(self, client: aioimaplib.IMAP4) -> None:
        """Note every EXISTS the server sends outside IDLE. aioimaplib drops untagged data that
        arrives between commands (or files it under the running command), so a message appended
        just after our SEARCH would otherwise only be seen at the next IDLE renewal."""
        protocol = client.protocol
        original = protocol._untagged_response

        def untagged(line: bytes) -> Any:
            pending = protocol.pending_sync_command
            if (pending is None or pending.name != "IDLE") and b"EXISTS" in line.upper():
                self._exists_since_search = True
            return original(line)

        protocol._untagged_response = untagged

    async def _session(self, client: aioimaplib.IMAP4) -> None:
        config = self.config
        uidvalidity = parse_uidvalidity(_ok(await client.select(config.mailbox), f"SELECT {config.mailbox}"))
        last_uid = await self._start_mailbox(uidvalidity)
        self.sessions += 1
        idle = config.idle and client.has_capability("IDLE")
        log.info(
            "mailbox %s open (%s)", config.source, "IDLE" if idle else f"polling every {config.poll_secs} s"
        )
        while True:
            last_uid = await self._sync(client, uidvalidity, last_uid)
            self.connected.set()
            if idle:
                await self._idle(client)
            else:
                await asyncio.sleep(config.poll_secs)
                _ok(await client.noop(), "NOOP")

    async def _sync(self, client: aioimaplib.IMAP4, uidvalidity: int, last_uid: int) -> int:
        self._exists_since_search = False
        lines = _ok(await client.uid_search(f"UID {last_uid + 1}:*", charset=None), "UID SEARCH")
        # "n:*" always matches the newest message, even when its UID is below n
        for uid in sorted(u for u in parse_search(lines) if u > last_uid):
            fetched = _ok(await client.uid("fetch", str(uid), "(BODY.PEEK[])"), f"UID FETCH {uid}")
            raw = parse_fetch(fetched)
            if raw is None:
                continue  # expunged between SEARCH and FETCH
            await self._deliver(raw, uidvalidity, uid)
            last_uid = uid
        return last_uid

    async def _idle(self, client: aioimaplib.IMAP4) -> None:
        """Wait in IDLE until the mailbox changes (or it is time to renew the IDLE)."""
        waiter = await client.idle_start(timeout=IDLE_RENEW_SECS + 30)
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + IDLE_RENEW_SECS
            while client.has_pending_idle() and not self._exists_since_search:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    pushed = await client.wait_server_push(timeout=remaining)
                except TimeoutError:
                    break
                if pushed == aioimaplib.STOP_WAIT_SERVER_PUSH:
                    break
                if any(b"EXISTS" in bytes(x).upper() for x in pushed):
                    break
        finally:
            if client.has_pending_idle():
                client.idle_done()
            await asyncio.wait({waiter}, timeout=10)  # the server's OK to DONE


async def _logout(client: aioimaplib.IMAP4) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.logout(), 5)
