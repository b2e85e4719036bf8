"""HTTP digest authentication for SIP (RFC 3261 section 22; RFC 7616 / RFC 8760; RFC 2069 form).

Sans-I/O and clock-free: every call that needs the time takes ``now`` (seconds, any monotonic or
wall clock as long as one challenger always gets the same kind).

Server side, :class:`DigestChallenger`:

* ``challenge(now)`` gives a ``WWW-Authenticate`` / ``Proxy-Authenticate`` value. The nonce is a
  timestamp signed with HMAC-SHA256 under the challenger's secret, so no nonce is stored; any
  process holding the same secret accepts it.
* ``verify(authorization, method=..., now=..., lookup=...)`` checks an ``Authorization`` /
  ``Proxy-Authorization`` value (qop=auth, or the RFC 2069 form without qop) and returns an
  :class:`AuthResult`. A correct answer to an expired nonce gives ``stale=True``: challenge again with
  ``stale=True`` and the client retries without asking its user. Digests are compared in constant
  time. A ``(nonce, nc)`` pair is accepted once within the nonce lifetime (a bounded in-memory set).

Client side: :func:`parse_challenge` and :func:`authorization`.

Algorithms: ``MD5`` and ``SHA-256`` and their ``-sess`` variants. A malformed header value raises
:class:`~voicebot.sip.errors.SipParseError`; a well-formed but wrong answer is an ``AuthResult`` with
``ok=False`` and a ``reason``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from voicebot.sip.errors import SipParseError
from voicebot.sip.headers import split_list

__all__ = [
    "ALGORITHMS",
    "AuthResult",
    "Challenge",
    "DigestChallenger",
    "authorization",
    "digest_response",
    "parse_challenge",
    "parse_credentials",
]

ALGORITHMS: dict[str, Callable[[bytes], str]] = {
    "MD5": lambda b: hashlib.md5(b).hexdigest(),
    "SHA-256": lambda b: hashlib.sha256(b).hexdigest(),
}
_HEX_LEN = {"MD5": 32, "SHA-256": 64}
REPLAY_CACHE_SIZE = 4096
_PARAM_RE = re.compile(r"([A-Za-z0-9\-_.!%*+`'~]+)[ \t]*=[ \t]*(\"(?:[^\"\\]|\\.)*\"|[^\s\",]*)", re.DOTALL)
_NC_RE = re.compile(r"[0-9a-fA-F]{8}")


def _split_algorithm(algorithm: str) -> tuple[str, bool]:
    """(base algorithm, is -sess) or SipParseError for an unknown one."""
    name = algorithm.upper()
    sess = name.endswith("-SESS")
    base = name[:-5] if sess else name
    if base not in ALGORITHMS:
        raise SipParseError(f"unsupported digest algorithm {algorithm!r}")
    return base, sess


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1], flags=re.DOTALL)
    return value


def _parse_digest(value: str, what: str) -> dict[str, str]:
    """``Digest a=b, c="d"`` -> {"a": "b", "c": "d"} (names lowercased); SipParseError if malformed."""
    scheme, _, rest = value.strip(" \t").partition(" ")
    if scheme.lower() != "digest":
        raise SipParseError(f"{what}: unsupported scheme {scheme!r}")
    params: dict[str, str] = {}
    for element in split_list(rest):
        m = _PARAM_RE.fullmatch(element.strip(" \t"))
        if not m:
            raise SipParseError(f"{what}: malformed parameter {element[:40]!r}")
        name = m.group(1).lower()
        if name in params:
            raise SipParseError(f"{what}: duplicate parameter {name!r}")
        params[name] = _unquote(m.group(2))
    return params


def digest_response(
    *,
    algorithm: str,
    method: str,
    uri: str,
    nonce: str,
    ha1: str,
    qop: str | None = None,
    nc: str = "",
    cnonce: str = "",
) -> str:
    """The ``response`` value from a precomputed ``ha1`` (= H(username:realm:password)).

    ``-sess`` algorithms derive the session HA1 here; ``qop=None`` is the RFC 2069 form.
    """
    base, sess = _split_algorithm(algorithm)
    h = ALGORITHMS[base]
    if sess:
        ha1 = h(f"{ha1}:{nonce}:{cnonce}".encode())
    ha2 = h(f"{method}:{uri}".encode())
    if qop is None:
        return h(f"{ha1}:{nonce}:{ha2}".encode())
    return h(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}".encode())


def _ha1(algorithm: str, username: str, realm: str, password: str) -> str:
    base, _ = _split_algorithm(algorithm)
    return ALGORITHMS[base](f"{username}:{realm}:{password}".encode())


# --- client side -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Challenge:
    """A parsed ``WWW-Authenticate`` / ``Proxy-Authenticate`` digest challenge."""

    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False
    params: dict[str, str] = field(default_factory=dict)


def parse_challenge(value: str) -> Challenge:
    """Parse a digest challenge. Raises SipParseError if it is malformed or not usable."""
    params = _parse_digest(value, "challenge")
    for name in ("realm", "nonce"):
        if name not in params:
            raise SipParseError(f"challenge: missing {name}")
    algorithm = params.get("algorithm", "MD5")
    _split_algorithm(algorithm)
    qop = (
        tuple(q.strip(" \t").lower() for q in params["qop"].split(",") if q.strip(" \t"))
        if "qop" in params
        else ()
    )
    return Challenge(
        realm=params["realm"],
        nonce=params["nonce"],
        algorithm=algorithm,
        qop=qop,
        opaque=params.get("opaque"),
        stale=params.get("stale", "").lower() == "true",
        params=params,
    )


def authorization(
    challenge: Challenge, *, method: str, uri: str, username: str, password: str, cnonce: str, nc: int
) -> str:
    """The ``Authorization`` / ``Proxy-Authorization`` value answering ``challenge``.

    qop=auth when the challenge offers it, else the RFC 2069 form (``cnonce`` and ``nc`` unused).
    Raises SipParseError if the challenge offers only qops other than ``auth``.
    """
    qop: str | None = None
    if challenge.qop:
        if "auth" not in challenge.qop:
            raise SipParseError(f"challenge: no supported qop in {challenge.qop!r}")
        qop = "auth"
    nc_text = f"{nc:08x}"
    response = digest_response(
        algorithm=challenge.algorithm,
        method=method,
        uri=uri,
        nonce=challenge.nonce,
        ha1=_ha1(challenge.algorithm, username, challenge.realm, password),
        qop=qop,
        nc=nc_text,
        cnonce=cnonce,
    )
    parts = [
        f"username={_quote(username)}",
        f"realm={_quote(challenge.realm)}",
        f"nonce={_quote(challenge.nonce)}",
        f"uri={_quote(uri)}",
        f"response={_quote(response)}",
        f"algorithm={challenge.algorithm}",
    ]
    if qop is not None:
        parts += [f"qop={qop}", f"nc={nc_text}", f"cnonce={_quote(cnonce)}"]
    if challenge.opaque is not None:
        parts.append(f"opaque={_quote(challenge.opaque)}")
    return "Digest " + ", ".join(parts)


# --- server side -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuthResult:
    """Outcome of :meth:`DigestChallenger.verify`.

    ``ok``: accept the request. ``stale``: the answer was right but for an expired (or, in the
    RFC 2069 form, already used) nonce; challenge again with ``stale=True``. ``reason`` says why not,
    for logs only (never sent to the peer).
    """

    ok: bool
    username: str | None = None
    stale: bool = False
    reason: str = ""


def parse_credentials(value: str) -> dict[str, str]:
    """Parameters of an ``Authorization`` value (names lowercased). Raises SipParseError."""
    return _parse_digest(value, "credentials")


class DigestChallenger:
    """Issues stateless signed nonces and verifies answers for one realm.

    ``lookup(username)`` returns the password, or, with ``lookup_is_ha1=True``, the stored
    H(username:realm:password) in the algorithm's hash; None for an unknown user.
    """

    def __init__(
        self,
        realm: str,
        secret: bytes,
        *,
        nonce_ttl_s: float = 300.0,
        lookup_is_ha1: bool = False,
        replay_cache_size: int = REPLAY_CACHE_SIZE,
    ) -> None:
        if not secret:
            raise ValueError("the nonce secret must not be empty")
        self.realm = realm
        self.nonce_ttl_s = nonce_ttl_s
        self.lookup_is_ha1 = lookup_is_ha1
        self._secret = secret
        self._seen: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._max_seen = replay_cache_size

    def _sign(self, stamp: str) -> str:
        mac = hmac.new(self._secret, f"{stamp}:{self.realm}".encode(), hashlib.sha256)
        return mac.hexdigest()[:32]

    def make_nonce(self, now: float) -> str:
        stamp = f"{int(now * 1000):x}"
        return f"{stamp}.{self._sign(stamp)}"

    def _nonce_time(self, nonce: str) -> float | None:
        """Issue time of a nonce we signed, else None."""
        stamp, dot, mac = nonce.partition(".")
        if not dot or not re.fullmatch(r"[0-9a-f]{1,16}", stamp):
            return None
        if not hmac.compare_digest(mac.encode(), self._sign(stamp).encode()):
            return None
        return int(stamp, 16) / 1000

    def challenge(self, now: float, *, stale: bool = False, algorithm: str = "MD5") -> str:
        """A challenge value (qop="auth") carrying a fresh nonce."""
        _split_algorithm(algorithm)
        value = (
            f"Digest realm={_quote(self.realm)}, nonce={_quote(self.make_nonce(now))}, "
            f'algorithm={algorithm}, qop="auth"'
        )
        return value + (", stale=true" if stale else "")

    def verify(
        self,
        authorization: str,
        *,
        method: str,
        now: float,
        lookup: Callable[[str], str | None],
        uri: str | None = None,
    ) -> AuthResult:
        """Check an Authorization value for a request ``method`` (and Request-URI ``uri`` if given).

        Raises SipParseError for a malformed value.
        """
        p = parse_credentials(authorization)
        for name in ("username", "realm", "nonce", "uri", "response"):
            if name not in p:
                raise SipParseError(f"credentials: missing {name}")
        username = p["username"]
        if p["realm"] != self.realm:
            return AuthResult(False, username, reason="wrong realm")
        if uri is not None and p["uri"] != uri:
            return AuthResult(False, username, reason="digest uri does not match the Request-URI")
        algorithm = p.get("algorithm", "MD5")
        try:
            base, _ = _split_algorithm(algorithm)
        except SipParseError:
            return AuthResult(False, username, reason=f"unsupported algorithm {algorithm}")
        qop = p.get("qop")
        nc = cnonce = ""
        if qop is not None:
            qop = qop.lower()
            if qop != "auth":
                return AuthResult(False, username, reason=f"unsupported qop {qop}")
            nc, cnonce = p.get("nc", ""), p.get("cnonce", "")
            if not _NC_RE.fullmatch(nc) or not cnonce:
                raise SipParseError("credentials: qop=auth needs nc (8 hex digits) and cnonce")
        issued = self._nonce_time(p["nonce"])
        if issued is None:
            return AuthResult(False, username, stale=False, reason="nonce not issued here")
        secret = lookup(username)
        if secret is None:
            return AuthResult(False, username, reason="unknown user")
        ha1 = secret if self.lookup_is_ha1 else _ha1(base, username, self.realm, secret)
        if len(ha1) != _HEX_LEN[base]:
            return AuthResult(False, username, reason=f"stored HA1 is not {base}")
        expected = digest_response(
            algorithm=algorithm, method=method, uri=p["uri"], nonce=p["nonce"], ha1=ha1.lower(),
            qop=qop, nc=nc, cnonce=cnonce,
        )  # fmt: skip
        if not hmac.compare_digest(expected.encode(), p["response"].lower().encode()):
            return AuthResult(False, username, reason="wrong response")
        if now - issued > self.nonce_ttl_s or issued - now > 5.0:
            return AuthResult(False, username, stale=True, reason="nonce expired")
        if not self._first_use(p["nonce"], nc.lower(), issued, now):
            if qop is None:  # RFC 2069 clients reuse a nonce: a fresh one lets them go on
                return AuthResult(False, username, stale=True, reason="nonce reused")
            return AuthResult(False, username, reason="nonce count replayed")
        return AuthResult(True, username)

    def _first_use(self, nonce: str, nc: str, issued: float, now: float) -> bool:
        while self._seen:
            key, expires = next(iter(self._seen.items()))
            if expires > now and len(self._seen) < self._max_seen:
                break
            del self._seen[key]
        if (nonce, nc) in self._seen:
            return False
        self._seen[(nonce, nc)] = issued + self.nonce_ttl_s
        return True
