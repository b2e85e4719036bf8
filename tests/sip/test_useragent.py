"""The user agent core: two UserAgents wired back to back in memory, plus raw messages for the
edge cases (every call here runs on injected time; no sockets)."""

from __future__ import annotations

from voicebot.sip import parse_message
from voicebot.sip.auth import DigestChallenger
from voicebot.sip.message import SipRequest, SipResponse
from voicebot.sip.timers import Timers
from voicebot.sip.transaction import Peer
from voicebot.sip.useragent import (
    CallAnswered,
    CallConfirmed,
    CallEnded,
    CallProgress,
    CallState,
    DtmfInfo,
    IncomingCall,
    ReferStatus,
    RegistrationChanged,
    RegState,
    ReofferReceived,
    UaConfig,
    UaEvent,
    UserAgent,
)

T = Timers(t1=0.05, t2=0.4, t4=0.5)
BOT = UaConfig(host="127.0.0.1", port=5060, timers=T)
PHONE = UaConfig(host="127.0.0.1", port=5070, user="phone", timers=T)


class Net:
    """Delivers datagrams between user agents by port; can drop the next N of one method."""

    def __init__(self, *uas: UserAgent) -> None:
        self.uas = {ua.config.port: ua for ua in uas}
        self.now = 0.0
        self.events: dict[int, list[UaEvent]] = {ua.config.port: [] for ua in uas}
        self.drop: dict[str, int] = {}
        self.log: list[bytes] = []

    def pump(self, advance: float = 0.0) -> None:
        self.now += advance
        for _ in range(100):
            moved = False
            for port, ua in self.uas.items():
                ua.handle_timer(self.now)
                for data, peer in ua.datagrams_to_send():
                    moved = True
                    self.log.append(data)
                    first = data.split(b"\r\n", 1)[0].decode()
                    key = next((m for m in self.drop if first.startswith(m) or first.endswith(m)), None)
                    if key and self.drop[key] > 0:
                        self.drop[key] -= 1
                        continue
                    target = self.uas.get(peer.port)
                    if target is not None:
                        target.receive(data, Peer(peer.transport, "127.0.0.1", port), self.now)
                while (event := ua.next_event()) is not None:
                    self.events[port].append(event)
            if not moved:
                return

    def run_for(self, seconds: float, step: float = 0.01) -> None:
        end = self.now + seconds
        while self.now < end:
            self.pump(step)

    def of(self, port: int, kind: type) -> list:  # type: ignore[type-arg]
        return [e for e in self.events[port] if isinstance(e, kind)]


def setup_call(net: Net, bot: UserAgent, phone: UserAgent) -> tuple:  # type: ignore[type-arg]
    out = phone.invite("sip:bot@127.0.0.1:5060", net.now, sdp=b"v=0\r\n")
    net.pump()
    (incoming,) = net.of(5060, IncomingCall)
    bot.ring(incoming.call, net.now)
    bot.answer(incoming.call, b"v=0 answer\r\n", net.now)
    net.pump()
    return incoming.call, out


def test_basic_call_in_and_bye_from_the_caller() -> None:
    bot, phone = UserAgent(BOT), UserAgent(PHONE)
    net = Net(bot, phone)
    call, out = setup_call(net, bot, phone)
    assert [e.status for e in net.of(5070, CallProgress)] == [180]
    (answered,) = net.of(5070, CallAnswered)
    assert answered.sdp == b"v=0 answer\r\n"
    assert call.state is CallState.CONFIRMED and net.of(5060, CallConfirmed)
    assert call.remote_sdp == b"v=0\r\n"
    phone.hangup(out, net.now)
    net.pump()
    (ended,) = net.of(5060, CallEnded)
    assert ended.reason == "remote_bye"
    net.run_for(4.0)
    assert bot.stats() == {"calls": 0, "dialogs": 0, "transactions": 0, "registrations": 0}
    assert phone.stats()["transactions"] == 0


def test_lost_2xx_is_retransmitted_and_a_lost_ack_means_bye() -> None:
    bot, phone = UserAgent(BOT), UserAgent(PHONE)
    net = Net(bot, phone)
    net.drop["200 OK"] = 1
    call, _ = setup_call(net, bot, phone)
    assert call.state is CallState.ANSWERING
    net.run_for(0.2)
    assert call.state is CallState.CONFIRMED  # the retransmitted 2xx got its ACK

    bot2, phone2 = UserAgent(BOT), UserAgent(PHONE)
    net2 = Net(bot2, phone2)
    net2.drop["ACK"] = 100
    setup_call(net2, bot2, phone2)
    net2.run_for(64 * 0.05 + 0.2)
    (ended,) = net2.of(5060, CallEnded)
    assert ended.reason == "no_ack"
    assert any(d.startswith(b"BYE ") for d in net2.log)


def test_cancel_before_answer_gives_200_and_487() -> None:
    bot, phone = UserAgent(BOT), UserAgent(PHONE)
    net = Net(bot, phone)
    out = phone.invite("sip:bot@127.0.0.1:5060", net.now, sdp=b"v=0\r\n")
    net.pump()
    (incoming,) = net.of(5060, IncomingCall)
    bot.ring(incoming.call, net.now)
    net.pump()
    phone.hangup(out, net.now)
    net.pump()
    assert net.of(5060, CallEnded)[0].reason == "cancelled"
    assert any(d.startswith(b"SIP/2.0 487") for d in net.log)
    assert any(d.startswith(b"SIP/2.0 200") and b"CANCEL" in d for d in net.log)
    net.run_for(4.0)
    assert bot.stats()["transactions"] == 0 and phone.stats()["calls"] == 0


def test_reinvite_hold_offer_reaches_the_application_and_its_answer_goes_back() -> None:
    bot, phone = UserAgent(BOT), UserAgent(PHONE)
    net = Net(bot, phone)
    call, out = setup_call(net, bot, phone)
    assert out.dialog is not None
    peer = Peer("udp", "127.0.0.1", 5060)
    reinvite = out.dialog.request(
        "INVITE",
        via=phone._via(peer),
        contact=phone.contact(peer),
        body=b"hold",
        content_type="application/sdp",
    )
    phone._start_client(reinvite, peer, net.now, lambda r, n: None)
    net.pump()
    (offer,) = net.of(5060, ReofferReceived)
    assert offer.sdp == b"hold"
    # a second re-INVITE while the first is pending: 491
    again = out.dialog.request(
        "INVITE", via=phone._via(peer), contact=phone.contact(peer), body=b"x", content_type="application/sdp"
    )
    phone._start_client(again, peer, net.now, lambda r, n: None)
    net.pump()
    assert any(d.startswith(b"SIP/2.0 491") for d in net.log)
    bot.answer_reoffer(call, b"recvonly", net.now)
    net.pump()
    assert call.local_sdp == b"recvonly" and call.remote_sdp == b"hold"


def test_info_dtmf_relay_and_refer_with_notify() -> None:
    bot, phone = UserAgent(BOT), UserAgent(PHONE)
    net = Net(bot, phone)
    call, out = setup_call(net, bot, phone)
    peer = Peer("udp", "127.0.0.1", 5060)
    assert out.dialog is not None
    info = out.dialog.request(
        "INFO",
        via=phone._via(peer),
        body=b"Signal=5\r\nDuration=160\r\n",
        content_type="application/dtmf-relay",
    )
    phone._start_client(info, peer, net.now, lambda r, n: None)
    net.pump()
    assert [e.digit for e in net.of(5060, DtmfInfo)] == ["5"]

    bot.refer(call, "sip:agent@127.0.0.1:5080", net.now)
    net.pump()
    # the phone does not accept REFER (405 from our own UA) -> a final failed status
    (status,) = net.of(5060, ReferStatus)
    assert status.status == 405 and status.final


def test_notify_sipfrag_reports_refer_progress() -> None:
    bot = UserAgent(BOT)
    phone_port = Peer("udp", "127.0.0.1", 5070)
    invite = (
        b"INVITE sip:bot@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n"
        b"From: <sip:a@127.0.0.1>;tag=a1\r\nTo: <sip:bot@127.0.0.1>\r\nCall-ID: n1\r\nCSeq: 1 INVITE\r\n"
        b"Contact: <sip:a@127.0.0.1:5070>\r\n\r\n"
    )
    bot.receive(invite, phone_port, 0.0)
    ev = bot.next_event()
    assert isinstance(ev, IncomingCall)
    bot.answer(ev.call, b"sdp", 0.0)
    tag = ev.call.local_tag
    bot.receive(
        (
            "ACK sip:bot@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK2\r\n"
            f"From: <sip:a@127.0.0.1>;tag=a1\r\nTo: <sip:bot@127.0.0.1>;tag={tag}\r\n"
            "Call-ID: n1\r\nCSeq: 1 ACK\r\n\r\n"
        ).encode(),
        phone_port,
        0.01,
    )
    assert isinstance(bot.next_event(), CallConfirmed)
    bot.refer(ev.call, "sip:agent@127.0.0.1", 0.02)
    refer = parse_message(bot.datagrams_to_send()[-1][0])
    assert isinstance(refer, SipRequest) and refer.method == "REFER"
    assert refer.headers.get("Refer-To") == "<sip:agent@127.0.0.1>"
    bot.receive(
        (
            f"NOTIFY sip:voicebot@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK3\r\n"
            f"From: <sip:a@127.0.0.1>;tag=a1\r\nTo: <sip:bot@127.0.0.1>;tag={tag}\r\nCall-ID: n1\r\n"
            "CSeq: 2 NOTIFY\r\nEvent: refer\r\nSubscription-State: terminated;reason=noresource\r\n"
            "Content-Type: message/sipfrag\r\n\r\nSIP/2.0 200 OK\r\n"
        ).encode(),
        phone_port,
        0.03,
    )
    ev2 = bot.next_event()
    assert isinstance(ev2, ReferStatus) and ev2.status == 200 and ev2.final


def raw(bot: UserAgent, text: str) -> SipResponse:
    bot.receive(text.encode(), Peer("udp", "127.0.0.1", 5070), 0.0)
    (data, _), *_ = bot.datagrams_to_send()
    msg = parse_message(data)
    assert isinstance(msg, SipResponse)
    return msg


HEAD = (
    "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK{b}\r\nFrom: <sip:a@127.0.0.1>;tag=a\r\n"
    "To: <sip:bot@127.0.0.1>{to}\r\nCall-ID: x{b}\r\nCSeq: 1 {m}\r\nContact: <sip:a@127.0.0.1:5070>\r\n"
)


def req(method: str, b: str = "1", to: str = "", extra: str = "", uri: str = "sip:bot@127.0.0.1") -> str:
    return f"{method} {uri} SIP/2.0\r\n" + HEAD.format(b=b, to=to, m=method) + extra + "\r\n"


def test_error_answers() -> None:
    bot = UserAgent(BOT)
    options = raw(bot, req("OPTIONS"))
    assert options.status == 200 and "INVITE" in (options.headers.get("Allow") or "")
    assert raw(bot, req("BYE", "2", to=";tag=nope")).status == 481
    assert raw(bot, req("FOO", "3")).status == 501
    assert raw(bot, req("SUBSCRIBE", "4")).status == 405
    assert raw(bot, req("OPTIONS", "5", extra="Max-Forwards: 0\r\n")).status == 483
    unsupported = raw(bot, req("INVITE", "6", extra="Require: 100rel\r\n"))
    assert unsupported.status == 420 and unsupported.headers.get("Unsupported") == "100rel"
    assert raw(bot, req("OPTIONS", "7", uri="tel:+38640123456")).status == 416
    bad = raw(bot, "INVITE sip:bot@127.0.0.1 SIP/2.0\r\n" + HEAD.format(b="8", to="", m="BYE") + "\r\n")
    assert bad.status == 400 and "CSeq" in (bad.headers.get("Warning") or "")


def test_merged_request_is_refused_with_482() -> None:
    bot = UserAgent(BOT)
    bot.receive(req("INVITE", "9").encode(), Peer("udp", "127.0.0.1", 5070), 0.0)
    bot.datagrams_to_send()
    fork = req("INVITE", "9").replace("branch=z9hG4bK9", "branch=z9hG4bKother")
    assert raw(bot, fork).status == 482


def test_garbage_gets_no_answer_and_no_crash() -> None:
    bot = UserAgent(BOT)
    for junk in (b"", b"\x00\xff" * 100, b"SIP/2.0 200 OK\r\n\r\n", b"hello\r\n\r\n"):
        bot.receive(junk, Peer("udp", "127.0.0.1", 5070), 0.0)
    assert bot.datagrams_to_send() == []
    big = req("OPTIONS", "10").encode() + b"x" * 70_000
    bot.receive(big, Peer("udp", "127.0.0.1", 5070), 0.0)
    ((data, _),) = bot.datagrams_to_send()
    assert data.startswith(b"SIP/2.0 513")


def test_outbound_invite_with_digest_challenge_is_retried_once_with_credentials() -> None:
    bot, phone = UserAgent(BOT), UserAgent(PHONE)
    net = Net(bot, phone)
    challenger = DigestChallenger("voicebot", b"secret")
    out = phone.invite("sip:bot@127.0.0.1:5060", net.now, sdp=b"v=0\r\n", credentials=("alice", "pw"))
    net.pump()
    (first,) = net.of(5060, IncomingCall)
    bot.reject(first.call, 407, net.now, headers=[("Proxy-Authenticate", challenger.challenge(net.now))])
    net.pump()
    second = net.of(5060, IncomingCall)[-1]
    assert second.call is not first.call
    value = second.call.invite.headers.get("Proxy-Authorization")
    assert value is not None
    result = challenger.verify(value, method="INVITE", now=net.now, lookup={"alice": "pw"}.get)
    assert result.ok
    bot.reject(second.call, 407, net.now, headers=[("Proxy-Authenticate", challenger.challenge(net.now))])
    net.pump()
    assert len(net.of(5060, IncomingCall)) == 2  # wrong credentials are not tried again
    (ended,) = net.of(5070, CallEnded)
    assert ended.status == 407 and out.ended


def test_register_with_digest_and_refresh() -> None:
    phone = UserAgent(PHONE)
    challenger = DigestChallenger("trunk", b"k")
    reg = phone.register(
        "sip:127.0.0.1:5060", "sip:phone@127.0.0.1", 0.0, credentials=("phone", "pw"), expires=60
    )
    ((data, peer),) = phone.datagrams_to_send()
    first = parse_message(data)
    assert isinstance(first, SipRequest) and first.method == "REGISTER"
    from voicebot.sip.builders import response_to

    phone.receive(
        bytes(response_to(first, 401, headers=[("WWW-Authenticate", challenger.challenge(0.0))])), peer, 0.1
    )
    ((data, _),) = phone.datagrams_to_send()
    second = parse_message(data)
    assert isinstance(second, SipRequest) and second.cseq.number == 2
    assert challenger.verify(
        second.headers.get("Authorization") or "", method="REGISTER", now=0.1, lookup={"phone": "pw"}.get
    ).ok
    ok = response_to(second, 200, headers=[("Contact", "<sip:phone@127.0.0.1:5070>;expires=60")])
    phone.receive(bytes(ok), peer, 0.2)
    assert reg.state is RegState.REGISTERED and reg.granted == 60
    assert isinstance(phone.next_event(), RegistrationChanged)
    assert reg.refresh_at is not None and 0.2 + 50 < reg.refresh_at < 0.2 + 60
    phone.handle_timer(reg.refresh_at)
    ((data, _),) = phone.datagrams_to_send()
    refresh = parse_message(data)
    assert isinstance(refresh, SipRequest) and refresh.method == "REGISTER" and refresh.cseq.number == 3


def test_any_bytes_in_never_raise_and_answers_are_well_formed() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    prefixes = st.sampled_from(
        [b"", req("INVITE").encode()[:200], req("OPTIONS").encode(), b"SIP/2.0 200 OK\r\n"]
    )

    @settings(max_examples=300, deadline=None)
    @given(prefixes, st.binary(max_size=400))
    def check(prefix: bytes, tail: bytes) -> None:
        bot = UserAgent(BOT)
        bot.receive(prefix + tail, Peer("udp", "127.0.0.1", 5070), 0.0)
        bot.handle_timer(100.0)
        for data, _ in bot.datagrams_to_send():
            parse_message(data)  # whatever we answer parses

    check()
