"""The e-mail test peers work without voicebot's e-mail channel.

A private Dovecot (tests/peers/dovecot.py) takes APPENDs and gives the messages back byte for byte
over UID SEARCH / UID FETCH, offers IDLE and wakes an IDLE session when another connection appends.
The SMTP sink (tests/peers/smtp_sink.py) takes mail from aiosmtplib with and without AUTH. With a
test CA (tests/peers/tls.py) the sink offers STARTTLS and AUTH only after it, and Dovecot serves IMAPS;
a client that trusts the CA file gets through, one that trusts another CA fails the handshake. Only
127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import ssl
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
from tests.peers.tls import LoopbackTLS

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


@pytest.fixture
def tls(tmp_path: Path) -> LoopbackTLS:
    return LoopbackTLS(tmp_path / "tls")


@pytest_asyncio.fixture
async def imap(tmp_path: Path) -> AsyncIterator[Dovecot]:
    async with Dovecot(tmp_path) as server:
        yield server
    assert not server.running


@pytest_asyncio.fixture
async def imaps(tmp_path: Path, tls: LoopbackTLS) -> AsyncIterator[Dovecot]:
    async with Dovecot(tmp_path, tls=tls) as server:
        yield server
    assert not server.running


def _trusting(ca_file: Path) -> ssl.SSLContext:
    """A client context built the way the product builds one from its ``ca_file`` setting."""
    return ssl.create_default_context(cafile=str(ca_file))


async def _logout(client: aioimaplib.IMAP4) -> None:
    with contextlib.suppress(Exception):
        await client.logout()


def _assert_listens_on_one_loopback_port_only(server: Dovecot) -> None:
    if shutil.which("ss") is None:
        pytest.skip("ss (iproute2) is not installed")
    assert server._proc is not None
    out = subprocess.run(["ss", "-Hltunp"], capture_output=True, text=True, check=True).stdout
    mine = [line.split()[4] for line in out.splitlines() if f"pid={server._proc.pid}," in line]
    assert mine == [f"127.0.0.1:{server.port}"], out


@needs_dovecot
async def test_dovecot_listens_on_one_loopback_port_only(imap: Dovecot) -> None:
    assert imap.tls_port is None
    _assert_listens_on_one_loopback_port_only(imap)


@needs_dovecot
async def test_imaps_dovecot_listens_on_its_tls_port_only(imaps: Dovecot) -> None:
    assert imaps.tls_port == imaps.port
    _assert_listens_on_one_loopback_port_only(imaps)


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
    assert got.tls is False


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
    assert got.tls is False
    assert got.data == MESSAGES[0]
    assert got.rcpt_tos == ["ann@example.test"]
    assert sink.auth_failures >= 1  # aiosmtplib tries each mechanism the server offers


async def test_smtp_sink_wait_for_times_out_with_a_count() -> None:
    async with SmtpSink() as sink:
        with pytest.raises(TimeoutError, match="got 0 of 1"):
            await sink.wait_for(1, timeout=0.05)


@needs_dovecot
async def test_imaps_login_append_fetch_round_trip(imaps: Dovecot, tls: LoopbackTLS) -> None:
    assert imaps.tls_port is not None
    client = aioimaplib.IMAP4_SSL(
        host=imaps.host, port=imaps.tls_port, timeout=10, ssl_context=_trusting(tls.ca_file)
    )
    await client.wait_hello_from_server()
    try:
        peer_cert = client.protocol.transport.get_extra_info("peercert")
        assert peer_cert is not None  # the TLS session is up and the server certificate was checked
        result, lines = await client.login(imaps.user, imaps.password)
        assert result == "OK", (lines, imaps.log())
        result, lines = await client.append(MESSAGES[1], mailbox="INBOX")
        assert result == "OK", (lines, imaps.log())
        result, lines = await client.select("INBOX")
        assert result == "OK", lines
        result, lines = await client.uid("fetch", "1:*", "(BODY.PEEK[])")
        assert result == "OK", lines
        assert fetched_literals(lines) == [MESSAGES[1]]
    finally:
        await _logout(client)
    await imaps.deliver(MESSAGES[0], mailbox="Escalated")
    assert await imaps.messages() == [MESSAGES[1]]
    assert await imaps.messages("Escalated") == [MESSAGES[0]]
    assert ", TLS," in imaps.log()  # Dovecot's own word that the logins came over TLS


@needs_dovecot
async def test_imaps_refuses_a_client_that_does_not_trust_the_ca(imaps: Dovecot, tmp_path: Path) -> None:
    other = LoopbackTLS(tmp_path / "other-ca")
    client = aioimaplib.IMAP4_SSL(
        host=imaps.host, port=imaps.port, timeout=10, ssl_context=_trusting(other.ca_file)
    )
    with pytest.raises(ssl.SSLCertVerificationError):
        await client.wait_hello_from_server()
    assert "Login: " not in imaps.log()


async def test_smtp_sink_without_tls_never_offers_starttls() -> None:
    async with SmtpSink(user="relay", password="s3cret") as sink:
        assert sink.ca_file is None
        client = aiosmtplib.SMTP(
            hostname=sink.host, port=sink.port, local_hostname="voicebot.test", start_tls=False, timeout=10
        )
        async with client:
            await client.ehlo()
            assert not client.supports_extension("starttls"), client.esmtp_extensions
            assert client.supports_extension("auth"), client.esmtp_extensions


async def test_smtp_sink_starttls_with_auth(tls: LoopbackTLS) -> None:
    async with SmtpSink(user="relay", password="s3cret", tls=tls) as sink:
        assert sink.ca_file == tls.ca_file
        await aiosmtplib.send(
            MESSAGES[2],
            sender="bot@shop.test",
            recipients=["carl@example.test"],
            hostname=sink.host,
            port=sink.port,
            local_hostname="voicebot.test",
            start_tls=True,
            tls_context=_trusting(sink.ca_file),
            username="relay",
            password="s3cret",
            timeout=10,
        )
        (got,) = await sink.wait_for(1, timeout=10)
    assert got.tls is True
    assert got.auth_user == "relay"
    assert got.data == MESSAGES[2]
    assert got.rcpt_tos == ["carl@example.test"]
    assert sink.auth_failures == 0


async def test_smtp_sink_with_tls_allows_auth_only_after_starttls(tls: LoopbackTLS) -> None:
    async with SmtpSink(user="relay", password="s3cret", tls=tls) as sink:
        common: dict[str, Any] = {
            "sender": "bot@shop.test",
            "recipients": ["ann@example.test"],
            "hostname": sink.host,
            "port": sink.port,
            "local_hostname": "voicebot.test",
            "timeout": 10,
        }
        # aiosmtplib sees no AUTH in the clear and gives up before sending anything.
        with pytest.raises(aiosmtplib.SMTPException, match="AUTH extension is not supported"):
            await aiosmtplib.send(MESSAGES[0], username="relay", password="s3cret", start_tls=False, **common)
        with pytest.raises(aiosmtplib.SMTPSenderRefused):
            await aiosmtplib.send(MESSAGES[0], start_tls=False, **common)

        client = aiosmtplib.SMTP(
            hostname=sink.host,
            port=sink.port,
            local_hostname="voicebot.test",
            start_tls=False,
            tls_context=_trusting(tls.ca_file),
            timeout=10,
        )
        async with client:
            await client.ehlo()
            assert client.supports_extension("starttls"), client.esmtp_extensions
            assert not client.supports_extension("auth"), client.esmtp_extensions
            # The server itself refuses AUTH in the clear (538), not only the client's politeness.
            with pytest.raises(aiosmtplib.SMTPAuthenticationError) as refused:
                await client.auth_plain("relay", "s3cret")
            assert refused.value.code == 538
            await client.starttls()
            await client.ehlo()  # RFC 3207: the client forgets what it learnt before STARTTLS
            assert client.supports_extension("auth"), client.esmtp_extensions
            await client.login("relay", "s3cret")
            await client.sendmail("bot@shop.test", ["ann@example.test"], MESSAGES[0])
        (got,) = await sink.wait_for(1, timeout=10)
    assert got.tls is True
    assert got.auth_user == "relay"
    assert got.data == MESSAGES[0]


async def test_smtp_sink_starttls_fails_for_a_client_that_does_not_trust_the_ca(
    tls: LoopbackTLS, tmp_path: Path
) -> None:
    other = LoopbackTLS(tmp_path / "other-ca")
    async with SmtpSink(user="relay", password="s3cret", tls=tls) as sink:
        with pytest.raises(ssl.SSLCertVerificationError):
            await aiosmtplib.send(
                MESSAGES[0],
                sender="bot@shop.test",
                recipients=["ann@example.test"],
                hostname=sink.host,
                port=sink.port,
                local_hostname="voicebot.test",
                start_tls=True,
                tls_context=_trusting(other.ca_file),
                username="relay",
                password="s3cret",
                timeout=10,
            )
    assert sink.messages == []
    assert sink.auth_failures == 0


async def test_smtp_sink_require_starttls_without_auth(tls: LoopbackTLS) -> None:
    async with SmtpSink(tls=tls, require_starttls=True) as sink:
        common: dict[str, Any] = {
            "sender": "bot@shop.test",
            "recipients": ["ann@example.test"],
            "hostname": sink.host,
            "port": sink.port,
            "local_hostname": "voicebot.test",
            "timeout": 10,
        }
        with pytest.raises(aiosmtplib.SMTPSenderRefused):
            await aiosmtplib.send(MESSAGES[0], start_tls=False, **common)
        await aiosmtplib.send(MESSAGES[0], start_tls=True, tls_context=_trusting(tls.ca_file), **common)
        (got,) = await sink.wait_for(1, timeout=10)
    assert got.tls is True
    assert got.auth_user is None
