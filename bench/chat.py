"""Chat benchmark: start the server, drive conversations over HTTP, print one JSON object.

    .venv/bin/python bench/chat.py [--conversations 32] [--turns 20] [--url http://127.0.0.1:8080]

Two phases against the same server (no LLM, the demo tenant, a fresh SQLite database):
  * latency: one conversation at a time (closed loop), the reply time a single customer sees;
    gives `p50_ms` and `p95_ms`;
  * throughput: `--conversations` concurrent conversations of `--turns` turns each; gives
    `replies_per_s` and the latency under that load (`loaded_p50_ms`, `loaded_p95_ms`).
Messages are generated varied (random order numbers, dates, phrasings, English and Slovenian)
so the server's embedding cache does not flatter the figures; `unique_messages` says how varied.
The client runs on the same machine and its CPU counts against the server's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent

OPENERS = ["", "hi, ", "hello, ", "good morning, ", "hey - ", "excuse me, ", "živjo, ", "dober dan, "]
EN_TEMPLATES = [
    "where is my order {order}?",
    "what is the status of order {order}",
    "has my order {order} shipped yet?",
    "I'd like to change the delivery address for {order}",
    "what is your returns policy for {item}?",
    "how long do I have to return a {item}?",
    "how much does delivery to {city} cost?",
    "how long does shipping to {city} take?",
    "what are your opening hours on {day}?",
    "can I book a repair appointment for my {item} on {day} at {hour}?",
    "I need to reschedule my appointment to {day}",
    "is my invoice paid? I paid {amount} euros",
    "do you offer a warranty on the {item}?",
    "which payment methods do you accept for a {item}?",
    "thanks, that helps with the {item}",
    "can you recommend a good {item} for {city}?",
    "what's the weather in {city} on {day}?",
]
SL_TEMPLATES = [
    "kje je moje naročilo {order}?",
    "kakšen je status naročila {order}",
    "ali je naročilo {order} že odposlano?",
    "kakšni so pogoji za vračilo za {item_sl}?",
    "koliko stane dostava v {city}?",
    "kdaj ste odprti v {day_sl}?",
    "rad bi rezerviral termin za popravilo v {day_sl} ob {hour}",
    "ali imate garancijo za {item_sl}?",
    "kako lahko plačam {item_sl}?",
]
ITEMS = ["laptop", "phone", "TV", "tablet", "headphones", "camera", "router", "speaker", "monitor", "printer"]
ITEMS_SL = ["prenosnik", "telefon", "televizor", "tablico", "slušalke", "kamero", "usmerjevalnik", "zvočnik"]
CITIES = [
    "Ljubljana",
    "Maribor",
    "Celje",
    "Koper",
    "Kranj",
    "Vienna",
    "Zagreb",
    "Graz",
    "Trieste",
    "Novo mesto",
]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "tomorrow", "next week"]
DAYS_SL = ["ponedeljek", "torek", "sredo", "četrtek", "petek", "soboto"]


def message(rng: random.Random) -> str:
    use_sl = rng.random() < 0.3
    template = rng.choice(SL_TEMPLATES if use_sl else EN_TEMPLATES)
    text = template.format(
        order=f"A{rng.randint(1000, 9999)}",
        item=rng.choice(ITEMS),
        item_sl=rng.choice(ITEMS_SL),
        city=rng.choice(CITIES),
        day=rng.choice(DAYS),
        day_sl=rng.choice(DAYS_SL),
        hour=f"{rng.randint(8, 16)}:{rng.choice(['00', '15', '30', '45'])}",
        amount=rng.randint(10, 900),
    )
    return rng.choice(OPENERS) + text


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


class LeanClient:
    """A minimal HTTP/1.1 keep-alive JSON client (one connection per simulated customer).

    httpx costs about 1.8 ms of CPU per request here; on a 2-core machine that CPU is taken from
    the server being measured, so the load phase uses this instead (about a tenth of that).
    """

    def __init__(self, url: str) -> None:
        parsed = urlsplit(url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: dict[str, object]) -> dict[str, object]:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        payload = json.dumps(body).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n"
        ).encode()
        self._writer.write(head + payload)
        status_line = await self._reader.readline()
        length = 0
        while (line := await self._reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
        data = await self._reader.readexactly(length)
        status = int(status_line.split()[1])
        if status >= 400:
            raise RuntimeError(f"POST {path} -> {status}: {data[:200]!r}")
        result: dict[str, object] = json.loads(data)
        return result

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            await self._writer.wait_closed()


async def conversation(
    url: str, turns: int, rng: random.Random, sent: list[str], latencies: list[float]
) -> None:
    client = LeanClient(url)
    try:
        cid = (await client.post("/v1/conversations", {}))["id"]
        for _ in range(turns):
            text = message(rng)
            sent.append(text)
            start = time.perf_counter()
            await client.post(f"/v1/conversations/{cid}/messages", {"text": text})
            latencies.append((time.perf_counter() - start) * 1000)
    finally:
        await client.close()


async def drive(url: str, conversations: int, turns: int, seed: int) -> dict[str, object]:
    rng = random.Random(seed)
    sent: list[str] = []
    warm: list[float] = []
    await conversation(url, 20, rng, [], warm)  # warm-up: first calls load lazily
    single: list[float] = []
    for _ in range(max(1, 100 // turns)):
        await conversation(url, turns, rng, sent, single)
    loaded: list[float] = []
    c0 = time.process_time()
    start = time.perf_counter()
    await asyncio.gather(
        *(conversation(url, turns, random.Random(rng.random()), sent, loaded) for _ in range(conversations))
    )
    elapsed = time.perf_counter() - start
    client_cpu = time.process_time() - c0
    return {
        "p50_ms": round(statistics.median(single), 2),
        "p95_ms": round(percentile(single, 0.95), 2),
        "replies_per_s": round(len(loaded) / elapsed, 1),
        "loaded_p50_ms": round(statistics.median(loaded), 2),
        "loaded_p95_ms": round(percentile(loaded, 0.95), 2),
        "latency_replies": len(single),
        "load_replies": len(loaded),
        "concurrency": conversations,
        "unique_messages": round(len(set(sent)) / len(sent), 3),
        "client_cpu_ms_per_reply": round(client_cpu / len(loaded) * 1000, 3),
    }


def _wait_ready(url: str) -> None:
    """Ready, and past start-up work: each worker warms its voice TTS cache in the background
    after start; measure the steady state (several answers in a row, so every worker is seen)."""
    settled = 0
    for _ in range(3000):
        try:
            response = httpx.get(url + "/healthz", timeout=5)
            warm = response.json().get("voice", {}).get("tts_cache_warm") is not False
            settled = settled + 1 if response.status_code == 200 and warm else 0
            if settled >= 6:
                return
        except httpx.TransportError:
            settled = 0
        time.sleep(0.1)
    raise SystemExit("the server did not become ready")


def api_token(data_dir: Path, *, role: str = "admin", env_extra: dict[str, str] | None = None) -> str:
    """An API token of a new ``role`` user of the deployment at ``data_dir``, made with the CLI (the
    way an operator would): send it as ``Authorization: Bearer <token>``."""
    env = {**os.environ, "VOICEBOT_DATA_DIR": str(data_dir), **(env_extra or {})}
    env.pop("DATABASE_URL", None)
    if "DATABASE_URL" in (env_extra or {}):
        env["DATABASE_URL"] = (env_extra or {})["DATABASE_URL"]
    exe = str(ROOT / ".venv" / "bin" / "voicebot")
    name = f"bench-{role}-{os.getpid()}"
    subprocess.run([exe, "user", "add", name, "--role", role, "--no-password"], env=env, check=True,
                   capture_output=True)  # fmt: skip
    done = subprocess.run([exe, "user", "token", name, "--name", "bench"], env=env, check=True,
                          capture_output=True, text=True)  # fmt: skip
    return done.stdout.strip()


def bearer() -> dict[str, str]:
    """The staff API's credentials for a benchmark: ``VOICEBOT_API_TOKEN`` (set it when benchmarking
    a running server with --url; a benchmark that starts its own server sets it with api_token)."""
    token = os.environ.get("VOICEBOT_API_TOKEN")
    return {"Authorization": f"Bearer {token}"} if token else {}


def start_server(
    data_dir: Path, workers: int, *, sip_port: int | None = None, env_extra: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], str]:
    """``voicebot serve`` on 127.0.0.1 with a fresh data dir; SIP only when ``sip_port`` is given."""
    env = {
        **os.environ,
        "VOICEBOT_DATA_DIR": str(data_dir),
        "VOICEBOT_LOG_LEVEL": "WARNING",
        **(env_extra or {}),
    }
    env.pop("DATABASE_URL", None)
    exe = ROOT / ".venv" / "bin" / "voicebot"
    sip = ["--sip-port", str(sip_port)] if sip_port is not None else ["--no-sip"]
    proc = subprocess.Popen(
        [str(exe), "serve", "--host", "127.0.0.1", "--port", "0", "--workers", str(workers), *sip],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        found = re.search(r"Uvicorn running on (http://127\.0\.0\.1:\d+)", line)
        if found:
            # keep draining the server's log output: a full pipe would block the server
            threading.Thread(target=proc.stderr.read, daemon=True).start()
            _wait_ready(found.group(1))
            return proc, found.group(1)
    proc.kill()
    raise SystemExit("the server did not start within 300 s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--conversations", type=int, default=32, help="concurrent conversations (load phase)")
    parser.add_argument("--turns", type=int, default=20, help="turns per conversation")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--url", help="use a running server instead of starting one")
    parser.add_argument("--workers", type=int, default=0, help="server worker processes (0: one per core)")
    args = parser.parse_args()
    if args.url:
        result = asyncio.run(drive(args.url, args.conversations, args.turns, args.seed))
    else:
        with tempfile.TemporaryDirectory(prefix="voicebot-bench-") as tmp:
            proc, url = start_server(Path(tmp), args.workers)
            try:
                result = asyncio.run(drive(url, args.conversations, args.turns, args.seed))
            finally:
                proc.terminate()
                proc.wait(timeout=30)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
