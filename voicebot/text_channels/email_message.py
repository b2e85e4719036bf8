"""Received e-mail in, :class:`ParsedEmail` out; threading headers and the reply back. Pure, no I/O.

:func:`parse_email` never raises: whatever arrives (broken headers, unknown or wrong charsets, bad
base64, a lost multipart boundary, no headers at all) gives a ParsedEmail, with what went wrong in
``problems``. Headers are read with the stdlib ``email`` package's ``policy.default`` and, where that
gives up or leaves undecodable bytes, re-read from a ``compat32`` parse and decoded here.

Body choice: text/plain is preferred; an HTML-only body is turned into text with ``inscriptis``
(Apache-2.0): it renders layout (paragraphs, lists, tables) as plain text rather than Markdown, so
the dialogue sees what the customer saw, and it works on an lxml tree, which lets Gmail/Outlook quote
and signature elements be taken out first. Quoted replies, signatures and inline forwards are split
off by :mod:`voicebot.text_channels.email_noise`; nothing is thrown away.

:func:`reply_headers` and :func:`compose_reply` thread an answer (RFC 5322 In-Reply-To/References)
and mark it ``Auto-Submitted: auto-replied`` (RFC 3834) so other robots do not answer it.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import email
import email.header
import email.policy
import email.utils
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage, Message
from typing import Any

from voicebot.text_channels.email_noise import (
    classify_noise,
    normalise_whitespace,
    split_forwarded,
    split_reply,
)

__all__ = [
    "FALLBACK_CHARSET",
    "MAX_REFERENCES",
    "Attachment",
    "ForwardedMessage",
    "ParsedEmail",
    "compose_reply",
    "parse_email",
    "reply_headers",
]

# undeclared 8-bit text that is not UTF-8: our customers write Slovenian, whose č/š/ž sit at the same
# bytes in windows-1250 as è/š/ž in windows-1252 (German umlauts are the same in both)
FALLBACK_CHARSET = "windows-1250"
MAX_REFERENCES = 20  # ids kept in a reply's References: the first one and the newest ones
MAX_DEPTH = 12  # multipart / message/rfc822 nesting followed; deeper parts are skipped
MAX_HTML_CHARS = 2_000_000  # HTML beyond this is not rendered (the text is cut long before anyway)
KEPT_HEADERS = (
    "Message-ID", "In-Reply-To", "References", "Return-Path", "Reply-To", "Sender", "Delivered-To",
    "Content-Type", "Auto-Submitted", "X-Autoreply", "X-Autorespond", "X-Autoresponder",
    "X-Auto-Response-Suppress", "Precedence", "List-Id", "List-Unsubscribe", "List-Post",
    "X-Failed-Recipients", "X-Mailer", "User-Agent", "X-MS-Exchange-Generated-Message-Source",
    "X-MS-Exchange-Inbox-Rules-Loop", "Authentication-Results",
)  # fmt: skip


@dataclass(frozen=True)
class Attachment:
    filename: str | None
    content_type: str
    size: int  # decoded bytes
    inline: bool  # shown in the body (Content-Disposition inline or a multipart/related resource)


@dataclass(frozen=True)
class ForwardedMessage:
    from_: str
    subject: str
    text: str


@dataclass
class ParsedEmail:
    message_id: str | None = None
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    subject: str = ""
    from_address: str = ""  # lower-cased addr-spec, "" when there is none
    from_name: str | None = None
    reply_to: str | None = None
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    date: datetime | None = None
    text: str = ""  # the new content: no quotes, no signature, normalised, at most max_text_chars
    full_text: str = ""  # the whole body as text
    quoted: str = ""
    signature: str = ""
    truncated: bool = False
    html_only: bool = False
    attachments: list[Attachment] = field(default_factory=list)
    forwarded: list[ForwardedMessage] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    noise: str | None = None
    problems: list[str] = field(default_factory=list)


# --- decoding helpers -------------------------------------------------------------------------------

_SURROGATES = re.compile("[\udc80-\udcff]")
_ID = re.compile(r"<[^<>\s]+>")


def _decode_bytes(data: bytes, charset: str | None, problems: list[str] | None = None) -> str:
    """Bytes to text: the declared charset if it fits, else UTF-8, else FALLBACK_CHARSET (never fails)."""
    declared = (charset or "").strip().strip("\"'").lower()
    known = None
    if declared:
        try:
            known = codecs.lookup(declared).name
        except LookupError:
            if problems is not None:
                problems.append(f"unknown charset {declared[:40]!r}")
    for name in (known, "utf-8"):
        if name:
            try:
                return data.decode(name)
            except (UnicodeDecodeError, UnicodeError):
                continue
    if known and problems is not None:
        problems.append(f"text is not valid {known}")
    return data.decode(known or FALLBACK_CHARSET, errors="replace")


def _unsurrogate(text: str) -> str:
    if not _SURROGATES.search(text):
        return text
    return _decode_bytes(text.encode("utf-8", "surrogateescape"), None)


def _decode_words(value: str) -> str:
    """RFC 2047 encoded-words in a raw header value decoded, whatever their charset claims."""
    try:
        parts = email.header.decode_header(value)
    except Exception:
        return _unsurrogate(value)
    out: list[str] = []
    for chunk, charset in parts:
        if isinstance(chunk, bytes):
            if charset in (None, "unknown-8bit"):
                out.append(_unsurrogate(chunk.decode("ascii", "surrogateescape")))
            else:
                out.append(_decode_bytes(chunk, charset))
        else:
            out.append(_unsurrogate(chunk))
    return "".join(out)


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


class _Headers:
    """One message's headers read through policy.default, falling back to the compat32 raw value."""

    def __init__(self, modern: Message, legacy: Message) -> None:
        self.modern, self.legacy = modern, legacy

    def raw(self, name: str) -> str | None:
        value = self.legacy.get(name)
        if value is None:
            return None
        return str(value) if not isinstance(value, email.header.Header) else value.encode()

    def text(self, name: str) -> str | None:
        raw = self.raw(name)
        if raw is None:
            return None
        try:
            value = str(self.modern.get(name, ""))
            if _SURROGATES.search(value) or "\ufffd" in value:
                raise ValueError("undecodable")
        except Exception:
            value = _decode_words(raw)
        return _one_line(value)

    def addresses(self, name: str) -> list[tuple[str, str]]:
        """(display name, lower-cased addr-spec) pairs; entries without an @ are dropped."""
        raws = self.legacy.get_all(name) or []
        pairs = email.utils.getaddresses([str(r) for r in raws])
        out = []
        for display, addr in pairs:
            addr = _unsurrogate(addr).strip().strip("<>").lower()
            if "@" in addr and " " not in addr:
                out.append((_one_line(_decode_words(display)), addr))
        return out


# --- body walking -----------------------------------------------------------------------------------


@dataclass
class _Body:
    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    forwarded: list[ForwardedMessage] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _payload_bytes(part: Message, problems: list[str]) -> bytes:
    cte = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    if cte == "base64":
        raw = part.get_payload(decode=False)
        data = (raw if isinstance(raw, str) else "").encode("ascii", "ignore")
        clean = re.sub(rb"[^A-Za-z0-9+/]", b"", data)
        if len(clean) % 4 == 1:
            clean = clean[:-1]
        try:
            decoded = base64.b64decode(clean + b"=" * (-len(clean) % 4))
        except (binascii.Error, ValueError):
            decoded = b""
        if re.search(rb"[^A-Za-z0-9+/=\s]", data) or len(re.sub(rb"\s", b"", data)) % 4:
            problems.append("invalid base64 (decoded what could be)")
        return decoded
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def _filename(part: Message) -> str | None:
    name: Any = None
    try:
        name = part.get_filename() or part.get_param("name")
    except Exception:
        name = None
    if isinstance(name, tuple):
        name = email.utils.collapse_rfc2231_value(name)
    return _one_line(_decode_words(str(name))) if name else None


def _walk(part: Message, body: _Body, depth: int, *, related_root: bool = False) -> None:
    if depth > MAX_DEPTH:
        body.problems.append("message nested too deeply; inner parts skipped")
        return
    ctype = part.get_content_type()
    disposition = (part.get_content_disposition() or "").lower()
    if ctype == "message/rfc822":
        inner = part.get_payload()
        inner_msg = inner[0] if isinstance(inner, list) and inner else None
        if isinstance(inner_msg, Message):
            nested = _Body()
            _walk(inner_msg, nested, depth + 1)
            text = "\n\n".join(nested.plain) or "\n\n".join(_html_text(h)[0] for h in nested.html)
            heads = _Headers(inner_msg, inner_msg)
            body.forwarded.append(
                ForwardedMessage(
                    heads.text("From") or "", heads.text("Subject") or "", normalise_whitespace(text)
                )
            )
            body.forwarded.extend(nested.forwarded)
        return
    if part.is_multipart():
        children = [p for p in part.get_payload() if isinstance(p, Message)]
        if ctype == "multipart/alternative":
            plain = [c for c in children if c.get_content_type() == "text/plain"]
            html = [c for c in children if c.get_content_type() == "text/html"]
            other = [c for c in children if c.is_multipart()]
            chosen = plain[:1] or other[-1:] or html[-1:] or children[-1:]
            for child in children:
                if child in chosen:
                    _walk(child, body, depth + 1)
                else:  # the other renderings: only their attachments (the photo in the HTML version)
                    scratch = _Body()
                    _walk(child, scratch, depth + 1)
                    body.attachments.extend(scratch.attachments)
        elif ctype == "multipart/related":
            for k, child in enumerate(children):
                _walk(child, body, depth + 1, related_root=k > 0)
        elif ctype == "multipart/report":
            for child in children[:1]:
                _walk(child, body, depth + 1)
            for child in children[1:]:
                body.attachments.append(_attachment(child, body.problems, inline=False))
        else:
            for child in children:
                _walk(child, body, depth + 1)
        return
    if part.get_content_maintype() == "multipart":  # the declared boundary was never found
        _salvage_multipart(part, body, depth)
        return
    if ctype in ("text/plain", "text/html") and disposition != "attachment":
        text = _decode_bytes(_payload_bytes(part, body.problems), part.get_content_charset(), body.problems)
        (body.plain if ctype == "text/plain" else body.html).append(text)
        return
    inline = disposition == "inline" or (related_root and disposition != "attachment")
    body.attachments.append(_attachment(part, body.problems, inline=inline))


def _salvage_multipart(part: Message, body: _Body, depth: int) -> None:
    """A multipart whose declared boundary never occurs: re-read it with the first boundary-looking
    line of its body, else take the whole body as plain text."""
    raw = part.get_payload()
    payload = raw if isinstance(raw, str) else ""
    found = re.search(r"^--([0-9A-Za-z'()+_,./:=?-]{1,70}?)(--)?[ \t]*\r?$", payload, re.M)
    if found:
        body.problems.append("multipart boundary not found; parts read with the boundary the body uses")
        head = f'Content-Type: {part.get_content_type()}; boundary="{found.group(1)}"\n\n'
        _walk(email.message_from_string(head + payload, policy=email.policy.compat32), body, depth + 1)
        return
    body.problems.append("multipart boundary not found; body read as plain text")
    body.plain.append(_decode_bytes(payload.encode("utf-8", "surrogateescape"), None))


def _attachment(part: Message, problems: list[str], *, inline: bool) -> Attachment:
    if part.is_multipart():
        try:
            size = sum(len(p.as_bytes()) for p in part.get_payload() if isinstance(p, Message))
        except Exception:
            size = 0
    else:
        size = len(_payload_bytes(part, problems))
    return Attachment(_filename(part), part.get_content_type(), size, inline)


# --- HTML -------------------------------------------------------------------------------------------

_QUOTE_XPATH = (
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' gmail_quote ')]"
    " | //blockquote[@type='cite'] | //*[@id='divRplyFwdMsg'] | //*[@id='appendonsend']"
    " | //*[contains(concat(' ', normalize-space(@class), ' '), ' yahoo_quoted ')]"
)
_SIG_XPATH = "//*[contains(concat(' ', normalize-space(@class), ' '), ' gmail_signature ')]"


def _html_text(html: str) -> tuple[str, str, str]:
    """(text, quoted, signature) of an HTML body; quote/signature elements are rendered separately."""
    from inscriptis import Inscriptis
    from inscriptis.model.config import ParserConfig
    from lxml import etree
    from lxml import html as lxml_html

    html = html[:MAX_HTML_CHARS]
    if not html.strip():
        return "", "", ""
    try:
        tree = lxml_html.document_fromstring(html)
    except (etree.ParserError, ValueError):
        return normalise_whitespace(re.sub(r"<[^>]*>", " ", html)), "", ""
    config = ParserConfig()

    def render(node: Any) -> str:
        return str(Inscriptis(node, config).get_text())

    def take(xpath: str, *, with_following: bool) -> str:
        texts: list[str] = []
        for node in tree.xpath(xpath):
            if node.getparent() is None or node.getroottree().getroot() is not tree:
                continue
            group = [node, *node.itersiblings()] if with_following else [node]
            for el in group:
                if el.getparent() is None:
                    continue
                texts.append(render(el))
                el.getparent().remove(el)
        return "\n".join(texts)

    quoted = take(_QUOTE_XPATH, with_following=True)
    signature = take(_SIG_XPATH, with_following=False)
    return render(tree), quoted, signature


_REPORTED_DEFECTS = frozenset(
    {"StartBoundaryNotFoundDefect", "CloseBoundaryNotFoundDefect", "MissingHeaderBodySeparatorDefect"}
)


# --- parse ------------------------------------------------------------------------------------------


def parse_email(raw: bytes, *, max_text_chars: int = 20000) -> ParsedEmail:
    """Everything the e-mail channel needs from one received message; never raises."""
    try:
        return _parse(raw, max_text_chars)
    except Exception as exc:  # a parser bug must not lose the message: report it as a problem
        return ParsedEmail(problems=[f"unparseable message: {type(exc).__name__}: {exc}"[:300]])


def _parse(raw: bytes, max_text_chars: int) -> ParsedEmail:
    if not isinstance(raw, bytes | bytearray | memoryview):
        return ParsedEmail(problems=["not bytes"])
    raw = bytes(raw)
    parsed = ParsedEmail()
    problems = parsed.problems
    if not raw.strip():
        problems.append("empty message")
        return parsed
    modern = email.message_from_bytes(raw, policy=email.policy.default)
    legacy = email.message_from_bytes(raw, policy=email.policy.compat32)
    heads = _Headers(modern, legacy)
    if not legacy.keys():
        problems.append("no headers")
    _read_headers(parsed, heads)
    body = _Body()
    _walk(legacy, body, 0)
    problems.extend(dict.fromkeys(body.problems))
    parsed.attachments, parsed.forwarded = body.attachments, list(body.forwarded)
    html_quoted = html_sig = ""
    full_with_quotes = ""
    if body.plain:
        full = "\n\n".join(body.plain)
    elif body.html:
        parsed.html_only = True
        rendered = [_html_text(h) for h in body.html]
        full = "\n\n".join(r[0] for r in rendered)
        html_quoted = "\n\n".join(r[1] for r in rendered if r[1])
        html_sig = "\n\n".join(r[2] for r in rendered if r[2])
        full_with_quotes = "\n\n".join(p for p in (full, html_quoted, html_sig) if p.strip())
    else:
        full = ""
    parsed.full_text = normalise_whitespace(full_with_quotes if parsed.html_only else full)
    before_forward, inline_forwards = split_forwarded(full)
    parsed.forwarded.extend(ForwardedMessage(f.from_, f.subject, f.text) for f in inline_forwards)
    new, quoted, signature = split_reply(before_forward)
    parsed.quoted = "\n\n".join(p for p in (quoted, normalise_whitespace(html_quoted)) if p)
    parsed.signature = "\n\n".join(p for p in (signature, normalise_whitespace(html_sig)) if p)
    if len(new) > max_text_chars:
        new = new[:max_text_chars].rstrip()
        parsed.truncated = True
        problems.append(f"text cut at {max_text_chars} characters")
    parsed.text = new
    for defect in (d for p in legacy.walk() for d in p.defects):
        if type(defect).__name__ in _REPORTED_DEFECTS:
            problems.append(f"defect: {type(defect).__name__}")
    parsed.problems[:] = list(dict.fromkeys(problems))
    parsed.noise = classify_noise(
        parsed.headers, from_address=parsed.from_address, subject=parsed.subject,
        content_type=parsed.headers.get("Content-Type", ""),
    )  # fmt: skip
    return parsed


def _read_headers(parsed: ParsedEmail, heads: _Headers) -> None:
    for name in KEPT_HEADERS:
        value = heads.text(name)
        if value is not None:
            parsed.headers[name] = value[:2000]
    parsed.subject = heads.text("Subject") or ""
    message_ids = _ID.findall(heads.raw("Message-ID") or "")
    parsed.message_id = message_ids[0] if message_ids else None
    reply_ids = _ID.findall(heads.raw("In-Reply-To") or "")
    parsed.in_reply_to = reply_ids[0] if reply_ids else None
    parsed.references = list(
        dict.fromkeys(_ID.findall(" ".join(map(str, heads.legacy.get_all("References") or []))))
    )
    senders = heads.addresses("From") or heads.addresses("Sender")
    if senders:
        parsed.from_name = senders[0][0] or None
        parsed.from_address = senders[0][1]
    else:
        parsed.problems.append("no sender address")
    reply_to = heads.addresses("Reply-To")
    parsed.reply_to = reply_to[0][1] if reply_to else None
    parsed.to = [addr for _, addr in heads.addresses("To")]
    parsed.cc = [addr for _, addr in heads.addresses("Cc")]
    date_raw = heads.raw("Date")
    if date_raw:
        try:
            parsed.date = email.utils.parsedate_to_datetime(_unsurrogate(date_raw).strip())
        except (TypeError, ValueError, IndexError, OverflowError):
            parsed.problems.append("unreadable Date header")


# --- replies ----------------------------------------------------------------------------------------

_REPLY_PREFIX = re.compile(r"^\s*(re|aw|odg|odgovor|sv|antw|vs|ref|rif|r)\s*(\[\d+\]|\(\d+\))?\s*:\s*", re.I)


def _base_subject(subject: str) -> str:
    while True:
        stripped = _REPLY_PREFIX.sub("", subject, count=1)
        if stripped == subject:
            return subject.strip()
        subject = stripped


def reply_headers(parsed: ParsedEmail, *, domain: str) -> dict[str, str]:
    """Threading and loop-protection headers for an answer to ``parsed``."""
    headers = {"Message-ID": email.utils.make_msgid(domain=domain)}
    refs = list(parsed.references) or ([parsed.in_reply_to] if parsed.in_reply_to else [])
    if parsed.message_id:
        headers["In-Reply-To"] = parsed.message_id
        refs = [r for r in refs if r != parsed.message_id] + [parsed.message_id]
    if len(refs) > MAX_REFERENCES:
        refs = refs[:1] + refs[-(MAX_REFERENCES - 1) :]
    if refs:
        headers["References"] = " ".join(refs)
    base = _base_subject(parsed.subject)
    headers["Subject"] = f"Re: {base}" if base else "Re:"
    headers["Auto-Submitted"] = "auto-replied"
    headers["X-Auto-Response-Suppress"] = "All"
    return headers


def compose_reply(
    parsed: ParsedEmail,
    *,
    text: str,
    from_address: str,
    from_name: str | None,
    domain: str,
    now: datetime | None = None,
) -> EmailMessage:
    """A plain-text UTF-8 answer to ``parsed``, threaded, with the original's new text quoted below."""
    msg = EmailMessage()
    msg["From"] = email.utils.formataddr((_one_line(from_name or ""), from_address))
    to_name = None if parsed.reply_to else parsed.from_name
    msg["To"] = email.utils.formataddr((_one_line(to_name or ""), parsed.reply_to or parsed.from_address))
    msg["Date"] = email.utils.format_datetime(now or datetime.now(UTC))
    for name, value in reply_headers(parsed, domain=domain).items():
        msg[name] = value
    who = parsed.from_name or parsed.from_address or "you"
    when = email.utils.format_datetime(parsed.date) if parsed.date else None
    attribution = f"On {when}, {who} wrote:" if when else f"{who} wrote:"
    quoted = "\n".join(f"> {line}" if line else ">" for line in parsed.text.splitlines())
    body = text.rstrip() + "\n"
    if quoted:
        body += f"\n{attribution}\n{quoted}\n"
    msg.set_content(body, charset="utf-8")
    return msg
