"""parse_email on the hand-written corpus in tests/data/email, threading and replies, and any bytes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voicebot.text_channels.email_message import (
    MAX_REFERENCES,
    Attachment,
    ParsedEmail,
    compose_reply,
    parse_email,
    reply_headers,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "email"


def load(name: str) -> ParsedEmail:
    return parse_email((DATA / f"{name}.eml").read_bytes())


def test_gmail_reply_keeps_new_text_and_moves_the_quote() -> None:
    p = load("gmail_reply")
    assert p.text == (
        "Hi,\n\nthanks for the quick answer. Can I still change the delivery address to "
        "Trubarjeva 5, Ljubljana?\n\nAna"
    )
    assert p.quoted.startswith("On Mon, 10 Mar 2025 at 17:15, Demo Shop Support")
    assert "your order A1001 was shipped today." in p.quoted
    assert "shipped" in p.full_text
    assert p.message_id == "<CAH7x9QvK2m=Zq1pL0w@mail.gmail.com>"
    assert p.in_reply_to == "<20250310161502.1234@demo-shop.example>"
    assert p.references == ["<CAF1a2b3c4@mail.gmail.com>", "<20250310161502.1234@demo-shop.example>"]
    assert (p.from_address, p.from_name) == ("ana.novak@gmail.com", "Ana Novak")
    assert p.to == ["support@demo-shop.example"] and p.cc == ["marko.novak@gmail.com"]
    assert p.date == datetime(2025, 3, 11, 8, 14, 12, tzinfo=UTC)
    assert not p.html_only and p.noise is None and p.problems == []


def test_gmail_html_alone_drops_the_gmail_quote_div() -> None:
    raw = (DATA / "gmail_reply.eml").read_bytes()
    head, _, rest = raw.partition(b"--000000000000a1b2c3d4e5f60718\r\n")
    html_part = rest.split(b"--000000000000a1b2c3d4e5f60718\r\n", 1)[1]
    p = parse_email(head + b"--000000000000a1b2c3d4e5f60718\r\n" + html_part)
    assert p.html_only
    assert "Can I still change the delivery address" in p.text
    assert "shipped" not in p.text and "shipped today" in p.quoted


def test_outlook_html_only_windows_1250_slovenian() -> None:
    p = load("outlook_html_cp1250")
    assert p.html_only
    assert p.subject == "RE: Račun št. 2025-0042"
    assert p.from_name == "Boštjan Škerjanc"
    assert "račun št. 2025-0042 še ni plačan" in p.text
    assert "Original Message" not in p.text and "v priponki" not in p.text
    assert p.quoted.startswith("-----Original Message-----")
    assert "Spoštovani, v priponki je račun za marec." in p.quoted
    assert "<" not in p.text and "MsoNormal" not in p.full_text


def test_encoded_word_subjects_in_utf8_and_iso_8859_2() -> None:
    p = load("encoded_subjects")
    assert p.subject == "Vprašanje glede dostave čez vikend"
    assert p.from_name == "Špela Kovač"
    assert p.text.endswith("ali dostavljate tudi v soboto? Špela")


def test_attachments_with_rfc2231_and_encoded_names_and_inline_image() -> None:
    p = load("mixed_attachments")
    assert p.text.endswith("Can you send a replacement?\n\nMarko")
    assert p.attachments == [
        Attachment("kettle.png", "image/png", 70, True),
        Attachment("račun št. 42.pdf", "application/pdf", 82, False),
        Attachment("slika_poškodbe.jpg", "image/jpeg", 57, True),
    ]
    assert p.problems == []


def test_message_rfc822_forward() -> None:
    p = load("forward_rfc822")
    assert p.text == "The confirmation below says 3 items but I ordered 2. Please check."
    [fwd] = p.forwarded
    assert fwd.from_ == "Demo Shop <orders@demo-shop.example>"
    assert fwd.subject == "Your order confirmation A1003"
    assert fwd.text == "Thank you for your order A1003.\nItems: 3 x kitchen towel."


def test_inline_forward() -> None:
    p = load("forward_inline")
    assert p.text == "Why did this delivery fail? I was at home all day."
    [fwd] = p.forwarded
    assert fwd.from_ == "Courier <notifications@courier.example>"
    assert fwd.subject == "Delivery attempt for parcel 77812"
    assert fwd.text == "We tried to deliver parcel 77812 but nobody was at the address."


def test_noise_kinds() -> None:
    assert load("out_of_office").noise == "auto_reply"
    assert load("out_of_office").subject == "Samodejni odgovor: Račun 2025-0042"
    bounce = load("bounce")
    assert bounce.noise == "bounce"
    assert "550 5.1.1 User unknown" in bounce.text
    assert [a.content_type for a in bounce.attachments] == ["message/delivery-status", "text/rfc822-headers"]
    assert load("mailing_list").noise == "mailing_list"
    assert load("no_reply").noise == "no_reply_sender"
    for name in ("gmail_reply", "two_questions", "encoded_subjects", "outlook_html_cp1250"):
        assert load(name).noise is None, name


def test_two_questions_signature_and_reply_to() -> None:
    p = load("two_questions")
    assert p.text == (
        "Hello,\n\nI ordered a laptop last week. Where is my order A1001?\n"
        "Also, what is your returns policy?\n\nThanks,\nAna"
    )
    assert p.signature == "Ana Novak\n+386 1 234 56 78\n\nSent from my iPhone"
    assert (p.from_name, p.from_address, p.reply_to) == (
        "Novak, Ana",
        "ana.novak@example.com",
        "ana@novak-home.example",
    )
    assert p.headers["Reply-To"] == "Ana Novak <ana@novak-home.example>"


def test_broken_boundary_is_salvaged() -> None:
    p = load("broken_boundary")
    assert p.text == "Please cancel my appointment on Friday."
    assert any("boundary not found" in problem for problem in p.problems)


def test_unknown_charset_falls_back() -> None:
    p = load("unknown_charset")
    assert p.text == "Kdaj dobim vračilo denarja za naročilo A1004?"
    assert p.subject == "Vračilo"  # raw 8-bit header, windows-1250
    assert "unknown charset 'x-windows-9999'" in p.problems


def test_invalid_base64_decodes_what_it_can() -> None:
    p = load("invalid_base64")
    assert p.text == "What are your opening hours on Saturday?"
    assert any("base64" in problem for problem in p.problems)


def test_no_headers_at_all() -> None:
    p = load("no_headers")
    assert p.text == "Where is my order A1001? Nobody answers the phone."
    assert p.from_address == "" and p.message_id is None
    assert "no headers" in p.problems and "no sender address" in p.problems


def test_hopeless_input_gives_empty_fields_and_problems() -> None:
    for raw in (b"", b"\r\n\r\n", b"\x00\xff" * 10):
        p = parse_email(raw)
        assert isinstance(p, ParsedEmail) and p.problems
    assert parse_email("not bytes").problems == ["not bytes"]  # type: ignore[arg-type]


def test_a_long_message_parses_and_is_truncated() -> None:
    line = "Dear support, this is a very long complaint about order A1001 and its delivery. " * 3
    body = "\r\n".join(line for _ in range(1_000_000 // len(line) + 1))
    raw = (
        "From: long@example.com\r\nSubject: Long\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n" + body
    ).encode()
    assert len(raw) > 1_000_000
    p = parse_email(raw, max_text_chars=5000)
    assert p.truncated and len(p.text) <= 5000 and len(p.full_text) > 990_000
    assert p.text.startswith("Dear support")


def test_long_html_body_parses_and_is_truncated() -> None:
    html = "<html><body>" + "<p>Where is my <b>order</b> A1001?</p>" * 25_000 + "</body></html>"
    raw = f"From: h@example.com\r\nContent-Type: text/html; charset=utf-8\r\n\r\n{html}".encode()
    p = parse_email(raw)
    assert p.html_only and p.truncated and p.text.startswith("Where is my order A1001?")


def test_reply_headers_thread_and_mark_auto_replied() -> None:
    p = load("gmail_reply")
    h = reply_headers(p, domain="demo-shop.example")
    assert h["Message-ID"].endswith("@demo-shop.example>")
    assert h["In-Reply-To"] == "<CAH7x9QvK2m=Zq1pL0w@mail.gmail.com>"
    assert h["References"] == (
        "<CAF1a2b3c4@mail.gmail.com> <20250310161502.1234@demo-shop.example> "
        "<CAH7x9QvK2m=Zq1pL0w@mail.gmail.com>"
    )
    assert h["Subject"] == "Re: Order A1001"
    assert h["Auto-Submitted"] == "auto-replied" and h["X-Auto-Response-Suppress"] == "All"


def test_reply_subject_prefix_added_once() -> None:
    for subject, expected in [
        ("Order A1001", "Re: Order A1001"),
        ("Re: Order", "Re: Order"),
        ("RE: Re: Order", "Re: Order"),
        ("Aw: Bestellung", "Re: Bestellung"),
        ("Odg: Račun", "Re: Račun"),
        ("Re[2]: Order", "Re: Order"),
        ("Fwd: Order", "Re: Fwd: Order"),
        ("", "Re:"),
    ]:
        assert reply_headers(ParsedEmail(subject=subject), domain="x.example")["Subject"] == expected


def test_references_are_capped_keeping_the_first_and_newest() -> None:
    refs = [f"<m{i}@example.com>" for i in range(100)]
    h = reply_headers(ParsedEmail(message_id="<last@example.com>", references=refs), domain="x.example")
    kept = h["References"].split()
    assert len(kept) == MAX_REFERENCES
    assert (
        kept[0] == "<m0@example.com>" and kept[-1] == "<last@example.com>" and kept[-2] == "<m99@example.com>"
    )


def test_compose_reply_round_trips_through_parse_email() -> None:
    original = load("two_questions")
    msg = compose_reply(
        original,
        text="Your order A1001 ships tomorrow.\nReturns are free within 30 days.",
        from_address="support@demo-shop.example",
        from_name="Demo Shop Podpora",
        domain="demo-shop.example",
        now=datetime(2025, 3, 20, 10, 5, tzinfo=UTC),
    )
    assert msg["To"] == "ana@novak-home.example"  # Reply-To wins
    back = parse_email(msg.as_bytes())
    assert back.in_reply_to == "<two-q-1@example.com>"
    assert back.references == ["<two-q-1@example.com>"]
    assert back.message_id and back.message_id.endswith("@demo-shop.example>")
    assert back.subject == "Re: Two questions"
    assert (back.from_address, back.from_name) == ("support@demo-shop.example", "Demo Shop Podpora")
    assert back.to == ["ana@novak-home.example"]
    assert back.date == datetime(2025, 3, 20, 10, 5, tzinfo=UTC)
    assert back.noise == "auto_submitted"  # our own answers are never answered by a bot
    assert back.text == "Your order A1001 ships tomorrow.\nReturns are free within 30 days."
    assert back.quoted.startswith("On Thu, 20 Mar 2025 10:00:00 +0100, Novak, Ana wrote:")
    assert "> Also, what is your returns policy?" in back.quoted
    # a second answer in the same thread keeps the chain
    again = reply_headers(back, domain="demo-shop.example")
    assert again["References"] == f"<two-q-1@example.com> {back.message_id}"
    assert again["Subject"] == "Re: Two questions"


def test_compose_reply_with_unicode_names_and_no_original_text() -> None:
    original = ParsedEmail(from_address="spela@example.si", from_name="Špela Kovač", subject="Vprašanje")
    msg = compose_reply(
        original, text="Dober dan, Špela!", from_address="p@x.example", from_name=None, domain="x.example"
    )
    back = parse_email(msg.as_bytes())
    assert back.to == ["spela@example.si"] and back.text == "Dober dan, Špela!" and back.quoted == ""
    assert "In-Reply-To" not in msg


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_any_bytes_give_a_parsed_email(raw: bytes) -> None:
    assert isinstance(parse_email(raw), ParsedEmail)


_HEADER_LINES = st.sampled_from(
    [
        b"From: =?utf-8?q?=C5=A0?= <a@b.c>", b"From: <>", b"From: x", b"Subject: =?bogus?b?!!?=",
        b"Subject: =?utf-8?b?", b"Date: Mon, 99 Foo 2025", b"Content-Type: multipart/mixed; boundary=b",
        b"Content-Type: multipart/alternative", b"Content-Type: text/html; charset=nope",
        b"Content-Transfer-Encoding: base64", b"Content-Transfer-Encoding: quoted-printable",
        b"Content-Disposition: attachment; filename*=bad''%ZZ", b"--b", b"--b--",
        b"Content-Type: message/rfc822", b"References: <a@b> <c@d", b"Message-ID: <", b"", b"> quoted",
        b"On Mon wrote:", b"-- ", b"<div class=gmail_quote>",
    ]
)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(_HEADER_LINES, st.binary(max_size=40)), max_size=40))
def test_any_mail_shaped_bytes_give_a_parsed_email(lines: list[bytes]) -> None:
    p = parse_email(b"\r\n".join(lines))
    assert isinstance(p, ParsedEmail)
    assert all("unparseable" not in problem for problem in p.problems), p.problems
