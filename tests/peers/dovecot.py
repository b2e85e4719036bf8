"""Dovecot IMAP (Debian ``dovecot-imapd``) as a test peer, pinned to 127.0.0.1.

``async with Dovecot(tmp_path) as imap:`` starts a private ``dovecot -F`` with its own configuration
(nothing from /etc/dovecot is read): IMAP only, on one free loopback port, no TLS by default (see
"TLS" below), plaintext login allowed, one user (``bot`` / ``pw``, a passwd-file) whose mail is a
Maildir. The configuration, the passwd-file and the log are written to ``<folder>/dovecot``; the
server's runtime directory (base_dir with its UNIX sockets, state_dir and the Maildir) is a short
private directory under the system temp dir, because socket paths are limited to 108 bytes and the
mail process must be able to reach it.

TLS: ``Dovecot(folder, tls=LoopbackTLS(...))`` (tests/peers/tls.py) serves IMAPS instead, implicit TLS
from the first byte (``ssl = required``, ``ssl_cert``/``ssl_key`` from the helper's PEM files): the
one port (``port``, also ``tls_port``) is then the ``imaps`` listener and the plain ``imap`` listener
is switched off, so nothing on the server takes a login in the clear. A client trusts it with
``tls.ca_file`` (``connect()``, ``deliver()`` and ``messages()`` use ``tls.client_context()``). The
certificate and key are read once by the config process (root here, or the caller) at start-up
and handed to the chrooted ``dovenull`` login processes over its socket, so the files can stay in
the caller's private folder.

Who runs what:

* as root (CI, this machine): the master, config, log and auth processes run as root (auth must read
  the passwd-file under the caller's 0700 pytest directory), the login processes as ``dovenull``
  (chrooted, as Dovecot wants), and mail is accessed as the ``dovecot`` user: Dovecot refuses to
  access mail as root ("Mail access not allowed for root"), so the Maildir is owned by ``dovecot``;
* as an ordinary user: every process runs as that user and the login processes are not chrooted.

``deliver()`` uses IMAP APPEND (so an IDLE session is woken), ``messages()`` reads a mailbox back
byte for byte, ``log()`` gives the server log for assertion messages. On exit the master is asked to
stop (SIGTERM), then its whole process group is killed, and the runtime directory is removed.

Dovecot cannot be handed a listening socket, so a free port is found by binding port 0 and releasing
it; a start that loses that race ("Address already in use") is retried on another port.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import aioimaplib

from tests.peers.tls import LoopbackTLS

__all__ = ["DOVECOT", "Dovecot", "DovecotError", "dovecot_available", "fetched_literals"]

DOVECOT = "/usr/sbin/dovecot"
LOOPBACK = "127.0.0.1"
_FETCH_LITERAL = re.compile(rb"^\d+ FETCH \(.*\{\d+\}$")

_CONFIG = """\
# Written by tests/peers/dovecot.py: a private, loopback-only Dovecot for tests.
instance_name = {instance}
base_dir = {run}/base
state_dir = {run}/state
log_path = {log}
listen = {host}
protocols = imap
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
default_internal_user = {internal_user}
default_internal_group = {internal_group}
default_login_user = {login_user}
first_valid_uid = {mail_uid}
mail_uid = {mail_uid}
mail_gid = {mail_gid}
mail_location = maildir:{run}/mail/%n
mail_fsync = never
mailbox_idle_check_interval = 1 secs
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%n {passwd}
}}
userdb {{
  driver = passwd-file
  args = username_format=%n {passwd}
}}
service imap-login {{
  {login_chroot}
  inet_listener imap {{
    address = {host}
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = {host}
    port = {imaps_port}
  }}
}}
"""


class DovecotError(RuntimeError):
    """Dovecot did not start, or an IMAP command to it failed."""


def dovecot_available() -> bool:
    return os.access(DOVECOT, os.X_OK)


def _free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def _check(response: Any, what: str) -> list[bytes | bytearray]:
    result, lines = cast(tuple[str, list[bytes | bytearray]], response)
    if result != "OK":
        raise DovecotError(f"IMAP {what} failed: {result} {lines!r}")
    return list(lines)


def fetched_literals(lines: list[bytes | bytearray]) -> list[bytes]:
    """The message literals of an aioimaplib FETCH response, in server order."""
    out: list[bytes] = []
    for i, line in enumerate(lines[:-1]):
        if isinstance(line, bytes | bytearray) and _FETCH_LITERAL.match(bytes(line)):
            out.append(bytes(lines[i + 1]))
    return out


class Dovecot:
    """A private Dovecot IMAP server on 127.0.0.1 for one test (see the module docstring)."""

    def __init__(
        self,
        folder: Path,
        *,
        user: str = "bot",
        password: str = "pw",
        startup_timeout_s: float = 15.0,
        tls: LoopbackTLS | None = None,
    ) -> None:
        self.folder = Path(folder) / "dovecot"
        self.host = LOOPBACK
        self.port = 0
        self.tls = tls
        self.user, self.password = user, password
        self.startup_timeout_s = startup_timeout_s
        self.config_path = self.folder / "dovecot.conf"
        self.log_path = self.folder / "dovecot.log"
        self.passwd_path = self.folder / "users"
        self._run: Path | None = None
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def tls_port(self) -> int | None:
        """The IMAPS (implicit TLS) port when started with ``tls``, else None."""
        return self.port if self.tls is not None else None

    def client_ssl_context(self) -> ssl.SSLContext | None:
        """What a client needs to trust this server (None without ``tls``)."""
        return self.tls.client_context() if self.tls is not None else None

    # -- lifecycle ------------------------------------------------------------------------------

    async def __aenter__(self) -> Dovecot:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._run = Path(tempfile.mkdtemp(prefix="vb-dovecot-"))
        os.chmod(self._run, 0o755)
        mail = self._run / "mail"
        mail.mkdir()
        self.passwd_path.write_text(f"{self.user}:{{PLAIN}}{self.password}::::::\n")
        if os.geteuid() == 0:
            internal_user, internal_group, login_user, login_chroot = "root", "root", "dovenull", ""
            mail_owner = pwd.getpwnam("dovecot")
            os.chown(mail, mail_owner.pw_uid, mail_owner.pw_gid)
        else:
            mail_owner = pwd.getpwuid(os.geteuid())
            internal_user = login_user = mail_owner.pw_name
            internal_group = str(mail_owner.pw_gid)
            login_chroot = "chroot ="
        if self.tls is None:
            ssl_settings = "ssl = no"
        else:
            ssl_settings = f"ssl = required\nssl_cert = <{self.tls.cert_file}\nssl_key = <{self.tls.key_file}"
        last_error = ""
        for _ in range(3):
            self.port = _free_tcp_port()
            self.config_path.write_text(
                _CONFIG.format(
                    instance=f"voicebot-test-{self._run.name}",
                    run=self._run,
                    log=self.log_path,
                    host=self.host,
                    internal_user=internal_user,
                    internal_group=internal_group,
                    login_user=login_user,
                    mail_uid=mail_owner.pw_uid,
                    mail_gid=mail_owner.pw_gid,
                    passwd=self.passwd_path,
                    login_chroot=login_chroot,
                    ssl=ssl_settings,
                    imap_port=0 if self.tls is not None else self.port,
                    imaps_port=self.port if self.tls is not None else 0,
                )
            )
            self.log_path.write_text("")
            self._proc = await asyncio.create_subprocess_exec(
                DOVECOT,
                "-F",
                "-c",
                str(self.config_path),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
                start_new_session=True,  # its own process group: stop() kills every child too
            )
            try:
                await self._wait_ready()
                return
            except DovecotError as error:
                last_error = str(error)
                await self._kill()
                if "Address already in use" not in self.log():
                    break
        await self.stop()
        raise DovecotError(last_error)

    async def _wait_ready(self) -> None:
        """Until the port greets with ``* OK``; fails early if the master exits."""
        assert self._proc is not None
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self._proc.returncode is not None:
                raise DovecotError(f"dovecot exited with {self._proc.returncode} at start-up:\n{self.log()}")
            with contextlib.suppress(OSError, TimeoutError):
                reader, writer = await asyncio.open_connection(
                    self.host, self.port, ssl=self.client_ssl_context()
                )
                try:
                    greeting = await asyncio.wait_for(reader.readline(), 2.0)
                finally:
                    writer.close()
                    with contextlib.suppress(OSError):
                        await writer.wait_closed()
                if greeting.startswith(b"* OK"):
                    return
            await asyncio.sleep(0.05)
        raise DovecotError(f"dovecot did not greet on {self.host}:{self.port} in time:\n{self.log()}")

    async def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM to the master, SIGKILL to its process group if needed; remove the runtime dir."""
        proc = self._proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), grace_s)
        await self._kill()
        if self._run is not None:
            shutil.rmtree(self._run, ignore_errors=True)
            self._run = None

    async def _kill(self) -> None:
        """SIGKILL whatever is left of the process group we started (the master is its leader)."""
        proc = self._proc
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        self._proc = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # -- IMAP helpers ---------------------------------------------------------------------------

    def client(self, timeout_s: float = 10.0) -> aioimaplib.IMAP4:
        """A new, not yet connected aioimaplib client (IMAP4_SSL trusting the CA with ``tls``)."""
        if self.tls is None:
            return aioimaplib.IMAP4(host=self.host, port=self.port, timeout=timeout_s)
        return aioimaplib.IMAP4_SSL(
            host=self.host, port=self.port, timeout=timeout_s, ssl_context=self.tls.client_context()
        )

    async def connect(self, timeout_s: float = 10.0) -> aioimaplib.IMAP4:
        """A logged-in aioimaplib client; the caller logs out."""
        client = self.client(timeout_s)
        await client.wait_hello_from_server()
        _check(await client.login(self.user, self.password), "LOGIN")
        return client

    async def deliver(self, raw: bytes, mailbox: str = "INBOX") -> None:
        """Put one message into ``mailbox`` (created if missing) with IMAP APPEND."""
        client = await self.connect()
        try:
            if mailbox.upper() != "INBOX":
                await client.create(mailbox)  # NO when it exists already: fine
            _check(await client.append(raw, mailbox=mailbox), f"APPEND to {mailbox}")
        finally:
            with contextlib.suppress(Exception):
                await client.logout()

    async def messages(self, mailbox: str = "INBOX") -> list[bytes]:
        """Every message in ``mailbox``, exactly as stored, in UID order (without setting \\Seen)."""
        client = await self.connect()
        try:
            _check(await client.select(mailbox), f"SELECT {mailbox}")
            found = _check(await client.uid_search("ALL"), "UID SEARCH ALL")
            if not found or not bytes(found[0]).split():
                return []
            lines = _check(await client.uid("fetch", "1:*", "(BODY.PEEK[])"), "UID FETCH")
            return fetched_literals(lines)
        finally:
            with contextlib.suppress(Exception):
                await client.logout()
