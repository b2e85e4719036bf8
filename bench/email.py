"""E-mail bot benchmark: varied messages delivered to a real IMAP mailbox, replies caught by an SMTP sink.

    .venv/bin/python bench/email.py [--messages 500] [--rate 10] [--burst 200] [--eml-dir DIR]

Starts a private Dovecot (Debian dovecot-imapd, 127.0.0.1 only, see tests/peers/dovecot.py), an aiosmtpd
sink, and ``voicebot serve`` (one worker) on a copy of the demo tenant with the e-mail bot reading that
mailbox with IMAP IDLE and sending through the sink. Then:

1. **paced**: ``--messages`` messages are APPENDed at ``--rate`` per second: questions answered from
   the knowledge base, customers asking about their orders (with and without verification),
   requests for a person, several questions in one mail, HTML-only mail, attachments, Slovenian,
   long mail, forwards, and noise that must never be answered (auto-replies, bounces, mailing lists,
   no-reply senders); ``--eml-dir`` adds real .eml files (each sent with a fresh Message-ID).
   Latency per message: APPEND done -> the reply arrives at the sink (``replied``), or -> the server
   stored its decision (draft or ignore; ``done_at``). Every message is then checked: ``lost`` (no
   decision), ``duplicates`` (more than one stored copy or more than one reply).
2. **loop**: an auto-responder that ignores RFC 3834 (no Auto-Submitted, no Precedence) answers
   every reply it gets, quoting a question; ``loop.replies`` counts the bot's answers to it (bounded
   by the tenant's rate limit, 10 an hour; later ones wait as drafts), ``loop.ended`` says the
   exchange stopped by itself.
3. **burst**: ``--burst`` more messages appended back to back; ``messages_per_s`` is how many the
   server decided per second draining that queue.

Prints one JSON object.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is bench/email.py: its folder, first on sys.path when run as a script, would shadow the
# standard library's ``email`` package for every module.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import email  # noqa: E402
import email.policy  # noqa: E402
import email.utils  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Any  # noqa: E402

import httpx  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.chat import api_token, bearer, percentile, start_server  # noqa: E402
from tests.conftest import demo_tenant_with  # noqa: E402
from tests.peers.dovecot import Dovecot  # noqa: E402
from tests.peers.smtp_sink import SinkMessage, SmtpSink  # noqa: E402

BOT = "support@demo-shop.example"
PASSWORD_ENV = "VOICEBOT_BENCH_IMAP_PASSWORD"
AUTORESPONDER = "info@partner.example"
GRACE_S = 60.0  # after the last delivery, how long every decision may still take to show up

KB_QUESTIONS = [
    "What is your returns policy?",
    "What are your opening hours?",
    "How much does shipping cost?",
    "Which payment methods do you accept?",
    "Do you ship abroad?",
    "How long does delivery take?",
    "Can I return an item I bought in the shop?",
    "Do you have a warranty on laptops?",
    "How can I change my delivery address?",
    "Can I pay by invoice?",
]
SL_QUESTIONS = ["Kakšen je vaš delovni čas?", "Koliko stane dostava?", "Ali lahko vrnem izdelek?"]
CUSTOMERS = [
    ("ana.novak@example.com", "Ana Novak", "A1001", "1000"),
    ("john.smith@example.com", "John Smith", "A1002", None),
    ("marko.horvat@example.com", "Marko Horvat", None, None),
    ("emma.brown@example.com", "Emma Brown", None, None),
]
NOISE_KINDS = ["auto_reply", "bounce", "list", "noreply"]


@dataclass
class Sent:
    msgid: str
    kind: str
    delivered: float = 0.0
    done: float | None = None
    outcome: str | None = None


@dataclass
class State:
    sent: dict[str, Sent] = field(default_factory=dict)
    replies: dict[str, list[float]] = field(default_factory=dict)  # In-Reply-To -> arrival times


def _headers(sender: str, name: str, subject: str, msgid: str, extra: dict[str, str] | None = None) -> str:
    lines = [
        f"From: {email.utils.formataddr((name, sender))}",
        f"To: {BOT}",
        f"Subject: {subject}",
        f"Message-ID: <{msgid}>",
        f"Date: {email.utils.formatdate(localtime=True)}",
        "MIME-Version: 1.0",
    ]
    lines += [f"{k}: {v}" for k, v in (extra or {}).items()]
    return "\r\n".join(lines) + "\r\n"


def _plain(head: str, body: str) -> bytes:
    return (
        head
        + "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + body.replace("\n", "\r\n")
    ).encode()


def make_message(rng: random.Random, msgid: str, eml_files: list[bytes]) -> tuple[str, bytes]:
    """One message of a random kind: (kind, raw bytes)."""
    roll = rng.random()
    sender, name, order, postcode = rng.choice(CUSTOMERS)
    stranger = f"customer{rng.randrange(100000)}@mail.example"
    if eml_files and roll < 0.08:
        raw = rng.choice(eml_files)
        head, _, rest = raw.partition(b"\r\n\r\n") if b"\r\n\r\n" in raw else raw.partition(b"\n\n")
        kept = b"\r\n".join(h for h in head.splitlines() if not h.lower().startswith(b"message-id:"))
        return "eml", kept + f"\r\nMessage-ID: <{msgid}>\r\n\r\n".encode() + rest
    if roll < 0.40:
        question = rng.choice(KB_QUESTIONS)
        return "kb", _plain(
            _headers(stranger, "", "Question", msgid), f"Hello,\n\n{question}\n\nThanks,\nAlex"
        )
    if roll < 0.50:
        q1, q2 = rng.sample(KB_QUESTIONS, 2)
        body = f"Hi,\n\nI have two questions. {q1}\n{q2}\n\nBest regards,\nSam"
        return "multi", _plain(_headers(stranger, "Sam", "Two questions", msgid), body)
    if roll < 0.60 and order:
        verify = f" My postcode is {postcode}." if postcode else ""
        body = f"Dear support,\n\nwhere is my order {order}?{verify}\n\nKind regards,\n{name}"
        return "order", _plain(_headers(sender, name, f"Order {order}", msgid), body)
    if roll < 0.66:
        body = "Hello,\n\nI want to talk to a person about my contract, please call me.\n\nThanks"
        return "human", _plain(_headers(stranger, "", "Please call me", msgid), body)
    if roll < 0.72:
        question = rng.choice(SL_QUESTIONS)
        return "sl", _plain(
            _headers(stranger, "", "Vprašanje", msgid), f"Pozdravljeni,\n\n{question}\n\nLP, Maja"
        )
    if roll < 0.78:
        html = f"<html><body><p>Hello,</p><p>{rng.choice(KB_QUESTIONS)}</p><p>Regards</p></body></html>"
        head = _headers(stranger, "", "Question", msgid)
        return "html", (head + "Content-Type: text/html; charset=utf-8\r\n\r\n" + html).encode()
    if roll < 0.82:
        boundary = f"b{rng.randrange(10**9)}"
        head = _headers(stranger, "", "Damaged item", msgid)
        body = (
            f"Content-Type: multipart/mixed; boundary={boundary}\r\n\r\n--{boundary}\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\nThe parcel arrived damaged, photo attached. "
            f"What is your returns policy?\r\n--{boundary}\r\nContent-Type: image/jpeg; name=photo.jpg\r\n"
            "Content-Disposition: attachment; filename=photo.jpg\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            + "/9j/4AAQSkZJRgABAQ" * 50
            + f"\r\n--{boundary}--\r\n"
        )
        return "attachment", (head + body).encode()
    if roll < 0.85:
        filler = " ".join(rng.choice(["order", "parcel", "week", "delivery", "shop"]) for _ in range(600))
        body = f"Hello,\n\n{filler}.\n\n{rng.choice(KB_QUESTIONS)}\n\nThanks"
        return "long", _plain(_headers(stranger, "", "Long story", msgid), body)
    if roll < 0.88:
        body = (
            f"Hi,\n\nsee below. {rng.choice(KB_QUESTIONS)}\n\n---------- Forwarded message ---------\n"
            "From: Shop <shop@example.com>\nSubject: Your order\n\nYour order has shipped.\n"
        )
        return "forward", _plain(_headers(stranger, "", "Fwd: Your order", msgid), body)
    kind = rng.choice(NOISE_KINDS)
    if kind == "auto_reply":
        head = _headers(stranger, "", "Out of office", msgid, {"Auto-Submitted": "auto-replied"})
        return "noise", _plain(head, "I am out of the office until Monday.")
    if kind == "bounce":
        head = _headers(
            "MAILER-DAEMON@mail.example",
            "Mail Delivery System",
            "Undelivered Mail Returned to Sender",
            msgid,
            {"Return-Path": "<>", "Auto-Submitted": "auto-generated"},
        )
        return "noise", _plain(head, "This is the mail system. Your message could not be delivered.")
    if kind == "list":
        head = _headers(
            "news@lists.example",
            "News",
            "Weekly digest",
            msgid,
            {"List-Id": "<news.lists.example>", "Precedence": "list"},
        )
        return "noise", _plain(head, "What is your returns policy? This week's news ...")
    head = _headers("no-reply@service.example", "Service", "Your receipt", msgid)
    return "noise", _plain(head, "Thank you for your purchase. What is your returns policy?")


async def deliver_all(client: Any, state: State, raws: list[tuple[str, str, bytes]], rate: float) -> None:
    start = time.monotonic()
    for i, (msgid, kind, raw) in enumerate(raws):
        if rate > 0:
            await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
        result = await client.append(raw, mailbox="INBOX")
        if result.result != "OK":
            raise SystemExit(f"APPEND failed: {result}")
        state.sent[msgid] = Sent(msgid, kind, delivered=time.time())


def on_reply(state: State, message: SinkMessage) -> None:
    parsed = email.message_from_bytes(message.data, policy=email.policy.default)
    key = str(parsed.get("In-Reply-To", "")).strip().strip("<>")
    state.replies.setdefault(key, []).append(time.time())


async def decisions(http: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    messages = (await http.get("/v1/email/messages", params={"direction": "in", "limit": 1000})).json()[
        "messages"
    ]
    for m in messages:
        key = (m["message_id"] or "").strip("<>")
        if key in found:
            found[key]["copies"] += 1
        else:
            found[key] = {**m, "copies": 1}
    return found


async def settle(http: httpx.AsyncClient, state: State, ids: list[str]) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + GRACE_S
    while True:
        found = await decisions(http)
        decided = [
            i for i in ids if found.get(i, {}).get("status") in ("replied", "drafted", "ignored", "failed")
        ]
        replied_waiting = [i for i in decided if found[i]["status"] == "replied" and i not in state.replies]
        if (len(decided) == len(ids) and not replied_waiting) or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.25)


def _epoch(iso: str | None) -> float | None:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp() if iso else None


async def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    eml_files = [p.read_bytes() for p in sorted(Path(args.eml_dir).glob("*.eml"))] if args.eml_dir else []
    work = Path(tempfile.mkdtemp(prefix="voicebot-email-bench-"))
    state = State()
    async with Dovecot(work) as imap, SmtpSink() as sink:
        sink_received = sink._received

        def received(message: SinkMessage) -> None:
            sink_received(message)
            on_reply(state, message)

        sink._received = received  # type: ignore[method-assign]
        tenant = demo_tenant_with(
            work,
            email={
                "enabled": True,
                "address": BOT,
                "imap": [
                    {
                        "host": imap.host,
                        "port": imap.port,
                        "security": "none",
                        "username": imap.user,
                        "password_env": PASSWORD_ENV,
                    }
                ],
                "smtp": {"host": sink.host, "port": sink.port, "security": "none"},
            },
        )
        env_extra = {"VOICEBOT_TENANT_CONFIG": str(tenant), PASSWORD_ENV: imap.password}
        proc, url = start_server(work / "data", 1, env_extra=env_extra)
        os.environ["VOICEBOT_API_TOKEN"] = api_token(work / "data", env_extra=env_extra)
        try:
            async with httpx.AsyncClient(base_url=url, timeout=30, headers=bearer()) as http:
                deadline = time.monotonic() + 60
                while not (await http.get("/v1/email/status")).json()["mailboxes"][0]["connected"]:
                    if time.monotonic() > deadline:
                        raise SystemExit("the server did not open the mailbox")
                    await asyncio.sleep(0.2)
                client = await imap.connect()
                paced = [
                    (f"bench-{i}@bench.example", *make_message(rng, f"bench-{i}@bench.example", eml_files))
                    for i in range(args.messages)
                ]
                await deliver_all(client, state, paced, args.rate)
                paced_ids = [m[0] for m in paced]
                found = await settle(http, state, paced_ids)
                result = summarise(state, found, paced_ids)
                result["rate"] = args.rate
                result["loop"] = await autoresponder_loop(client, http, state)
                if args.burst:
                    burst = [
                        (f"burst-{i}@bench.example", *make_message(rng, f"burst-{i}@bench.example", []))
                        for i in range(args.burst)
                    ]
                    await deliver_all(client, state, burst, 0)
                    burst_ids = [m[0] for m in burst]
                    found = await settle(http, state, burst_ids)
                    burst_summary = summarise(state, found, burst_ids)
                    done = [
                        _epoch(found[i]["done_at"]) for i in burst_ids if i in found and found[i]["done_at"]
                    ]
                    first = min(state.sent[i].delivered for i in burst_ids)
                    span = (max(d for d in done if d is not None) - first) if done else float("nan")
                    result["burst"] = {
                        "messages": args.burst,
                        "messages_per_s": round(len(done) / span, 1) if done and span > 0 else None,
                        "p50_s": burst_summary["p50_s"],
                        "p95_s": burst_summary["p95_s"],
                        "lost": burst_summary["lost"],
                        "duplicates": burst_summary["duplicates"],
                    }
                    result["messages_per_s"] = result["burst"]["messages_per_s"]
                await client.logout()
                result["status"] = (await http.get("/v1/email/status")).json()["messages"]
        finally:
            proc.terminate()
            await asyncio.to_thread(proc.wait, 60)  # the loop keeps serving the sink meanwhile
    return result


def summarise(state: State, found: dict[str, dict[str, Any]], ids: list[str]) -> dict[str, Any]:
    latencies: list[float] = []
    by_outcome: dict[str, list[float]] = {}
    outcomes: dict[str, int] = {}
    kinds: dict[str, dict[str, int]] = {}
    lost = duplicates = 0
    for msgid in ids:
        sent = state.sent[msgid]
        row = found.get(msgid)
        status = row["status"] if row else "lost"
        outcomes[status] = outcomes.get(status, 0) + 1
        kinds.setdefault(sent.kind, {}).setdefault(status, 0)
        kinds[sent.kind][status] += 1
        replies = state.replies.get(msgid, [])
        if row is None or status not in ("replied", "drafted", "ignored", "failed"):
            lost += 1
            continue
        if row["copies"] > 1 or len(replies) > 1 or (replies and status != "replied"):
            duplicates += 1
        if status == "replied":
            if not replies:
                lost += 1  # decided to reply, but the reply never arrived
                continue
            end = replies[0]
        else:
            end = _epoch(row["done_at"]) or sent.delivered
        latency = end - sent.delivered
        latencies.append(latency)
        by_outcome.setdefault(status, []).append(latency)
    return {
        "messages": len(ids),
        "p50_s": round(percentile(latencies, 0.50), 3) if latencies else None,
        "p95_s": round(percentile(latencies, 0.95), 3) if latencies else None,
        "max_s": round(max(latencies), 3) if latencies else None,
        "lost": lost,
        "duplicates": duplicates,
        "outcomes": outcomes,
        "p95_s_by_outcome": {k: round(percentile(v, 0.95), 3) for k, v in sorted(by_outcome.items())},
        "kinds": kinds,
    }


async def autoresponder_loop(client: Any, http: httpx.AsyncClient, state: State) -> dict[str, Any]:
    """A robot that answers every mail without RFC 3834 headers: the bot must stop answering it."""
    first = "loop-0@partner.example"
    raw = _plain(
        _headers(AUTORESPONDER, "Helpdesk", "Question", first), "Hello, what is your returns policy?"
    )
    await client.append(raw, mailbox="INBOX")
    state.sent[first] = Sent(first, "loop", delivered=time.time())
    answered: set[str] = set()
    robot_mails = 1
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < 5.0 and robot_mails < 100:
        new = [k for k in state.replies if k.endswith("@partner.example") and k not in answered]
        for key in new:
            answered.add(key)
            msgid = f"loop-{robot_mails}@partner.example"
            # it quotes the question back, so the bot has something to answer each time
            body = "Thank you, this is an automatic answer. You asked: what is your returns policy?"
            await client.append(
                _plain(
                    _headers(AUTORESPONDER, "Helpdesk", "Re: Question", msgid, {"In-Reply-To": f"<{key}>"}),
                    body,
                ),
                mailbox="INBOX",
            )
            robot_mails += 1
            quiet_since = time.monotonic()
        await asyncio.sleep(0.1)
    replies = sum(len(v) for k, v in state.replies.items() if k.endswith("@partner.example"))
    return {"robot_mails": robot_mails, "replies": replies, "ended": robot_mails < 100}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=500, help="messages in the paced phase")
    parser.add_argument("--rate", type=float, default=10.0, help="messages appended per second (0: at once)")
    parser.add_argument("--burst", type=int, default=200, help="messages appended back to back afterwards")
    parser.add_argument("--eml-dir", help="a folder of .eml files to mix in (about 8 %% of messages)")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    if os.geteuid() != 0 and not os.access("/usr/sbin/dovecot", os.X_OK):
        raise SystemExit("needs Debian's dovecot-imapd: scripts/setup --test")
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
