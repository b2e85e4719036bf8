"""The SIP user agent core (RFC 3261 sections 8, 12-15, 21; RFC 3515 REFER), sans-I/O.

``UserAgent`` turns datagrams into call events and call commands into datagrams::

    ua.receive(data, peer, now)          bytes from the transport (one datagram / one framed message)
    ua.datagrams_to_send()               -> [(bytes, Peer)] to hand to the transport
    ua.get_timer() / ua.handle_timer(now)
    ua.next_event()                      -> IncomingCall | CallConfirmed | CallEnded | ReofferReceived |
                                            DtmfInfo | CallProgress | CallAnswered | ReferStatus |
                                            RegistrationChanged | None
    commands: ring, answer, reject, hangup, answer_reoffer, reject_reoffer, refer, invite, register

It answers what needs no decision on its own: 100 Trying, CANCEL (200 + 487), BYE, OPTIONS (200 with
Allow), in-dialog INFO (application/dtmf-relay) and NOTIFY (refer progress), 2xx retransmission
until ACK (section 13.3.1.4; no ACK -> BYE), ACK of a UAC 2xx, digest retries of its own INVITEs and
REGISTERs, registration refresh, and the errors 400/416/420/481/482/483/491/500/501 where they apply.
Call policy (who may call, call limits, SDP) belongs to the caller of ``ring``/``answer``/``reject``.
"""

from __future__ import annotations

import enum
import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from voicebot.sip import auth
from voicebot.sip.builders import (
    bad_request_reply,
    dtmf_relay_digit,
    new_request,
    new_tag,
    response_to,
    sipfrag_status,
    via_for,
)
from voicebot.sip.dialog import Dialog, DialogState
from voicebot.sip.errors import SipError, SipParseError
from voicebot.sip.headers import CSeq, Headers
from voicebot.sip.message import DEFAULT_MAX_MESSAGE_SIZE, SipRequest, SipResponse, parse_message
from voicebot.sip.timers import DEFAULT_TIMERS, Timers
from voicebot.sip.transaction import (
    ClientInviteTransaction,
    ClientNonInviteTransaction,
    Peer,
    ServerInviteTransaction,
    ServerNonInviteTransaction,
    TransactionState,
    server_key,
)
from voicebot.sip.uri import SipUri

__all__ = [
    "ALLOWED_METHODS",
    "Call",
    "CallAnswered",
    "CallConfirmed",
    "CallEnded",
    "CallProgress",
    "CallState",
    "DtmfInfo",
    "IncomingCall",
    "ReferStatus",
    "RegState",
    "Registration",
    "RegistrationChanged",
    "ReofferReceived",
    "UaConfig",
    "UaEvent",
    "UserAgent",
    "peer_for",
]

ALLOWED_METHODS = ("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "INFO", "NOTIFY")
_KNOWN_NOT_ALLOWED = {"REGISTER", "SUBSCRIBE", "PUBLISH", "MESSAGE", "UPDATE", "PRACK", "REFER"}
SDP = "application/sdp"


@dataclass(frozen=True)
class UaConfig:
    host: str = "127.0.0.1"  # our address in Via and Contact
    port: int = 5060
    user: str = "voicebot"
    user_agent: str = "voicebot"
    timers: Timers = DEFAULT_TIMERS
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE


class CallState(enum.Enum):
    OFFERED = "offered"  # inbound INVITE received, nothing decided
    EARLY = "early"  # inbound: 180 sent; outbound: provisional received
    CALLING = "calling"  # outbound INVITE sent
    ANSWERING = "answering"  # inbound 200 sent, waiting for ACK
    CONFIRMED = "confirmed"
    ENDED = "ended"


@dataclass(eq=False)
class Call:
    """One call leg (an INVITE dialog). ``remote_sdp``/``local_sdp`` are the current bodies."""

    call_id: str
    direction: str  # "inbound" | "outbound"
    peer: Peer
    invite: SipRequest
    local_tag: str
    state: CallState
    remote_sdp: bytes = b""
    local_sdp: bytes = b""
    dialog: Dialog | None = None
    end_reason: str | None = None
    end_status: int | None = None
    # inbound
    _server_tx: ServerInviteTransaction | None = None
    _ok_wire: bytes | None = None  # a 2xx being retransmitted until ACK
    _ok_cseq: int = 0
    _ok_next: float = 0.0
    _ok_interval: float = 0.0
    _ok_give_up: float = 0.0
    _reoffer_tx: ServerInviteTransaction | None = None
    # outbound
    _client_tx: ClientInviteTransaction | None = None
    _ack_wire: bytes | None = None
    _credentials: tuple[str, str] | None = None
    _auth_tries: int = 0
    _cancel_wanted: bool = False

    @property
    def from_header(self) -> str:
        return self.invite.headers.get("From") or ""

    @property
    def to_header(self) -> str:
        return self.invite.headers.get("To") or ""

    @property
    def ended(self) -> bool:
        return self.state is CallState.ENDED


class RegState(enum.Enum):
    REGISTERING = "registering"
    REGISTERED = "registered"
    FAILED = "failed"
    UNREGISTERED = "unregistered"


@dataclass(eq=False)
class Registration:
    registrar: SipUri
    aor: str
    username: str | None
    password: str | None
    expires: int
    call_id: str = field(default_factory=lambda: secrets.token_hex(10))
    from_tag: str = field(default_factory=new_tag)
    cseq: int = 0
    state: RegState = RegState.REGISTERING
    granted: int = 0
    last_status: int | None = None
    refresh_at: float | None = None
    _auth_tries: int = 0
    _removing: bool = False


@dataclass(frozen=True)
class IncomingCall:
    call: Call


@dataclass(frozen=True)
class CallConfirmed:
    call: Call


@dataclass(frozen=True)
class CallEnded:
    call: Call
    reason: str  # remote_bye | local_bye | cancelled | rejected | no_ack | timeout | failed
    status: int | None = None


@dataclass(frozen=True)
class ReofferReceived:
    call: Call
    sdp: bytes


@dataclass(frozen=True)
class DtmfInfo:
    call: Call
    digit: str


@dataclass(frozen=True)
class CallProgress:
    call: Call
    status: int
    sdp: bytes


@dataclass(frozen=True)
class CallAnswered:
    call: Call
    sdp: bytes


@dataclass(frozen=True)
class ReferStatus:
    call: Call
    status: int  # 202 accepted; then NOTIFY sipfrag statuses; >= 300 or 408: failed
    final: bool


@dataclass(frozen=True)
class RegistrationChanged:
    registration: Registration


UaEvent = (
    IncomingCall
    | CallConfirmed
    | CallEnded
    | ReofferReceived
    | DtmfInfo
    | CallProgress
    | CallAnswered
    | ReferStatus
    | RegistrationChanged
)

ClientTx = ClientInviteTransaction | ClientNonInviteTransaction
ServerTx = ServerInviteTransaction | ServerNonInviteTransaction
OnResponse = Callable[[SipResponse | None, float], None]  # None: the transaction timed out


def peer_for(uri: SipUri) -> Peer:
    return Peer("tcp" if uri.transport in ("tcp", "tls") else "udp", uri.host, uri.default_port())


class UserAgent:
    def __init__(self, config: UaConfig | None = None) -> None:
        self.config = config or UaConfig()
        self._out: list[tuple[bytes, Peer]] = []
        self._events: deque[UaEvent] = deque()
        self._server_txs: dict[tuple[str, ...], ServerTx] = {}
        self._client_txs: dict[tuple[str, str], tuple[ClientTx, OnResponse]] = {}
        self._calls: dict[tuple[str, str], Call] = {}  # (Call-ID, our tag)
        self._invites: dict[tuple[str, ...], Call] = {}  # inbound INVITE transaction key -> call
        self._registrations: list[Registration] = []

    # ----------------------------------------------------------------- plumbing

    def _send(self, data: bytes, peer: Peer) -> None:
        self._out.append((data, peer))

    def datagrams_to_send(self) -> list[tuple[bytes, Peer]]:
        out, self._out = self._out, []
        return out

    def next_event(self) -> UaEvent | None:
        return self._events.popleft() if self._events else None

    def contact(self, peer: Peer) -> str:
        c = self.config
        transport = ";transport=tcp" if peer.transport == "tcp" else ""
        return f"<sip:{c.user}@{c.host}:{c.port}{transport}>"

    def _via(self, peer: Peer) -> str:
        return via_for(peer, self.config.host, self.config.port)

    @property
    def calls(self) -> list[Call]:
        return [c for c in self._calls.values() if not c.ended]

    def stats(self) -> dict[str, int]:
        return {
            "calls": len(self.calls),
            "dialogs": sum(1 for c in self.calls if c.dialog is not None),
            "transactions": len(self._server_txs) + len(self._client_txs),
            "registrations": sum(1 for r in self._registrations if r.state is RegState.REGISTERED),
        }

    def get_timer(self) -> float | None:
        deadlines = [t for tx in self._server_txs.values() if (t := tx.get_timer()) is not None]
        deadlines += [t for tx, _ in self._client_txs.values() if (t := tx.get_timer()) is not None]
        deadlines += [c._ok_next for c in self._calls.values() if c._ok_wire is not None]
        deadlines += [r.refresh_at for r in self._registrations if r.refresh_at is not None]
        return min(deadlines, default=None)

    def handle_timer(self, now: float) -> None:
        for skey, stx in list(self._server_txs.items()):
            stx.handle_timer(now)
            if stx.terminated:
                del self._server_txs[skey]
                self._invites.pop(skey, None)
        for ckey, (ctx, on_response) in list(self._client_txs.items()):
            ctx.handle_timer(now)
            if ctx.terminated:
                del self._client_txs[ckey]
                if ctx.timed_out:
                    on_response(None, now)
        for call in list(self._calls.values()):
            if call._ok_wire is not None and call._ok_next <= now:
                self._retransmit_ok(call, now)
        for reg in list(self._registrations):
            if reg.refresh_at is not None and reg.refresh_at <= now:
                reg.refresh_at = None
                self._send_register(reg, now)
        self._forget_ended()

    def _forget_ended(self) -> None:
        for key, call in list(self._calls.items()):
            if call.ended and call._ok_wire is None and not self._has_transactions(call):
                del self._calls[key]

    def _has_transactions(self, call: Call) -> bool:
        return (call._server_tx is not None and not call._server_tx.terminated) or (
            call._client_tx is not None and not call._client_tx.terminated
        )

    # ----------------------------------------------------------------- input

    def receive(self, data: bytes, peer: Peer, now: float) -> None:
        """One UDP datagram or one message framed off a TCP stream."""
        if len(data) > self.config.max_message_size:
            reply = bad_request_reply(data, 513, f"message larger than {self.config.max_message_size} bytes")
            if reply:
                self._send(reply, peer)
            return
        try:
            message = parse_message(data)
        except SipParseError as exc:
            reply = bad_request_reply(data, exc.status, exc.reason)
            if reply:
                self._send(reply, peer)
            return
        self.receive_message(message, peer, now)

    def receive_message(self, message: SipRequest | SipResponse, peer: Peer, now: float) -> None:
        try:
            if isinstance(message, SipResponse):
                self._on_response(message, now)
            else:
                self._on_request(message, peer, now)
        except SipParseError as exc:  # a header we needed turned out malformed
            if isinstance(message, SipRequest) and message.method != "ACK":
                reply = bad_request_reply(bytes(message), exc.status, exc.reason)
                if reply:
                    self._send(reply, peer)

    # ----------------------------------------------------------------- requests

    def _reply(self, request: SipRequest, peer: Peer, status: int, now: float, **kw: object) -> None:
        """Answer a request statelessly-but-retransmission-safe via a non-INVITE server transaction."""
        tx: ServerTx
        if request.method == "INVITE":  # a final answer to an INVITE is retransmitted until ACK
            tx = ServerInviteTransaction(request, peer, self._send, now, self.config.timers)
        else:
            tx = ServerNonInviteTransaction(request, peer, self._send, now, self.config.timers)
        self._server_txs[tx.key] = tx
        tx.respond(response_to(request, status, **kw), now)  # type: ignore[arg-type]

    def _on_request(self, request: SipRequest, peer: Peer, now: float) -> None:
        key = server_key(request)
        existing = self._server_txs.get(key)
        if existing is not None and request.method != "CANCEL" and existing.receive_request(request, now):
            return
        if request.method == "ACK":
            self._on_ack(request, now)
            return
        if request.method == "CANCEL":
            self._on_cancel(request, peer, now)
            return
        uri = SipUri.parse(request.uri)  # 416 for tel:/http: etc. through SipParseError
        del uri
        mf = request.headers.get("Max-Forwards")
        if mf is not None and mf.strip() == "0":
            self._reply(request, peer, 483, now)
            return
        if request.headers.get("Require"):
            self._reply(request, peer, 420, now, headers=[("Unsupported", request.headers.get("Require"))])
            return
        if request.to_tag is not None:
            self._in_dialog(request, peer, now)
            return
        if request.method == "INVITE":
            self._new_invite(request, peer, now)
        elif request.method == "OPTIONS":
            self._reply(request, peer, 200, now, to_tag=new_tag(), headers=self._capabilities())
        elif request.method in ("BYE", "INFO", "NOTIFY"):
            self._reply(request, peer, 481, now)
        elif request.method in _KNOWN_NOT_ALLOWED:
            self._reply(request, peer, 405, now, headers=[("Allow", ", ".join(ALLOWED_METHODS))])
        else:
            self._reply(request, peer, 501, now)

    def _capabilities(self) -> list[tuple[str, str]]:
        return [
            ("Allow", ", ".join(ALLOWED_METHODS)),
            ("Accept", SDP),
            ("Supported", ""),
            ("User-Agent", self.config.user_agent),
        ]

    def _new_invite(self, request: SipRequest, peer: Peer, now: float) -> None:
        if not request.headers.get("Contact"):
            self._reply(request, peer, 400, now, reason="Missing Contact")
            return
        for call in self._calls.values():  # a fork of a request we already have: 482 (8.2.2.2)
            if (
                call.direction == "inbound"
                and call.call_id == request.call_id
                and call.invite.from_tag == request.from_tag
                and call.invite.cseq.number == request.cseq.number
                and not call.ended
            ):
                self._reply(request, peer, 482, now)
                return
        tx = ServerInviteTransaction(request, peer, self._send, now, self.config.timers)
        self._server_txs[tx.key] = tx
        tx.respond(response_to(request, 100), now)
        call = Call(
            call_id=request.call_id,
            direction="inbound",
            peer=peer,
            invite=request,
            local_tag=new_tag(),
            state=CallState.OFFERED,
            remote_sdp=request.body,
            _server_tx=tx,
        )
        self._calls[(call.call_id, call.local_tag)] = call
        self._invites[tx.key] = call
        self._events.append(IncomingCall(call))

    def _on_cancel(self, request: SipRequest, peer: Peer, now: float) -> None:
        invite_key = server_key(SipRequest("INVITE", request.uri, request.headers))
        tx = self._server_txs.get(invite_key)
        call = self._invites.get(invite_key)
        if not isinstance(tx, ServerInviteTransaction) or call is None:
            self._reply(request, peer, 481, now)
            return
        self._reply(request, peer, 200, now, to_tag=call.local_tag)
        if tx.state is TransactionState.PROCEEDING:
            tx.respond(response_to(call.invite, 487, to_tag=call.local_tag), now)
            self._end(call, "cancelled", 487)

    def _find_call(self, request: SipRequest) -> Call | None:
        return self._calls.get((request.call_id, request.to_tag or ""))

    def _on_ack(self, request: SipRequest, now: float) -> None:
        call = self._find_call(request)
        if call is None or call._ok_wire is None or request.cseq.number != call._ok_cseq:
            self._ack_with_foreign_branch(request, now)
            return
        call._ok_wire = None
        if call.state is CallState.ANSWERING:
            call.state = CallState.CONFIRMED
            if call.dialog:
                call.dialog.state = DialogState.CONFIRMED
            self._events.append(CallConfirmed(call))
        if request.body:
            call.remote_sdp = request.body  # answer to our offer in a 2xx of an offer-less re-INVITE

    def _ack_with_foreign_branch(self, request: SipRequest, now: float) -> None:
        """Some peers acknowledge a non-2xx final with a new branch; match it by call instead of
        retransmitting the final response until timer H. Any other stray ACK is dropped."""
        for tx in self._server_txs.values():
            if (
                isinstance(tx, ServerInviteTransaction)
                and tx.state is TransactionState.COMPLETED
                and tx.request.call_id == request.call_id
                and tx.request.cseq.number == request.cseq.number
                and tx.request.from_tag == request.from_tag
            ):
                tx.receive_request(request, now)
                return

    def _in_dialog(self, request: SipRequest, peer: Peer, now: float) -> None:
        call = self._find_call(request)
        if call is None or call.dialog is None or call.ended:
            self._reply(request, peer, 481, now)
            return
        if not call.dialog.accept_remote_cseq(request):
            self._reply(request, peer, 500, now, reason="CSeq out of order")
            return
        method = request.method
        if method == "BYE":
            self._reply(request, peer, 200, now)
            self._end(call, "remote_bye")
        elif method == "INVITE":
            self._on_reinvite(call, request, peer, now)
        elif method == "INFO":
            digit = dtmf_relay_digit(request.headers.get("Content-Type"), request.body)
            if request.body and digit is None:
                self._reply(request, peer, 415, now, headers=[("Accept", "application/dtmf-relay")])
                return
            self._reply(request, peer, 200, now)
            if digit is not None:
                self._events.append(DtmfInfo(call, digit))
        elif method == "NOTIFY":
            self._reply(request, peer, 200, now)
            status = sipfrag_status(request.body)
            if (request.headers.get("Event") or "").split(";")[0].strip().lower() == "refer" and status:
                state = (request.headers.get("Subscription-State") or "").lower()
                self._events.append(ReferStatus(call, status, status >= 200 or "terminated" in state))
        elif method == "OPTIONS":
            self._reply(request, peer, 200, now, headers=self._capabilities())
        elif method in _KNOWN_NOT_ALLOWED:
            self._reply(request, peer, 405, now, headers=[("Allow", ", ".join(ALLOWED_METHODS))])
        else:
            self._reply(request, peer, 501, now)

    def _on_reinvite(self, call: Call, request: SipRequest, peer: Peer, now: float) -> None:
        busy = (call._reoffer_tx is not None and call._reoffer_tx.state is TransactionState.PROCEEDING) or (
            call._ok_wire is not None
        )
        tx = ServerInviteTransaction(request, peer, self._send, now, self.config.timers)
        self._server_txs[tx.key] = tx
        if busy:
            tx.respond(response_to(request, 491), now)
            return
        assert call.dialog is not None
        call.dialog.update_target(request)
        call._reoffer_tx = tx
        self._events.append(ReofferReceived(call, request.body))

    # ----------------------------------------------------------------- inbound commands

    def ring(self, call: Call, now: float) -> None:
        tx = call._server_tx
        if tx is None or tx.state is not TransactionState.PROCEEDING or call.ended:
            return
        call.dialog = call.dialog or Dialog.as_uas(call.invite, call.local_tag)
        tx.respond(
            response_to(
                call.invite, 180, to_tag=call.local_tag, headers=[("Contact", self.contact(call.peer))]
            ),
            now,
        )
        call.state = CallState.EARLY

    def answer(self, call: Call, sdp: bytes, now: float) -> None:
        tx = call._server_tx
        if tx is None or tx.state is not TransactionState.PROCEEDING or call.ended:
            raise SipError("the call can no longer be answered", status=481)
        call.dialog = call.dialog or Dialog.as_uas(call.invite, call.local_tag)
        call.local_sdp = sdp
        ok = response_to(
            call.invite,
            200,
            to_tag=call.local_tag,
            headers=[("Contact", self.contact(call.peer)), *self._capabilities()],
            body=sdp,
            content_type=SDP,
        )
        tx.respond(ok, now)
        call.state = CallState.ANSWERING
        self._start_ok_retransmit(call, ok, call.invite.cseq.number, now)

    def reject(
        self,
        call: Call,
        status: int,
        now: float,
        *,
        reason: str | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        tx = call._server_tx
        if tx is None or tx.state is not TransactionState.PROCEEDING or call.ended:
            return
        tx.respond(response_to(call.invite, status, reason, to_tag=call.local_tag, headers=headers), now)
        self._end(call, "rejected", status)

    def answer_reoffer(self, call: Call, sdp: bytes, now: float) -> None:
        tx = call._reoffer_tx
        if tx is None or tx.state is not TransactionState.PROCEEDING:
            return
        call._reoffer_tx = None
        call.local_sdp = sdp
        call.remote_sdp = tx.request.body or call.remote_sdp
        ok = response_to(
            tx.request, 200, headers=[("Contact", self.contact(call.peer))], body=sdp, content_type=SDP
        )
        tx.respond(ok, now)
        self._start_ok_retransmit(call, ok, tx.request.cseq.number, now)

    def reject_reoffer(self, call: Call, status: int, now: float, *, reason: str | None = None) -> None:
        tx = call._reoffer_tx
        if tx is None or tx.state is not TransactionState.PROCEEDING:
            return
        call._reoffer_tx = None
        tx.respond(response_to(tx.request, status, reason), now)

    def _start_ok_retransmit(self, call: Call, ok: SipResponse, cseq: int, now: float) -> None:
        timers = self.config.timers
        call._ok_wire = bytes(ok)
        call._ok_cseq = cseq
        call._ok_interval = timers.t1
        call._ok_give_up = now + 64 * timers.t1
        call._ok_next = now + timers.t1 if not call.peer.reliable else call._ok_give_up

    def _retransmit_ok(self, call: Call, now: float) -> None:
        if now >= call._ok_give_up:
            call._ok_wire = None
            if call.state is CallState.ANSWERING or call.state is CallState.CONFIRMED:
                self._send_bye(call, now)  # section 13.3.1.4: no ACK, so the session ends
                self._end(call, "no_ack", 408)
            return
        assert call._ok_wire is not None
        self._send(call._ok_wire, call.peer)
        call._ok_interval = min(call._ok_interval * 2, self.config.timers.t2)
        call._ok_next = min(now + call._ok_interval, call._ok_give_up)

    def hangup(self, call: Call, now: float) -> None:
        """End the call from our side, whatever its state (BYE, CANCEL or a final response)."""
        if call.ended:
            return
        if call.direction == "inbound" and call.state in (CallState.OFFERED, CallState.EARLY):
            self.reject(call, 480, now)
            self._end(call, "local_bye", 480)
            return
        if call.direction == "outbound" and call.state in (CallState.CALLING, CallState.EARLY):
            self._cancel(call, now)
            return
        self._send_bye(call, now)
        self._end(call, "local_bye")

    def _send_bye(self, call: Call, now: float) -> None:
        call._ok_wire = None
        if call.dialog is None:
            return
        self._dialog_request(call, "BYE", now, lambda _r, _n: None)

    def _dialog_request(
        self,
        call: Call,
        method: str,
        now: float,
        on_response: OnResponse,
        *,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        content_type: str | None = None,
    ) -> None:
        assert call.dialog is not None
        peer = self._dialog_peer(call)
        request = call.dialog.request(
            method,
            via=self._via(peer),
            contact=self.contact(peer),
            headers=headers,
            body=body,
            content_type=content_type,
        )
        self._start_client(request, peer, now, on_response)

    def _dialog_peer(self, call: Call) -> Peer:
        assert call.dialog is not None
        if call.peer.reliable and not call.dialog.route_set:
            return call.peer  # a TCP peer is reached over the connection it opened
        dest = call.dialog.destination()
        if call.direction == "inbound" or "transport" not in dest.params:
            # reuse the transport the call came over (a TCP caller keeps its connection)
            return Peer(call.peer.transport, dest.host, dest.default_port())
        return peer_for(dest)

    def refer(self, call: Call, target: str, now: float, *, referred_by: str | None = None) -> None:
        """Blind transfer (RFC 3515): ask the peer to call ``target``; progress as ReferStatus."""
        if call.dialog is None or call.state is not CallState.CONFIRMED:
            raise SipError("only a confirmed call can be transferred", status=481)

        def on_response(response: SipResponse | None, _now: float) -> None:
            if response is None:
                self._events.append(ReferStatus(call, 408, True))
            elif response.status >= 200:
                self._events.append(ReferStatus(call, response.status, response.status >= 300))

        headers = [("Refer-To", f"<{target}>")]
        if referred_by:
            headers.append(("Referred-By", f"<{referred_by}>"))
        self._dialog_request(call, "REFER", now, on_response, headers=headers)

    # ----------------------------------------------------------------- client transactions

    def _start_client(self, request: SipRequest, peer: Peer, now: float, on_response: OnResponse) -> ClientTx:
        timers = self.config.timers
        tx: ClientTx
        if request.method == "INVITE":
            tx = ClientInviteTransaction(request, peer, self._send, now, timers)
        else:
            tx = ClientNonInviteTransaction(request, peer, self._send, now, timers)
        self._client_txs[(request.top_via.branch or "", request.method)] = (tx, on_response)
        return tx

    def _on_response(self, response: SipResponse, now: float) -> None:
        key = (response.top_via.branch or "", response.cseq.method)
        entry = self._client_txs.get(key)
        if entry is None:
            if response.cseq.method == "INVITE" and 200 <= response.status < 300:
                self._stray_invite_ok(response)
            return
        tx, on_response = entry
        passed = tx.receive_response(response, now)
        if tx.terminated:
            del self._client_txs[key]
        if passed is not None:
            on_response(passed, now)

    def _stray_invite_ok(self, response: SipResponse) -> None:
        """A 2xx retransmitted after the INVITE transaction ended: acknowledge it again."""
        call = self._calls.get((response.call_id, response.from_tag or ""))
        if call is not None and call._ack_wire is not None:
            self._send(call._ack_wire, self._dialog_peer(call) if call.dialog else call.peer)

    # ----------------------------------------------------------------- outbound calls (UAC)

    def invite(
        self,
        target: str,
        now: float,
        *,
        sdp: bytes,
        from_uri: str | None = None,
        display: str | None = None,
        credentials: tuple[str, str] | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> Call:
        uri = SipUri.parse(target)
        peer = peer_for(uri)
        tag = new_tag()
        c = self.config
        from_uri = from_uri or f"sip:{c.user}@{c.host}:{c.port}"
        name = f'"{display}" ' if display else ""
        request = new_request(
            "INVITE",
            str(uri),
            via=self._via(peer),
            from_=f"{name}<{from_uri}>;tag={tag}",
            to=f"<{uri}>",
            call_id=secrets.token_hex(12),
            cseq=1,
            contact=self.contact(peer),
            headers=[*(headers or []), ("Allow", ", ".join(ALLOWED_METHODS)), ("User-Agent", c.user_agent)],
            body=sdp,
            content_type=SDP,
        )
        call = Call(
            call_id=request.call_id,
            direction="outbound",
            peer=peer,
            invite=request,
            local_tag=tag,
            state=CallState.CALLING,
            local_sdp=sdp,
            _credentials=credentials,
        )
        self._calls[(call.call_id, tag)] = call
        self._send_invite(call, request, now)
        return call

    def _send_invite(self, call: Call, request: SipRequest, now: float) -> None:
        call.invite = request
        call._client_tx = self._start_client(  # type: ignore[assignment]
            request, call.peer, now, lambda r, n: self._on_invite_response(call, r, n)
        )

    def _on_invite_response(self, call: Call, response: SipResponse | None, now: float) -> None:
        if response is None:
            if not call.ended:
                self._end(call, "timeout", 408)
            return
        status = response.status
        if status < 200:
            if status > 100 and not call.ended:
                call.state = CallState.EARLY
                if response.body:
                    call.remote_sdp = response.body
                self._events.append(CallProgress(call, status, response.body))
                if call._cancel_wanted:
                    self._cancel(call, now)
            return
        if status < 300:
            self._on_invite_ok(call, response, now)
            return
        if status in (401, 407) and call._credentials and call._auth_tries < 2 and not call.ended:
            retry = self._with_credentials(call.invite, response, call._credentials, call._auth_tries)
            if retry is not None:
                call._auth_tries += 1
                self._send_invite(call, retry, now)
                return
        if not call.ended:
            self._end(call, "cancelled" if status == 487 else "rejected", status)

    def _on_invite_ok(self, call: Call, response: SipResponse, now: float) -> None:
        if call.dialog is None or call.dialog.remote_tag != (response.to_tag or ""):
            call.dialog = Dialog.as_uac(call.invite, response)
        call.dialog.state = DialogState.CONFIRMED
        peer = self._dialog_peer(call)
        ack = call.dialog.request("ACK", via=self._via(peer), cseq=call.invite.cseq.number)
        for name in ("Authorization", "Proxy-Authorization"):
            if (value := call.invite.headers.get(name)) is not None:
                ack.headers.add(name, value)
        call._ack_wire = bytes(ack)
        self._send(call._ack_wire, peer)
        if call.ended:
            return  # a retransmitted 2xx: acknowledged again, nothing else
        if call._cancel_wanted:  # the 200 crossed our CANCEL: the call ends with a BYE
            self._send_bye(call, now)
            self._end(call, "cancelled", 487)
            return
        call.state = CallState.CONFIRMED
        call.remote_sdp = response.body
        self._events.append(CallAnswered(call, response.body))

    def _cancel(self, call: Call, now: float) -> None:
        """CANCEL an outbound INVITE (section 9.1): only after a provisional response."""
        call._cancel_wanted = True
        if call.state is not CallState.EARLY:
            return  # sent when the first provisional arrives; a 2xx meanwhile is BYE'd
        invite = call.invite
        headers = [("Via", invite.headers.get("Via") or ""), ("Max-Forwards", "70")]
        headers += [(n, invite.headers.get(n) or "") for n in ("From", "To", "Call-ID")]
        headers.append(("CSeq", str(CSeq(invite.cseq.number, "CANCEL"))))
        headers += [("Route", r) for r in invite.headers.get_all("Route")]
        cancel = SipRequest("CANCEL", invite.uri, Headers(headers))
        self._start_client(cancel, call.peer, now, lambda _r, _n: None)
        self._end(call, "cancelled", 487)

    def _with_credentials(
        self, request: SipRequest, challenge_response: SipResponse, credentials: tuple[str, str], tries: int
    ) -> SipRequest | None:
        header = "WWW-Authenticate" if challenge_response.status == 401 else "Proxy-Authenticate"
        value = challenge_response.headers.get(header)
        if value is None:
            return None
        try:
            challenge = auth.parse_challenge(value)
        except SipParseError:
            return None
        if tries and not challenge.stale:
            return None  # the same credentials were refused once: they are wrong
        username, password = credentials
        answer = auth.authorization(
            challenge,
            method=request.method,
            uri=request.uri,
            username=username,
            password=password,
            cnonce=secrets.token_hex(8),
            nc=1,
        )
        retry = SipRequest(request.method, request.uri, request.headers.copy(), request.body)
        peer_transport = request.top_via.transport.lower()
        retry.headers.set("Via", via_for(Peer(peer_transport, "", 0), self.config.host, self.config.port))
        retry.headers.set("CSeq", str(CSeq(request.cseq.number + 1, request.method)))
        retry.headers.set(
            "Authorization" if challenge_response.status == 401 else "Proxy-Authorization", answer
        )
        return retry

    # ----------------------------------------------------------------- registration

    def register(
        self,
        registrar: str,
        aor: str,
        now: float,
        *,
        credentials: tuple[str, str] | None = None,
        expires: int = 3600,
    ) -> Registration:
        """Register our Contact for ``aor`` at ``registrar``; refreshed before it expires."""
        user, password = credentials or (None, None)
        reg = Registration(SipUri.parse(registrar), aor, user, password, expires)
        self._registrations.append(reg)
        self._send_register(reg, now)
        return reg

    def unregister(self, reg: Registration, now: float) -> None:
        reg._removing = True
        reg.refresh_at = None
        self._send_register(reg, now)

    def _send_register(
        self, reg: Registration, now: float, authorization: tuple[str, str] | None = None
    ) -> None:
        peer = peer_for(reg.registrar)
        reg.cseq += 1
        expires = 0 if reg._removing else reg.expires
        headers = [("Expires", str(expires)), ("User-Agent", self.config.user_agent)]
        if authorization:
            headers.append(authorization)
        request = new_request(
            "REGISTER",
            f"{reg.registrar.scheme}:{reg.registrar.host}"
            + (f":{reg.registrar.port}" if reg.registrar.port else ""),
            via=self._via(peer),
            from_=f"<{reg.aor}>;tag={reg.from_tag}",
            to=f"<{reg.aor}>",
            call_id=reg.call_id,
            cseq=reg.cseq,
            contact=self.contact(peer),
            headers=headers,
        )
        if not authorization:
            reg.state = RegState.REGISTERING if not reg._removing else reg.state
        self._start_client(request, peer, now, lambda r, n: self._on_register_response(reg, request, r, n))

    def _on_register_response(
        self, reg: Registration, request: SipRequest, response: SipResponse | None, now: float
    ) -> None:
        if response is not None and response.status < 200:
            return
        status = 408 if response is None else response.status
        reg.last_status = status
        if response is not None and status in (401, 407) and reg.username and reg._auth_tries < 2:
            retry = self._with_credentials(
                request, response, (reg.username, reg.password or ""), reg._auth_tries
            )
            if retry is not None:
                reg._auth_tries += 1
                name = "Authorization" if status == 401 else "Proxy-Authorization"
                self._send_register(reg, now, (name, retry.headers.get(name) or ""))
                return
        reg._auth_tries = 0
        if reg._removing:
            reg.state = RegState.UNREGISTERED
            self._registrations.remove(reg)
        elif 200 <= status < 300 and response is not None:
            reg.state = RegState.REGISTERED
            reg.granted = _granted_expires(response, reg.expires)
            reg.refresh_at = now + max(reg.granted * 0.9 if reg.granted < 120 else reg.granted - 30, 1.0)
        else:
            reg.state = RegState.FAILED
            reg.refresh_at = now + 60.0  # try again later: a trunk that was down may come back
        self._events.append(RegistrationChanged(reg))

    # ----------------------------------------------------------------- endings

    def _end(self, call: Call, reason: str, status: int | None = None) -> None:
        if call.ended:
            return
        call.state = CallState.ENDED
        call.end_reason = reason
        call.end_status = status
        if call.dialog:
            call.dialog.state = DialogState.TERMINATED
        self._events.append(CallEnded(call, reason, status))


def _granted_expires(response: SipResponse, asked: int) -> int:
    for contact in response.headers.get_all("Contact"):
        if "expires=" in contact:
            try:
                return int(contact.split("expires=", 1)[1].split(";")[0].split(">")[0].strip())
            except ValueError:
                continue
    value = response.headers.get("Expires")
    return int(value) if value and value.strip().isdigit() else asked
