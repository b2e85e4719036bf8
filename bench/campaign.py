"""Outbound campaign benchmark: a 1,000-contact campaign dialled over SIP against SIPp callees.

    .venv/bin/python bench/campaign.py [--contacts 1000] [--rate 5] [--lines 30] [--dnc 20]
                                       [--outside 50] [--seed 7]

Starts SIPp as the called parties (bench/sipp/campaign_callees.xml: the behaviour follows the last
digit of the number — 0-3 a person answers, says "Hello?" and hangs up; 4-5 busy (486); 6-7 rings
until cancelled; 8 an answering machine with a beep; 9 declines (603)), and ``voicebot serve`` with
real speech models and SIP, its outbound trunk pointing at SIPp. Over the API it creates an
appointment-confirmation campaign (calling window 09:00-21:00 every day, ``--lines`` concurrent
calls, ``--rate`` calls per second, two attempts, short retry delays, 4 s ring timeout) whose
contacts fall due one after another at ``--due-rate`` (``call_at``; with the retries of busy,
unanswered and voicemail calls the calls wanted stay under the campaign's rate), so a start later
than the due time is the engine's doing. ``--outside`` contacts live in a time zone where it is night
now (their window is closed: they must not be called), ``--dnc`` numbers are put on the
do-not-call list before the start. The run ends when every contact whose window is open has ended.

Prints one JSON object:
  calls_per_s     dialled attempts per second between the first and the last start
  max_concurrent  most calls up at once (from the attempts' start and end times)
  lines           the campaign's limit (max_concurrent must not exceed it)
  outcomes        contacts per final outcome; attempts per outcome under attempt_outcomes
  late_p95_s      95th percentile of (start - due) over dialled attempts, seconds (due: the contact's
                  due time, or the campaign's start when that came later)
  outside_window  attempts started outside the contact's calling window
  dnc_called      INVITEs SIPp received for numbers on the do-not-call list
  duplicates      INVITEs (distinct Call-IDs) beyond the attempts recorded as dialled, per number
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/ holds email.py: first on sys.path when this runs as a script, it would shadow the standard
# library's ``email`` package
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from typing import Any  # noqa: E402

import httpx  # noqa: E402
import yaml  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.chat import api_token, bearer, percentile, start_server  # noqa: E402
from tests.conftest import demo_tenant_with  # noqa: E402
from tests.peers.sipp import free_port, invites_by_number, sipp_uas  # noqa: E402
from voicebot.outbound.campaign_config import CampaignDefinition, in_calling_window  # noqa: E402

CALLEES = ROOT / "bench" / "sipp" / "campaign_callees.xml"
WINDOW = {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "09:00", "end": "21:00"}


def zone_at_local_hour(now: datetime, hour: int) -> str:
    """An Etc/GMT zone whose local time now is about ``hour`` o'clock."""
    offset = (hour - now.hour + 12) % 24 - 12  # -12..+11
    return "Etc/UTC" if offset == 0 else f"Etc/GMT{-offset:+d}"  # Etc/GMT-2 is UTC+2


def campaign_yaml(rate: float, lines: int) -> str:
    data = yaml.safe_load((ROOT / "campaigns" / "appointment-confirmation.yaml").read_text(encoding="utf-8"))
    data.update(
        {
            "calling_window": WINDOW,
            "max_attempts": 2,
            "retry_delay": {"busy": "5s", "no_answer": "5s", "voicemail": "5s", "failed": "5s"},
            "max_concurrent_calls": lines,
            "calls_per_second": rate,
            "ring_timeout": "4s",
        }
    )
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def contacts_csv(
    count: int, outside: int, rate: float, start: datetime, rng: random.Random
) -> tuple[str, list[str]]:
    now = datetime.now(UTC)
    inside_zone, outside_zone = zone_at_local_hour(now, 14), zone_at_local_hour(now, 2)
    numbers = rng.sample(range(1_000_000), count)
    rows, phones = [], []
    for i, n in enumerate(numbers):
        phone = f"+38640{n:06d}"
        zone = outside_zone if i < outside else inside_zone
        due = start + timedelta(seconds=(i - outside) / rate if i >= outside else 0)
        rows.append(
            f"{phone},Caller {i},{zone},{due.isoformat()},1 December,10:00,Ljubljana,Tue 9:00,Wed 14:00"
        )
        phones.append(phone)
    header = "phone,name,timezone,call_at,appointment_date,appointment_time,location,slot_1,slot_2\n"
    return header + "\n".join(rows) + "\n", phones


def max_overlap(intervals: list[tuple[datetime, datetime]]) -> int:
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    live = peak = 0
    for _, step in events:
        live += step
        peak = max(peak, live)
    return peak


async def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    async with sipp_uas(CALLEES, timeout_s=36000) as callees:
        tenant = demo_tenant_with(
            work,
            voice={
                **_demo_voice(),
                "max_calls": args.lines + 10,
                "sip": {"outbound": {"uri": f"sip:{{number}}@{callees.address}"}},
            },
        )
        env_extra = {"VOICEBOT_TENANT_CONFIG": str(tenant)}
        proc, url = start_server(work / "data", 1, sip_port=free_port(), env_extra=env_extra)
        os.environ["VOICEBOT_API_TOKEN"] = api_token(work / "data", env_extra=env_extra)
        try:
            async with httpx.AsyncClient(base_url=url, timeout=60, headers=bearer()) as http:
                placeholder = datetime.now(UTC)
                _, phones = contacts_csv(
                    args.contacts, args.outside, args.due_rate, placeholder, random.Random(args.seed)
                )
                dnc = random.Random(args.seed + 1).sample(phones[args.outside :], args.dnc)
                for phone in dnc:  # before the campaign exists: the list is global
                    subprocess.run(
                        [str(ROOT / ".venv" / "bin" / "voicebot"), "campaign", "dnc", "add", phone],
                        env={
                            **os.environ,
                            "VOICEBOT_DATA_DIR": str(work / "data"),
                            "VOICEBOT_TENANT_CONFIG": str(tenant),
                        },
                        check=True,
                        capture_output=True,
                    )
                start = datetime.now(UTC) + timedelta(seconds=5)
                csv, _ = contacts_csv(
                    args.contacts, args.outside, args.due_rate, start, random.Random(args.seed)
                )
                created = (
                    await http.post(
                        "/v1/campaigns",
                        json={"definition": campaign_yaml(args.rate, args.lines), "contacts_csv": csv},
                    )
                ).json()
                campaign_id = created["id"]
                started = await http.post(f"/v1/campaigns/{campaign_id}/start")
                started.raise_for_status()
                running_since = datetime.fromisoformat(started.json()["updated_at"])
                began = time.monotonic()
                while True:
                    await asyncio.sleep(2)
                    status = (await http.get(f"/v1/campaigns/{campaign_id}")).json()["contacts"]
                    if status.get("calling", 0) == 0 and status.get("pending", 0) <= args.outside:
                        break
                    if time.monotonic() - began > args.max_secs:
                        break
                attempts = (await http.get(f"/v1/campaigns/{campaign_id}/attempts")).json()["attempts"]
                contacts = (await http.get(f"/v1/campaigns/{campaign_id}/results")).json()["contacts"]
                definition = CampaignDefinition.model_validate(
                    (await http.get(f"/v1/campaigns/{campaign_id}")).json()["definition"]
                )
        finally:
            proc.terminate()
            proc.wait(timeout=60)
        sipp = await callees.stop()
    trace = invites_by_number(sipp.messages)
    return measure(attempts, contacts, definition, trace, set(dnc), running_since, args)


def _demo_voice() -> dict[str, Any]:
    demo = yaml.safe_load((ROOT / "voicebot" / "demo" / "tenant.yaml").read_text(encoding="utf-8"))
    return dict(demo.get("voice") or {})


def measure(
    attempts: list[dict[str, Any]],
    contacts: list[dict[str, Any]],
    definition: CampaignDefinition,
    invites: Counter[str],
    dnc: set[str],
    running_since: datetime,
    args: argparse.Namespace,
) -> dict[str, Any]:
    def at(value: str | None) -> datetime | None:
        return datetime.fromisoformat(value) if value else None

    zones = {c["phone"]: c["timezone"] for c in contacts}
    dialled = [a for a in attempts if a.get("started_at")]
    starts = sorted(at(a["started_at"]) for a in dialled)  # type: ignore[type-var]

    def due(a: dict[str, Any]) -> datetime:  # nothing is due before the operator starts the campaign
        return max(at(a["due_at"]), running_since)  # type: ignore[type-var]

    late = [(at(a["started_at"]) - due(a)).total_seconds() for a in dialled]  # type: ignore[operator]
    intervals = [(at(a["started_at"]), at(a["ended_at"]) or datetime.now(UTC)) for a in dialled]
    outside = sum(
        1
        for a in dialled
        if not in_calling_window(definition.calling_window, at(a["started_at"]), zones[a["phone"]])  # type: ignore[arg-type]
    )
    dialled_per_number = Counter(a["phone"] for a in dialled)
    span = (starts[-1] - starts[0]).total_seconds() if len(starts) > 1 else 0.0
    return {
        "contacts": len(contacts),
        "dialled_attempts": len(dialled),
        "calls_per_s": round((len(starts) - 1) / span, 2) if span else 0.0,
        "rate_limit": args.rate,
        "max_concurrent": max_overlap(intervals),  # type: ignore[arg-type]
        "lines": args.lines,
        "outcomes": dict(Counter(c["outcome"] or c["status"] for c in contacts)),
        "attempt_outcomes": dict(Counter(a["outcome"] for a in attempts)),
        "late_p50_s": round(percentile(late, 0.5), 3) if late else None,
        "late_p95_s": round(percentile(late, 0.95), 3) if late else None,
        "late_max_s": round(max(late), 3) if late else None,
        "outside_window": outside,
        "outside_window_contacts_left_pending": sum(1 for c in contacts if c["status"] == "pending"),
        "dnc_called": sum(invites[p] for p in dnc),
        "duplicates": sum(max(0, n - dialled_per_number[p]) for p, n in invites.items()),
        "invites_seen_by_sipp": sum(invites.values()),
        "late_worst": [
            {k: a[k] for k in ("phone", "attempt", "due_at", "planned_at", "started_at", "outcome")}
            for a in sorted(dialled, key=lambda a: due(a) - at(a["started_at"]))[:3]  # type: ignore[operator]
        ],
        "failure_details": dict(
            Counter(a["detail"] for a in attempts if a["outcome"] == "failed").most_common(5)
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--contacts", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=5.0, help="calls per second of the campaign")
    parser.add_argument("--lines", type=int, default=30, help="max concurrent calls of the campaign")
    parser.add_argument(
        "--due-rate",
        type=float,
        default=3.0,
        help="contacts falling due per second (with the retries, the calls wanted stay under --rate)",
    )
    parser.add_argument("--dnc", type=int, default=20, help="numbers put on the do-not-call list")
    parser.add_argument("--outside", type=int, default=50, help="contacts whose window is closed now")
    parser.add_argument("--max-secs", type=float, default=3600, help="give up after this long")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="voicebot-campaign-bench-") as tmp:
        result = asyncio.run(run(args, Path(tmp)))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
