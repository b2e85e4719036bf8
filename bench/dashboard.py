"""Dashboard benchmark: 100,000 conversations, the dashboard's API timed on them, and the live feed's
delay; prints one JSON object.

    .venv/bin/python bench/dashboard.py [--conversations 100000] [--rounds 10] [--live 60]
                                        [--database-url postgresql+asyncpg://postgres@127.0.0.1/test]

1. Data: ``--conversations`` over the last 90 days, inserted in bulk with SQLAlchemy Core into a fresh
   database (a SQLite file, or a new PostgreSQL database created next to the one named by
   ``--database-url`` and dropped afterwards), migrated by voicebot itself: chat/voice/e-mail
   50/35/15 %, 16 intents, 4 % never answered, 20 % of the answered handed to a person (reasons as the
   dialogue manager gives them; most taken and closed by an agent), the rest ended by the bot or still
   open, CSAT from a third of the closed ones, repeat contacts from a pool of customers, 2-10 turns
   each, and per voice turn a ``voice.turn_latency`` audit entry as the call pipeline writes. Then
   ANALYZE.
2. ``voicebot serve`` (one worker per core) on that database; a supervisor's API token made with the
   CLI (``voicebot user add`` / ``voicebot user token``).
3. Queries: GET /v1/dashboard for 7 views (24 h by hour, 7 and 30 days by day, 90 days by day and by
   week, 30 days of chat, 90 days of voice), ``--rounds`` times each after one warm-up round, one at a
   time; ``query_p95_ms`` / ``query_p50_ms`` over all of them (the time the client waits for the
   whole JSON), and ``per_view`` medians. ``cold_90d_ms``: the very first request (90 days), which
   computes the daily rollup of every day once.
4. Live: a WebSocket on /v1/live (the console's feed) as the supervisor; ``--live`` chat messages
   sent one at a time through the public chat API (POST /v1/conversations/{id}/messages).
   ``live_update_p95_ms``: from the send to the bot's ``conversation.turn`` event of that
   conversation arriving on the socket; it includes the bot's own reply time (dialogue + storage),
   so ``reply_p95_ms`` (send -> HTTP reply) is given beside it; the difference is the live path
   (bus between the server's worker processes, WebSocket). ``handoff_update_p95_ms``: the same to the
   ``handoff.waiting`` event for messages asking for a person.
The client runs on the same machine (2 cores) and takes CPU from the server being measured.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]  # bench/email.py shadows email

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import AsyncIterator  # noqa: E402
from contextlib import asynccontextmanager  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from typing import Any  # noqa: E402

import httpx  # noqa: E402
import websockets  # noqa: E402
from sqlalchemy import insert, make_url, text  # noqa: E402

ROOT = _HERE.parent
sys.path.insert(0, str(ROOT))

from bench.chat import _wait_ready, api_token, percentile  # noqa: E402
from voicebot.storage import Database, tables  # noqa: E402

CHANNELS = (("chat", 0.50), ("voice", 0.35), ("email", 0.15))
INTENTS = (
    ("order_status", 18), ("shipping_info", 10), ("returns_policy", 9), ("opening_hours", 8),
    ("book_appointment", 7), ("reschedule_appointment", 4), ("cancel_appointment", 3),
    ("confirm_appointment", 3), ("payment_status", 7), ("payment_info", 5), ("change_delivery", 5),
    ("complaint", 4), ("cancel_contract", 2), ("human", 5), ("greeting", 5), ("oos", 5),
)  # fmt: skip
REASONS = (
    ("human_requested", 40), ("low_confidence", 20), ("failed_turns", 12), ("sensitive:complaint", 12),
    ("sensitive:cancel_contract", 6), ("verification_failed", 10),
)  # fmt: skip
FIRST_MS = {"chat": 25.0, "voice": 40.0, "email": 60.0}  # the bot's reply time (median)
BOT_HANDLE_MS = {"chat": 240_000.0, "voice": 150_000.0, "email": 20_000.0}
CSAT = {True: (5, 7, 13, 35, 40), False: (12, 13, 20, 30, 25)}  # % of 1..5: deflected / handed
SPAN = timedelta(days=90)
CHUNK = 5000


def _pick(rng: random.Random, weighted: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([w[0] for w in weighted], weights=[w[1] for w in weighted])[0]


def generate(n: int, now: datetime, seed: int) -> dict[str, list[dict[str, Any]]]:
    """The rows of ``n`` conversations with their turns, handoffs and voice latency entries."""
    rng = random.Random(seed)
    start = now - SPAN
    conversations: list[dict[str, Any]] = []
    customers = max(1, n // 5)
    for _ in range(n):
        created = start + timedelta(seconds=rng.random() * (SPAN.total_seconds() - 120))
        channel = _pick(rng, CHANNELS)
        key = None
        if rng.random() < 0.8:
            key = f"customer:C{rng.randrange(customers)}" if rng.random() < 0.5 else (
                f"caller:+3864{rng.randrange(customers):07d}" if channel == "voice"
                else f"email:c{rng.randrange(customers)}@example.com"
            )  # fmt: skip
        conversations.append({"id": uuid.uuid4().hex, "channel": channel, "created_at": created,
                              "contact_key": key})  # fmt: skip
    conversations.sort(key=lambda c: c["created_at"])
    last_seen: dict[str, dict[str, Any]] = {}
    for conv in conversations:  # came_back: the same contact again within 7 days
        key = conv["contact_key"]
        if key is not None:
            before = last_seen.get(key)
            if before is not None and conv["created_at"] - before["created_at"] <= timedelta(days=7):
                before["came_back"] = True
            last_seen[key] = conv

    turns: list[dict[str, Any]] = []
    handoffs: list[dict[str, Any]] = []
    audit: list[dict[str, Any]] = []
    for conv in conversations:
        channel, created = conv["channel"], conv["created_at"]
        answered = rng.random() < 0.96
        intent = _pick(rng, tuple((k, float(w)) for k, w in INTENTS)) if answered else None
        turn_count = 2 * rng.randint(1, 5) if answered else 1
        handle = min(rng.lognormvariate(math.log(BOT_HANDLE_MS[channel]), 0.6), 3_000_000.0)
        status, without_human, reason, ended_at, csat = "active", None, None, None, None
        r = rng.random()
        if answered and (r < 0.20 or intent == "human"):
            without_human, reason = (
                False,
                "human_requested"
                if intent == "human"
                else _pick(rng, tuple((k, float(w)) for k, w in REASONS)),
            )
            at = created + timedelta(milliseconds=handle)
            fate = rng.random()
            taken = at + timedelta(seconds=rng.lognormvariate(math.log(90), 0.8)) if fate < 0.85 else None
            closed = taken + timedelta(seconds=rng.lognormvariate(math.log(400), 0.7)) if (
                taken is not None and fate < 0.75) else None  # fmt: skip
            status = "resolved" if closed is not None else "handoff"
            handoffs.append({
                "id": uuid.uuid4().hex, "conversation_id": conv["id"], "tenant_id": "demo",
                "channel": channel, "reason": reason, "summary": "", "context": {},
                "status": "closed" if closed else ("taken" if taken else "waiting"),
                "created_at": at, "taken_at": taken, "taken_by": "agent1" if taken else None,
                "closed_at": closed,
            })  # fmt: skip
        elif answered and r < 0.80:
            status, without_human = "ended", True
            ended_at = created + timedelta(milliseconds=handle)
        if status in ("ended", "resolved") and rng.random() < 0.35:
            csat = rng.choices(range(1, 6), weights=CSAT[bool(without_human)])[0]
        first = rng.lognormvariate(math.log(FIRST_MS[channel]), 0.5) if answered else None
        conv.update(
            tenant_id="demo", status=status, language="en", customer_id=None, caller=None, email=None,
            updated_at=created + timedelta(milliseconds=handle), first_response_ms=first, csat=csat,
            resolved_without_human=without_human, state={}, turn_count=turn_count, intent=intent,
            handoff_reason=reason, ended_at=ended_at, handle_ms=handle if answered else None,
            came_back=conv.get("came_back"),
        )  # fmt: skip
        for i in range(turn_count):
            bot = i % 2 == 1
            at = created + timedelta(milliseconds=handle * i / max(1, turn_count - 1))
            turns.append({
                "conversation_id": conv["id"], "role": "bot" if bot else "customer",
                "text": "Your order is on its way." if bot else "Where is my order?",
                "action": "answer" if bot else None, "intent": intent if bot else None,
                "confidence": 0.9 if bot else None, "citations": [], "reason": None,
                "latency_ms": first if bot else None, "created_at": at,
            })  # fmt: skip
            if bot and channel == "voice":
                v2v = rng.lognormvariate(math.log(950.0), 0.25)
                audit.append({
                    "at": at, "tenant_id": "demo", "actor": "bot", "action": "voice.turn_latency",
                    "customer_id": None, "conversation_id": conv["id"],
                    "details": {"v2v_ms": round(v2v, 1), "stt_ms": round(v2v * 0.45, 1)},
                })  # fmt: skip
    return {"conversations": conversations, "turns": turns, "handoffs": handoffs, "audit_log": audit}


async def load(url: str, rows: dict[str, list[dict[str, Any]]]) -> float:
    """Migrate the database and insert every row (Core, executemany in chunks); seconds taken."""
    started = time.perf_counter()
    db = Database(url)
    await db.start()
    try:
        async with db.engine.begin() as conn:
            for name in ("conversations", "turns", "handoffs", "audit_log"):
                table = getattr(tables, name)
                batch = rows[name]
                for i in range(0, len(batch), CHUNK):
                    await conn.execute(insert(table), batch[i : i + CHUNK])
        async with db.engine.connect() as conn:
            await conn.execute(text("ANALYZE"))
            await conn.commit()
    finally:
        await db.stop()
    return time.perf_counter() - started


@asynccontextmanager
async def scratch_database(url: str | None, folder: Path) -> AsyncIterator[str]:
    """A SQLite file in ``folder``, or a new PostgreSQL database beside ``url`` (dropped after)."""
    if url is None or url.startswith("sqlite"):
        yield url or f"sqlite+aiosqlite:///{folder / 'voicebot.db'}"
        return
    import asyncpg

    base = make_url(url)
    name = f"voicebot_dashboard_{os.getpid()}"
    admin = base.set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        try:
            yield base.set(database=name).render_as_string(hide_password=False)
        finally:
            await conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def serve(data_dir: Path, database_url: str, workers: int) -> tuple[subprocess.Popen[str], str]:
    """``voicebot serve`` on 127.0.0.1 (port 0) on ``database_url``; (process, base URL)."""
    env = {**os.environ, "VOICEBOT_DATA_DIR": str(data_dir), "VOICEBOT_LOG_LEVEL": "WARNING",
           "DATABASE_URL": database_url}  # fmt: skip
    exe = ROOT / ".venv" / "bin" / "voicebot"
    command = [str(exe), "serve", "--host", "127.0.0.1", "--port", "0", "--workers", str(workers), "--no-sip"]
    proc = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    assert proc.stderr is not None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        found = re.search(r"Uvicorn running on (http://127\.0\.0\.1:\d+)", line)
        if found:
            threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep the pipe drained
            _wait_ready(found.group(1))
            return proc, found.group(1)
    proc.kill()
    raise SystemExit("the server did not start within 300 s")


def views(now: datetime) -> dict[str, dict[str, str]]:
    def ago(days: float) -> str:
        return (now - timedelta(days=days)).isoformat()

    return {
        "24h_hourly": {"since": ago(1)},
        "7d_daily": {},
        "30d_daily": {"since": ago(30)},
        "90d_daily": {"since": ago(89.9), "bucket": "day"},
        "90d_weekly": {"since": ago(90), "bucket": "week"},
        "30d_chat": {"since": ago(30), "channel": "chat"},
        "90d_voice": {"since": ago(90), "channel": "voice"},
    }


def time_queries(url: str, headers: dict[str, str], rounds: int) -> dict[str, Any]:
    timings: dict[str, list[float]] = {}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        started = time.perf_counter()  # the first 90-day view computes the daily rollup of every day
        client.get("/v1/dashboard", params=views(datetime.now(UTC))["90d_daily"]).raise_for_status()
        cold = (time.perf_counter() - started) * 1000
        for round_ in range(rounds + 1):
            for name, params in views(datetime.now(UTC)).items():
                started = time.perf_counter()
                response = client.get("/v1/dashboard", params=params)
                elapsed = (time.perf_counter() - started) * 1000
                response.raise_for_status()
                if round_ > 0:  # round 0 warms the server's caches and connections
                    timings.setdefault(name, []).append(elapsed)
        overall = client.get("/v1/dashboard", params=views(datetime.now(UTC))["90d_daily"]).json()
    everything = [t for values in timings.values() for t in values]
    return {
        "query_p50_ms": round(statistics.median(everything), 1),
        "query_p95_ms": round(percentile(everything, 0.95), 1),
        "queries": len(everything),
        "cold_90d_ms": round(cold, 1),
        "per_view_p50_ms": {k: round(statistics.median(v), 1) for k, v in timings.items()},
        "conversations_in_90d_view": overall["conversations"],
    }


async def time_live(url: str, token: str, messages: int, handoffs: int) -> dict[str, Any]:
    ws_url = url.replace("http://", "ws://") + "/v1/live?topics=conversation.,handoff."
    arrived: dict[tuple[str, str], float] = {}
    asked: set[str] = set()  # conversations whose customer turn came through
    waiters: dict[tuple[str, str], asyncio.Event] = {}

    def expect(key: tuple[str, str]) -> asyncio.Event:
        return waiters.setdefault(key, asyncio.Event())

    async with websockets.connect(ws_url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        ready = json.loads(await ws.recv())
        assert ready.get("type") == "ready", ready

        async def listen() -> None:
            async for raw in ws:
                at = time.perf_counter()
                frame = json.loads(raw)
                if frame.get("type") != "event":
                    continue
                data, topic = frame["data"], frame["topic"]
                if topic == "conversation.turn" and data.get("role") == "customer":
                    asked.add(data["conversation_id"])
                    continue
                if topic == "conversation.turn" and data.get("role") == "bot":
                    if data["conversation_id"] not in asked:
                        continue  # the greeting, published when the conversation started
                    key = (data["conversation_id"], "turn")
                elif topic == "handoff.waiting":
                    key = (data["conversation_id"], "handoff")
                else:
                    continue
                arrived.setdefault(key, at)
                expect(key).set()

        listener = asyncio.create_task(listen())
        turn_ms: list[float] = []
        reply_ms: list[float] = []
        handoff_ms: list[float] = []
        try:
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                for i in range(messages + handoffs):
                    cid = (await client.post("/v1/conversations", json={})).json()["id"]
                    asking = i >= messages
                    text_ = "I want to talk to a human" if asking else f"where is my order A{1000 + i}?"
                    key = (cid, "handoff" if asking else "turn")
                    event = expect(key)
                    sent = time.perf_counter()
                    response = await client.post(f"/v1/conversations/{cid}/messages", json={"text": text_})
                    replied = time.perf_counter()
                    response.raise_for_status()
                    await asyncio.wait_for(event.wait(), 10)
                    (handoff_ms if asking else turn_ms).append((arrived[key] - sent) * 1000)
                    if not asking:
                        reply_ms.append((replied - sent) * 1000)
        finally:
            listener.cancel()
    return {
        "live_update_p50_ms": round(statistics.median(turn_ms), 1),
        "live_update_p95_ms": round(percentile(turn_ms, 0.95), 1),
        "reply_p95_ms": round(percentile(reply_ms, 0.95), 1),
        "handoff_update_p95_ms": round(percentile(handoff_ms, 0.95), 1) if handoff_ms else None,
        "live_messages": len(turn_ms),
        "live_handoffs": len(handoff_ms),
    }


async def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    now = datetime.now(UTC)
    rows = generate(args.conversations, now, args.seed)
    async with scratch_database(args.database_url, tmp) as url:
        load_s = await load(url, rows)
        env = {"DATABASE_URL": url}
        token = await asyncio.to_thread(api_token, tmp, role="supervisor", env_extra=env)
        proc, base = await asyncio.to_thread(serve, tmp, url, args.workers)
        try:
            queries = await asyncio.to_thread(
                time_queries, base, {"Authorization": f"Bearer {token}"}, args.rounds
            )
            live = await time_live(base, token, args.live, args.live_handoffs)
        finally:
            proc.terminate()
            await asyncio.to_thread(proc.wait, 30)
    return {
        "database": make_url(url).get_backend_name(),
        "conversations": args.conversations,
        "turns": len(rows["turns"]),
        "handoffs": len(rows["handoffs"]),
        "voice_latency_entries": len(rows["audit_log"]),
        "load_s": round(load_s, 1),
        **queries,
        **live,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=10, help="times each dashboard view is asked")
    parser.add_argument("--live", type=int, default=60, help="chat messages timed on the live feed")
    parser.add_argument("--live-handoffs", type=int, default=20, help="messages asking for a person")
    parser.add_argument("--database-url", help="PostgreSQL server to use (a scratch database is made)")
    parser.add_argument("--workers", type=int, default=0, help="server worker processes (0: one per core)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="voicebot-bench-dashboard-") as tmp:
        result = asyncio.run(run(args, Path(tmp)))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
