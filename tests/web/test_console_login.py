"""The console's login in Debian's chromium: a wrong password is refused with a message, the right one
lands on the page asked for, a role without the page's permission is told so (and the API refuses
it), logging out ends the session."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.auth_helpers import PASSWORD, add_user, browser_login
from tests.conftest import SESSION_LOOP, serving
from tests.web.test_drafts_page import browser_page
from tests.web.test_widget import CHROMIUM
from voicebot.app import create_app
from voicebot.auth.roles import Role
from voicebot.runtime import Runtime

pytestmark = [
    SESSION_LOOP,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"Debian's chromium is not installed at {CHROMIUM}"),
]


@pytest_asyncio.fixture(loop_scope="session")
async def server(runtime: Runtime) -> AsyncIterator[str]:
    async with serving(create_app(runtime.settings, runtime)) as url:
        yield url


async def test_log_in_reach_the_page_and_log_out(server: str, runtime: Runtime) -> None:
    from playwright.async_api import expect

    await add_user(runtime, "olga", PASSWORD, Role.OPERATOR)
    errors: list[str] = []
    async with browser_page(errors) as page:
        await page.goto(server + "/campaigns")  # not logged in: sent to the login page, then back
        await expect(page).to_have_url(server + "/login?next=%2Fcampaigns")
        await page.get_by_test_id("lg-username").fill("olga")
        await page.get_by_test_id("lg-password").fill("not the password")
        await page.get_by_test_id("lg-submit").click()
        await expect(page.get_by_test_id("lg-error")).to_have_text("the user name or the password is wrong")
        await page.get_by_test_id("lg-password").fill(PASSWORD)
        await page.get_by_test_id("lg-submit").click()
        await expect(page).to_have_url(server + "/campaigns")
        await expect(page.get_by_test_id("ui-user")).to_have_text("olga · operator")
        nav = page.locator(".ui-nav-links a")
        await expect(nav).to_have_text(["Dashboard", "Campaigns"])
        await expect(page.get_by_test_id("cp-sync")).to_contain_text("updated")
        await page.get_by_role("button", name="Log out").click()
        await expect(page).to_have_url(server + "/login")
        assert (await page.request.get(server + "/v1/campaigns")).status == 401
    assert errors == []


async def test_an_agent_is_refused_the_campaigns_page_and_api(server: str, runtime: Runtime) -> None:
    from playwright.async_api import expect

    errors: list[str] = []
    async with browser_page(errors) as page:
        await browser_login(page, server, runtime, Role.AGENT, next_path="/campaigns")
        await expect(page.get_by_test_id("ui-refused")).to_contain_text("may not open this page")
        response = await page.request.get(server + "/v1/campaigns")
        assert response.status == 403
        assert "campaigns" in (await response.json())["error"]["message"]
        # nor may it manage users
        denied = await page.request.post(server + "/v1/users", data={"username": "x", "role": "agent"})
        assert denied.status == 403
    assert errors == []
