"""The inbound service's FastAPI app: POST /sns, the projection consumers, the outbox relay."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from inbound.adapters.consumers import GROUP_ID, subscribe_projections
from inbound.adapters.signature import (
    CertificateCache,
    CertificateFetcher,
    SignatureVerifier,
    https_certificate_fetcher,
)
from inbound.adapters.sns_endpoint import SnsEndpoint, sns_router
from inbound.adapters.tables import messaging
from inbound.settings import Settings
from reminder_runtime.db import make_engine, make_session_factory
from reminder_runtime.kafka import make_broker
from reminder_runtime.migrations import upgrade
from reminder_runtime.relay import OutboxRelay
from reminder_runtime.service import build_app

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"


class _EndpointCloser:
    """Closes the endpoint's httpx client and reply threads when the app stops."""

    def __init__(self, client: httpx.AsyncClient, endpoint: SnsEndpoint) -> None:
        self.client = client
        self.endpoint = endpoint

    def start(self) -> None:
        pass

    async def stop(self) -> None:
        await self.client.aclose()
        await asyncio.to_thread(self.endpoint.close)

    @property
    def healthy(self) -> bool:
        return not self.client.is_closed


def create_app(
    settings: Settings | None = None,
    *,
    http_client: httpx.AsyncClient | None = None,
    certificate_fetcher: CertificateFetcher | None = None,
) -> FastAPI:
    """The app. `http_client` (SubscribeURL visits) and `certificate_fetcher` default to
    real HTTPS; tests inject stand-ins because AWS is not reachable from them."""
    settings = settings or Settings()
    if not settings.sns_verify_signatures:
        log.warning(
            "SNS SIGNATURE VERIFICATION IS OFF (SNS_VERIFY_SIGNATURES=false, ENVIRONMENT=dev): "
            "anyone can post forged replies"
        )
    # One connection per reply thread, plus the relay's and the consumers' (SQLite: no pool).
    pool: dict[str, Any] = {}
    if make_url(settings.database_url).get_backend_name() != "sqlite":
        pool["pool_size"] = settings.reply_worker_threads + 4
    engine = make_engine(settings.database_url, **pool)
    session_factory = make_session_factory(engine)
    broker = make_broker(settings)
    relay = OutboxRelay(session_factory, messaging, broker, settings)
    subscribe_projections(broker, settings, session_factory)

    client = http_client or httpx.AsyncClient(timeout=settings.sns_http_timeout_seconds)
    certificates = CertificateCache(
        certificate_fetcher or https_certificate_fetcher(client),
        ttl_seconds=settings.sns_cert_cache_ttl_seconds,
        max_entries=settings.sns_cert_cache_size,
    )
    endpoint = SnsEndpoint(
        settings=settings,
        session_factory=session_factory,
        verifier=SignatureVerifier(certificates),
        http_client=client,
        on_recorded=relay.wake,
    )
    app = build_app(
        settings=settings,
        broker=broker,
        engine=engine,
        workers=[relay, _EndpointCloser(client, endpoint)],
        routers=[sns_router(endpoint)],
        migrate=lambda: upgrade(MIGRATIONS, settings.database_url),
        consumer_groups=[GROUP_ID],
        title="inbound",
        description="Patients' SMS replies, delivered by SNS, become events.",
    )
    app.state.sns_endpoint = endpoint
    return app
