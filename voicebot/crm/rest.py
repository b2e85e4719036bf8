"""A generic REST CRM adapter, configured by URL templates (``crm.rest.templates`` in the tenant).

Each operation has a template ``"[METHOD ]/path?query"`` relative to ``base_url``; ``{name}``
placeholders are filled with URL-quoted values. The defaults (override any of them)::

    find_customer_by_phone   GET    /customers?phone={phone}          (phone in E.164)
    find_customer_by_email   GET    /customers?email={email}          (lower-cased)
    get_customer             GET    /customers/{customer_id}
    get_order                GET    /orders/{order_id}
    list_orders              GET    /customers/{customer_id}/orders
    update_delivery_address  PATCH  /orders/{order_id}                body {"delivery_address": "..."}
    list_appointments        GET    /customers/{customer_id}/appointments
    book_appointment         POST   /customers/{customer_id}/appointments
                                    body {"customer_id", "starts_at": ISO 8601, "service"}
    set_appointment_status   PATCH  /appointments/{appointment_id}    body {"status": "confirmed"}
    reschedule_appointment   POST   /appointments/{appointment_id}/reschedule   body {"starts_at"}
    list_invoices            GET    /customers/{customer_id}/invoices
    create_ticket            POST   /tickets                          body {"customer_id", "subject",
                                                                            "body", "fields"}
    add_note                 POST   /customers/{customer_id}/notes    body {"text", "author"}

Expected JSON (unknown keys are ignored; dates ISO 8601, datetimes with an offset, naive = UTC):

    customer     {"id", "name", "phone"?, "email"?, "postcode"?, "birth_date"?, "language"?}
    order        {"id", "customer_id", "status", "delivery_address", "items"?: [str],
                  "total"?: number|string, "currency"?, "updated_at"?, "tracking_url"?}
    appointment  {"id", "customer_id", "starts_at", "status": booked|confirmed|cancelled|rescheduled,
                  "service"?, "location"?}
    invoice      {"id", "customer_id", "amount", "currency", "due_date", "status", "paid_at"?}
    ticket       {"id", "customer_id"?, "subject", "body", "created_at", "fields"?}

A lookup answers one object, or a list (the first is used; empty means none). Lists are a JSON
array or an envelope ``{"items": [...]}`` (an object without "id"). Writes answer the written object
(``reschedule_appointment`` the NEW appointment); ``add_note``'s answer is ignored.

Errors: 404 -> None / [] for lookups, NotFoundError for writes; 409 -> ConflictError;
timeouts -> ProviderTimeout; connection errors and 5xx -> ProviderUnavailable; any other status,
malformed JSON or a missing field -> ProviderError.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from voicebot.config import RestCRMConfig
from voicebot.crm.base import Appointment, AppointmentStatus, Customer, Invoice, Order, Ticket
from voicebot.crm.rules import normalise_email, normalise_phone
from voicebot.errors import (
    ConfigError,
    ConflictError,
    NotFoundError,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
)

T = TypeVar("T")

DEFAULT_TEMPLATES: dict[str, str] = {
    "find_customer_by_phone": "GET /customers?phone={phone}",
    "find_customer_by_email": "GET /customers?email={email}",
    "get_customer": "GET /customers/{customer_id}",
    "get_order": "GET /orders/{order_id}",
    "list_orders": "GET /customers/{customer_id}/orders",
    "update_delivery_address": "PATCH /orders/{order_id}",
    "list_appointments": "GET /customers/{customer_id}/appointments",
    "book_appointment": "POST /customers/{customer_id}/appointments",
    "set_appointment_status": "PATCH /appointments/{appointment_id}",
    "reschedule_appointment": "POST /appointments/{appointment_id}/reschedule",
    "list_invoices": "GET /customers/{customer_id}/invoices",
    "create_ticket": "POST /tickets",
    "add_note": "POST /customers/{customer_id}/notes",
}
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
_MISSING = object()


def parse_template(template: str, default_method: str = "GET") -> tuple[str, str]:
    """``"PATCH /orders/{order_id}"`` -> ("PATCH", "/orders/{order_id}")."""
    head, _, rest = template.strip().partition(" ")
    if head.upper() in _METHODS and rest.strip():
        return head.upper(), rest.strip()
    return default_method, template.strip()


class RESTCRMAdapter:
    """CRMAdapter over an operator's HTTP API. The ``httpx.AsyncClient`` is injected (and owned by
    the caller), so tests drive it with ``httpx.MockTransport``."""

    def __init__(
        self, config: RestCRMConfig, client: httpx.AsyncClient, *, default_region: str = "SI"
    ) -> None:
        unknown = sorted(set(config.templates) - set(DEFAULT_TEMPLATES))
        if unknown:
            raise ConfigError(f"unknown template {unknown[0]!r}", field="crm.rest.templates")
        self._config = config
        self._client = client
        self._region = default_region
        self._base = config.base_url.rstrip("/")
        self._routes: dict[str, tuple[str, str]] = {}
        for name, template in {**DEFAULT_TEMPLATES, **config.templates}.items():
            self._routes[name] = parse_template(template, parse_template(DEFAULT_TEMPLATES[name])[0])
        self._headers = {"Accept": "application/json"}
        if config.token_env:
            token = os.environ.get(config.token_env)
            if not token:
                raise ConfigError(
                    f"the environment variable {config.token_env} is not set", field="crm.rest.token_env"
                )
            self._headers["Authorization"] = f"Bearer {token}"

    # --- plumbing -------------------------------------------------------------------------------

    def _url(self, operation: str, values: dict[str, str]) -> tuple[str, str]:
        method, path = self._routes[operation]
        quoted = {k: quote(v, safe="") for k, v in values.items()}
        try:
            path = path.format(**quoted)
        except (KeyError, IndexError) as exc:
            raise ConfigError(f"unknown placeholder {exc}", field=f"crm.rest.templates.{operation}") from exc
        return method, self._base + (path if path.startswith("/") else "/" + path)

    async def _call(self, operation: str, values: dict[str, str], body: dict[str, Any] | None = None) -> Any:
        """The decoded JSON answer, or ``_MISSING`` on 404."""
        method, url = self._url(operation, values)
        try:
            response = await self._client.request(
                method, url, json=body, headers=self._headers, timeout=self._config.timeout_s
            )
        except httpx.TimeoutException as exc:
            raise ProviderTimeout(f"CRM {operation}: no answer within {self._config.timeout_s} s") from exc
        except httpx.TransportError as exc:
            raise ProviderUnavailable(f"CRM {operation}: {type(exc).__name__}: {exc}") from exc
        status = response.status_code
        if status == 404:
            return _MISSING
        if status == 409:
            raise ConflictError(f"CRM {operation}: {_detail(response)}")
        if status >= 500:
            raise ProviderUnavailable(f"CRM {operation}: HTTP {status}")
        if not 200 <= status < 300:
            raise ProviderError(f"CRM {operation}: HTTP {status}: {_detail(response)}")
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise ProviderError(f"CRM {operation}: the answer is not JSON") from exc

    async def _lookup(self, operation: str, values: dict[str, str], parse: Callable[[Any], T]) -> T | None:
        data = await self._call(operation, values)
        if data is _MISSING or data is None:
            return None
        if isinstance(data, list) or _is_envelope(data):
            items = _items(data, operation)
            return _parsed(parse, items[0], operation) if items else None
        return _parsed(parse, data, operation)

    async def _list(self, operation: str, values: dict[str, str], parse: Callable[[Any], T]) -> list[T]:
        data = await self._call(operation, values)
        if data is _MISSING or data is None:
            return []
        return [_parsed(parse, item, operation) for item in _items(data, operation)]

    async def _write(
        self,
        operation: str,
        values: dict[str, str],
        body: dict[str, Any],
        parse: Callable[[Any], T],
        what: str,
    ) -> T:
        data = await self._call(operation, values, body)
        if data is _MISSING:
            raise NotFoundError(f"{what} does not exist")
        return _parsed(parse, data, operation)

    # --- the CRMAdapter protocol ------------------------------------------------------------------

    async def find_customer_by_phone(self, phone: str) -> Customer | None:
        e164 = normalise_phone(phone, self._region)
        if e164 is None:
            return None
        return await self._lookup("find_customer_by_phone", {"phone": e164}, customer_from_json)

    async def find_customer_by_email(self, email: str) -> Customer | None:
        wanted = normalise_email(email)
        if not wanted:
            return None
        return await self._lookup("find_customer_by_email", {"email": wanted}, customer_from_json)

    async def get_customer(self, customer_id: str) -> Customer | None:
        return await self._lookup("get_customer", {"customer_id": customer_id}, customer_from_json)

    async def get_order(self, order_id: str) -> Order | None:
        return await self._lookup("get_order", {"order_id": order_id.strip()}, order_from_json)

    async def list_orders(self, customer_id: str) -> list[Order]:
        return await self._list("list_orders", {"customer_id": customer_id}, order_from_json)

    async def update_delivery_address(self, order_id: str, address: str) -> Order:
        return await self._write(
            "update_delivery_address",
            {"order_id": order_id.strip()},
            {"delivery_address": address},
            order_from_json,
            f"order {order_id}",
        )

    async def list_appointments(self, customer_id: str) -> list[Appointment]:
        return await self._list("list_appointments", {"customer_id": customer_id}, appointment_from_json)

    async def book_appointment(self, customer_id: str, starts_at: datetime, service: str = "") -> Appointment:
        body = {"customer_id": customer_id, "starts_at": starts_at.isoformat(), "service": service}
        return await self._write(
            "book_appointment",
            {"customer_id": customer_id},
            body,
            appointment_from_json,
            f"customer {customer_id}",
        )

    async def set_appointment_status(self, appointment_id: str, status: AppointmentStatus) -> Appointment:
        return await self._write(
            "set_appointment_status",
            {"appointment_id": appointment_id},
            {"status": AppointmentStatus(status).value},
            appointment_from_json,
            f"appointment {appointment_id}",
        )

    async def reschedule_appointment(self, appointment_id: str, starts_at: datetime) -> Appointment:
        return await self._write(
            "reschedule_appointment",
            {"appointment_id": appointment_id},
            {"starts_at": starts_at.isoformat()},
            appointment_from_json,
            f"appointment {appointment_id}",
        )

    async def list_invoices(self, customer_id: str) -> list[Invoice]:
        return await self._list("list_invoices", {"customer_id": customer_id}, invoice_from_json)

    async def create_ticket(
        self, customer_id: str | None, subject: str, body: str, fields: dict[str, Any] | None = None
    ) -> Ticket:
        payload = {"customer_id": customer_id, "subject": subject, "body": body, "fields": fields or {}}
        return await self._write("create_ticket", {}, payload, ticket_from_json, f"customer {customer_id}")

    async def add_note(self, customer_id: str, text: str, author: str = "bot") -> None:
        data = await self._call("add_note", {"customer_id": customer_id}, {"text": text, "author": author})
        if data is _MISSING:
            raise NotFoundError(f"customer {customer_id} does not exist")


# --- JSON -> records ----------------------------------------------------------------------------------


def _detail(response: httpx.Response) -> str:
    return response.text[:200] or response.reason_phrase


def _is_envelope(data: Any) -> bool:
    """``{"items": [...]}`` (an order, which has items too, also has an id)."""
    return isinstance(data, dict) and isinstance(data.get("items"), list) and "id" not in data


def _items(data: Any, operation: str) -> list[Any]:
    if _is_envelope(data):
        data = data["items"]
    if not isinstance(data, list):
        raise ProviderError(f"CRM {operation}: expected a list")
    return data


def _parsed(parse: Callable[[Any], T], data: Any, operation: str) -> T:
    if not isinstance(data, dict):
        raise ProviderError(f"CRM {operation}: expected a JSON object")
    try:
        return parse(data)
    except KeyError as exc:
        raise ProviderError(f"CRM {operation}: the answer lacks {exc.args[0]!r}") from exc
    except (TypeError, ValueError, InvalidOperation) as exc:
        raise ProviderError(f"CRM {operation}: malformed answer: {exc}") from exc


def _opt_str(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return None if value is None else str(value)


def _datetime(value: Any) -> datetime:
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _opt_datetime(value: Any) -> datetime | None:
    return None if value in (None, "") else _datetime(value)


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"{value!r} is not an amount")
    return Decimal(str(value))


def customer_from_json(data: dict[str, Any]) -> Customer:
    birth = data.get("birth_date")
    return Customer(
        id=str(data["id"]),
        name=str(data["name"]),
        phone=_opt_str(data, "phone"),
        email=_opt_str(data, "email"),
        postcode=_opt_str(data, "postcode"),
        birth_date=date.fromisoformat(str(birth)) if birth else None,
        language=_opt_str(data, "language"),
    )


def order_from_json(data: dict[str, Any]) -> Order:
    items = data.get("items") or []
    if not isinstance(items, list):
        raise TypeError("items must be a list")
    return Order(
        id=str(data["id"]),
        customer_id=str(data["customer_id"]),
        status=str(data["status"]),
        delivery_address=str(data["delivery_address"]),
        items=tuple(str(i) for i in items),
        total=None if data.get("total") is None else _decimal(data["total"]),
        currency=str(data.get("currency") or "EUR"),
        updated_at=_opt_datetime(data.get("updated_at")),
        tracking_url=_opt_str(data, "tracking_url"),
    )


def appointment_from_json(data: dict[str, Any]) -> Appointment:
    return Appointment(
        id=str(data["id"]),
        customer_id=str(data["customer_id"]),
        starts_at=_datetime(data["starts_at"]),
        status=AppointmentStatus(str(data["status"]).lower()),
        service=str(data.get("service") or ""),
        location=str(data.get("location") or ""),
    )


def invoice_from_json(data: dict[str, Any]) -> Invoice:
    return Invoice(
        id=str(data["id"]),
        customer_id=str(data["customer_id"]),
        amount=_decimal(data["amount"]),
        currency=str(data["currency"]),
        due_date=date.fromisoformat(str(data["due_date"])),
        status=str(data["status"]),
        paid_at=_opt_datetime(data.get("paid_at")),
    )


def ticket_from_json(data: dict[str, Any]) -> Ticket:
    fields = data.get("fields") or {}
    if not isinstance(fields, dict):
        raise TypeError("fields must be an object")
    return Ticket(
        id=str(data["id"]),
        customer_id=_opt_str(data, "customer_id"),
        subject=str(data["subject"]),
        body=str(data["body"]),
        created_at=_datetime(data["created_at"]),
        fields=fields,
    )
