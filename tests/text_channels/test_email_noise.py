"""Quote, signature and forward splitting, and RFC 3834 noise classification, on plain strings."""

from __future__ import annotations

import pytest

from voicebot.text_channels.email_noise import (
    classify_noise,
    normalise_whitespace,
    split_forwarded,
    split_reply,
)


@pytest.mark.parametrize(
    "attribution",
    [
        "On Mon, 10 Mar 2025 at 17:15, Demo Shop <support@demo-shop.example> wrote:",
        "V pon., 10. mar. 2025 ob 17:15 je Demo Shop <support@demo-shop.example> napisal(a):",
        "Dne 10. 03. 2025 ob 17:15 je Ana Novak pisal:",
        "Am Mo., 10. März 2025 um 17:15 Uhr schrieb Demo Shop <support@demo-shop.example>:",
    ],
)
def test_attributions_in_several_languages(attribution: str) -> None:
    text = f"Hvala, to je vse.\n\n{attribution}\n> Old text\n> more old text\n"
    new, quoted, signature = split_reply(text)
    assert new == "Hvala, to je vse."
    assert quoted == f"{attribution}\n> Old text\n> more old text"
    assert signature == ""


def test_wrapped_gmail_attribution() -> None:
    text = (
        "Yes please.\n\nOn Mon, 10 Mar 2025 at 17:15, Demo Shop Support <\n"
        "support@demo-shop.example> wrote:\n\n> Old"
    )
    new, quoted, _ = split_reply(text)
    assert new == "Yes please."
    assert quoted.startswith("On Mon, 10 Mar 2025") and quoted.endswith("> Old")


def test_outlook_header_block_without_original_message_line() -> None:
    text = (
        "Please call me tomorrow.\n\n________________________________\n"
        "From: Demo Shop <s@demo-shop.example>\n"
        "Sent: Tuesday, March 11, 2025 1:00 PM\nTo: Ana <ana@example.com>\nSubject: Your order\n\nOld body"
    )
    new, quoted, _ = split_reply(text)
    assert new == "Please call me tomorrow."
    assert quoted.startswith("________________________________\nFrom: Demo Shop") and quoted.endswith(
        "Old body"
    )


def test_slovenian_outlook_header_block() -> None:
    text = (
        "Lep pozdrav\n\nOd: Demo Shop <s@demo-shop.example>\nPoslano: torek, 11. marec 2025 13:00\n"
        "Za: Ana\nZadeva: Račun\n\nStaro"
    )
    new, quoted, _ = split_reply(text)
    assert new == "Lep pozdrav" and quoted.startswith("Od: Demo Shop")


def test_interleaved_answers_stay_new_content() -> None:
    text = (
        "On Mon, 10 Mar 2025, Demo Shop wrote:\n> Which colour do you want?\nBlue.\n"
        "> And which size?\nMedium, please.\n"
    )
    new, quoted, _ = split_reply(text)
    assert new == "Blue.\nMedium, please."
    assert quoted == "On Mon, 10 Mar 2025, Demo Shop wrote:\n> Which colour do you want?\n> And which size?"


def test_a_line_mentioning_from_is_not_a_header_block() -> None:
    new, quoted, _ = split_reply("From: my phone I cannot log in.\nPlease help.")
    assert new == "From: my phone I cannot log in.\nPlease help." and quoted == ""


def test_signatures() -> None:
    assert split_reply("Hello\n-- \nAna Novak\nACME d.o.o.") == ("Hello", "", "Ana Novak\nACME d.o.o.")
    assert split_reply("Where is my order?\n\nSent from my iPhone") == (
        "Where is my order?",
        "",
        "Sent from my iPhone",
    )
    assert split_reply("Kje je paket?\n\nPoslano iz mojega iPhona")[2] == "Poslano iz mojega iPhona"
    assert split_reply("Get Outlook for Android is broken, why?\nThanks")[2] == ""


def test_normalise_whitespace() -> None:
    assert normalise_whitespace("  a\u00a0\u00a0b \r\n\r\n\r\n\r\nc\u200b  \t\n") == "a b\n\nc"


def test_split_forwarded_apple_style() -> None:
    text = (
        "See below.\n\nBegin forwarded message:\n\nFrom: Shop <s@x.example>\nSubject: Invoice\n"
        "Date: today\n\nPay now."
    )
    before, [fwd] = split_forwarded(text)
    assert before.strip() == "See below."
    assert (fwd.from_, fwd.subject, fwd.text) == ("Shop <s@x.example>", "Invoice", "Pay now.")
    assert split_forwarded("no forward here") == ("no forward here", [])


@pytest.mark.parametrize(
    ("headers", "sender", "subject", "ctype", "expected"),
    [
        ({"Return-Path": "<>"}, "x@y.example", "Hi", "", "bounce"),
        ({}, "MAILER-DAEMON@mx.example", "Undelivered", "", "bounce"),
        ({}, "postmaster@mx.example", "Failure", "", "bounce"),
        ({}, "a@b.example", "x", "multipart/report; report-type=delivery-status; boundary=b", "bounce"),
        ({"Auto-Submitted": "auto-generated"}, "a@b.example", "Hi", "", "auto_submitted"),
        ({"Auto-Submitted": "no"}, "a@b.example", "Hi", "", None),
        ({"X-Autoreply": "yes"}, "a@b.example", "Hi", "", "auto_reply"),
        ({"X-Autorespond": "1"}, "a@b.example", "Hi", "", "auto_reply"),
        ({}, "a@b.example", "Automatic reply: Your order", "", "auto_reply"),
        ({"X-Auto-Response-Suppress": "All"}, "a@b.example", "Out of Office until Monday", "", "auto_reply"),
        ({}, "a@b.example", "Question about your out of office hours", "", None),
        ({"List-Id": "<l.example>"}, "a@b.example", "Hi", "", "mailing_list"),
        ({"list-unsubscribe": "<mailto:u@x>"}, "a@b.example", "Hi", "", "mailing_list"),
        ({"Precedence": "junk"}, "a@b.example", "Hi", "", "mailing_list"),
        ({}, "noreply@b.example", "Hi", "", "no_reply_sender"),
        ({}, "do-not-reply@b.example", "Hi", "", "no_reply_sender"),
        ({}, "DoNotReply@b.example", "Hi", "", "no_reply_sender"),
        ({}, "info-noreply@b.example", "Hi", "", "no_reply_sender"),
        ({}, "noreplyneeded.fan@b.example", "Hi", "", None),
        ({}, "ana.novak@example.com", "Where is my order?", "text/plain", None),
    ],
)
def test_classify_noise(
    headers: dict[str, str], sender: str, subject: str, ctype: str, expected: str | None
) -> None:
    assert classify_noise(headers, from_address=sender, subject=subject, content_type=ctype) == expected
