"""``kill -9`` of ``voicebot serve`` in the middle of a campaign's calls, then a restart: the campaign
goes on, every contact ends exactly once, and no attempt is dialled twice.

The real server (its own process, real speech models, SQLite) dials SIPp callees who answer, say
"Hello?", wait, then "Yes, I will come." (tests/data/sipp/uas_campaign_confirm.xml). It is killed
while calls are up; the restarted server takes the attempts left mid-call back as ``failed`` and
calls those contacts again under their next attempt number. SIPp's own message trace is the
witness of what was dialled.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from bench.chat import api_token
from tests.conftest import demo_tenant_with
from tests.peers.sipp import SCENARIOS, free_port, invites_by_number, sipp_available, sipp_uas

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.slow,
    pytest.mark.skipif(not sipp_available(), reason="SIPp (Debian sip-tester) is not installed"),
]
CONTACTS = "phone,name,timezone,appointment_date,appointment_time,location\n" + "".join(
    f"+3864055500{i},Caller {i},Etc/UTC,1 December,10:00,Ljubljana\n" for i in range(4)
)


def campaign_file() -> str:
    data = yaml.safe_load((ROOT / "campaigns" / "appointment-confirmation.yaml").read_text(encoding="utf-8"))
    data.update(
        {
            "calling_window": {
                "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                "start": "00:00",
                "end": "23:59",
            },
            "max_attempts": 3,
            "retry_delay": {"busy": "1s", "no_answer": "1s", "voicemail": "1s", "failed": "1s"},
            "max_concurrent_calls": 2,
            "calls_per_second": 2,
        }
    )
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def serve(data_dir: Path, tenant: Path, sip_port: int) -> tuple[subprocess.Popen[str], str]:
    env = {
        **os.environ,
        "VOICEBOT_DATA_DIR": str(data_dir),
        "VOICEBOT_TENANT_CONFIG": str(tenant),
        "VOICEBOT_CAMPAIGN_LEASE_SECS": "6",  # a killed call is taken back 6 s after its last renewal
    }
    env.pop("DATABASE_URL", None)
    proc = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "voicebot"), "serve", "--host", "127.0.0.1", "--port", "0",
         "--sip-port", str(sip_port)],
        env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, start_new_session=True,
    )  # fmt: skip
    assert proc.stderr is not None
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            raise AssertionError(f"the server exited with {proc.returncode}")
        if found := re.search(r"Uvicorn running on (http://127\.0\.0\.1:\d+)", line):
            threading.Thread(target=drain, args=(proc,), daemon=True).start()  # a full pipe blocks it
            ready(found.group(1), deadline)
            return proc, found.group(1)
    proc.kill()
    raise AssertionError("the server did not start")


def drain(proc: subprocess.Popen[str]) -> None:
    assert proc.stderr is not None
    with proc.stderr:
        proc.stderr.read()


def ready(url: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("the server did not become ready")


async def poll(http: httpx.AsyncClient, path: str, until: Any, timeout_s: float = 180) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        data = (await http.get(path)).json()
        if until(data):
            return data
        await asyncio.sleep(0.2)
    raise AssertionError(f"{path}: not reached in {timeout_s} s; last: {data}")


async def test_kill_9_mid_call_and_restart_ends_every_contact_once(tmp_path: Path) -> None:
    async with sipp_uas(SCENARIOS / "uas_campaign_confirm.xml", keys={"bye_wait_ms": "20000"}) as callee:
        voice = yaml.safe_load((ROOT / "voicebot" / "demo" / "tenant.yaml").read_text(encoding="utf-8"))[
            "voice"
        ]
        voice["sip"] = {"outbound": {"uri": f"sip:{{number}}@{callee.address}"}}
        tenant = demo_tenant_with(tmp_path, voice=voice)
        sip_port = free_port()
        proc, url = serve(tmp_path / "data", tenant, sip_port)
        token = api_token(tmp_path / "data", env_extra={"VOICEBOT_TENANT_CONFIG": str(tenant)})
        headers = {"Authorization": f"Bearer {token}"}
        try:
            async with httpx.AsyncClient(base_url=url, timeout=30, headers=headers) as http:
                created = await http.post(
                    "/v1/campaigns", json={"definition": campaign_file(), "contacts_csv": CONTACTS}
                )
                cid = created.json()["id"]
                await http.post(f"/v1/campaigns/{cid}/start")
                assert (await http.get("/healthz")).json()["campaigns"]["queue"] == "local"  # SQLite
                answered = await poll(
                    http,
                    f"/v1/campaigns/{cid}/attempts",
                    lambda d: sum(1 for a in d["attempts"] if a["answered_at"] and not a["ended_at"]) == 2,
                )
                killed = {a["id"] for a in answered["attempts"] if a["answered_at"] and not a["ended_at"]}
                os.killpg(proc.pid, signal.SIGKILL)  # the server and its workers; two calls are up
                proc.wait(timeout=30)
                proc, url = serve(tmp_path / "data", tenant, sip_port)
            async with httpx.AsyncClient(base_url=url, timeout=30, headers=headers) as http:
                await poll(http, f"/v1/campaigns/{cid}", lambda d: d["status"] == "completed", timeout_s=300)
                attempts = (await http.get(f"/v1/campaigns/{cid}/attempts")).json()["attempts"]
                contacts = (await http.get(f"/v1/campaigns/{cid}/results")).json()["contacts"]
        finally:
            proc.terminate()
            proc.wait(timeout=60)
        trace = (await callee.stop()).messages
    assert len(contacts) == 4 and {c["status"] for c in contacts} == {"done"}
    assert {c["outcome"] for c in contacts} == {"confirmed"}, [(a["outcome"], a["detail"]) for a in attempts]
    for contact in contacts:
        mine = [a for a in attempts if a["contact_id"] == contact["id"]]
        assert [a["attempt"] for a in mine] == list(range(1, len(mine) + 1))  # each number once
        assert [a["outcome"] for a in mine].count("confirmed") == 1  # ended exactly once
    left = [a for a in attempts if a["id"] in killed]
    assert len(left) == 2, left
    assert all(a["outcome"] == "failed" and "left unfinished" in a["detail"] for a in left), [
        (a["outcome"], a["detail"]) for a in left
    ]
    dialled = Counter(a["phone"] for a in attempts if a["started_at"])
    assert invites_by_number(trace) == dialled  # SIPp saw exactly one call per dialled attempt
