"""SIP dialogs (RFC 3261 section 12): identity, CSeq spaces, remote target and route set.

A dialog is created by the UAS from an INVITE it answers (``Dialog.as_uas``) or by the UAC from a
response with a To tag (``Dialog.as_uac``); ``request(method, ...)`` builds an in-dialog request
with the next local CSeq, the remote target as Request-URI and the route set (loose routing, with
the strict-routing rewrite of section 12.2.1.1 when the first route lacks ``;lr``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from voicebot.sip.builders import new_request
from voicebot.sip.errors import SipParseError
from voicebot.sip.headers import tag_of
from voicebot.sip.message import SipRequest, SipResponse
from voicebot.sip.uri import SipUri, uri_of

__all__ = ["Dialog", "DialogState"]


class DialogState(enum.Enum):
    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


def _contact_uri(message: SipRequest | SipResponse) -> str:
    contact = message.headers.get("Contact")
    if not contact:
        raise SipParseError("missing Contact header")
    return uri_of(contact)


@dataclass
class Dialog:
    call_id: str
    local_tag: str
    remote_tag: str
    local_party: str  # our From/To value with our tag
    remote_party: str  # theirs, with their tag
    remote_target: str  # Contact URI of the peer
    route_set: list[str] = field(default_factory=list)
    local_seq: int = 0
    remote_seq: int | None = None
    state: DialogState = DialogState.EARLY

    @property
    def id(self) -> tuple[str, str, str]:
        return (self.call_id, self.local_tag, self.remote_tag)

    @classmethod
    def as_uas(cls, invite: SipRequest, local_tag: str) -> Dialog:
        to = invite.headers.get("To") or ""
        return cls(
            call_id=invite.call_id,
            local_tag=local_tag,
            remote_tag=invite.from_tag or "",
            local_party=to if tag_of(to) else f"{to};tag={local_tag}",
            remote_party=invite.headers.get("From") or "",
            remote_target=_contact_uri(invite),
            route_set=list(invite.headers.get_all("Record-Route")),
            local_seq=0,
            remote_seq=invite.cseq.number,
        )

    @classmethod
    def as_uac(cls, invite: SipRequest, response: SipResponse) -> Dialog:
        return cls(
            call_id=invite.call_id,
            local_tag=invite.from_tag or "",
            remote_tag=response.to_tag or "",
            local_party=invite.headers.get("From") or "",
            remote_party=response.headers.get("To") or "",
            remote_target=_contact_uri(response),
            route_set=list(reversed(response.headers.get_all("Record-Route"))),
            local_seq=invite.cseq.number,
            state=DialogState.CONFIRMED if response.status < 300 else DialogState.EARLY,
        )

    def update_target(self, message: SipRequest | SipResponse) -> None:
        """A target refresh (re-INVITE or its 2xx) may move the peer's Contact."""
        if message.headers.get("Contact"):
            self.remote_target = _contact_uri(message)

    def accept_remote_cseq(self, request: SipRequest) -> bool:
        """False when the request's CSeq is lower than the last one (answer 500, section 12.2.2)."""
        number = request.cseq.number
        if self.remote_seq is not None and number < self.remote_seq and request.method != "ACK":
            return False
        if request.method != "ACK":
            self.remote_seq = number
        return True

    def next_uri_and_routes(self) -> tuple[str, list[str]]:
        if not self.route_set:
            return self.remote_target, []
        first = SipUri.parse(uri_of(self.route_set[0]))
        if first.loose_route:
            return self.remote_target, list(self.route_set)
        # strict router: it becomes the Request-URI; the remote target goes to the end of the routes
        return str(first), [*self.route_set[1:], f"<{self.remote_target}>"]

    def destination(self) -> SipUri:
        """Next hop of an in-dialog request: the first route (loose or strict), else the target."""
        return SipUri.parse(uri_of(self.route_set[0] if self.route_set else self.remote_target))

    def request(
        self,
        method: str,
        *,
        via: str,
        contact: str | None = None,
        cseq: int | None = None,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        content_type: str | None = None,
    ) -> SipRequest:
        """An in-dialog request; ``cseq`` overrides the next number (ACK reuses its INVITE's)."""
        if cseq is None:
            self.local_seq += 1
            cseq = self.local_seq
        uri, routes = self.next_uri_and_routes()
        return new_request(
            method,
            uri,
            via=via,
            routes=routes,
            from_=self.local_party,
            to=self.remote_party,
            call_id=self.call_id,
            cseq=cseq,
            contact=contact,
            headers=headers,
            body=body,
            content_type=content_type,
        )
