"""A Twilio-compatible carrier for tests, served on 127.0.0.1: the REST API's call creation and call
update, then for each created call what Twilio does next, by the called number's ``Callee``: status
callbacks, the answered call's webhook (signed, with ``AnsweredBy``), and the TwiML's media stream,
opened back to the server with tests/inbound/twilio_client.py."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx
import websockets
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.inbound.twilio_client import TwilioPeer
from voicebot.inbound.twilio import twilio_signature

Talk = Callable[[TwilioPeer], Awaitable[None]]
REQUIRED = ("To", "From", "Url", "StatusCallback", "Timeout", "MachineDetection", "AsyncAmd")
CALLBACK_EVENTS = {"initiated", "ringing", "answered", "completed"}


@dataclass(frozen=True)
class Callee:
    """How a called number behaves: a final status without an answer (``busy``, ``no-answer``,
    ``failed``), silence (``status=None`` and ``answered_by=None``: rings until cancelled), or an
    answer by ``answered_by`` whose stream ``talk`` plays."""

    status: str | None = None
    answered_by: str | None = None
    talk: Talk | None = None


@dataclass
class PlacedCall:
    sid: str
    form: dict[str, list[str]]
    twiml: str | None = None
    peer: TwilioPeer | None = None
    updates: list[dict[str, str]] = field(default_factory=list)  # Calls/{sid}.json: Status, Twiml
    ended: asyncio.Event = field(default_factory=asyncio.Event)


class FakeTwilio:
    def __init__(self, account_sid: str, auth_token: str, callees: dict[str, Callee]) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.callees = callees
        self.calls: list[PlacedCall] = []
        self.refused: list[dict[str, Any]] = []  # answers to requests we refused
        self._tasks: set[asyncio.Task[None]] = set()
        self.failures: list[BaseException] = []
        self._http = httpx.AsyncClient(timeout=10)
        prefix = "/2010-04-01/Accounts/{account}"
        self.app = Starlette(
            routes=[
                Route(prefix + "/Calls.json", self._create, methods=["POST"]),
                Route(prefix + "/Calls/{sid}.json", self._update, methods=["POST"]),
            ]
        )

    def call(self, sid: str) -> PlacedCall:
        return next(c for c in self.calls if c.sid == sid)

    async def idle(self, timeout: float = 15.0) -> None:
        """Until every call's progress (its last status callback) is done."""
        async with asyncio.timeout(timeout):
            while self._tasks:
                await asyncio.wait(list(self._tasks))

    async def close(self) -> None:
        """Stop what is still going on; a failed check of a call's progress fails the test here."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._http.aclose()
        if self.failures:
            raise self.failures[0]

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            self.failures.append(exc)

    def _error(self, status: int, code: int, message: str) -> JSONResponse:
        body = {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}"}
        self.refused.append(body)
        return JSONResponse({**body, "status": status}, status_code=status)

    def _authorized(self, request: Request) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return (
            request.path_params["account"] == self.account_sid
            and request.headers.get("authorization") == f"Basic {expected}"
        )

    async def _create(self, request: Request) -> Response:
        if not self._authorized(request):
            return self._error(401, 20003, "Authenticate")
        form = parse_qs((await request.body()).decode(), keep_blank_values=True)
        missing = [name for name in REQUIRED if not form.get(name)]
        if missing or set(form.get("StatusCallbackEvent", [])) != CALLBACK_EVENTS:
            return self._error(400, 21205, f"missing or wrong parameters: {missing or 'StatusCallbackEvent'}")
        callee = self.callees.get(form["To"][0])
        if callee is None:
            return self._error(400, 21211, f"The 'To' number {form['To'][0]} is not a valid phone number.")
        call = PlacedCall("CA" + uuid.uuid4().hex, form)
        self.calls.append(call)
        task = asyncio.create_task(self._progress(call, callee))
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return JSONResponse({"sid": call.sid, "status": "queued"}, status_code=201)

    async def _update(self, request: Request) -> Response:
        if not self._authorized(request):
            return self._error(401, 20003, "Authenticate")
        call = self.call(request.path_params["sid"])
        update = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        call.updates.append(update)
        if update.get("Status") in ("completed", "canceled"):
            call.ended.set()
        return JSONResponse({"sid": call.sid, "status": update.get("Status", "in-progress")})

    async def _post(self, url: str, params: dict[str, str]) -> httpx.Response:
        """A webhook request as Twilio signs it."""
        signature = twilio_signature(self.auth_token, url, params)
        return await self._http.post(url, data=params, headers={"X-Twilio-Signature": signature})

    async def _status(self, call: PlacedCall, status: str) -> None:
        params = self._params(call, CallStatus=status)
        response = await self._post(call.form["StatusCallback"][0], params)
        assert response.status_code == 204, response.text

    def _params(self, call: PlacedCall, **extra: str) -> dict[str, str]:
        return {
            "CallSid": call.sid,
            "AccountSid": self.account_sid,
            "From": call.form["From"][0],
            "To": call.form["To"][0],
            "Direction": "outbound-api",
            **extra,
        }

    async def _progress(self, call: PlacedCall, callee: Callee) -> None:
        await self._status(call, "initiated")
        await self._status(call, "ringing")
        if callee.status is not None:
            await self._status(call, callee.status)
            return
        if callee.answered_by is None:  # rings until cancelled
            await call.ended.wait()
            await self._status(call, "canceled")
            return
        response = await self._post(
            call.form["Url"][0], self._params(call, CallStatus="in-progress", AnsweredBy=callee.answered_by)
        )
        assert response.status_code == 200, response.text
        call.twiml = response.text
        stream = ET.fromstring(response.text).find("Connect/Stream")
        if stream is not None:
            url = stream.attrib["url"]
            parameters = {p.attrib["name"]: p.attrib["value"] for p in stream.findall("Parameter")}
            headers = {"X-Twilio-Signature": twilio_signature(self.auth_token, url, {})}
            call.peer = peer = await TwilioPeer.connect(
                url, call_sid=call.sid, parameters=parameters, additional_headers=headers
            )
            if callee.talk is not None:
                with contextlib.suppress(websockets.ConnectionClosed):  # the bot may hang up mid-sentence
                    await callee.talk(peer)
            await asyncio.wait_for(peer.closed.wait(), 30)
            await peer.close()
        await self._status(call, "completed")
