"""The campaigns page (/campaigns) in Debian's chromium (Playwright), against the real app on a
started Runtime of its own (no SIP, so no dialer: the test records a call through the repository,
as the dialer would). An operator follows a campaign, starts, pauses and stops it, downloads its
results and creates one from files; API errors are shown; hostile data stays text."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.auth_helpers import browser_login, token_headers
from tests.conftest import SESSION_LOOP, serving
from tests.web.test_drafts_page import browser_page
from tests.web.test_widget import CHROMIUM
from voicebot.app import create_app
from voicebot.auth.roles import Role
from voicebot.runtime import Runtime
from voicebot.storage.campaigns import CampaignRepository

SCREENSHOT = Path("/tmp/campaigns.png")
SURVEY = Path(__file__).resolve().parents[2] / "campaigns" / "csat-survey.yaml"
HOSTILE = "<img src=x onerror=\"document.title='owned'\">Eve"

pytestmark = [
    SESSION_LOOP,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"Debian's chromium is not installed at {CHROMIUM}"),
]


@dataclass
class Server:
    url: str
    runtime: Runtime
    client: httpx.AsyncClient


@pytest_asyncio.fixture(loop_scope="session")
async def server(runtime: Runtime) -> AsyncIterator[Server]:
    async with (
        serving(create_app(runtime.settings, runtime)) as url,
        httpx.AsyncClient(base_url=url, headers=await token_headers(runtime)) as client,
    ):
        yield Server(url, runtime, client)


def contacts_csv(*rows: tuple[str, str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["phone", "name"])
    writer.writerows(rows)
    return buffer.getvalue()


async def create(server: Server, name: str, csv_text: str) -> dict[str, Any]:
    response = await server.client.post(
        "/v1/campaigns", json={"definition": SURVEY.read_text(), "contacts_csv": csv_text, "name": name}
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def status_of(server: Server, campaign_id: str) -> str:
    status: str = (await server.client.get(f"/v1/campaigns/{campaign_id}")).json()["status"]
    return status


async def test_an_operator_follows_controls_and_exports_a_campaign(server: Server, tmp_path: Path) -> None:
    from playwright.async_api import expect

    other = await create(server, "Older survey", contacts_csv(("+38640999888", "Zoe")))
    campaign = await create(
        server,
        "Spring survey",
        contacts_csv(("+38640111222", "Ana Novak"), ("+38640111333", HOSTILE), ("+38641222333", "Marko")),
    )
    cid = campaign["id"]
    errors: list[str] = []
    async with browser_page(errors) as page:
        page.on("dialog", lambda dialog: dialog.accept())  # the "stop for good?" question
        await browser_login(page, server.url, server.runtime, Role.OPERATOR, next_path="/campaigns")
        items = page.get_by_role("list", name="Campaigns").get_by_role("button")
        await expect(items).to_have_count(2)
        item = items.filter(has_text="Spring survey")
        await expect(item).to_contain_text("Draft")
        await expect(item).to_contain_text("csat survey")
        await expect(item).to_contain_text("0 of 3 contacts ended")
        await expect(item).to_contain_text("pending 3 · calling 0 · done 0")
        await expect(page.get_by_role("progressbar", name="Progress of Spring survey")).to_be_visible()
        await expect(items.filter(has_text="Older survey")).to_contain_text("0 of 1 contacts ended")

        await item.click()
        await expect(page.get_by_role("heading", level=2).and_(page.locator("#cp-title"))).to_have_text(
            "Spring survey"
        )
        status = page.get_by_test_id("cp-status")
        await expect(status).to_have_text("Draft")
        table = page.get_by_role("table", name="Contacts")
        rows = table.locator("tbody tr")
        await expect(rows).to_have_count(3)
        await expect(rows.nth(1).locator("td").nth(1)).to_have_text(HOSTILE)  # as text
        assert await table.locator("img").count() == 0
        await expect(rows.first).to_contain_text("+38640111222")
        await expect(rows.first).to_contain_text("Ana Novak")
        await expect(page.get_by_test_id("cp-contact-counts")).to_contain_text("pending3")
        await expect(page.get_by_test_id("cp-outcome-counts")).to_contain_text("None yet")
        start, pause = (
            page.get_by_role("button", name="Start", exact=True),
            page.get_by_role("button", name="Pause", exact=True),
        )
        resume, stop = (
            page.get_by_role("button", name="Resume", exact=True),
            page.get_by_role("button", name="Stop", exact=True),
        )
        for button, enabled in ((start, True), (pause, False), (resume, False), (stop, True)):
            await (expect(button).to_be_enabled() if enabled else expect(button).to_be_disabled())

        await start.click()
        await expect(page.get_by_test_id("cp-confirm")).to_contain_text("Started")
        await expect(status).to_have_text("Running")
        assert await status_of(server, cid) == "running"
        await expect(start).to_be_disabled()
        await expect(pause).to_be_enabled()

        # the dialer calls the due contacts and the first call ends: the page follows by itself
        repo = CampaignRepository(server.runtime.db)
        now = datetime.now(UTC)
        planned = await repo.plan_due(cid, now, lease_s=30.0)
        await repo.finish_attempt(planned[0].id, outcome="survey_completed", next_due_at=None, now=now)
        await expect(page.get_by_test_id("cp-progress-text")).to_have_text("1 of 3 contacts ended (33%)")
        await expect(page.get_by_test_id("cp-outcome-counts")).to_contain_text("survey completed1")
        await expect(page.get_by_test_id("cp-contact-counts")).to_contain_text("done1")
        await expect(rows.first).to_contain_text("survey completed")
        await expect(item).to_contain_text("1 of 3 contacts ended")
        meter = page.get_by_role("progressbar", name="Progress", exact=True)
        await expect(meter).to_have_js_property("value", 1)
        await expect(meter).to_have_js_property("max", 3)

        await pause.click()
        await expect(status).to_have_text("Paused")
        assert await status_of(server, cid) == "paused"
        await expect(resume).to_be_enabled()
        await expect(pause).to_be_disabled()
        await page.screenshot(path=str(SCREENSHOT), full_page=True)

        # the CSV link downloads the API's results
        async with page.expect_download() as info:
            await page.get_by_role("link", name="Download CSV").click()
        download = await info.value
        target = tmp_path / "results.csv"
        await download.save_as(target)
        assert download.suggested_filename == f"campaign-{cid}.csv"
        expected = await server.client.get(f"/v1/campaigns/{cid}/results", params={"format": "csv"})
        assert target.read_bytes() == expected.content
        exported = list(csv.DictReader(io.StringIO(expected.text)))
        assert [r["name"] for r in exported] == ["Ana Novak", HOSTILE, "Marko"]
        assert exported[0]["outcome"] == "survey_completed"

        await stop.click()
        await expect(status).to_have_text("Stopped")
        for button in (start, pause, resume, stop):
            await expect(button).to_be_disabled()
        assert await status_of(server, cid) == "stopped"
        assert await status_of(server, other["id"]) == "draft"
        assert await page.title() != "owned"

    audit = await server.runtime.audit.list(server.runtime.tenant.id, limit=50)
    moves = [(a.actor, a.action) for a in reversed(audit) if a.details.get("campaign_id") == cid]
    assert moves == [
        ("operator", "campaign.created"),
        ("operator", "campaign.start"),
        ("operator", "campaign.pause"),
        ("operator", "campaign.stop"),
    ]
    assert errors == []


async def test_a_campaign_is_created_from_files_and_api_errors_are_shown(server: Server) -> None:
    from playwright.async_api import expect

    errors: list[str] = []
    async with browser_page(errors) as page:
        # the page's timers are under the test's control, so no refresh races the API below
        start_at = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)
        await page.clock.install(time=start_at)
        await browser_login(page, server.url, server.runtime, Role.OPERATOR, next_path="/campaigns")
        await expect(page.get_by_test_id("cp-empty")).to_be_visible()

        await page.get_by_text("New campaign").click()
        await page.get_by_label("Campaign file (YAML)").set_input_files(
            {"name": "csat-survey.yaml", "mimeType": "text/yaml", "buffer": SURVEY.read_bytes()}
        )
        csv_text = contacts_csv(("+38640111222", "Ana"), ("12", "Nobody"))
        await page.get_by_label("Contacts (CSV)").set_input_files(
            {"name": "contacts.csv", "mimeType": "text/csv", "buffer": csv_text.encode()}
        )
        await page.get_by_label("Name (optional)").fill("From the page")
        await page.get_by_role("button", name="Create campaign").click()
        created = page.get_by_test_id("cp-created")
        await expect(created).to_contain_text("Created \u201cFrom the page\u201d: 1 contact imported")
        await expect(created).to_contain_text("line 3:")
        items = page.get_by_role("list", name="Campaigns").get_by_role("button")
        await expect(items).to_have_count(1)
        await expect(page.get_by_test_id("cp-status")).to_have_text("Draft")
        await expect(page.get_by_role("table", name="Contacts").locator("tbody tr")).to_have_count(1)
        (listed,) = (await server.client.get("/v1/campaigns")).json()["campaigns"]
        assert listed["name"] == "From the page" and listed["contacts"] == {"pending": 1}
        assert page.url.endswith("#" + listed["id"])

        # a CSV without one valid row: the API's message
        await page.get_by_label("Campaign file (YAML)").set_input_files(
            {"name": "csat-survey.yaml", "mimeType": "text/yaml", "buffer": SURVEY.read_bytes()}
        )
        await page.get_by_label("Contacts (CSV)").set_input_files(
            {"name": "bad.csv", "mimeType": "text/csv", "buffer": b"phone,name\n12,Nobody\n"}
        )
        await page.get_by_role("button", name="Create campaign").click()
        create_error = page.get_by_test_id("cp-create-error")
        await expect(create_error).to_contain_text("no valid contact")
        await expect(page.get_by_role("alert").filter(has_text="line 2")).to_be_visible()
        await expect(items).to_have_count(1)

        # stopped elsewhere while the page still shows it as a draft: the refused start is shown
        await page.wait_for_function("() => window.vbCampaigns.idle")
        await page.clock.pause_at(start_at + timedelta(minutes=5))
        await page.wait_for_function("() => window.vbCampaigns.idle")
        assert (await server.client.post(f"/v1/campaigns/{listed['id']}/stop")).status_code == 200
        await page.get_by_role("button", name="Start", exact=True).click()
        alert = page.get_by_test_id("cp-error")
        await expect(alert).to_contain_text("cannot move from stopped to running")
        await expect(page.get_by_test_id("cp-status")).to_have_text("Stopped")  # refreshed after it
        await expect(page.get_by_test_id("cp-confirm")).to_be_hidden()
    assert errors == []
