"""SIP transactions (RFC 3261 section 17, with RFC 6026's Accepted state), sans-I/O.

Four state machines, one class each: INVITE client (timers A, B, D, M), non-INVITE client (E, F, K),
INVITE server (G, H, I, L) and non-INVITE server (J). Each is driven by ``receive_*``/``respond``
with the current time and by ``handle_timer(now)`` when ``get_timer()`` is due; bytes go out
through the ``send`` callable given at construction, always to the transaction's ``peer``.
State changes happen in one place per class (``_enter``). Timers that only absorb UDP
retransmissions are zero over reliable transports.

Client transactions pass responses up by returning them; a timeout surfaces as ``timed_out`` with
state TERMINATED (the transaction user synthesizes a 408).
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from voicebot.sip.headers import CSeq, Headers
from voicebot.sip.message import SipRequest, SipResponse
from voicebot.sip.timers import DEFAULT_TIMERS, Timers

__all__ = [
    "BRANCH_COOKIE",
    "ClientInviteTransaction",
    "ClientNonInviteTransaction",
    "Peer",
    "ServerInviteTransaction",
    "ServerNonInviteTransaction",
    "TransactionState",
    "new_branch",
    "server_key",
]

BRANCH_COOKIE = "z9hG4bK"  # RFC 3261 magic cookie: branch ids that are unique per transaction


@dataclass(frozen=True)
class Peer:
    """Where a message came from / goes to. ``transport`` is ``udp`` or ``tcp``."""

    transport: str
    host: str
    port: int

    @property
    def reliable(self) -> bool:
        return self.transport != "udp"

    def __str__(self) -> str:
        return f"{self.transport}:{self.host}:{self.port}"


Send = Callable[[bytes, Peer], None]


class TransactionState(enum.Enum):
    CALLING = "calling"
    TRYING = "trying"
    PROCEEDING = "proceeding"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    ACCEPTED = "accepted"
    TERMINATED = "terminated"


def new_branch() -> str:
    return BRANCH_COOKIE + secrets.token_hex(8)


def server_key(request: SipRequest) -> tuple[str, ...]:
    """Transaction key of a received request (section 17.2.3); ACK maps to its INVITE."""
    via = request.top_via
    method = "INVITE" if request.method == "ACK" else request.method
    branch = via.branch or ""
    if branch.startswith(BRANCH_COOKIE):
        return (branch, via.sent_by.lower(), method)
    # RFC 2543 peers: no unique branch; Call-ID, CSeq number, From tag and Via identify it
    return (request.call_id, str(request.cseq.number), request.from_tag or "", str(via), method)


class _Transaction:
    state: TransactionState

    def __init__(self, request: SipRequest, peer: Peer, send: Send, timers: Timers) -> None:
        self.request = request
        self.peer = peer
        self._send = send
        self._timers_cfg = timers
        self._deadlines: dict[str, float] = {}
        self._intervals: dict[str, float] = {}

    @property
    def terminated(self) -> bool:
        return self.state is TransactionState.TERMINATED

    def get_timer(self) -> float | None:
        return min(self._deadlines.values(), default=None)

    def handle_timer(self, now: float) -> None:
        for name, deadline in sorted(self._deadlines.items(), key=lambda kv: kv[1]):
            if deadline <= now and self._deadlines.get(name) == deadline:
                del self._deadlines[name]
                self._fire(name, now)

    def _arm(self, name: str, now: float, delay: float) -> None:
        self._intervals[name] = delay
        self._deadlines[name] = now + delay

    def _disarm(self, *names: str) -> None:
        for name in names:
            self._deadlines.pop(name, None)

    def _enter(self, state: TransactionState, now: float) -> None:
        self.state = state
        if state is TransactionState.TERMINATED:
            self._deadlines.clear()

    def _fire(self, name: str, now: float) -> None:
        raise NotImplementedError


class _ClientTransaction(_Transaction):
    """Sends its request at once, retransmits it over UDP on its first timer (A or E), and gives up
    on its timeout timer (B or F)."""

    _first_state: TransactionState
    _retransmit: str
    _timeout: str

    def __init__(
        self, request: SipRequest, peer: Peer, send: Send, now: float, timers: Timers = DEFAULT_TIMERS
    ) -> None:
        super().__init__(request, peer, send, timers)
        self.timed_out = False
        self._wire = bytes(request)
        self.state = self._first_state
        self._send(self._wire, peer)
        if not peer.reliable:
            self._arm(self._retransmit, now, getattr(timers, self._retransmit.lower())())
        self._arm(self._timeout, now, getattr(timers, self._timeout.lower())())


class _ServerTransaction(_Transaction):
    """Answers one received request; ``respond`` sends, retransmissions replay the last response."""

    _first_state: TransactionState

    def __init__(
        self, request: SipRequest, peer: Peer, send: Send, now: float, timers: Timers = DEFAULT_TIMERS
    ) -> None:
        super().__init__(request, peer, send, timers)
        self.key = server_key(request)
        self.last_response: SipResponse | None = None
        self._last_wire: bytes | None = None
        self.state = self._first_state


class ClientInviteTransaction(_ClientTransaction):
    """Sends an INVITE and its non-2xx ACK; retransmits over UDP (timer A) until a response."""

    _first_state, _retransmit, _timeout = TransactionState.CALLING, "A", "B"
    _ack: bytes | None = None

    def receive_response(self, response: SipResponse, now: float) -> SipResponse | None:
        """Returns the response when the transaction user should see it."""
        state, status = self.state, response.status
        if state in (TransactionState.CALLING, TransactionState.PROCEEDING):
            if status < 200:
                self._disarm("A", "B")
                self._enter(TransactionState.PROCEEDING, now)
                return response
            self._disarm("A", "B")
            if status < 300:
                self._enter(TransactionState.ACCEPTED, now)
                self._arm("M", now, self._timers_cfg.m())
                return response
            self._ack = bytes(self._ack_for(response))
            self._send(self._ack, self.peer)
            self._enter(TransactionState.COMPLETED, now)
            self._arm("D", now, self._timers_cfg.d(self.peer.reliable))
            return response
        if state is TransactionState.ACCEPTED and 200 <= status < 300:
            return response  # a 2xx retransmission or another fork: the TU acknowledges it
        if state is TransactionState.COMPLETED and status >= 300 and self._ack is not None:
            self._send(self._ack, self.peer)
        return None

    def _ack_for(self, response: SipResponse) -> SipRequest:
        """The ACK of a non-2xx final response (section 17.1.1.3): same branch, To with its tag."""
        req = self.request
        headers = Headers([("Via", req.headers.get("Via") or "")])
        for name in ("Max-Forwards", "From"):
            if (value := req.headers.get(name)) is not None:
                headers.add(name, value)
        headers.add("To", response.headers.get("To") or req.headers.get("To") or "")
        headers.add("Call-ID", req.call_id)
        headers.add("CSeq", str(CSeq(req.cseq.number, "ACK")))
        for route in req.headers.get_all("Route"):
            headers.add("Route", route)
        return SipRequest("ACK", req.uri, headers)

    def _fire(self, name: str, now: float) -> None:
        if name == "A" and self.state is TransactionState.CALLING:
            self._send(self._wire, self.peer)
            self._arm("A", now, self._intervals["A"] * 2)
        elif name == "B" and self.state is TransactionState.CALLING:
            self.timed_out = True
            self._enter(TransactionState.TERMINATED, now)
        elif name in ("D", "M"):
            self._enter(TransactionState.TERMINATED, now)


class ClientNonInviteTransaction(_ClientTransaction):
    """Sends a non-INVITE request (BYE, CANCEL, OPTIONS, REFER, NOTIFY, INFO, REGISTER)."""

    _first_state, _retransmit, _timeout = TransactionState.TRYING, "E", "F"

    def receive_response(self, response: SipResponse, now: float) -> SipResponse | None:
        if self.state not in (TransactionState.TRYING, TransactionState.PROCEEDING):
            return None  # retransmitted final response: absorbed
        if response.status < 200:
            self._enter(TransactionState.PROCEEDING, now)
            return response
        self._disarm("E", "F")
        self._enter(TransactionState.COMPLETED, now)
        self._arm("K", now, self._timers_cfg.k(self.peer.reliable))
        return response

    def _fire(self, name: str, now: float) -> None:
        if name == "E" and self.state in (TransactionState.TRYING, TransactionState.PROCEEDING):
            self._send(self._wire, self.peer)
            t2 = self._timers_cfg.t2
            interval = t2 if self.state is TransactionState.PROCEEDING else min(self._intervals["E"] * 2, t2)
            self._arm("E", now, interval)
        elif name == "F":
            self.timed_out = True
            self._enter(TransactionState.TERMINATED, now)
        elif name == "K":
            self._enter(TransactionState.TERMINATED, now)


class ServerInviteTransaction(_ServerTransaction):
    """Answers one received INVITE; retransmits a non-2xx final until ACK (timers G, H, I)."""

    _first_state = TransactionState.PROCEEDING
    ack_timed_out = False

    def respond(self, response: SipResponse, now: float) -> None:
        if self.state is not TransactionState.PROCEEDING:
            raise RuntimeError(f"INVITE transaction is {self.state.value}; cannot send {response.status}")
        self.last_response = response
        self._last_wire = bytes(response)
        self._send(self._last_wire, self.peer)
        if response.status < 200:
            return
        if response.status < 300:
            self._enter(TransactionState.ACCEPTED, now)
            self._arm("L", now, self._timers_cfg.l())
            return
        self._enter(TransactionState.COMPLETED, now)
        if not self.peer.reliable:
            self._arm("G", now, self._timers_cfg.g())
        self._arm("H", now, self._timers_cfg.h())

    def receive_request(self, request: SipRequest, now: float) -> bool:
        """A retransmitted INVITE or the ACK of a non-2xx; True if it was absorbed here."""
        if request.method == "ACK":
            if self.state is TransactionState.COMPLETED:
                self._disarm("G", "H")
                self._enter(TransactionState.CONFIRMED, now)
                self._arm("I", now, self._timers_cfg.i(self.peer.reliable))
            return self.state in (TransactionState.CONFIRMED, TransactionState.TERMINATED)
        if self.state in (TransactionState.PROCEEDING, TransactionState.COMPLETED) and self._last_wire:
            self._send(self._last_wire, self.peer)
        return True

    def _fire(self, name: str, now: float) -> None:
        if name == "G" and self.state is TransactionState.COMPLETED and self._last_wire:
            self._send(self._last_wire, self.peer)
            self._arm("G", now, min(self._intervals["G"] * 2, self._timers_cfg.t2))
        elif name == "H" and self.state is TransactionState.COMPLETED:
            self.ack_timed_out = True
            self._enter(TransactionState.TERMINATED, now)
        elif name in ("I", "L"):
            self._enter(TransactionState.TERMINATED, now)


class ServerNonInviteTransaction(_ServerTransaction):
    """Answers one received non-INVITE request; replays the last response to retransmissions."""

    _first_state = TransactionState.TRYING

    def respond(self, response: SipResponse, now: float) -> None:
        if self.state not in (TransactionState.TRYING, TransactionState.PROCEEDING):
            raise RuntimeError(f"transaction is {self.state.value}; cannot send {response.status}")
        self.last_response = response
        self._last_wire = bytes(response)
        self._send(self._last_wire, self.peer)
        if response.status < 200:
            self._enter(TransactionState.PROCEEDING, now)
            return
        self._enter(TransactionState.COMPLETED, now)
        self._arm("J", now, self._timers_cfg.j(self.peer.reliable))

    def receive_request(self, request: SipRequest, now: float) -> bool:
        if self.state in (TransactionState.PROCEEDING, TransactionState.COMPLETED) and self._last_wire:
            self._send(self._last_wire, self.peer)
        return True

    def _fire(self, name: str, now: float) -> None:
        if name == "J":
            self._enter(TransactionState.TERMINATED, now)
