"""SIPp (Debian ``sip-tester``) as a test peer, pinned to 127.0.0.1.

``run_sipp(scenario, target)`` runs one SIPp UAC to completion and returns a :class:`SippResult`;
``sipp_uas(scenario)`` runs SIPp as a UAS on a loopback port for as long as a test needs it.
Every run gets its own temporary directory (the cwd of SIPp, so ``rtp_stream`` files named in a
scenario resolve: the audio and pcap files beside the scenario, and those in tests/data/sipp for a
scenario elsewhere such as bench/sipp/campaign_callees.xml, are linked into it) holding the
message, error, log-action, statistics and response-time traces. ``SippResult.explain()`` gives the
tail of those for an assertion message.

SIPp cannot be handed a listening socket, so a free port is found by binding port 0 and releasing it;
a run that loses that race (exit 254/255 with "bind" in its output) is retried on another port.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import os
import random
import re
import shutil
import signal
import socket
import tempfile
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "SCENARIOS",
    "SippProcess",
    "SippResult",
    "free_port",
    "invites_by_number",
    "run_sipp",
    "sipp_available",
    "sipp_uas",
]

SCENARIOS = Path(__file__).resolve().parent.parent / "data" / "sipp"
LOOPBACK = "127.0.0.1"
# Defaults for keys the scenarios use as attribute values ([pause_ms] in uac_basic.xml; the rest in
# the campaign callees uas_campaign_*.xml, milliseconds unless named otherwise).
DEFAULT_KEYS = {
    "pause_ms": "8000",
    "ring_ms": "500",  # ringing before an answer
    "answer_pause_ms": "9000",  # from the callee's "Hello?" to its first answer (the bot's opening)
    "slot_pause_ms": "7000",  # reschedule: from asking to move to choosing a slot (the bot's offer)
    "question_pause_ms": "7000",  # survey: from one answer to the next (the bot's next question)
    "bye_wait_ms": "60000",  # how long a callee waits for the bot's BYE once it has said its part
    "cancel_wait_ms": "60000",  # no answer: rings this long for a CANCEL, then 480
    "auth_user": "voicebot",  # digest: the username the trunk wants in Proxy-Authorization
}
_MEDIA_SUFFIXES = (".wav", ".pcap", ".raw", ".ulaw", ".alaw")


def sipp_available() -> bool:
    return shutil.which("sipp") is not None


def _can_bind(port: int, kind: int) -> bool:
    with socket.socket(socket.AF_INET, kind) as s:
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def free_port(span: int = 1) -> int:
    """A port P on 127.0.0.1 with P..P+span-1 free for both UDP and TCP right now (released again)."""
    for _ in range(200):
        if span == 1:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind((LOOPBACK, 0))
                port = int(s.getsockname()[1])
        else:
            port = random.randrange(20000, 60000 - span, 2)
        if all(
            _can_bind(p, k) for p in range(port, port + span) for k in (socket.SOCK_DGRAM, socket.SOCK_STREAM)
        ):
            return port
    raise RuntimeError("no free loopback port found")


@dataclass
class SippResult:
    """What one SIPp run did. ``rtts_ms`` maps an rtd name ("1", or the name in ``rtd="..."``)
    to the per-call response times in milliseconds."""

    returncode: int
    successful: int
    failed: int
    rtts_ms: dict[str, list[float]] = field(default_factory=dict)
    messages: str = ""
    errors: str = ""
    logs: str = ""
    output: str = ""
    command: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.failed == 0 and self.successful > 0

    def rtt(self, name: str = "1") -> list[float]:
        return self.rtts_ms.get(name, [])

    def explain(self, chars: int = 3000) -> str:
        """Command, counts and the tails of the traces, for assertion messages."""
        parts = [
            f"sipp exit {self.returncode}, successful={self.successful} failed={self.failed}",
            "command: " + " ".join(self.command),
        ]
        for title, text in (("errors", self.errors), ("logs", self.logs), ("messages", self.messages)):
            if text.strip():
                parts.append(f"--- {title} (tail) ---\n{text[-chars:]}")
        if self.output.strip() and not self.errors.strip():
            parts.append(f"--- output (tail) ---\n{self.output[-chars:]}")
        return "\n".join(parts)


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def _stat_counts(path: Path) -> tuple[int, int] | None:
    """(successful, failed) cumulative counts from the last row of a -trace_stat CSV."""
    text = _read(path)
    rows = [r for r in csv.reader(text.splitlines(), delimiter=";") if r]
    if len(rows) < 2:
        return None
    header, last = rows[0], rows[-1]
    values = dict(zip(header, last, strict=False))
    try:
        return int(values["SuccessfulCall(C)"]), int(values["FailedCall(C)"])
    except (KeyError, ValueError):
        return None


def _rtts(folder: Path) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for path in folder.glob("*_rtt.csv"):
        for row in csv.reader(_read(path).splitlines(), delimiter=";"):
            if len(row) < 3:
                continue
            try:
                value = float(row[1])
            except ValueError:
                continue  # the header row
            out.setdefault(row[2].strip(), []).append(value)
    return out


class SippProcess:
    """A started SIPp process and its trace directory."""

    def __init__(self, proc: asyncio.subprocess.Process, folder: Path, port: int, command: list[str]):
        self.proc, self.folder, self.port, self.command = proc, folder, port, command

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    async def wait(self, timeout_s: float) -> SippResult:
        try:
            await asyncio.wait_for(self.proc.wait(), timeout_s)
        except TimeoutError:
            await self.stop()
        return self.result()

    async def stop(self, grace_s: float = 5.0) -> SippResult:
        """Ask SIPp to quit (SIGUSR1: stop taking calls and finish; then SIGTERM, then SIGKILL)."""
        for sig in (signal.SIGUSR1, signal.SIGTERM, signal.SIGKILL):
            if self.proc.returncode is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.proc.wait(), grace_s)
        return self.result()

    def result(self) -> SippResult:
        f = self.folder
        output = _read(f / "output.txt")
        counts = _stat_counts(f / "stat.csv") or (0, 0)
        return SippResult(
            returncode=self.proc.returncode if self.proc.returncode is not None else -9,
            successful=counts[0],
            failed=counts[1],
            rtts_ms=_rtts(f),
            messages=_read(f / "messages.log"),
            errors=_read(f / "errors.log"),
            logs=_read(f / "logs.log"),
            output=output,
            command=self.command,
        )


def _command(
    scenario: Path | str,
    target: str | None,
    folder: Path,
    *,
    calls: int | None,
    rate: float | None,
    concurrency: int | None,
    transport: str,
    local_port: int,
    media_port: int,
    keys: dict[str, str],
    auth: tuple[str, str] | None,
    service: str,
    timeout_s: float,
    extra: Sequence[str],
) -> list[str]:
    if transport not in ("u1", "t1", "un", "tn"):
        raise ValueError(f"unsupported SIPp transport {transport!r}")
    cmd = ["sipp"]
    if target:
        cmd.append(target)
    if isinstance(scenario, Path):
        # SIPp expands [keywords] in messages only; expand "[key]" attribute values (pauses) here
        text = scenario.read_text()
        for key, value in {**DEFAULT_KEYS, **keys}.items():
            text = text.replace(f'="[{key}]"', f'="{value}"')
        (folder / scenario.name).write_text(text)
        for media_dir in dict.fromkeys((scenario.parent, SCENARIOS)):  # the test audio for bench/ too
            for media in media_dir.iterdir():
                if media.suffix in _MEDIA_SUFFIXES and not (folder / media.name).exists():
                    (folder / media.name).symlink_to(media)
        cmd += ["-sf", scenario.name]
    else:
        cmd += ["-sn", scenario]
    cmd += ["-i", LOOPBACK, "-mi", LOOPBACK, "-ci", LOOPBACK, "-p", str(local_port), "-mp", str(media_port)]
    cmd += ["-t", transport, "-s", service, "-nostdin"]
    if calls is not None:
        cmd += ["-m", str(calls)]
    if rate is not None:
        cmd += ["-r", f"{rate:g}", "-rp", "1000"]
    if concurrency is not None:
        cmd += ["-l", str(concurrency)]
    for key, value in keys.items():
        cmd += ["-key", key, value]
    if auth is not None:
        cmd += ["-au", auth[0], "-ap", auth[1]]
        if target and "-auth_uri" not in extra:
            # SIPp's digest-uri defaults to sip:<remote_ip>:<remote_port>; make it the Request-URI
            # of our scenarios (sip:[service]@target) as RFC 3261 section 22.4 wants
            cmd += ["-auth_uri", f"{service}@{target}"]
    cmd += [
        "-trace_msg", "-message_file", "messages.log",
        "-trace_err", "-error_file", "errors.log",
        "-trace_logs", "-log_file", "logs.log",
        "-trace_stat", "-stf", "stat.csv", "-fd", "1",
        "-trace_rtt", "-rtt_freq", "1",
        "-timeout", f"{max(1, round(timeout_s))}s", "-timeout_error",
    ]  # fmt: skip
    cmd += list(extra)
    return cmd


async def _start(folder: Path, cmd: list[str], port: int) -> SippProcess:
    out = open(folder / "output.txt", "wb")  # noqa: SIM115 - owned by the child process
    try:
        proc = await asyncio.create_subprocess_exec(
            *cmd, cwd=folder, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "TERM": "dumb"},
        )  # fmt: skip
    finally:
        out.close()
    return SippProcess(proc, folder, port, cmd)


def _lost_bind_race(result: SippResult) -> bool:
    return result.returncode in (253, 254, 255) and "bind" in (result.output + result.errors).lower()


async def run_sipp(
    scenario: Path | str,
    target: str,
    *,
    calls: int = 1,
    rate: float | None = None,
    concurrency: int | None = None,
    transport: str = "u1",
    local_port: int = 0,
    media_port: int = 0,
    keys: dict[str, str] | None = None,
    auth: tuple[str, str] | None = None,
    service: str = "voicebot",
    timeout_s: float = 60.0,
    extra: Sequence[str] = (),
    keep_dir: Path | None = None,
) -> SippResult:
    """Run a SIPp UAC (``scenario`` a file, or the name of a built-in scenario) against ``target``
    ("127.0.0.1:5060") until ``calls`` calls are done or ``timeout_s`` passes.

    Ports 0 are chosen free. ``keys`` become ``-key name value`` ([name] in the scenario's messages;
    an attribute value that is exactly "[name]", such as ``<pause milliseconds="[pause_ms]"/>``, is
    replaced in the copy SIPp runs, with DEFAULT_KEYS as defaults); ``auth``
    is the (username, password) for ``[authentication]``. ``keep_dir`` keeps the traces there.
    """
    for attempt in range(3):
        with tempfile.TemporaryDirectory(prefix="sipp-") as tmp:
            folder = Path(tmp)
            port = local_port or free_port()
            cmd = _command(
                scenario, target, folder, calls=calls, rate=rate, concurrency=concurrency,
                transport=transport, local_port=port, media_port=media_port or free_port(4),
                keys=keys or {}, auth=auth, service=service, timeout_s=timeout_s, extra=extra,
            )  # fmt: skip
            process = await _start(folder, cmd, port)
            result = await process.wait(timeout_s + 10)
            if keep_dir is not None:
                shutil.copytree(folder, keep_dir, dirs_exist_ok=True, symlinks=True)
        if not (_lost_bind_race(result) and not (local_port and media_port) and attempt < 2):
            return result
    return result


@contextlib.asynccontextmanager
async def sipp_uas(
    scenario: Path | str = "uas",
    *,
    calls: int | None = None,
    transport: str = "u1",
    local_port: int = 0,
    media_port: int = 0,
    keys: dict[str, str] | None = None,
    service: str = "voicebot",
    timeout_s: float = 120.0,
    extra: Sequence[str] = (),
) -> AsyncIterator[SippProcess]:
    """SIPp as a UAS on 127.0.0.1 (``scenario`` a file, or "uas" for the built-in one); yields the
    running :class:`SippProcess` (``.address`` is what to call). On exit SIPp is stopped; read
    ``await proc.stop()`` / ``proc.result()`` for its counts."""
    with tempfile.TemporaryDirectory(prefix="sipp-uas-") as tmp:
        folder = Path(tmp)
        for attempt in range(3):
            port = local_port or free_port()
            cmd = _command(
                scenario, None, folder, calls=calls, rate=None, concurrency=None, transport=transport,
                local_port=port, media_port=media_port or free_port(4), keys=keys or {}, auth=None,
                service=service, timeout_s=timeout_s, extra=extra,
            )  # fmt: skip
            process = await _start(folder, cmd, port)
            try:
                await _wait_listening(process, port, transport)
                break
            except RuntimeError:
                await process.stop()
                if not (_lost_bind_race(process.result()) and attempt < 2):
                    raise
        try:
            yield process
        finally:
            await process.stop()


async def _wait_listening(process: SippProcess, port: int, transport: str, timeout_s: float = 10.0) -> None:
    """Wait until SIPp has bound its SIP port (so a caller never races its start)."""
    table = Path("/proc/net/tcp" if transport.startswith("t") else "/proc/net/udp")
    wanted = f"0100007F:{port:04X}"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        if process.proc.returncode is not None:
            raise RuntimeError(f"SIPp exited at start:\n{process.result().explain()}")
        if any(line.split()[1] == wanted for line in table.read_text().splitlines()[1:]):
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"SIPp did not bind {LOOPBACK}:{port}")


def invites_by_number(messages: str) -> Counter[str]:
    """From a UAS's message trace: the calls (distinct Call-IDs of INVITEs) per called number."""
    calls: dict[str, str] = {}
    for block in messages.split("\n\n"):
        number = re.search(r"^INVITE sip:(\+?\d+)@", block, re.M)
        call_id = re.search(r"^Call-ID:\s*(\S+)", block, re.M | re.I)
        if number and call_id:
            calls[call_id.group(1)] = number.group(1)
    return Counter(calls.values())
