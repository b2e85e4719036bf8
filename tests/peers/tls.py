"""A throw-away certificate authority and a loopback server certificate for the TLS test peers.

``tls = LoopbackTLS(folder)`` makes (with trustme) a test CA and a server certificate for
``127.0.0.1`` (an IP SAN) and ``localhost`` and writes three PEM files into ``folder``:

* ``tls.ca_file``: the CA certificate, what a client is told to trust (the product's ``ca_file``);
* ``tls.cert_file``: the server's certificate chain (leaf first);
* ``tls.key_file``: the server's private key (mode 0600).

``tls.server_context()`` is an :class:`ssl.SSLContext` for a server (aiosmtpd's STARTTLS), and
``tls.client_context()`` one for a client that trusts only this CA and checks the host name. Nothing is
trusted system-wide and nothing leaves the folder; every ``LoopbackTLS`` is its own CA, so a client
built from another one (or the system's default trust store) fails the handshake.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import trustme

__all__ = ["SERVER_NAMES", "LoopbackTLS"]

SERVER_NAMES = ("127.0.0.1", "localhost")


def _write(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, mode)  # also when the file existed already


class LoopbackTLS:
    """A test CA and a server certificate for 127.0.0.1/localhost, as PEM files in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.ca = trustme.CA(organization_name="voicebot tests")
        self.server_cert = self.ca.issue_cert(*SERVER_NAMES)
        self.ca_file = self.folder / "ca.pem"
        self.cert_file = self.folder / "server-chain.pem"
        self.key_file = self.folder / "server-key.pem"
        _write(self.ca_file, self.ca.cert_pem.bytes(), 0o644)
        _write(self.cert_file, b"".join(blob.bytes() for blob in self.server_cert.cert_chain_pems), 0o644)
        _write(self.key_file, self.server_cert.private_key_pem.bytes(), 0o600)

    def server_context(self) -> ssl.SSLContext:
        """A server-side context with the certificate chain and key (no client certificates)."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client-side context that trusts this CA only (from ``ca_file``) and checks host names."""
        return ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.ca_file))
