from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from voicebot.config import RestCRMConfig
from voicebot.crm.base import AppointmentStatus, CRMAdapter
from voicebot.crm.rest import RESTCRMAdapter, parse_template
from voicebot.errors import (
    ConfigError,
    ConflictError,
    NotFoundError,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
)

ANA = {
    "id": "C001",
    "name": "Ana Novak",
    "phone": "+38640111222",
    "email": "ana.novak@example.com",
    "postcode": "1000",
    "birth_date": "1985-03-14",
    "language": "sl",
    "extra": "ignored",
}
ORDER = {
    "id": "A1001",
    "customer_id": "C001",
    "status": "shipped",
    "delivery_address": "Slovenska cesta 1, 1000 Ljubljana",
    "items": ["Headphones"],
    "total": 89.9,
    "currency": "EUR",
    "updated_at": "2026-03-05T14:30:00Z",
}
APPOINTMENT = {
    "id": "AP1",
    "customer_id": "C001",
    "starts_at": "2026-03-09T10:00:00+01:00",
    "status": "booked",
    "service": "Service",
}
INVOICE = {
    "id": "I1",
    "customer_id": "C001",
    "amount": "59.90",
    "currency": "EUR",
    "due_date": "2026-03-20",
    "status": "open",
}

Handler = Callable[[httpx.Request], httpx.Response]


class Server:
    """Records requests and answers from a handler."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.handler: Handler = lambda request: httpx.Response(404)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def body(self) -> Any:
        return json.loads(self.last.content)


@pytest.fixture
def server() -> Server:
    return Server()


@pytest.fixture
async def client(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(server)) as client:
        yield client


def make(client: httpx.AsyncClient, **config: Any) -> RESTCRMAdapter:
    return RESTCRMAdapter(RestCRMConfig(base_url="https://crm.example.com/api/", **config), client)


def answer(data: Any, status: int = 200) -> Handler:
    return lambda request: httpx.Response(status, json=data)


async def test_is_a_crm_adapter(client: httpx.AsyncClient) -> None:
    assert isinstance(make(client), CRMAdapter)


async def test_find_by_phone_quotes_e164_and_sends_token(
    server: Server, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRM_TOKEN", "s3cret")
    crm = make(client, token_env="CRM_TOKEN")
    server.handler = answer([ANA])
    customer = await crm.find_customer_by_phone("040 111 222")
    assert customer is not None and customer.birth_date == date(1985, 3, 14) and customer.language == "sl"
    assert server.last.method == "GET"
    assert str(server.last.url) == "https://crm.example.com/api/customers?phone=%2B38640111222"
    assert server.last.url.params["phone"] == "+38640111222"
    assert server.last.headers["authorization"] == "Bearer s3cret"
    server.handler = answer({"items": []})
    assert await crm.find_customer_by_phone("040 111 222") is None
    assert await crm.find_customer_by_phone("nonsense") is None  # never asked
    assert len(server.requests) == 2


async def test_missing_token_env_is_a_config_error(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOPE_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="NOPE_TOKEN"):
        make(client, token_env="NOPE_TOKEN")


async def test_email_lookup_lowercases(server: Server, client: httpx.AsyncClient) -> None:
    server.handler = answer(ANA)
    customer = await make(client).find_customer_by_email("Ana.Novak@Example.com")
    assert customer is not None and customer.id == "C001"
    assert server.last.url.params["email"] == "ana.novak@example.com"


async def test_lookups_404_mean_none(server: Server, client: httpx.AsyncClient) -> None:
    crm = make(client)
    server.handler = answer({"error": "not found"}, 404)
    assert await crm.get_customer("C9") is None
    assert await crm.get_order("A9") is None
    assert await crm.list_orders("C9") == []
    assert await crm.list_invoices("C9") == []


async def test_orders_and_paths_are_quoted(server: Server, client: httpx.AsyncClient) -> None:
    crm = make(client)
    server.handler = answer(ORDER)
    order = await crm.get_order("A 1/001")
    assert (
        order is not None
        and order.total == Decimal("89.9")
        and order.updated_at == datetime(2026, 3, 5, 14, 30, tzinfo=UTC)
    )
    assert server.last.url.raw_path == b"/api/orders/A%201%2F001"
    server.handler = answer({"items": [ORDER]})
    assert [o.id for o in await crm.list_orders("C001")] == ["A1001"]
    assert server.last.url.path == "/api/customers/C001/orders"


async def test_update_delivery_address(server: Server, client: httpx.AsyncClient) -> None:
    crm = make(client)
    server.handler = answer({**ORDER, "delivery_address": "Trubarjeva 5"})
    order = await crm.update_delivery_address("A1001", "Trubarjeva 5")
    assert order.delivery_address == "Trubarjeva 5"
    assert (server.last.method, server.last.url.path, server.body()) == (
        "PATCH",
        "/api/orders/A1001",
        {"delivery_address": "Trubarjeva 5"},
    )
    server.handler = answer({}, 404)
    with pytest.raises(NotFoundError):
        await crm.update_delivery_address("A9", "x")
    server.handler = answer({"error": "delivered"}, 409)
    with pytest.raises(ConflictError):
        await crm.update_delivery_address("A1003", "x")


async def test_appointments(server: Server, client: httpx.AsyncClient) -> None:
    crm = make(client)
    server.handler = answer([APPOINTMENT])
    (appointment,) = await crm.list_appointments("C001")
    assert appointment.starts_at == datetime(2026, 3, 9, 9, 0, tzinfo=UTC)
    when = datetime(2026, 3, 12, 13, 0, tzinfo=UTC)
    server.handler = answer({**APPOINTMENT, "id": "AP2", "starts_at": when.isoformat()})
    booked = await crm.book_appointment("C001", when, "Service")
    assert booked.id == "AP2"
    assert (server.last.method, server.last.url.path) == ("POST", "/api/customers/C001/appointments")
    assert server.body() == {
        "customer_id": "C001",
        "starts_at": "2026-03-12T13:00:00+00:00",
        "service": "Service",
    }
    server.handler = answer({**APPOINTMENT, "status": "CONFIRMED"})
    confirmed = await crm.set_appointment_status("AP1", AppointmentStatus.CONFIRMED)
    assert confirmed.status is AppointmentStatus.CONFIRMED
    assert (server.last.method, server.body()) == ("PATCH", {"status": "confirmed"})
    server.handler = answer({**APPOINTMENT, "id": "AP3"})
    new = await crm.reschedule_appointment("AP1", when)
    assert new.id == "AP3"
    assert (server.last.method, server.last.url.path) == ("POST", "/api/appointments/AP1/reschedule")


async def test_invoices_tickets_notes(server: Server, client: httpx.AsyncClient) -> None:
    crm = make(client)
    server.handler = answer(
        [INVOICE, {**INVOICE, "id": "I2", "status": "paid", "paid_at": "2026-01-01T10:00:00"}]
    )
    invoices = await crm.list_invoices("C001")
    assert [i.amount for i in invoices] == [Decimal("59.90"), Decimal("59.90")]
    assert invoices[1].paid_at == datetime(2026, 1, 1, 10, 0, tzinfo=UTC)  # naive means UTC
    server.handler = answer(
        {"id": "T1", "customer_id": None, "subject": "Q", "body": "B", "created_at": "2026-03-06T10:00:00Z"}
    )
    ticket = await crm.create_ticket(None, "Q", "B", {"k": 1})
    assert ticket.id == "T1" and ticket.customer_id is None and ticket.fields == {}
    assert server.body() == {"customer_id": None, "subject": "Q", "body": "B", "fields": {"k": 1}}
    server.handler = lambda request: httpx.Response(204)
    await crm.add_note("C001", "Prefers e-mail")
    assert (server.last.method, server.last.url.path, server.body()) == (
        "POST",
        "/api/customers/C001/notes",
        {"text": "Prefers e-mail", "author": "bot"},
    )
    server.handler = answer({}, 404)
    with pytest.raises(NotFoundError):
        await crm.add_note("C9", "x")


async def test_template_overrides_method_and_path(server: Server, client: httpx.AsyncClient) -> None:
    crm = make(
        client,
        templates={
            "get_order": "/v2/order-lookup?number={order_id}",
            "set_appointment_status": "POST /appointments/{appointment_id}/status",
        },
    )
    server.handler = answer(ORDER)
    await crm.get_order("A1001")
    assert (server.last.method, server.last.url.path, server.last.url.params["number"]) == (
        "GET",
        "/api/v2/order-lookup",
        "A1001",
    )
    server.handler = answer(APPOINTMENT)
    await crm.set_appointment_status("AP1", AppointmentStatus.CANCELLED)
    assert (server.last.method, server.last.url.path) == ("POST", "/api/appointments/AP1/status")


async def test_bad_templates(client: httpx.AsyncClient) -> None:
    with pytest.raises(ConfigError, match="get_ordr"):
        make(client, templates={"get_ordr": "/x"})
    crm = make(client, templates={"get_order": "/orders/{id}"})
    with pytest.raises(ConfigError, match="get_order"):
        await crm.get_order("A1")


@pytest.mark.parametrize(
    ("handler", "error"),
    [
        (answer({}, 500), ProviderUnavailable),
        (answer({}, 503), ProviderUnavailable),
        (answer({}, 400), ProviderError),
        (answer({}, 401), ProviderError),
        (lambda r: httpx.Response(200, content=b"<html>oops"), ProviderError),
        (answer({"id": "C1"}), ProviderError),  # no name
        (answer("just a string"), ProviderError),
        (answer({**ANA, "birth_date": "14.3.1985"}), ProviderError),
    ],
)
async def test_failures(
    server: Server, client: httpx.AsyncClient, handler: Handler, error: type[Exception]
) -> None:
    server.handler = handler
    with pytest.raises(error) as info:
        await make(client).get_customer("C001")
    assert type(info.value) is error


@pytest.mark.parametrize(
    ("exc", "error"),
    [
        (httpx.ReadTimeout("slow"), ProviderTimeout),
        (httpx.ConnectTimeout("slow"), ProviderTimeout),
        (httpx.ConnectError("refused"), ProviderUnavailable),
        (httpx.RemoteProtocolError("bye"), ProviderUnavailable),
    ],
)
async def test_transport_errors(
    server: Server, client: httpx.AsyncClient, exc: Exception, error: type[Exception]
) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise exc

    server.handler = fail
    with pytest.raises(error) as info:
        await make(client).get_order("A1")
    assert info.value.retryable  # type: ignore[attr-defined]


async def test_timeout_is_passed_per_request(server: Server, client: httpx.AsyncClient) -> None:
    server.handler = answer(ORDER)
    await make(client, timeout_s=1.5).get_order("A1001")
    assert server.last.extensions["timeout"] == {"connect": 1.5, "read": 1.5, "write": 1.5, "pool": 1.5}


def test_parse_template() -> None:
    assert parse_template("PATCH /orders/{order_id}") == ("PATCH", "/orders/{order_id}")
    assert parse_template("/orders/{order_id}", "POST") == ("POST", "/orders/{order_id}")
    assert parse_template("  delete   /x ") == ("DELETE", "/x")


@given(st.text(min_size=1, max_size=30))
def test_parse_template_keeps_unknown_words_in_the_path(path: str) -> None:
    method, rest = parse_template(path)
    assert method in {"GET", "POST", "PUT", "PATCH", "DELETE"}
    assert rest in path
