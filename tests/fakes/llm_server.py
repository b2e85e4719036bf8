"""A local OpenAI-compatible chat-completions stub on 127.0.0.1 (streaming included).

Tests script its answers: `stub.replies.append("text")` is returned for the next request;
`stub.delay_s` makes it slow (for timeout tests); `stub.fail_status` makes it answer an error.
Every request body is kept in `stub.requests`.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


class LLMStub:
    def __init__(self) -> None:
        self.replies: list[str] = []
        self.requests: list[dict[str, Any]] = []
        self.delay_s = 0.0
        self.fail_status: int | None = None
        self.port = 0
        self.app = Starlette(routes=[Route("/v1/chat/completions", self._complete, methods=["POST"])])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def _complete(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(body)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.fail_status:
            return JSONResponse({"error": {"message": "stub failure"}}, status_code=self.fail_status)
        text = self.replies.pop(0) if self.replies else "none"
        created = int(time.time())
        if body.get("stream"):
            return StreamingResponse(
                self._stream(text, body["model"], created), media_type="text/event-stream"
            )
        return JSONResponse(
            {
                "id": "chatcmpl-stub",
                "object": "chat.completion",
                "created": created,
                "model": body["model"],
                "choices": [
                    {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
        )

    async def _stream(self, text: str, model: str, created: int) -> AsyncIterator[bytes]:
        for word in text.split(" "):
            chunk = {
                "id": "chatcmpl-stub",
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": {"content": word + " "}, "finish_reason": None}],
            }
            yield f"data: {json.dumps(chunk)}\n\n".encode()
        yield b"data: [DONE]\n\n"


@asynccontextmanager
async def running_llm_stub() -> AsyncIterator[LLMStub]:
    """Serve the stub on 127.0.0.1, on a port the OS picks (read back, never released)."""
    stub = LLMStub()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    stub.port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(stub.app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield stub
    finally:
        server.should_exit = True
        await task
        sock.close()
