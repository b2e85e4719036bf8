"""SmtpMailer against the real aiosmtpd sink on 127.0.0.1: STARTTLS with AUTH, a kept connection,
and the errors it maps (wrong password: try later; missing password variable: a config error)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.peers.smtp_sink import SmtpSink
from tests.peers.tls import LoopbackTLS
from voicebot.config import SmtpOut
from voicebot.errors import ConfigError, ProviderUnavailable
from voicebot.text_channels.email_smtp import SmtpMailer

pytestmark = pytest.mark.asyncio(loop_scope="session")

RAW = b"From: support@shop.example\r\nTo: ana@example.com\r\nSubject: Re: Hi\r\n\r\nHello\r\n"


async def test_starttls_auth_and_one_kept_connection(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("TEST_SMTP_PW", "secret")
    tls = LoopbackTLS(tmp_path)
    async with SmtpSink(user="bot", password="secret", tls=tls) as sink:
        config = SmtpOut(
            host=sink.host,
            port=sink.port,
            security="starttls",
            ca_file=tls.ca_file,
            username="bot",
            password_env="TEST_SMTP_PW",
        )
        mailer = SmtpMailer(config)
        for _ in range(3):
            await mailer.send(RAW, sender="support@shop.example", recipients=["ana@example.com"])
        await mailer.close()
        assert len(sink.messages) == 3 and all(m.tls and m.auth_user == "bot" for m in sink.messages)


async def test_a_wrong_password_is_retryable_and_a_missing_one_is_a_config_error(
    tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setenv("TEST_SMTP_PW", "wrong")
    async with SmtpSink(user="bot", password="secret") as sink:
        config = SmtpOut(
            host=sink.host, port=sink.port, security="none", username="bot", password_env="TEST_SMTP_PW"
        )
        mailer = SmtpMailer(config)
        with pytest.raises(ProviderUnavailable):
            await mailer.send(RAW, sender="support@shop.example", recipients=["ana@example.com"])
        await mailer.close()
        assert sink.messages == [] and sink.auth_failures >= 1  # (aiosmtplib tries each mechanism)
    monkeypatch.delenv("TEST_SMTP_PW")
    with pytest.raises(ConfigError, match="TEST_SMTP_PW"):
        SmtpMailer(config)


async def test_an_unreachable_server_is_retryable() -> None:
    async with SmtpSink() as sink:
        port = sink.port
    mailer = SmtpMailer(SmtpOut(host="127.0.0.1", port=port, security="none", timeout_secs=5))
    with pytest.raises(ProviderUnavailable):
        await mailer.send(RAW, sender="support@shop.example", recipients=["ana@example.com"])
