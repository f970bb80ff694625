"""Serving a service's app for real (uvicorn, its lifespan, a TCP port) inside a test."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import uvicorn
from fastapi import FastAPI

from .helpers import free_port


@contextlib.asynccontextmanager
async def serve_app(
    app: FastAPI, port: int | None = None, startup_timeout: float = 60.0
) -> AsyncIterator[str]:
    """Run `app` with uvicorn in this event loop; yield its base URL; stop it gracefully.

    The lifespan runs as in production: broker, relay and workers start before the first
    request and stop, after in-flight work, when the block ends.
    """
    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_config=None, lifespan="on", access_log=False
        )
    )
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(startup_timeout):
            while not server.started and not task.done():  # noqa: ASYNC110 - uvicorn has no event
                await asyncio.sleep(0.05)
        if task.done():
            task.result()
            raise RuntimeError("the app did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=30)
