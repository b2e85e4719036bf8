"""The in-memory fake's own extras (its CRM behaviour is covered by test_contract.py)."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.fakes.crm import InMemoryCRM
from voicebot.errors import ProviderUnavailable


async def test_fail_with_and_calls(now: datetime) -> None:
    crm = InMemoryCRM.demo(now)
    assert await crm.get_order("A1001") is not None
    crm.fail_with = ProviderUnavailable("CRM down")
    with pytest.raises(ProviderUnavailable):
        await crm.find_customer_by_phone("+38640111222")
    assert crm.calls == ["get_order", "find_customer_by_phone"]


async def test_writes_are_kept_for_assertions(now: datetime) -> None:
    crm = InMemoryCRM.demo(now)
    await crm.add_note("C001", "Called back", author="agent")
    ticket = await crm.create_ticket("C001", "S", "B")
    assert [n.text for n in crm.notes] == ["Called back"]
    assert crm.tickets == [ticket]
    assert [e.at for e in crm.audit] == [now, now]


def test_empty_fake() -> None:
    crm = InMemoryCRM()
    assert crm.customers == {} and crm.orders == {}
