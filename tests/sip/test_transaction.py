"""Transaction state machines with injected time and shrunk timers (RFC 3261 section 17)."""

from __future__ import annotations

from voicebot.sip import parse_message
from voicebot.sip.message import SipRequest, SipResponse
from voicebot.sip.timers import Timers
from voicebot.sip.transaction import (
    ClientInviteTransaction,
    ClientNonInviteTransaction,
    Peer,
    ServerInviteTransaction,
    ServerNonInviteTransaction,
    TransactionState,
    server_key,
)

UDP = Peer("udp", "127.0.0.1", 5070)
TCP = Peer("tcp", "127.0.0.1", 5070)
T = Timers(t1=0.5, t2=4.0, t4=5.0)


def request(method: str = "INVITE", branch: str = "z9hG4bKabc") -> SipRequest:
    msg = parse_message(
        (
            f"{method} sip:bot@127.0.0.1 SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:5070;branch={branch}\r\n"
            "From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:bot@127.0.0.1>\r\n"
            f"Call-ID: c1\r\nCSeq: 1 {method}\r\nContact: <sip:a@127.0.0.1:5070>\r\nMax-Forwards: 70\r\n\r\n"
        ).encode()
    )
    assert isinstance(msg, SipRequest)
    return msg


def response(req: SipRequest, status: int) -> SipResponse:
    from voicebot.sip.builders import response_to

    return response_to(req, status, to_tag="t")


class Wire:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def __call__(self, data: bytes, peer: Peer) -> None:
        self.sent.append(data)


def run(
    tx: ClientInviteTransaction | ClientNonInviteTransaction | ServerInviteTransaction, until: float
) -> None:
    now = 0.0
    while (deadline := tx.get_timer()) is not None and deadline <= until:
        now = deadline
        tx.handle_timer(now)


def test_invite_client_retransmits_with_doubling_timer_a_then_times_out_on_b() -> None:
    wire = Wire()
    tx = ClientInviteTransaction(request(), UDP, wire, 0.0, T)
    run(tx, 64 * 0.5)
    # sent at 0, then A fires at 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 -> 7 copies before B at 32
    assert len(wire.sent) == 7
    assert tx.state is TransactionState.TERMINATED and tx.timed_out


def test_invite_client_over_tcp_never_retransmits() -> None:
    wire = Wire()
    tx = ClientInviteTransaction(request(), TCP, wire, 0.0, T)
    run(tx, 40)
    assert len(wire.sent) == 1 and tx.timed_out


def test_invite_client_acks_a_non_2xx_final_and_absorbs_its_retransmissions() -> None:
    wire = Wire()
    req = request()
    tx = ClientInviteTransaction(req, UDP, wire, 0.0, T)
    assert tx.receive_response(response(req, 180), 0.1) is not None
    assert tx.state is TransactionState.PROCEEDING
    assert tx.receive_response(response(req, 486), 0.2) is not None
    ack = parse_message(wire.sent[-1])
    assert isinstance(ack, SipRequest) and ack.method == "ACK"
    assert ack.top_via.branch == req.top_via.branch and ack.to_tag == "t"
    assert tx.receive_response(response(req, 486), 0.3) is None  # retransmission: ACK again only
    assert len(wire.sent) == 3
    run(tx, 100)
    assert tx.state is TransactionState.TERMINATED and not tx.timed_out


def test_invite_client_passes_every_2xx_up_in_accepted_state() -> None:
    wire = Wire()
    req = request()
    tx = ClientInviteTransaction(req, UDP, wire, 0.0, T)
    assert tx.receive_response(response(req, 200), 0.1) is not None
    assert tx.state is TransactionState.ACCEPTED
    assert tx.receive_response(response(req, 200), 0.6) is not None  # the TU re-ACKs it
    assert len(wire.sent) == 1  # the transaction never ACKs a 2xx itself


def test_non_invite_client_caps_timer_e_at_t2() -> None:
    wire = Wire()
    tx = ClientNonInviteTransaction(request("OPTIONS"), UDP, wire, 0.0, T)
    run(tx, 64 * 0.5)
    # E: 0.5, 1.5, 3.5, 7.5, then every 4 s: 11.5 ... 31.5 -> 1 + 4 + 6 = 11
    assert len(wire.sent) == 11
    assert tx.timed_out


def test_non_invite_client_completed_waits_timer_k_over_udp_only() -> None:
    req = request("BYE")
    udp = ClientNonInviteTransaction(req, UDP, Wire(), 0.0, T)
    udp.receive_response(response(req, 200), 0.1)
    assert udp.state is TransactionState.COMPLETED and udp.get_timer() == 0.1 + 5.0
    tcp = ClientNonInviteTransaction(req, TCP, Wire(), 0.0, T)
    tcp.receive_response(response(req, 200), 0.1)
    tcp.handle_timer(0.1)
    assert tcp.state is TransactionState.TERMINATED


def test_invite_server_retransmits_final_until_ack_then_confirmed() -> None:
    wire = Wire()
    req = request()
    tx = ServerInviteTransaction(req, UDP, wire, 0.0, T)
    tx.respond(response(req, 100), 0.0)
    assert tx.receive_request(req, 0.05)  # retransmitted INVITE -> the 100 again
    assert len(wire.sent) == 2
    tx.respond(response(req, 486), 0.1)
    tx.handle_timer(0.6)  # G
    assert len(wire.sent) == 4
    ack = SipRequest("ACK", req.uri, req.headers.copy())
    ack.headers.set("CSeq", "1 ACK")
    assert server_key(ack) == tx.key
    assert tx.receive_request(ack, 0.7)
    assert tx.state is TransactionState.CONFIRMED
    tx.handle_timer(0.7 + 5.0)
    assert tx.state is TransactionState.TERMINATED


def test_invite_server_gives_up_on_missing_ack_after_timer_h() -> None:
    req = request()
    tx = ServerInviteTransaction(req, UDP, Wire(), 0.0, T)
    tx.respond(response(req, 603), 0.0)
    run(tx, 40)
    assert tx.state is TransactionState.TERMINATED and tx.ack_timed_out


def test_invite_server_2xx_enters_accepted_and_ends_after_timer_l() -> None:
    req = request()
    tx = ServerInviteTransaction(req, UDP, Wire(), 0.0, T)
    tx.respond(response(req, 200), 0.0)
    assert tx.state is TransactionState.ACCEPTED
    tx.handle_timer(32.0)
    assert tx.terminated


def test_non_invite_server_replays_its_final_response_until_timer_j() -> None:
    wire = Wire()
    req = request("OPTIONS")
    tx = ServerNonInviteTransaction(req, UDP, wire, 0.0, T)
    tx.respond(response(req, 200), 0.0)
    tx.receive_request(req, 1.0)
    assert wire.sent[0] == wire.sent[1]
    tx.handle_timer(32.0)
    assert tx.terminated


def test_server_key_maps_ack_to_its_invite_and_supports_rfc2543_peers() -> None:
    req = request(branch="1234")  # no magic cookie
    ack = SipRequest("ACK", req.uri, req.headers.copy())
    ack.headers.set("CSeq", "1 ACK")
    assert server_key(ack) == server_key(req)
    assert server_key(request("OPTIONS")) != server_key(request("INVITE"))
