"""The admin API application: commands, queries, the projection consumer, the outbox relay."""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI

from reminder_runtime.db import make_engine, make_session_factory
from reminder_runtime.kafka import make_broker
from reminder_runtime.logging import configure_logging
from reminder_runtime.migrations import upgrade
from reminder_runtime.relay import OutboxRelay
from reminder_runtime.service import build_app

from . import api, handlers, web
from .adapters.projection import Projector, subscribe_projection
from .adapters.tables import messaging
from .settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"
log = logging.getLogger(__name__)


def migrate(settings: Settings) -> None:
    upgrade(MIGRATIONS, settings.database_url)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_logging(settings.service_name, settings.log_level)
    # uvicorn's access log prints query strings (`?phone=`, `?q=`: PHI); ours does not.
    logging.getLogger("uvicorn.access").disabled = True
    if settings.is_dev and not settings.admin_api_tokens.strip():
        # Development only (production refuses to start without ADMIN_API_TOKENS).
        (token,) = settings.tokens
        print(f"admin-api development token (admin role): {token}", flush=True)  # noqa: T201
    engine = make_engine(settings.database_url)
    session_factory = make_session_factory(engine)
    broker = make_broker(settings)
    relay = OutboxRelay(session_factory, messaging, broker, settings)
    subscribe_projection(broker, settings, Projector(session_factory, settings.clinic_zone))
    app = build_app(
        settings=settings,
        broker=broker,
        engine=engine,
        workers=[relay],
        routers=[api.router],
        migrate=lambda: migrate(settings),
        consumer_groups=[handlers.CONSUMER],
        title="Patient reminders: admin API",
        description=(
            "Clinics register patients and appointments and see every reminder's outcome. "
            "Authenticate with `Authorization: Bearer <token>`."
        ),
        version="1",
    )
    app.state.admin = api.AdminService(
        settings=settings,
        session_factory=session_factory,
        context=handlers.CommandContext(
            phone_region=settings.default_phone_region, clinic_zone=settings.clinic_zone
        ),
        wake_relay=relay.wake,
    )
    api.install_error_handlers(app)
    api.install_access_log(app)
    # the clinic's web page: routes, static files, sign-in redirects (over the same service)
    web.install(app)
    return app
