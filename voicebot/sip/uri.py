"""SIP URIs (RFC 3261 section 19.1) and name-addr values (From, To, Contact, Route, Refer-To).

Only what a user agent needs: scheme, user, host, port and URI parameters of a ``sip:``/``sips:``
URI, and the URI inside a ``"Display" <uri>;params`` value. Host names are kept as written; the
asyncio layer resolves them. Malformed input raises SipParseError (400; 416 for a foreign scheme).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from voicebot.sip.errors import SipParseError
from voicebot.sip.headers import _header_params_text, parse_params

__all__ = ["NameAddr", "SipUri", "uri_of"]

_URI_RE = re.compile(
    r"(?P<scheme>sips?):(?:(?P<user>[^@;?]*)@)?(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-_]+)"
    r"(?::(?P<port>\d{1,5}))?(?P<params>;[^?]*)?(?P<headers>\?.*)?",
    re.ASCII,
)


@dataclass(frozen=True)
class SipUri:
    scheme: str
    host: str
    user: str | None = None
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict, compare=False, hash=False)
    raw: str = field(default="", compare=False, hash=False)

    @classmethod
    def parse(cls, text: str) -> SipUri:
        text = text.strip(" \t")
        m = _URI_RE.fullmatch(text)
        if not m:
            scheme = text.partition(":")[0].lower()
            if scheme and scheme not in ("sip", "sips") and ":" in text:
                raise SipParseError(f"unsupported URI scheme {scheme!r}", status=416)
            raise SipParseError(f"malformed SIP URI {text[:80]!r}")
        port = int(m.group("port")) if m.group("port") else None
        if port is not None and not 0 < port < 65536:
            raise SipParseError(f"port out of range in {text[:80]!r}")
        return cls(
            scheme=m.group("scheme").lower(),
            host=m.group("host").strip("[]"),
            user=m.group("user") or None,
            port=port,
            params=parse_params(m.group("params") or ""),
            raw=text,
        )

    @property
    def transport(self) -> str:
        """``udp`` | ``tcp`` | ``tls`` as the URI asks (RFC 3263 default for sip: is UDP)."""
        value = (self.params.get("transport") or "").lower()
        if self.scheme == "sips":
            return "tls"
        return value if value in ("udp", "tcp", "tls") else "udp"

    @property
    def loose_route(self) -> bool:
        return "lr" in self.params

    def default_port(self) -> int:
        return self.port or (5061 if self.transport == "tls" else 5060)

    def __str__(self) -> str:
        if self.raw:
            return self.raw
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        params = "".join(f";{k}" if v is None else f";{k}={v}" for k, v in self.params.items())
        return f"{self.scheme}:{user}{host}{port}{params}"


def uri_of(value: str) -> str:
    """The URI text of a name-addr / addr-spec value (``"A" <sip:a@h>;tag=1`` -> ``sip:a@h``)."""
    lt = value.find("<")
    if lt >= 0:
        gt = value.find(">", lt)
        if gt < 0:
            raise SipParseError(f"unterminated <...> in {value[:80]!r}")
        return value[lt + 1 : gt].strip(" \t")
    return value.split(";", 1)[0].strip(" \t")


@dataclass(frozen=True)
class NameAddr:
    """A From/To/Contact/Route value: display name, URI and header parameters (tag, expires, ...)."""

    uri: SipUri
    display: str | None = None
    params: dict[str, str | None] = field(default_factory=dict, compare=False, hash=False)

    @classmethod
    def parse(cls, value: str) -> NameAddr:
        uri = SipUri.parse(uri_of(value))
        lt = value.find("<")
        display = value[:lt].strip(" \t").strip('"') or None if lt >= 0 else None
        return cls(uri, display, parse_params(_header_params_text(value)))

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")
