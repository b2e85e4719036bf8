"""RFC 3261 message layer: round trip of captured messages, header rules, stream framing, errors."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voicebot.sip import (
    CSeq,
    Headers,
    SipMessageTooLarge,
    SipParseError,
    SipRequest,
    SipResponse,
    SipStreamParser,
    Via,
    parse_message,
)

DATA = Path(__file__).parent.parent / "data" / "sip"
FILES = sorted(DATA.glob("*.txt"))


def load(name: str) -> bytes:
    raw = (DATA / name).read_bytes()
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def test_data_present() -> None:
    assert len(FILES) >= 13
    for path in FILES:
        assert b"127.0.0.1" in path.read_bytes()


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_round_trip(path: Path) -> None:
    msg = parse_message(load(path.name))
    again = parse_message(bytes(msg))
    assert again == msg
    assert bytes(again) == bytes(msg)
    assert bytes(msg).count(b"\r\n\r\n") >= 1
    assert msg.headers.get("Content-Length") == str(len(msg.body))


def test_invite_parts() -> None:
    msg = parse_message(load("invite.txt"))
    assert isinstance(msg, SipRequest)
    assert (msg.method, msg.uri) == ("INVITE", "sip:bot@127.0.0.1:5060")
    assert msg.cseq == CSeq(1, "INVITE")
    assert msg.top_via.branch == "z9hG4bK-524287-1---77ba17085d60f141"
    assert msg.top_via.transport == "UDP" and msg.top_via.sent_by == "127.0.0.1:5070"
    assert "rport" in msg.top_via.params
    assert msg.from_tag == "9fxced76sl" and msg.to_tag is None
    assert msg.headers.get_all("From") == ['"Alice, Caller" <sip:alice@127.0.0.1:5070>;tag=9fxced76sl']
    assert msg.headers.get_all("Allow") == ["INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "INFO", "NOTIFY"]
    assert msg.body.startswith(b"v=0\r\n") and msg.content_length == len(msg.body)


def test_responses() -> None:
    ok = parse_message(load("ok_200_sdp.txt"))
    assert isinstance(ok, SipResponse) and (ok.status, ok.reason) == (200, "OK")
    assert ok.to_tag == "as6151ad25" and b"40002" in ok.body
    trying = parse_message(load("trying_100.txt"))
    assert isinstance(trying, SipResponse) and trying.status == 100 and trying.body == b""


def test_auth_headers_not_split() -> None:
    challenge = parse_message(load("unauthorized_401.txt"))
    assert challenge.headers.get_all("www-authenticate") == [
        'Digest realm="127.0.0.1", nonce="5f2a1b3c", algorithm=MD5, qop="auth"'
    ]
    reg = parse_message(load("register_auth.txt"))
    assert len(reg.headers.get_all("Authorization")) == 1


def test_dtmf_info() -> None:
    info = parse_message(load("info_dtmf.txt"))
    assert info.headers.get("Content-Type") == "application/dtmf-relay"
    assert info.body == b"Signal=5\r\nDuration=160\r\n"


def test_compact_forms_and_folding() -> None:
    msg = parse_message(load("compact_folded.txt"))
    h = msg.headers
    assert [v.split(";")[0] for v in h.get_all("Via")] == [
        "SIP/2.0/UDP 127.0.0.1:5070",
        "SIP/2.0/TCP 127.0.0.1:5071",
    ]
    assert h.get("From") == h.get("f") == "<sip:alice@127.0.0.1:5070>;tag=cmp1"
    assert h.get("Call-ID") == "compact-1@127.0.0.1"
    assert h.get("Contact") == "<sip:alice@127.0.0.1:5070>"
    assert h.get_all("Supported") == ["100rel", "timer"]
    assert h.get("Subject") == "folded subject line"
    assert h.get("Content-Encoding") == "identity"
    assert h.get("Content-Type") == "application/sdp"
    assert h.get("x-custom-header") == "kept, verbatim"
    out = bytes(msg)
    for long_name in (
        b"\r\nVia: ",
        b"\r\nFrom: ",
        b"\r\nTo: ",
        b"\r\nCall-ID: ",
        b"\r\nContact: ",
        b"\r\nSupported: ",
        b"\r\nSubject: ",
        b"\r\nContent-Encoding: ",
        b"\r\nContent-Type: ",
        b"\r\nContent-Length: ",
        b"\r\nX-Custom-Header: ",
    ):
        assert long_name in out
    assert b"\r\nv: " not in out and b"\r\nl: " not in out


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        (
            "Via",
            "SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b",
            ["SIP/2.0/UDP a;branch=z9hG4bK1", "SIP/2.0/UDP b"],
        ),
        (
            "Contact",
            '"Doe, John" <sip:j@127.0.0.1>, <sip:k@127.0.0.1>',
            ['"Doe, John" <sip:j@127.0.0.1>', "<sip:k@127.0.0.1>"],
        ),
        ("Contact", "<sip:a@127.0.0.1;x=1,2>;q=0.5", ["<sip:a@127.0.0.1;x=1,2>;q=0.5"]),
        (
            "Route",
            "<sip:p1@127.0.0.1;lr>,<sip:p2@127.0.0.1;lr>",
            ["<sip:p1@127.0.0.1;lr>", "<sip:p2@127.0.0.1;lr>"],
        ),
        ("Record-Route", "<sip:p1@127.0.0.1;lr>", ["<sip:p1@127.0.0.1;lr>"]),
        ("Allow", "INVITE,ACK , BYE", ["INVITE", "ACK", "BYE"]),
        ("k", "timer, 100rel", ["timer", "100rel"]),
        ("Contact", '"quote \\" , inside" <sip:a@127.0.0.1>', ['"quote \\" , inside" <sip:a@127.0.0.1>']),
        ("WWW-Authenticate", 'Digest realm="a", nonce="b"', ['Digest realm="a", nonce="b"']),
        ("Authorization", 'Digest username="a", uri="sip:x"', ['Digest username="a", uri="sip:x"']),
        (
            "Proxy-Authenticate",
            'Digest realm="a", qop="auth,auth-int"',
            ['Digest realm="a", qop="auth,auth-int"'],
        ),
        ("Proxy-Authorization", "Digest a=1, b=2", ["Digest a=1, b=2"]),
        ("From", '"A, B" <sip:a@127.0.0.1>;tag=1', ['"A, B" <sip:a@127.0.0.1>;tag=1']),
        ("Date", "Sat, 13 Nov 2010 23:29:00 GMT", ["Sat, 13 Nov 2010 23:29:00 GMT"]),
        ("X-Unknown", "a, b", ["a, b"]),
        ("Supported", "", [""]),
    ],
)
def test_multi_value_splitting(name: str, value: str, expected: list[str]) -> None:
    h = Headers()
    h.add(name, value)
    assert h.get_all(name) == expected


def test_headers_api() -> None:
    h = Headers([("via", "SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKa"), ("X-A", "1"), ("x-a", "2")])
    assert h.items()[0][0] == "Via"
    assert h.get("X-a") == "1" and h.get_all("X-A") == ["1", "2"]
    h.set("x-a", "3")
    assert h.get_all("X-A") == ["3"] and [n for n, _ in h][1] == "x-a"
    h.add("i", "abc")
    assert h.get("CALL-ID") == "abc" and "Call-ID" in h
    h.remove("call-id")
    assert "i" not in h and h.get("Call-ID", "none") == "none"
    with pytest.raises(SipParseError):
        h.add("Bad Name", "x")
    with pytest.raises(SipParseError):
        h.add("X-B", "a\r\nInjected: 1")


def test_helpers() -> None:
    assert CSeq.parse("  42   REGISTER ") == CSeq(42, "REGISTER")
    assert str(CSeq(7, "BYE")) == "7 BYE"
    via = Via.parse("SIP/2.0/tcp 127.0.0.1 : 5061 ;branch=z9hG4bKx;received=127.0.0.1")
    assert via.transport == "TCP" and via.sent_by == "127.0.0.1:5061" and via.branch == "z9hG4bKx"
    assert str(Via.parse(str(via))) == str(via)
    for bad in ("1", "x INVITE", "99999999999 INVITE"):
        with pytest.raises(SipParseError):
            CSeq.parse(bad)
    with pytest.raises(SipParseError):
        Via.parse("nonsense")


def test_constructed_message_gets_content_length() -> None:
    resp = SipResponse(486, "Busy Here", Headers([("Call-ID", "x@127.0.0.1")]), b"abc")
    out = bytes(resp)
    assert out.startswith(b"SIP/2.0 486 Busy Here\r\n") and b"Content-Length: 3\r\n\r\nabc" in out
    resp.headers.set("Content-Length", "99")
    assert b"Content-Length: 3\r\n" in bytes(resp)


# -- datagram body rules ----------------------------------------------------------------------------


def test_extra_octets_after_body_discarded_and_missing_length_takes_rest() -> None:
    raw = load("info_dtmf.txt")
    assert parse_message(raw + b"junk").body == parse_message(raw).body
    head, _, body = raw.partition(b"\r\n\r\n")
    no_len = (
        b"\r\n".join(x for x in head.split(b"\r\n") if not x.startswith(b"Content-Length"))
        + b"\r\n\r\n"
        + body
    )
    msg = parse_message(no_len)
    assert msg.body == body and msg.headers.get("Content-Length") == str(len(body))


def test_leading_crlf_ignored() -> None:
    assert parse_message(b"\r\n\r\n" + load("options.txt")) == parse_message(load("options.txt"))


OPTIONS = load("options.txt")


def _replace(old: bytes, new: bytes) -> bytes:
    assert old in OPTIONS
    return OPTIONS.replace(old, new)


MALFORMED = {
    "empty": (b"", "empty"),
    "only keepalive": (b"\r\n\r\n", "empty"),
    "no blank line": (OPTIONS.split(b"\r\n\r\n")[0] + b"\r\n", "empty line"),
    "garbage start": (b"HELLO\r\nVia: x\r\n\r\n", "start line"),
    "bad request uri": (_replace(b"sip:127.0.0.1:5060 SIP", b"nouri SIP"), "start line"),
    "bad status code": (b"SIP/2.0 99 Odd\r\n\r\n", "start line"),
    "lowercase SIP only version": (_replace(b" SIP/2.0\r\n", b" HTTP/1.1\r\n"), "start line"),
    "bad header line": (_replace(b"Accept:", b"Accept"), "header line"),
    "bad header name": (_replace(b"Accept:", b"Acc(ept:"), "header name"),
    "fold first": (_replace(b"\r\nVia:", b"\r\n Via:"), "continuation"),
    "non utf8": (_replace(b"probe", b"pr\xffbe"), "UTF-8"),
    "control char": (_replace(b"probe", b"pr\x01be"), "control character"),
    "length too big": (_replace(b"Content-Length: 0", b"Content-Length: 10"), "shorter than Content-Length"),
    "length negative": (_replace(b"Content-Length: 0", b"Content-Length: -1"), "Content-Length"),
    "length non numeric": (_replace(b"Content-Length: 0", b"Content-Length: abc"), "Content-Length"),
    "length conflict": (_replace(b"Content-Length: 0", b"Content-Length: 0\r\nl: 1"), "conflicting"),
    "missing via": (_replace(b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKopt1\r\n", b""), "missing Via"),
    "missing from": (_replace(b"From: <sip:probe@127.0.0.1:5070>;tag=opt1\r\n", b""), "missing From"),
    "missing to": (_replace(b"To: <sip:127.0.0.1:5060>\r\n", b""), "missing To"),
    "missing call-id": (_replace(b"Call-ID: opt-1@127.0.0.1\r\n", b""), "missing Call-ID"),
    "missing cseq": (_replace(b"CSeq: 1 OPTIONS\r\n", b""), "missing CSeq"),
    "bad cseq": (_replace(b"CSeq: 1 OPTIONS", b"CSeq: one OPTIONS"), "CSeq"),
    "cseq method mismatch": (_replace(b"CSeq: 1 OPTIONS", b"CSeq: 1 INVITE"), "does not match"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed(case: str) -> None:
    data, fragment = MALFORMED[case]
    with pytest.raises(SipParseError) as info:
        parse_message(data)
    assert info.value.status == 400
    assert fragment in info.value.reason


def test_max_forwards_optional_and_foreign_version() -> None:
    parse_message(_replace(b"Max-Forwards: 70\r\n", b""))
    with pytest.raises(SipParseError) as info:
        parse_message(_replace(b" SIP/2.0\r\n", b" SIP/3.0\r\n"))
    assert info.value.status == 505


# -- stream framing ---------------------------------------------------------------------------------

STREAM_FILES = ["invite.txt", "trying_100.txt", "ok_200_sdp.txt", "ack.txt", "info_dtmf.txt", "bye.txt"]


def test_stream_every_byte_boundary() -> None:
    raw = load("invite.txt")
    expected = parse_message(raw)
    for cut in range(len(raw) + 1):
        parser = SipStreamParser()
        got = parser.feed(raw[:cut]) + parser.feed(raw[cut:])
        assert got == [expected], cut


def test_stream_several_messages_and_keepalives() -> None:
    raws = [load(n) for n in STREAM_FILES]
    blob = b"\r\n\r\n" + b"\r\n".join(raws) + b"\r\n\r\n"
    parser = SipStreamParser()
    assert parser.feed(blob) == [parse_message(r) for r in raws]
    assert parser.feed(b"\r\n\r\n") == []
    one_by_one = SipStreamParser()
    got = [m for i in range(len(blob)) for m in one_by_one.feed(blob[i : i + 1])]
    assert got == [parse_message(r) for r in raws]


def test_stream_requires_content_length() -> None:
    raw = load("options.txt").replace(b"Content-Length: 0\r\n", b"")
    with pytest.raises(SipParseError) as info:
        SipStreamParser().feed(raw)
    assert info.value.status == 400 and "Content-Length" in info.value.reason


def test_stream_oversized() -> None:
    parser = SipStreamParser(max_size=1024)
    big = load("info_dtmf.txt").replace(b"Content-Length: 24", b"Content-Length: 5000")
    assert b"Content-Length: 5000" in big
    with pytest.raises(SipMessageTooLarge) as info:
        parser.feed(big)
    assert info.value.status == 513
    with pytest.raises(SipParseError):
        parser.feed(b"")
    endless = SipStreamParser()
    with pytest.raises(SipParseError) as info:
        for _ in range(100):
            endless.feed(b"X-Long: " + b"a" * 1000 + b"\r\n")
    assert info.value.status == 513
    assert SipStreamParser().max_size == 64 * 1024


def test_stream_error_after_good_message_is_deferred() -> None:
    parser = SipStreamParser()
    good = load("bye.txt")
    assert parser.feed(good + b"GARBAGE\r\n\r\n") == [parse_message(good)]
    with pytest.raises(SipParseError):
        parser.feed(good)


# -- properties -------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_only_sip_parse_error(data: bytes) -> None:
    for candidate in (data, OPTIONS[: len(data) % len(OPTIONS)] + data):
        with contextlib.suppress(SipParseError):
            parse_message(candidate)
        with contextlib.suppress(SipParseError):
            SipStreamParser(max_size=512).feed(candidate)


_token = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.!%*_+`'~",
    min_size=1,
    max_size=12,
)
_value = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x2FF, exclude_characters="\x7f"), max_size=30
).map(lambda s: s.strip(" \t"))
_header = st.tuples(
    st.one_of(
        _token.map(lambda s: "X-" + s),
        st.sampled_from(
            ["Via", "Contact", "Allow", "Subject", "Route", "Supported", "User-Agent", "Warning", "Date"]
        ),
    ),
    _value,
)


@st.composite
def messages(draw: st.DrawFn) -> SipRequest | SipResponse:
    headers = Headers(draw(st.lists(_header, max_size=8)))
    body = draw(st.binary(max_size=200))
    if draw(st.booleans()):
        return SipResponse(draw(st.integers(100, 699)), draw(_value), headers, body)
    method = draw(_token)
    number = draw(st.integers(0, 2**31 - 1))
    headers.add("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK" + draw(_token))
    headers.add("From", "<sip:a@127.0.0.1>;tag=" + draw(_token))
    headers.add("To", "<sip:b@127.0.0.1>")
    headers.add("Call-ID", draw(_token) + "@127.0.0.1")
    headers.add("CSeq", f"{number} {method}")
    return SipRequest(method, "sip:" + draw(_token) + "@127.0.0.1", headers, body)


@settings(max_examples=300, deadline=None)
@given(messages())
def test_generated_messages_round_trip(msg: SipRequest | SipResponse) -> None:
    raw = bytes(msg)
    parsed = parse_message(raw)
    assert type(parsed) is type(msg) and parsed.body == msg.body
    assert bytes(parsed) == raw
    assert parse_message(bytes(parsed)) == parsed
    for name in {n for n, _ in msg.headers if n != "Content-Length"}:
        assert parsed.headers.get_all(name) == msg.headers.get_all(name)
    stream = SipStreamParser()
    assert stream.feed(raw[:7]) + stream.feed(raw[7:]) == [parsed]
