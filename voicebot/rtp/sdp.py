"""SDP (RFC 4566) and the offer/answer model (RFC 3264) for one audio stream.

:class:`SessionDescription` parses and prints SDP; lines the negotiation does not need are kept as
they are, so ``SessionDescription.parse(str(sd)) == sd``. Text that is not SDP raises
:class:`SdpError` with status 400, never another exception type. The negotiation
(:func:`answer_offer`, :func:`create_offer`, :func:`parse_answer`) yields a :class:`MediaParams`:
where to send, which codec, and our direction after mirroring the peer's (hold).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace

from voicebot.rtp.errors import SdpError

__all__ = [
    "G722",
    "PCMA",
    "PCMU",
    "TELEPHONE_EVENT",
    "Codec",
    "Connection",
    "Direction",
    "MediaDescription",
    "MediaParams",
    "Origin",
    "SessionDescription",
    "answer_offer",
    "create_offer",
    "parse_answer",
]


@dataclass(frozen=True, slots=True)
class Codec:
    """An RTP payload format: encoding name as in a=rtpmap, payload type, RTP clock rate."""

    name: str
    payload_type: int
    clock_rate: int = 8000


PCMU = Codec("PCMU", 0)
PCMA = Codec("PCMA", 8)
G722 = Codec("G722", 9)  # RFC 3551: the RTP clock of G.722 is 8000 though it samples at 16 kHz
TELEPHONE_EVENT = Codec("telephone-event", 101)

# RFC 3551 static payload types an offer may list without an a=rtpmap.
STATIC_PAYLOAD_TYPES: dict[int, Codec] = {
    0: PCMU,
    3: Codec("GSM", 3),
    4: Codec("G723", 4),
    8: PCMA,
    9: G722,
    18: Codec("G729", 18),
}


class Direction(enum.Enum):
    """RFC 3264 section 5.1 stream directions."""

    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"

    @property
    def reversed(self) -> Direction:
        """The direction the other side of this stream has (sendonly <-> recvonly)."""
        return _REVERSED[self]

    @property
    def sends(self) -> bool:
        return self in (Direction.SENDRECV, Direction.SENDONLY)

    @property
    def receives(self) -> bool:
        return self in (Direction.SENDRECV, Direction.RECVONLY)


_REVERSED = {
    Direction.SENDRECV: Direction.SENDRECV,
    Direction.SENDONLY: Direction.RECVONLY,
    Direction.RECVONLY: Direction.SENDONLY,
    Direction.INACTIVE: Direction.INACTIVE,
}


@dataclass(frozen=True, slots=True)
class MediaParams:
    """The negotiated audio stream, from our side: where to send, what, and which way."""

    remote_address: str
    remote_port: int
    codec: Codec
    telephone_event_pt: int | None = None
    ptime: int = 20
    direction: Direction = Direction.SENDRECV
    on_hold: bool = False


@dataclass(frozen=True, slots=True)
class Origin:
    """o= line. Session id and version stay strings: some peers send more digits than fit a u64."""

    username: str
    session_id: str
    version: str
    nettype: str = "IN"
    addrtype: str = "IP4"
    address: str = "127.0.0.1"

    @classmethod
    def parse(cls, value: str) -> Origin:
        parts = value.split()
        if len(parts) != 6:
            raise SdpError(f"o= needs 6 fields: {value!r}", status=400)
        return cls(*parts)

    def __str__(self) -> str:
        fields = (self.username, self.session_id, self.version, self.nettype, self.addrtype, self.address)
        return " ".join(fields)


@dataclass(frozen=True, slots=True)
class Connection:
    """c= line (a TTL or address count after a slash is kept in ``address``)."""

    address: str
    addrtype: str = "IP4"
    nettype: str = "IN"

    @classmethod
    def parse(cls, value: str) -> Connection:
        parts = value.split()
        if len(parts) != 3:
            raise SdpError(f"c= needs 3 fields: {value!r}", status=400)
        return cls(address=parts[2], addrtype=parts[1], nettype=parts[0])

    @property
    def host(self) -> str:
        return self.address.split("/", 1)[0]

    @property
    def is_null(self) -> bool:
        """RFC 2543 hold: an offer with c=0.0.0.0 wants no media sent to it."""
        return self.host in ("0.0.0.0", "::")

    def __str__(self) -> str:
        return f"{self.nettype} {self.addrtype} {self.address}"


Attribute = tuple[str, str | None]  # a=name:value, or a=name (value None)

# RFC 4566 fixes the order of the other lines; parsing sorts them (stably) so printing is lossless.
_SESSION_ORDER = "iuepbrzk"
_MEDIA_ORDER = "ibk"


def _canonical(lines: list[tuple[str, str]], order: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(lines, key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)))


def _num(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _attr_line(attr: Attribute) -> str:
    name, value = attr
    return f"a={name}" if value is None else f"a={name}:{value}"


def _find(attrs: tuple[Attribute, ...], name: str) -> list[str]:
    return [value or "" for key, value in attrs if key.strip().lower() == name]


def _direction(attrs: tuple[Attribute, ...]) -> Direction | None:
    for key, value in attrs:
        if value is None:
            try:
                return Direction(key.strip().lower())
            except ValueError:
                continue
    return None


@dataclass(frozen=True, slots=True)
class MediaDescription:
    """One m= section and the lines under it."""

    media: str
    port: int
    proto: str
    formats: tuple[str, ...]
    port_count: int | None = None
    connection: Connection | None = None
    attributes: tuple[Attribute, ...] = ()
    other: tuple[tuple[str, str], ...] = ()  # i=, b=, k= lines, kept in order

    @classmethod
    def parse_m_line(cls, value: str) -> MediaDescription:
        parts = value.split()
        if len(parts) < 4:
            raise SdpError(f"m= needs media, port, proto and formats: {value!r}", status=400)
        port_text, _, count_text = parts[1].partition("/")
        if not _num(port_text) or int(port_text) > 65535 or (count_text and not _num(count_text)):
            raise SdpError(f"bad m= port {parts[1]!r}", status=400)
        return cls(
            media=parts[0],
            port=int(port_text),
            proto=parts[2],
            formats=tuple(parts[3:]),
            port_count=int(count_text) if count_text else None,
        )

    def rtpmap(self) -> dict[int, Codec]:
        """Payload type -> codec from a=rtpmap (encoding name as written, clock rate)."""
        result: dict[int, Codec] = {}
        for value in _find(self.attributes, "rtpmap"):
            pt_text, _, encoding = value.partition(" ")
            name, _, rest = encoding.strip().partition("/")
            rate = rest.partition("/")[0]
            if _num(pt_text) and int(pt_text) < 128 and name and _num(rate):
                result[int(pt_text)] = Codec(name, int(pt_text), int(rate))
        return result

    def fmtp(self) -> dict[int, str]:
        result: dict[int, str] = {}
        for value in _find(self.attributes, "fmtp"):
            pt_text, _, params = value.partition(" ")
            if _num(pt_text):
                result[int(pt_text)] = params.strip()
        return result

    def codecs(self) -> list[Codec]:
        """The offered formats in order of preference, named by rtpmap or the static table."""
        mapped = self.rtpmap()
        result = []
        for fmt in self.formats:
            if _num(fmt) and int(fmt) < 128:
                pt = int(fmt)
                codec = mapped.get(pt) or STATIC_PAYLOAD_TYPES.get(pt)
                if codec is not None:
                    result.append(codec)
        return result

    @property
    def ptime(self) -> int | None:
        for value in _find(self.attributes, "ptime"):
            if _num(value.strip()):
                return int(value.strip())
        return None

    def __str__(self) -> str:
        port = f"{self.port}/{self.port_count}" if self.port_count is not None else str(self.port)
        lines = [f"m={self.media} {port} {self.proto} {' '.join(self.formats)}"]
        lines += [f"{key}={value}" for key, value in self.other if key == "i"]
        if self.connection is not None:
            lines.append(f"c={self.connection}")
        lines += [f"{key}={value}" for key, value in self.other if key != "i"]
        lines += [_attr_line(attr) for attr in self.attributes]
        return "\r\n".join(lines)


@dataclass(frozen=True, slots=True)
class SessionDescription:
    """A whole SDP body."""

    origin: Origin
    session_name: str = "-"
    connection: Connection | None = None
    timing: str = "0 0"
    attributes: tuple[Attribute, ...] = ()
    media: tuple[MediaDescription, ...] = ()
    other: tuple[tuple[str, str], ...] = ()  # i= u= e= p= b= r= z= k= lines, in RFC 4566 order

    @classmethod
    def parse(cls, text: str) -> SessionDescription:
        lines = [line.rstrip("\r") for line in text.split("\n")]
        lines = [line for line in lines if line.strip()]
        if not lines or lines[0].strip() != "v=0":
            raise SdpError("SDP must start with v=0", status=400)
        origin: Origin | None = None
        name, timing, connection = "-", "0 0", None
        attrs: list[Attribute] = []
        other: list[tuple[str, str]] = []
        media: list[MediaDescription] = []
        current: MediaDescription | None = None
        m_attrs: list[Attribute] = []
        m_other: list[tuple[str, str]] = []
        m_conn: Connection | None = None

        def close_media() -> None:
            if current is not None:
                media.append(
                    replace(
                        current,
                        connection=m_conn,
                        attributes=tuple(m_attrs),
                        other=_canonical(m_other, _MEDIA_ORDER),
                    )
                )

        for line in lines[1:]:
            if len(line) < 2 or line[1] != "=" or not ("a" <= line[0] <= "z"):
                raise SdpError(f"not an SDP line: {line[:40]!r}", status=400)
            key, value = line[0], line[2:]
            if key == "m":
                close_media()
                current, m_attrs, m_other, m_conn = MediaDescription.parse_m_line(value), [], [], None
            elif key == "a":
                attr_name, sep, attr_value = value.partition(":")
                (m_attrs if current else attrs).append((attr_name, attr_value if sep else None))
            elif key == "c":
                if current is not None:
                    m_conn = Connection.parse(value)
                else:
                    connection = Connection.parse(value)
            elif current is not None:
                if key not in _MEDIA_ORDER:
                    raise SdpError(f"{key}= is not allowed in a media section", status=400)
                m_other.append((key, value))
            elif key == "o":
                origin = Origin.parse(value)
            elif key == "s":
                name = value
            elif key == "t":
                timing = value
            elif key == "v":
                raise SdpError("a second v= line", status=400)
            else:
                other.append((key, value))
        close_media()
        if origin is None:
            raise SdpError("SDP without an o= line", status=400)
        return cls(
            origin=origin,
            session_name=name,
            connection=connection,
            timing=timing,
            attributes=tuple(attrs),
            media=tuple(media),
            other=_canonical(other, _SESSION_ORDER),
        )

    def connection_for(self, media: MediaDescription) -> Connection | None:
        """The media-level c= line, else the session-level one."""
        return media.connection or self.connection

    def direction_for(self, media: MediaDescription) -> Direction:
        """The media-level direction attribute, else the session-level one, else sendrecv."""
        return _direction(media.attributes) or _direction(self.attributes) or Direction.SENDRECV

    def __str__(self) -> str:
        lines = ["v=0", f"o={self.origin}", f"s={self.session_name}"]
        lines += [f"{key}={value}" for key, value in self.other if key in "iuep"]
        if self.connection is not None:
            lines.append(f"c={self.connection}")
        lines += [f"{key}={value}" for key, value in self.other if key == "b"]
        lines.append(f"t={self.timing}")
        lines += [f"{key}={value}" for key, value in self.other if key not in "iuepb"]
        lines += [_attr_line(attr) for attr in self.attributes]
        lines += [str(m) for m in self.media]
        return "\r\n".join(lines) + "\r\n"


# --- offer/answer (RFC 3264) ---

_AUDIO_PROTOS = ("RTP/AVP", "RTP/AVPF")  # no SRTP: an RTP/SAVP stream is rejected


def _addrtype(address: str) -> str:
    return "IP6" if ":" in address else "IP4"


def _parse_body(text: str) -> SessionDescription:
    try:
        return SessionDescription.parse(text)
    except SdpError:
        raise
    except Exception as exc:  # the parser is total; this is a last line of defence
        raise SdpError(f"unparseable SDP: {exc}", status=400) from exc


def _match(offered: Codec, ours: Sequence[Codec]) -> Codec | None:
    for codec in ours:
        if codec.name.lower() == offered.name.lower() and codec.clock_rate == offered.clock_rate:
            return Codec(codec.name, offered.payload_type, codec.clock_rate)
    return None


def _telephone_event(media: MediaDescription) -> int | None:
    for codec in media.codecs():
        if codec.name.lower() == TELEPHONE_EVENT.name and codec.clock_rate == 8000:
            return codec.payload_type
    return None


def _audio_section(
    *,
    port: int,
    codec: Codec,
    telephone_event_pt: int | None,
    direction: Direction,
    codecs: Sequence[Codec] = (),
    dtmf_fmtp: str = "0-16",
) -> MediaDescription:
    listed = [codec, *[c for c in codecs if c.payload_type != codec.payload_type]]
    formats = [str(c.payload_type) for c in listed]
    attrs: list[Attribute] = [("rtpmap", f"{c.payload_type} {c.name}/{c.clock_rate}") for c in listed]
    if telephone_event_pt is not None:
        formats.append(str(telephone_event_pt))
        attrs.append(("rtpmap", f"{telephone_event_pt} telephone-event/8000"))
        attrs.append(("fmtp", f"{telephone_event_pt} {dtmf_fmtp}"))
    attrs += [("ptime", "20"), (direction.value, None)]
    return MediaDescription("audio", port, "RTP/AVP", tuple(formats), attributes=tuple(attrs))


def _our_description(address: str, session_id: int, version: int, media: list[MediaDescription]) -> str:
    kind = _addrtype(address)
    return str(
        SessionDescription(
            origin=Origin("voicebot", str(session_id), str(version), "IN", kind, address),
            session_name="voicebot",
            connection=Connection(address, kind),
            media=tuple(media),
        )
    )


def _params(
    sd: SessionDescription,
    media: MediaDescription,
    codec: Codec,
    telephone_event_pt: int | None,
) -> MediaParams:
    connection = sd.connection_for(media)
    if connection is None:
        raise SdpError("audio stream without a c= line", status=400)
    theirs = sd.direction_for(media)
    ours = theirs.reversed
    null = connection.is_null
    return MediaParams(
        remote_address=connection.host,
        remote_port=media.port,
        codec=codec,
        telephone_event_pt=telephone_event_pt,
        ptime=20,
        direction=ours,
        on_hold=null or not theirs.receives,
    )


def answer_offer(
    offer_text: str,
    *,
    address: str,
    port: int,
    session_id: int,
    version: int,
    codecs: Sequence[Codec] = (PCMU, PCMA),
) -> tuple[str, MediaParams]:
    """Answer an offer: one audio stream with the offerer's first codec we support.

    Every other stream is rejected with port 0 (RFC 3264 section 6: same number of m= lines).
    Raises SdpError 400 for text that is not SDP and 488 when no audio stream is usable.
    """
    offer = _parse_body(offer_text)
    chosen: MediaParams | None = None
    answer_media: list[MediaDescription] = []
    for media in offer.media:
        section: MediaDescription | None = None
        usable = media.media == "audio" and media.port != 0 and media.proto.upper() in _AUDIO_PROTOS
        if chosen is None and usable:
            codec = next((c for c in (_match(o, codecs) for o in media.codecs()) if c), None)
            if codec is not None:
                dtmf = _telephone_event(media)
                chosen = _params(offer, media, codec, dtmf)
                section = _audio_section(
                    port=port,
                    codec=codec,
                    telephone_event_pt=dtmf,
                    direction=chosen.direction,
                    dtmf_fmtp=media.fmtp().get(dtmf, "0-16") if dtmf is not None else "0-16",
                )
        if section is None:  # rejected: port 0, the offered formats echoed (at least one is required)
            section = MediaDescription(media.media, 0, media.proto, media.formats)
        answer_media.append(section)
    if chosen is None:
        raise SdpError("no audio stream with a codec we support", status=488)
    return _our_description(address, session_id, version, answer_media), chosen


def create_offer(
    *,
    address: str,
    port: int,
    session_id: int,
    version: int,
    codecs: Sequence[Codec] = (PCMU, PCMA),
    telephone_event_pt: int | None = TELEPHONE_EVENT.payload_type,
    direction: Direction = Direction.SENDRECV,
) -> str:
    """An offer of one audio stream listing ``codecs`` in order of preference."""
    if not codecs:
        raise ValueError("an offer needs at least one codec")
    section = _audio_section(
        port=port,
        codec=codecs[0],
        telephone_event_pt=telephone_event_pt,
        direction=direction,
        codecs=codecs[1:],
    )
    return _our_description(address, session_id, version, [section])


def parse_answer(answer_text: str, offered: Sequence[Codec], telephone_event_pt: int | None) -> MediaParams:
    """The stream an answer accepted (its first format that we offered). SdpError 488 if none."""
    answer = _parse_body(answer_text)
    for media in answer.media:
        if media.media != "audio" or media.port == 0:
            continue
        for candidate in media.codecs():
            ours = next(
                (c for c in offered if c.payload_type == candidate.payload_type and _match(candidate, [c])),
                None,
            )
            if ours is not None:
                dtmf = _telephone_event(media) if telephone_event_pt is not None else None
                return _params(answer, media, ours, dtmf)
    raise SdpError("the answer accepted no codec we offered", status=488)
