"""Digest authentication: RFC worked examples, challenger round trips, stale/replay rules, SIPp's format."""

from __future__ import annotations

import contextlib
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voicebot.sip.auth import (
    AuthResult,
    Challenge,
    DigestChallenger,
    authorization,
    digest_response,
    parse_challenge,
    parse_credentials,
)
from voicebot.sip.errors import SipParseError

USERS = {"alice": "wonderland", "bob": 'p"a\\ss, word'}
URI = "sip:bot@127.0.0.1:5060"


def lookup(name: str) -> str | None:
    return USERS.get(name)


def answer(challenger_value: str, *, user: str = "alice", method: str = "INVITE", nc: int = 1,
           cnonce: str = "0a4f113b", password: str | None = None) -> str:  # fmt: skip
    return authorization(
        parse_challenge(challenger_value), method=method, uri=URI, username=user,
        password=USERS[user] if password is None else password, cnonce=cnonce, nc=nc,
    )  # fmt: skip


# RFC 2617 section 3.5 (adapted to our API: the client side reproduces the published response).
def test_rfc2617_worked_example() -> None:
    challenge = parse_challenge(
        'Digest realm="testrealm@host.com", qop="auth,auth-int", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    assert challenge.qop == ("auth", "auth-int")
    value = authorization(
        challenge, method="GET", uri="/dir/index.html", username="Mufasa",
        password="Circle Of Life", cnonce="0a4f113b", nc=1,
    )  # fmt: skip
    params = parse_credentials(value)
    assert params["response"] == "6629fae49393a05397450978507c4ef1"
    assert params["nc"] == "00000001"
    assert params["qop"] == "auth"
    assert params["opaque"] == "5ccc069c403ebaf9f0171e9517f40e41"


# RFC 7616 section 3.9.1: the same request with MD5 and with SHA-256.
@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_worked_example(algorithm: str, expected: str) -> None:
    challenge = Challenge(
        realm="http-auth@example.org", nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
        algorithm=algorithm, qop=("auth",), opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS",
    )  # fmt: skip
    value = authorization(
        challenge, method="GET", uri="/dir/index.html", username="Mufasa", password="Circle of Life",
        cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", nc=1,
    )  # fmt: skip
    assert parse_credentials(value)["response"] == expected


def test_rfc2069_form() -> None:
    # RFC 2069 section 2.4's published response is known to be wrong (errata), so check the formula:
    # response = H(H(A1):nonce:H(A2)).
    ha1 = hashlib.md5(b"Mufasa:testrealm@host.com:CircleOfLife").hexdigest()
    ha2 = hashlib.md5(b"GET:/dir/index.html").hexdigest()
    nonce = "dcd98b7102dd2f0e8b11d0f600bfb0c093"
    response = digest_response(algorithm="MD5", method="GET", uri="/dir/index.html", nonce=nonce, ha1=ha1)
    assert response == hashlib.md5(f"{ha1}:{nonce}:{ha2}".encode()).hexdigest()


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_round_trip(algorithm: str) -> None:
    ch = DigestChallenger("voicebot", b"k" * 32)
    value = ch.challenge(100.0, algorithm=algorithm)
    assert value.startswith('Digest realm="voicebot", nonce="') and 'qop="auth"' in value
    result = ch.verify(answer(value), method="INVITE", now=101.0, lookup=lookup, uri=URI)
    assert result == AuthResult(True, "alice")


def test_quoted_password_and_username() -> None:
    ch = DigestChallenger("voicebot", b"k")
    result = ch.verify(answer(ch.challenge(0.0), user="bob"), method="INVITE", now=1.0, lookup=lookup)
    assert result.ok and result.username == "bob"


def test_wrong_password_method_realm_user_uri() -> None:
    ch = DigestChallenger("voicebot", b"k")
    value = ch.challenge(0.0)
    wrong = ch.verify(answer(value, password="nope"), method="INVITE", now=1.0, lookup=lookup)
    assert not wrong.ok and not wrong.stale and wrong.reason == "wrong response"
    assert ch.verify(answer(value, nc=2), method="BYE", now=1.0, lookup=lookup).reason == "wrong response"
    assert (
        ch.verify(answer(value, nc=3), method="INVITE", now=1.0, lookup=lambda _: None).reason
        == "unknown user"
    )
    other = DigestChallenger("elsewhere", b"k")
    assert other.verify(answer(value, nc=4), method="INVITE", now=1.0, lookup=lookup).reason == "wrong realm"
    result = ch.verify(answer(value, nc=5), method="INVITE", now=1.0, lookup=lookup, uri="sip:x@127.0.0.1")
    assert not result.ok


def test_forged_nonce_is_refused() -> None:
    ch = DigestChallenger("voicebot", b"secret")
    forger = DigestChallenger("voicebot", b"other")
    result = ch.verify(answer(forger.challenge(0.0)), method="INVITE", now=1.0, lookup=lookup)
    assert not result.ok and not result.stale and result.reason == "nonce not issued here"
    fake = 'Digest realm="voicebot", nonce="zz", qop="auth"'
    assert ch.verify(answer(fake), method="INVITE", now=1.0, lookup=lookup).reason == "nonce not issued here"


def test_expired_nonce_is_stale_only_when_the_answer_is_right() -> None:
    ch = DigestChallenger("voicebot", b"k", nonce_ttl_s=30.0)
    value = ch.challenge(0.0)
    assert ch.verify(answer(value), method="INVITE", now=29.0, lookup=lookup).ok
    late = ch.verify(answer(value, nc=2), method="INVITE", now=31.0, lookup=lookup)
    assert late == AuthResult(False, "alice", stale=True, reason="nonce expired")
    wrong = ch.verify(answer(value, nc=3, password="x"), method="INVITE", now=31.0, lookup=lookup)
    assert not wrong.stale
    again = ch.challenge(31.0, stale=True)
    assert parse_challenge(again).stale
    assert ch.verify(answer(again), method="INVITE", now=32.0, lookup=lookup).ok


def test_replayed_nonce_count_is_refused() -> None:
    ch = DigestChallenger("voicebot", b"k")
    value = ch.challenge(0.0)
    first = answer(value, nc=1)
    assert ch.verify(first, method="INVITE", now=1.0, lookup=lookup).ok
    replay = ch.verify(first, method="INVITE", now=2.0, lookup=lookup)
    assert replay == AuthResult(False, "alice", reason="nonce count replayed")
    assert ch.verify(answer(value, nc=2), method="INVITE", now=3.0, lookup=lookup).ok


def test_replay_set_is_bounded() -> None:
    ch = DigestChallenger("voicebot", b"k", replay_cache_size=8, nonce_ttl_s=1000.0)
    value = ch.challenge(0.0)
    for nc in range(1, 40):
        assert ch.verify(answer(value, nc=nc), method="INVITE", now=1.0, lookup=lookup).ok
    assert len(ch._seen) <= 8


def test_replay_entries_expire_with_the_nonce() -> None:
    ch = DigestChallenger("voicebot", b"k", nonce_ttl_s=10.0)
    for t in range(0, 100, 5):
        assert ch.verify(answer(ch.challenge(float(t))), method="INVITE", now=t + 1.0, lookup=lookup).ok
    assert len(ch._seen) <= 3


def test_rfc2069_client_is_accepted_and_nonce_reuse_is_stale() -> None:
    ch = DigestChallenger("voicebot", b"k")
    legacy = parse_challenge(ch.challenge(0.0))
    value = authorization(
        Challenge(realm=legacy.realm, nonce=legacy.nonce), method="REGISTER", uri=URI,
        username="alice", password="wonderland", cnonce="", nc=1,
    )  # fmt: skip
    assert "qop" not in parse_credentials(value)
    assert ch.verify(value, method="REGISTER", now=1.0, lookup=lookup).ok
    reuse = ch.verify(value, method="REGISTER", now=2.0, lookup=lookup)
    assert reuse.stale and not reuse.ok


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_lookup_of_stored_ha1(algorithm: str) -> None:
    h = hashlib.md5 if algorithm == "MD5" else hashlib.sha256
    ha1 = h(b"alice:voicebot:wonderland").hexdigest()
    ch = DigestChallenger("voicebot", b"k", lookup_is_ha1=True)
    value = ch.challenge(0.0, algorithm=algorithm)
    assert ch.verify(answer(value), method="INVITE", now=1.0, lookup=lambda _: ha1).ok
    md5_ha1 = hashlib.md5(b"alice:voicebot:wonderland").hexdigest()
    if algorithm == "SHA-256":
        result = ch.verify(answer(value, nc=2), method="INVITE", now=1.0, lookup=lambda _: md5_ha1)
        assert not result.ok and "HA1" in result.reason


def test_sess_algorithms_round_trip() -> None:
    ch = DigestChallenger("voicebot", b"k")
    value = ch.challenge(0.0).replace("algorithm=MD5", "algorithm=MD5-sess")
    assert ch.verify(answer(value), method="INVITE", now=1.0, lookup=lookup).ok


def test_sipp_authorization_format() -> None:
    """SIPp 3.6's [authentication] keyword: no spaces after commas, unquoted nc and qop, algorithm last."""
    ch = DigestChallenger("voicebot", b"k")
    nonce = parse_challenge(ch.challenge(0.0)).nonce
    ha1 = hashlib.md5(b"alice:voicebot:wonderland").hexdigest()
    ha2 = hashlib.md5(f"INVITE:{URI}".encode()).hexdigest()
    response = hashlib.md5(f"{ha1}:{nonce}:00000001:6b8b4567:auth:{ha2}".encode()).hexdigest()
    value = (
        f'Digest username="alice",realm="voicebot",cnonce="6b8b4567",nc=00000001,qop=auth,'
        f'uri="{URI}",nonce="{nonce}",response="{response}",algorithm=MD5'
    )
    assert ch.verify(value, method="INVITE", now=1.0, lookup=lookup, uri=URI) == AuthResult(True, "alice")


def test_challenge_parsing_variants() -> None:
    ch = parse_challenge('digest  realm="a, b",nonce="n",stale=TRUE,algorithm=sha-256, qop="auth"')
    assert (ch.realm, ch.nonce, ch.stale, ch.qop) == ("a, b", "n", True, ("auth",))
    assert ch.algorithm == "sha-256"
    assert parse_challenge('Digest realm="r", nonce="n"').qop == ()


@pytest.mark.parametrize(
    "value",
    [
        'Basic realm="x"',
        "Digest",
        'Digest realm="x"',
        'Digest nonce="x"',
        'Digest realm="x", nonce="n", algorithm=SHA-1',
        'Digest realm="x", nonce="n", realm="y"',
        'Digest realm="x", nonce="unterminated',
        "Digest realm=x nonce=y",
    ],
)
def test_malformed_challenges(value: str) -> None:
    with pytest.raises(SipParseError):
        parse_challenge(value)


def test_only_auth_int_offered() -> None:
    with pytest.raises(SipParseError):
        answer('Digest realm="r", nonce="n", qop="auth-int"')


@pytest.mark.parametrize(
    "value",
    [
        'Digest username="alice", realm="voicebot"',
        'Digest username="alice", realm="voicebot", nonce="x", uri="u", response="r", qop=auth',
        'Digest username="alice", realm="voicebot", nonce="x", uri="u", response="r", qop=auth, nc=1, '
        'cnonce="c"',
        "NTLM abc",
    ],
)
def test_malformed_credentials(value: str) -> None:
    with pytest.raises(SipParseError):
        DigestChallenger("voicebot", b"k").verify(value, method="INVITE", now=0.0, lookup=lookup)


def test_unsupported_algorithm_in_credentials_is_a_refusal() -> None:
    ch = DigestChallenger("voicebot", b"k")
    value = answer(ch.challenge(0.0)).replace("algorithm=MD5", "algorithm=SHA-512-256")
    result = ch.verify(value, method="INVITE", now=1.0, lookup=lookup)
    assert not result.ok and "algorithm" in result.reason


def test_empty_secret_refused() -> None:
    with pytest.raises(ValueError):
        DigestChallenger("r", b"")


@given(st.text(max_size=200))
def test_parsers_raise_only_sip_parse_error(text: str) -> None:
    for parse in (parse_challenge, parse_credentials):
        with contextlib.suppress(SipParseError):
            parse(text)
    with contextlib.suppress(SipParseError):
        DigestChallenger("r", b"k").verify("Digest " + text, method="INVITE", now=0.0, lookup=lookup)


@given(
    user=st.text(st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), min_size=1, max_size=20),
    password=st.text(max_size=20),
    algorithm=st.sampled_from(["MD5", "SHA-256", "MD5-sess", "SHA-256-sess"]),
)
def test_round_trip_property(user: str, password: str, algorithm: str) -> None:
    ch = DigestChallenger("voicebot", b"k")
    value = ch.challenge(0.0, algorithm=algorithm)
    creds = authorization(
        parse_challenge(value), method="INVITE", uri=URI, username=user, password=password, cnonce="c", nc=7
    )
    assert ch.verify(creds, method="INVITE", now=1.0, lookup=lambda u: password if u == user else None).ok
