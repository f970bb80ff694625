"""Time the web page's pages against the JSON API's equivalents on a loaded database.

    uv run python services/admin-api/benchmarks/load_and_query.py        # load 1,000,000 first
    uv run python services/admin-api/benchmarks/web_pages.py

Reads the `admin_api_bench` database that `load_and_query.py` leaves behind (it only
reads). Each page goes through the app's whole HTTP stack in process (httpx ASGI
transport, signed in with a session cookie); the JSON API call that fetches the same rows
is measured in the same process as the baseline, so the ratio is the cost of the page
(templates, names of the page's patients, weekly queries) on top of the shared queries.
"""

from __future__ import annotations

import asyncio
import random
import re
import secrets
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import func, select

from admin_api import domain
from admin_api.adapters.tables import appointments, patients
from admin_api.app import create_app
from admin_api.settings import Settings
from admin_api.web.session import SESSION_COOKIE, SIGN_IN_COOKIE
from reminder_runtime.db import make_engine, make_session_factory, transaction

URL = "mysql+pymysql://root@127.0.0.1:3306/admin_api_bench?charset=utf8mb4"
ZONE = ZoneInfo("America/New_York")  # as load_and_query.py
TOKEN = secrets.token_urlsafe(24)

Call = Callable[[int], Awaitable[httpx.Response]]


async def timed(count: int, call: Call) -> tuple[float, float]:
    await call(0)  # warm up
    samples = []
    for i in range(count):
        start = time.perf_counter()
        response = await call(i)
        samples.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (response.status_code, response.text[:300])
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


async def main() -> None:
    settings = Settings(
        environment="test",
        database_url=URL,
        admin_api_tokens=f"admin:{TOKEN}",
        clinic_timezone=str(ZONE),
        log_level="WARNING",
    )
    engine = make_engine(URL)
    with transaction(make_session_factory(engine)) as session:
        total = session.execute(select(func.count()).select_from(appointments)).scalar_one()
        if not total:
            raise SystemExit("admin_api_bench is empty: run load_and_query.py first")
        deep = session.execute(
            select(appointments.c.starts_at, appointments.c.id)
            .order_by(appointments.c.starts_at, appointments.c.id)
            .offset(total // 2)
            .limit(1)
        ).one()
        ids = list(session.execute(select(appointments.c.id).limit(5000)).scalars())
        names = list(session.execute(select(patients.c.name).distinct().limit(50)).scalars())
    engine.dispose()
    deep_cursor = domain.encode_cursor(deep.starts_at, deep.id)
    rng = random.Random(1)
    detail_ids = [rng.choice(ids) for _ in range(300)]
    today = datetime.now(UTC).astimezone(ZONE).date()
    deep_day = deep.starts_at.astimezone(ZONE).date()

    app = create_app(settings)  # no lifespan: the routes only need the database
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(
            transport=transport,
            base_url="http://bench",
            headers={"Authorization": f"Bearer {TOKEN}"},
        ) as api,
        httpx.AsyncClient(transport=transport, base_url="http://bench") as web,
    ):
        form = await web.get("/sign-in")
        nonce = re.search(r'name="nonce" value="([^"]+)"', form.text)
        assert nonce
        signed = await web.post(
            "/sign-in",
            data={"token": TOKEN, "nonce": nonce.group(1), "next": "/"},
            headers={"Cookie": f"{SIGN_IN_COOKIE}={nonce.group(1)}"},
        )
        cookie = {"Cookie": f"{SESSION_COOKIE}={signed.cookies[SESSION_COOKIE]}"}

        def page(path: str, params: dict[str, str] | None = None) -> Call:
            return lambda i: web.get(path, params=params, headers=cookie)

        week_ago = (today - timedelta(days=83)).isoformat()
        rows: list[tuple[str, Call, str, Call, int]] = [
            (
                "/ (today and upcoming, 25)",
                page("/"),
                "/v1/appointments?from=today&limit=25",
                lambda i: api.get(
                    "/v1/appointments",
                    params={
                        "from": datetime.combine(today, datetime.min.time(), ZONE).isoformat(),
                        "limit": "25",
                    },
                ),
                200,
            ),
            (
                f"/?cursor= (deep: row {total // 2:,})",
                page("/", {"from": deep_day.isoformat(), "cursor": deep_cursor}),
                "/v1/appointments?cursor= (25)",
                lambda i: api.get(
                    "/v1/appointments", params={"cursor": deep_cursor, "limit": "25"}
                ),
                200,
            ),
            (
                "/?status=confirmed&from= (filtered)",
                page("/", {"status": "confirmed", "from": week_ago}),
                "/v1/appointments?status=confirmed&from=",
                lambda i: api.get(
                    "/v1/appointments",
                    params={
                        "status": "confirmed",
                        "from": datetime.combine(
                            today - timedelta(days=83), datetime.min.time(), ZONE
                        ).isoformat(),
                        "limit": "25",
                    },
                ),
                200,
            ),
            (
                "/?q= (search by name)",
                lambda i: web.get("/", params={"q": names[i % len(names)]}, headers=cookie),
                "/v1/patients?q=",
                lambda i: api.get("/v1/patients", params={"q": names[i % len(names)]}),
                100,
            ),
            (
                "/appointments/{id} (detail, timeline)",
                lambda i: web.get(f"/appointments/{detail_ids[i]}", headers=cookie),
                "/v1/appointments/{id}",
                lambda i: api.get(f"/v1/appointments/{detail_ids[i]}"),
                300,
            ),
            (
                "/analytics (12 weeks, weekly split)",
                page("/analytics"),
                "/v1/stats (the same 84 days)",
                lambda i: api.get(
                    "/v1/stats",
                    params={
                        "from": str(today - timedelta(days=today.weekday() + 77)),
                        "to": str(today + timedelta(days=6 - today.weekday())),
                    },
                ),
                30,
            ),
        ]
        print(f"\nadmin-api web pages, {total:,} appointments in MariaDB (in-process ASGI)\n")
        print("| page | n | p50 ms | p99 ms | JSON API baseline | p50 ms | p99 ms | p50 ratio |")
        print("|---|---:|---:|---:|---|---:|---:|---:|")
        for name, call, base_name, base_call, count in rows:
            base50, base99 = await timed(count, base_call)
            p50, p99 = await timed(count, call)
            print(
                f"| {name} | {count} | {p50:.1f} | {p99:.1f} | {base_name} | {base50:.1f} "
                f"| {base99:.1f} | {p50 / base50:.2f}x |"
            )


def run() -> Any:
    return asyncio.run(main())


if __name__ == "__main__":
    run()
