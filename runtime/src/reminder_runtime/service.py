"""One FastAPI app per service: operations endpoints, and the lifespan that starts and
stops the broker, the outbox relay and background workers (uvicorn turns SIGTERM into a
graceful lifespan shutdown)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol

from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import JSONResponse
from faststream.kafka import KafkaBroker
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import Engine

from reminder_contracts.topics import ALL_TOPICS, dead_letter_topic

from .db import ping
from .kafka import ensure_topics
from .settings import ServiceSettings

log = logging.getLogger(__name__)


class BackgroundWorker(Protocol):
    """Anything the service runs beside its consumers: started after the broker, stopped before."""

    def start(self) -> None: ...

    async def stop(self) -> None: ...

    @property
    def healthy(self) -> bool: ...


async def _start_broker(broker: KafkaBroker, attempts: int = 10) -> None:
    # The broker may still be starting (compose, the dev runner): retry for a while.
    for attempt in range(1, attempts + 1):
        try:
            await broker.start()
            return
        except Exception as exc:
            if attempt == attempts:
                raise
            log.warning("broker not reachable yet", extra={"error": type(exc).__name__})
            await asyncio.sleep(min(5.0, 0.5 * attempt))


def build_app(
    *,
    settings: ServiceSettings,
    broker: KafkaBroker,
    engine: Engine,
    workers: Sequence[BackgroundWorker] = (),
    routers: Sequence[APIRouter] = (),
    migrate: Callable[[], None] | None = None,
    consumer_groups: Sequence[str] = (),
    title: str | None = None,
    **fastapi_kwargs: Any,
) -> FastAPI:
    """The service's app. `workers` typically holds the OutboxRelay and timers/loops."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if migrate is not None and settings.database_migrate_on_start:
            await asyncio.to_thread(migrate)
        if settings.kafka_create_topics:
            await ensure_topics(
                settings, [*ALL_TOPICS, *(dead_letter_topic(g) for g in consumer_groups)]
            )
        await _start_broker(broker)
        for worker in workers:
            worker.start()
        log.info("started", extra={"port": settings.http_port})
        try:
            yield
        finally:
            log.info("stopping")
            for worker in reversed(workers):
                await worker.stop()
            await broker.stop()
            engine.dispose()
            log.info("stopped")

    app = FastAPI(title=title or settings.service_name, lifespan=lifespan, **fastapi_kwargs)

    @app.get("/healthz", tags=["operations"], summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], summary="Database and broker are reachable")
    async def readyz() -> JSONResponse:
        checks: dict[str, str] = {}
        try:
            await asyncio.wait_for(asyncio.to_thread(ping, engine), timeout=3)
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"unreachable: {type(exc).__name__}"
        try:
            reachable = await broker.ping(timeout=3)
            checks["broker"] = "ok" if reachable else "unreachable"
        except Exception as exc:
            checks["broker"] = f"unreachable: {type(exc).__name__}"
        for worker in workers:
            checks[type(worker).__name__] = "ok" if worker.healthy else "stopped"
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    for router in routers:
        app.include_router(router)
    return app
