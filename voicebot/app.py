"""create_app(settings): the FastAPI application and the lifespan that starts and drains the runtime."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voicebot import __version__, metrics
from voicebot.api import auth as auth_routes
from voicebot.api import campaigns as campaign_routes
from voicebot.api import chat as chat_routes
from voicebot.api import dashboard as dashboard_routes
from voicebot.api import desk as desk_routes
from voicebot.api import email as email_routes
from voicebot.api import knowledge as knowledge_routes
from voicebot.api import live as live_routes
from voicebot.api import live_calls as live_call_routes
from voicebot.api import ops as ops_routes
from voicebot.api import review as review_routes
from voicebot.config import Settings
from voicebot.errors import RateLimitedError, VoicebotError
from voicebot.inbound import sip_routes
from voicebot.inbound import twilio as twilio_routes
from voicebot.inbound import webrtc as webrtc_routes
from voicebot.runtime import Runtime

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "web" / "static"
MAX_BODY_BYTES = 1 << 20


def error_body(code: str, message: str, **extra: object) -> dict[str, object]:
    return {"error": {"code": code, "message": message, **extra}}


class BodyLimit:
    """Refuse request bodies over MAX_BODY_BYTES without holding more than that in memory, and JSON
    bodies that are not UTF-8, each with a clear error before any route sees them.

    A declared Content-Length is checked first; a body sent without one (chunked) is counted as it
    arrives. The (bounded) body is then replayed to the application.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH", "DELETE"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
            await self._too_large(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        content_type = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
        if content_type.endswith(b"json"):
            try:
                body.decode("utf-8")
            except UnicodeDecodeError as exc:
                message_text = f"the request body is not valid UTF-8 (byte {exc.start}); send UTF-8 JSON"
                response = JSONResponse(error_body("invalid_request", message_text), 422)
                await response(scope, receive, send)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _too_large(scope: Scope, receive: Receive, send: Send) -> None:
        text = f"request bodies are limited to {MAX_BODY_BYTES} bytes"
        await JSONResponse(error_body("too_large", text), 413)(scope, receive, send)


class AuditTrail:
    """Every request that changes something, made by a logged-in user or a token, leaves an audit
    row: who, what (method and path), and how it ended (the status). Routes record their own,
    richer entries for the actions that matter (taking a handoff, approving a draft...)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH", "DELETE"):
            await self.app(scope, receive, send)
            return
        status = 500

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            principal = scope.get("state", {}).get("principal")
            if principal is not None:
                runtime = scope["app"].state.runtime
                try:
                    await runtime.audit.record(
                        tenant_id=runtime.tenant.id,
                        actor=principal.username,
                        action="api.request",
                        now=runtime.clock(),
                        details={"method": scope["method"], "path": scope["path"], "status": status},
                    )
                except Exception:  # the audit must not turn a done action into an error
                    log.exception("audit: the request could not be recorded")


def _problem(error: Mapping[str, Any]) -> dict[str, str]:
    """One validation problem as {"field", "message"}; a JSON syntax error names its position."""
    if error.get("type") == "json_invalid":
        position = error["loc"][-1] if error.get("loc") else "?"
        detail = (error.get("ctx") or {}).get("error", "syntax error")
        return {"field": "body", "message": f"the body is not valid JSON: {detail} at position {position}"}
    field = ".".join(str(p) for p in error["loc"] if p != "body") or "body"
    return {"field": field, "message": error["msg"]}


async def _start_email(runtime: Runtime, settings: Settings) -> Any:
    """The e-mail bot of the tenant: IMAP mailboxes, the optional SMTP listener, replies by SMTP."""
    from voicebot.text_channels.email_service import EmailService
    from voicebot.text_channels.email_smtp import SmtpMailer

    config = runtime.tenant.email
    assert config.smtp is not None  # validated: an enabled e-mail bot has an smtp section
    service = EmailService(runtime, config, mailer=SmtpMailer(config.smtp))
    try:
        await service.start(reuse_port=settings.sip_reuse_port)
    except OSError as exc:
        await service.stop()
        log.error("e-mail: %s; change email.listener.port or run with --no-email", exc)
        raise
    return service


async def _start_campaigns(app: FastAPI, runtime: Runtime, settings: Settings, sip: Any) -> Any:
    """Outbound campaigns dial by the tenant's ``voice.campaign_dialer``: through the SIP server
    (without one, running campaigns wait) or Twilio's REST API (webhooks on this app)."""
    if not settings.campaigns:
        return None
    from voicebot.outbound.engine import Dialer
    from voicebot.outbound.service import CampaignService

    voice = runtime.tenant.voice
    dialer: Dialer
    if voice.campaign_dialer == "twilio":
        from voicebot.inbound.twilio import outbound_calls
        from voicebot.outbound.twilio_dialer import TwilioDialer

        assert voice.public_url is not None  # VoiceConfig requires it with the twilio dialer
        dialer = TwilioDialer(
            runtime,
            outbound_calls(app),
            app.state.carrier_http,
            public_url=voice.public_url,
            api_base=voice.twilio_api_base,
        )
    elif sip is None:
        log.info("campaigns: no dialer (SIP is off); running campaigns wait until a process with SIP runs")
        return None
    else:
        from voicebot.inbound.sip import SipServer
        from voicebot.outbound.sip_dialer import SipDialer

        # calls go out from a SIP port of this process alone: with several workers sharing the
        # listening port (SO_REUSEPORT), the answers to one worker's INVITE could reach another
        outbound = SipServer(runtime, host=settings.host, port=0, register=False)
        await outbound.start()
        app.state.campaign_sip = outbound
        dialer = SipDialer(outbound)
    service = CampaignService(runtime, dialer, settings)
    await service.start()
    return service


async def _warm_dashboard(runtime: Runtime) -> None:
    """Compute the dashboard's daily rollups in the background once the server is up (on a large
    database the first 90-day view would otherwise wait for them: seconds, not milliseconds)."""
    await asyncio.sleep(2.0)  # after start-up's own work
    try:
        days = await runtime.metrics.warm_rollups(runtime.tenant.id, now=runtime.clock())
    except Exception:  # the dashboard computes what is missing on its first read anyway
        log.warning("dashboard: the rollups were not prepared in advance", exc_info=True)
        return
    if days:
        log.info("dashboard: %d days of rollups prepared", days)


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    settings = settings or Settings()
    runtime = runtime or Runtime(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        log.info("voicebot %s serving tenant %s", __version__, runtime.tenant.id)
        # one HTTP client for carrier REST calls (transfers, hang-ups), unless one was injected
        owned = None
        if getattr(app.state, "carrier_http", None) is None:
            app.state.carrier_http = owned = httpx.AsyncClient(timeout=10.0)
        sip = None
        if settings.sip_port is not None:
            from voicebot.inbound.sip import SipServer

            sip = SipServer(
                runtime, host=settings.host, port=settings.sip_port, reuse_port=settings.sip_reuse_port
            )
            try:
                await sip.start()
            except OSError as exc:
                log.error("%s; choose another port with --sip-port P, or --no-sip", exc)
                await runtime.stop()
                raise
        app.state.sip = sip
        app.state.email = None
        if settings.email and runtime.tenant.email.enabled:
            try:
                app.state.email = await _start_email(runtime, settings)
            except BaseException:
                if sip is not None:
                    await sip.stop()
                await runtime.stop()
                raise
        try:
            app.state.campaigns = await _start_campaigns(app, runtime, settings, sip)
        except BaseException:
            if app.state.email is not None:
                await app.state.email.stop()
            if sip is not None:
                await sip.stop()
            await runtime.stop()
            raise
        warm = asyncio.create_task(_warm_dashboard(runtime), name="dashboard-warm-up")
        try:
            yield
        finally:
            warm.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await warm
            if app.state.campaigns is not None:
                await app.state.campaigns.stop()
            if getattr(app.state, "campaign_sip", None) is not None:
                await app.state.campaign_sip.stop()
            if app.state.email is not None:
                await app.state.email.stop()
            if sip is not None:
                await sip.stop()
            if owned is not None:
                await owned.aclose()
            await runtime.stop()

    app = FastAPI(title="voicebot", version=__version__, lifespan=lifespan)
    app.state.runtime = runtime
    app.add_middleware(AuditTrail)
    app.add_middleware(BodyLimit)

    @app.exception_handler(VoicebotError)
    async def voicebot_error(request: Request, exc: VoicebotError) -> JSONResponse:
        if exc.http_status in (413, 422):
            route = request.scope.get("route")
            metrics.INPUT_ERRORS.labels(endpoint=getattr(route, "path", "?")).inc()
        code = type(exc).__name__.removesuffix("Error").lower() or "error"
        headers = {}
        if exc.http_status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="voicebot"'
        if isinstance(exc, RateLimitedError):
            headers["Retry-After"] = str(exc.retry_after)
        body = error_body(code, exc.message, retryable=exc.retryable)
        return JSONResponse(body, exc.http_status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [_problem(e) for e in exc.errors()]
        first = problems[0] if problems else {"field": "body", "message": "invalid request"}
        message = f"{first['field']}: {first['message']}"
        return JSONResponse(error_body("invalid_request", message, problems=problems), 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(error_body("http_error", str(exc.detail)), exc.status_code)

    app.include_router(auth_routes.router)
    app.include_router(live_routes.router)
    app.include_router(live_call_routes.router)
    app.include_router(chat_routes.router)
    app.include_router(desk_routes.router)
    app.include_router(ops_routes.router)
    app.include_router(dashboard_routes.router)
    app.include_router(email_routes.router)
    app.include_router(campaign_routes.router)
    app.include_router(review_routes.router)
    app.include_router(knowledge_routes.router)
    app.include_router(twilio_routes.router)
    app.include_router(webrtc_routes.router)
    app.include_router(sip_routes.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def app_from_environment() -> FastAPI:
    """The app of one worker process of `voicebot serve --workers N` (settings from VOICEBOT_*)."""
    from voicebot.logs import setup_logging

    settings = Settings()
    setup_logging(settings.log_level)
    return create_app(settings)
