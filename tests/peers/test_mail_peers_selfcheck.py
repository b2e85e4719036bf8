"""The e-mail test peers work without voicebot's e-mail channel.

A private Dovecot (tests/peers/dovecot.py) takes APPENDs and gives the messages back byte for byte
over UID SEARCH / UID FETCH, offers IDLE and wakes an IDLE session when another connection appends.
The SMTP sink (tests/peers/smtp_sink.py) takes mail from aiosmtplib with and without AUTH. Only
127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aioimaplib
import aiosmtplib
import pytest
import pytest_asyncio

from tests.peers.dovecot import Dovecot, dovecot_available, fetched_literals
from tests.peers.smtp_sink import SmtpSink

pytestmark = pytest.mark.slow
needs_dovecot = pytest.mark.skipif(
    not dovecot_available(), reason="dovecot (Debian dovecot-imapd) is not installed: scripts/setup --test"
)

MESSAGES = [
    b"From: Ann <ann@example.test>\r\nTo: bot@shop.test\r\nSubject: Where is my order?\r\n"
    b"Message-ID: <1@example.test>\r\n\r\nHello, order 1234 has not arrived.\r\n",
    b"From: =?utf-8?q?J=C3=B6rg?= <jorg@example.test>\r\nTo: bot@shop.test\r\nSubject: Umtausch\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
    b"\r\nK\xc3\xb6nnen Sie die Gr\xc3\xb6\xc3\x9fe tauschen?\r\n\r\n-- \r\nJ\xc3\xb6rg\r\n",
    b"From: carl@example.test\r\nTo: bot@shop.test\r\nSubject: attachment\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\n'
    b"See the invoice.\r\n--b1\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
    b"\r\nJVBERi0xLjQK\r\n--b1--\r\n",
]


@pytest_asyncio.fixture
async def imap(tmp_path: Path) -> AsyncIterator[Dovecot]:
    async with Dovecot(tmp_path) as server:
        yield server
    assert not server.running


async def _logout(client: aioimaplib.IMAP4) -> None:
    with contextlib.suppress(Exception):
        await client.logout()


@needs_dovecot
async def test_dovecot_listens_on_one_loopback_port_only(imap: Dovecot) -> None:
    if shutil.which("ss") is None:
        pytest.skip("ss (iproute2) is not installed")
    assert imap._proc is not None
    out = subprocess.run(["ss", "-Hltunp"], capture_output=True, text=True, check=True).stdout
    mine = [line.split()[4] for line in out.splitlines() if f"pid={imap._proc.pid}," in line]
    assert mine == [f"127.0.0.1:{imap.port}"], out


@needs_dovecot
async def test_append_search_fetch_byte_identical(imap: Dovecot) -> None:
    client = await imap.connect()
    try:
        for raw in MESSAGES:
            result, lines = await client.append(raw, mailbox="INBOX")
            assert result == "OK", (lines, imap.log())
        result, lines = await client.select("INBOX")
        assert result == "OK", lines
        assert b"3 EXISTS" in lines, lines
        result, lines = await client.uid_search("ALL")
        assert result == "OK", lines
        uids = bytes(lines[0]).split()
        assert len(uids) == 3, lines
        fetched = []
        for uid in uids:
            result, lines = await client.uid("fetch", uid.decode(), "(BODY.PEEK[])")
            assert result == "OK", lines
            fetched.extend(fetched_literals(lines))
        assert fetched == MESSAGES
    finally:
        await _logout(client)
    assert await imap.messages("INBOX") == MESSAGES


@needs_dovecot
async def test_deliver_to_inbox_and_other_mailbox(imap: Dovecot) -> None:
    assert await imap.messages() == []
    await imap.deliver(MESSAGES[0])
    await imap.deliver(MESSAGES[1], mailbox="Escalated")
    await imap.deliver(MESSAGES[2], mailbox="Escalated")
    assert await imap.messages() == [MESSAGES[0]]
    assert await imap.messages("Escalated") == MESSAGES[1:]


@needs_dovecot
async def test_wrong_password_is_refused(imap: Dovecot) -> None:
    client = aioimaplib.IMAP4(host=imap.host, port=imap.port, timeout=10)
    await client.wait_hello_from_server()
    try:
        result, _ = await client.login(imap.user, "not-the-password")
        assert result == "NO"
    finally:
        await _logout(client)


@needs_dovecot
async def test_idle_session_is_woken_by_append_from_another_connection(imap: Dovecot) -> None:
    client = await imap.connect()
    try:
        assert client.has_capability("IDLE"), client.protocol.capabilities
        result, lines = await client.select("INBOX")
        assert result == "OK", lines
        idle = await client.idle_start(timeout=30)
        try:
            await imap.deliver(MESSAGES[0])
            pushed = await client.wait_server_push(timeout=10)
            assert any(bytes(line).endswith(b"EXISTS") for line in pushed), pushed
        finally:
            client.idle_done()
            await asyncio.wait_for(idle, 10)
        result, lines = await client.uid_search("ALL")
        assert result == "OK" and len(bytes(lines[0]).split()) == 1, lines
    finally:
        await _logout(client)


async def test_smtp_sink_without_auth() -> None:
    async with SmtpSink() as sink:
        await aiosmtplib.send(
            MESSAGES[1],
            sender="bot@shop.test",
            recipients=["jorg@example.test", "agent@shop.test"],
            hostname=sink.host,
            port=sink.port,
            local_hostname="voicebot.test",
            start_tls=False,
            timeout=10,
        )
        (got,) = await sink.wait_for(1, timeout=10)
    assert got.mail_from == "bot@shop.test"
    assert got.rcpt_tos == ["jorg@example.test", "agent@shop.test"]
    assert got.data == MESSAGES[1]
    assert got.auth_user is None


async def test_smtp_sink_with_auth() -> None:
    async with SmtpSink(user="relay", password="s3cret") as sink:
        common: dict[str, Any] = {
            "sender": "bot@shop.test",
            "recipients": ["ann@example.test"],
            "hostname": sink.host,
            "port": sink.port,
            "local_hostname": "voicebot.test",
            "start_tls": False,
            "timeout": 10,
        }
        with pytest.raises(aiosmtplib.SMTPAuthenticationError):
            await aiosmtplib.send(MESSAGES[0], username="relay", password="wrong", **common)
        with pytest.raises(aiosmtplib.SMTPSenderRefused):
            await aiosmtplib.send(MESSAGES[0], **common)
        await aiosmtplib.send(MESSAGES[0], username="relay", password="s3cret", **common)
        (got,) = await sink.wait_for(1, timeout=10)
    assert got.auth_user == "relay"
    assert got.data == MESSAGES[0]
    assert got.rcpt_tos == ["ann@example.test"]
    assert sink.auth_failures >= 1  # aiosmtplib tries each mechanism the server offers


async def test_smtp_sink_wait_for_times_out_with_a_count() -> None:
    async with SmtpSink() as sink:
        with pytest.raises(TimeoutError, match="got 0 of 1"):
            await sink.wait_for(1, timeout=0.05)
