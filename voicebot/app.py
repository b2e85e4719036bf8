"""create_app(settings): the FastAPI application and the lifespan that starts and drains the runtime."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from voicebot import __version__, metrics
from voicebot.api import chat as chat_routes
from voicebot.api import ops as ops_routes
from voicebot.config import Settings
from voicebot.errors import VoicebotError
from voicebot.runtime import Runtime

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "web" / "static"
MAX_BODY_BYTES = 1 << 20


def error_body(code: str, message: str, **extra: object) -> dict[str, object]:
    return {"error": {"code": code, "message": message, **extra}}


class BodyLimit:
    """Refuse request bodies over MAX_BODY_BYTES before they are read into memory."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            length = dict(scope["headers"]).get(b"content-length")
            if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
                response = JSONResponse(
                    error_body("too_large", f"request bodies are limited to {MAX_BODY_BYTES} bytes"), 413
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    settings = settings or Settings()
    runtime = runtime or Runtime(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        log.info("voicebot %s serving tenant %s", __version__, runtime.tenant.id)
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(title="voicebot", version=__version__, lifespan=lifespan)
    app.state.runtime = runtime
    app.add_middleware(BodyLimit)

    @app.exception_handler(VoicebotError)
    async def voicebot_error(request: Request, exc: VoicebotError) -> JSONResponse:
        if exc.http_status in (413, 422):
            route = request.scope.get("route")
            metrics.INPUT_ERRORS.labels(endpoint=getattr(route, "path", "?")).inc()
        code = type(exc).__name__.removesuffix("Error").lower() or "error"
        return JSONResponse(error_body(code, exc.message, retryable=exc.retryable), exc.http_status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"field": ".".join(str(p) for p in e["loc"] if p != "body") or "body", "message": e["msg"]}
            for e in exc.errors()
        ]
        first = problems[0] if problems else {"field": "body", "message": "invalid request"}
        message = f"{first['field']}: {first['message']}"
        return JSONResponse(error_body("invalid_request", message, problems=problems), 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(error_body("http_error", str(exc.detail)), exc.status_code)

    app.include_router(chat_routes.router)
    app.include_router(ops_routes.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app
