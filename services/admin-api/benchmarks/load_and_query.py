"""Load N appointments (default 1,000,000) with their events into MariaDB, then time the
list (first page, deep cursor, filtered), detail and stats endpoints through the app's
HTTP stack, and the projection handler's throughput on a smaller sample.

    uv run python services/admin-api/benchmarks/load_and_query.py            # 1,000,000
    uv run python services/admin-api/benchmarks/load_and_query.py -n 100000 --reuse

The database (`admin_api_bench` on 127.0.0.1:3306, root) is dropped and re-created unless
`--reuse` finds it already loaded with N appointments. Histories are realistic: every
appointment is scheduled; those in the past were reminded (sent, failed or skipped),
answered YES / NO or not at all, sometimes cancelled, and attended or not. The bulk load
writes the projection's own rows (each appointment's events and the summary row folded
from them by the same code the projection uses); a sample of the loaded rows is re-folded
from the stored events and compared, so the bulk rows are what the projection would write.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import httpx
import pymysql
from sqlalchemy import Engine, func, insert, select, text
from sqlalchemy.orm import Session, sessionmaker

from admin_api import domain, handlers
from admin_api.adapters.projection import Projector
from admin_api.adapters.tables import appointment_events, appointments, messaging, patients
from admin_api.app import create_app, migrate
from admin_api.settings import Settings
from reminder_contracts import (
    AppointmentCancelled,
    AppointmentConfirmed,
    AppointmentDeclined,
    AppointmentScheduled,
    AttendanceRecorded,
    Event,
    PatientSnapshot,
    ReminderDue,
    ReminderFailed,
    ReminderSent,
    ReminderSkipped,
    decode,
    encode,
    reminder_id_for,
)
from reminder_runtime.db import make_engine, make_session_factory, transaction

DATABASE = "admin_api_bench"
SERVER = "mysql+pymysql://root@127.0.0.1:3306"
ZONE = ZoneInfo("America/New_York")
TOKEN = secrets.token_urlsafe(24)
NAMES = ["Ada Lovelace", "Grace Hopper", "Alan Turing", "Katherine Johnson", "Edsger Dijkstra"]
PHONES = ["+12025550143", "+12025550178", "+34612345678", "+33612345678"]


# --------------------------------------------------------------------------- histories


def _construct(cls: type[Event], **fields: Any) -> Any:
    # Validation of a million phone numbers would dominate the load; the values here are
    # known-valid, and a sample is decoded (fully validated) after the load.
    return cls.model_construct(event_id=uuid4(), correlation_id=uuid4(), **fields)


def ascending_uuid4(counter: int) -> UUID:
    """A random UUID4 whose last 48 bits count up: MariaDB orders its UUID type by the
    last group first, so rows keyed by these append to the index instead of landing at
    random pages. Only the bulk load uses them (the projection is timed with uuid4)."""
    return UUID(int=(uuid4().int & ~((1 << 48) - 1)) | counter)


def make_patient(rng: random.Random, patient_id: UUID | None = None) -> PatientSnapshot:
    return PatientSnapshot.model_construct(
        patient_id=patient_id or uuid4(),
        patient_version=1,
        name=rng.choice(NAMES),
        phone=rng.choice(PHONES),
        language=rng.choice(("en", "en", "en", "es", "fr")),
        timezone="America/New_York",
    )


def history(
    rng: random.Random,
    patient: PatientSnapshot,
    now: datetime,
    appointment_id: UUID | None = None,
) -> list[Event]:
    """One appointment's events, as the four services would have produced them."""
    starts_at = now + timedelta(minutes=rng.randrange(-540 * 24 * 60, 180 * 24 * 60))
    starts_at = starts_at.replace(second=0, microsecond=0)
    appointment_id, patient_id = appointment_id or uuid4(), patient.patient_id
    scheduled_at = starts_at - timedelta(days=rng.randint(2, 40))
    common = {"appointment_id": appointment_id, "patient_id": patient_id}
    events: list[Event] = [
        _construct(
            AppointmentScheduled,
            **common,
            version=1,
            starts_at=starts_at,
            location="Main St clinic",
            provider="Dr. Who",
            reminder_offsets_minutes=None,
            patient=patient,
            occurred_at=scheduled_at,
            producer="admin-api",
            event_type="AppointmentScheduled",
        )
    ]
    version = 1
    due_at = starts_at - timedelta(hours=24)
    if rng.random() < 0.05:  # cancelled, usually before the reminder
        version += 1
        events.append(
            _construct(
                AppointmentCancelled,
                **common,
                version=version,
                reason=None,
                occurred_at=min(now, due_at - timedelta(hours=rng.randint(1, 48))),
                producer="admin-api",
                event_type="AppointmentCancelled",
            )
        )
        return events
    if due_at > now:
        return events
    reminder_id = reminder_id_for(appointment_id, 1, 1440)
    reminder = {**common, "reminder_id": reminder_id, "appointment_version": 1}
    events.append(
        _construct(
            ReminderDue,
            **reminder,
            offset_minutes=1440,
            due_at=due_at,
            starts_at=starts_at,
            location="Main St clinic",
            provider="Dr. Who",
            patient=patient,
            occurred_at=due_at,
            producer="scheduler",
            event_type="ReminderDue",
        )
    )
    sent_at = due_at + timedelta(seconds=rng.randint(1, 90))
    outcome = rng.random()
    if outcome < 0.04:
        events.append(
            _construct(
                ReminderFailed,
                **reminder,
                error_code="InvalidParameter",
                error="invalid phone number",
                retryable=False,
                occurred_at=sent_at,
                producer="sender",
                event_type="ReminderFailed",
            )
        )
        return events
    if outcome < 0.07:
        events.append(
            _construct(
                ReminderSkipped,
                **reminder,
                reason="opted_out",
                occurred_at=sent_at,
                producer="sender",
                event_type="ReminderSkipped",
            )
        )
        return events
    events.append(
        _construct(
            ReminderSent,
            **reminder,
            sns_message_id=uuid4().hex,
            segments=rng.choice((1, 1, 1, 2)),
            encoding="GSM-7",
            language=patient.language,
            occurred_at=sent_at,
            producer="sender",
            event_type="ReminderSent",
        )
    )
    answer = rng.random()
    if answer < 0.70:
        received = sent_at + timedelta(seconds=int(rng.lognormvariate(7.5, 1.2)))
        if received < now:
            kind = AppointmentConfirmed if answer < 0.60 else AppointmentDeclined
            inbound = uuid4().hex
            events.append(
                _construct(
                    kind,
                    **common,
                    reply_id=uuid4(),
                    inbound_message_id=inbound,
                    phone=patient.phone,
                    received_at=received,
                    keyword="YES" if kind is AppointmentConfirmed else "NO",
                    language=patient.language,
                    reminder_id=reminder_id,
                    occurred_at=received + timedelta(seconds=1),
                    producer="inbound",
                    event_type=kind.model_fields["event_type"].default,
                )
            )
    if starts_at + timedelta(hours=2) < now and rng.random() < 0.9:
        version += 1
        events.append(
            _construct(
                AttendanceRecorded,
                **common,
                version=version,
                outcome="attended" if rng.random() < 0.88 else "no_show",
                occurred_at=starts_at + timedelta(hours=1),
                producer="admin-api",
                event_type="AttendanceRecorded",
            )
        )
    return events


# --------------------------------------------------------------------------- loading


def recreate_database() -> str:
    with (
        pymysql.connect(host="127.0.0.1", user="root", autocommit=True) as conn,
        conn.cursor() as cur,
    ):
        cur.execute(f"DROP DATABASE IF EXISTS `{DATABASE}`")
        cur.execute(
            f"CREATE DATABASE `{DATABASE}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
        )
    return url()


def url() -> str:
    return f"{SERVER}/{DATABASE}?charset=utf8mb4"


def database_exists() -> bool:
    with pymysql.connect(host="127.0.0.1", user="root") as conn, conn.cursor() as cur:
        cur.execute("SELECT 1 FROM information_schema.schemata WHERE schema_name=%s", (DATABASE,))
        return cur.fetchone() is not None


def batches(
    total: int, size: int, rng: random.Random, now: datetime
) -> Iterator[tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]]:
    made = patients_made = 0
    while made < total:
        count = min(size, total - made)
        patient_rows, event_rows, summary_rows = [], [], []
        roster = []
        for _ in range(max(1, count // 5)):
            patients_made += 1
            roster.append(make_patient(rng, ascending_uuid4(patients_made)))
        for patient in roster:
            patient_rows.append(
                {
                    "id": patient.patient_id,
                    "version": 1,
                    "name": patient.name,
                    "phone": patient.phone,
                    "language": patient.language,
                    "timezone": patient.timezone,
                    "registered_at": now - timedelta(days=600),
                    "updated_at": now - timedelta(days=600),
                }
            )
        for _ in range(count):
            made += 1
            events = history(rng, rng.choice(roster), now, ascending_uuid4(made))
            for event in events:
                event_rows.append(
                    {
                        "event_id": event.event_id,
                        "appointment_id": event.appointment_id,  # type: ignore[attr-defined]
                        "event_type": event.event_type,
                        "occurred_at": event.occurred_at,
                        "payload": encode(event).decode(),
                    }
                )
            view = domain.fold_appointment(events)
            assert view is not None
            summary_rows.append(handlers.summary_values(view, ZONE))
        yield patient_rows, event_rows, summary_rows


def bulk_load(engine: Engine, total: int, seed: int) -> tuple[int, float]:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    started = time.perf_counter()
    events = 0
    with engine.connect() as conn:
        conn.execute(text("SET unique_checks=0"))
        for n, (patient_rows, event_rows, summary_rows) in enumerate(
            batches(total, 5000, rng, now), start=1
        ):
            conn.execute(insert(patients), patient_rows)
            conn.execute(insert(appointment_events), event_rows)
            conn.execute(insert(appointments), summary_rows)
            conn.commit()
            events += len(event_rows)
            if n % 20 == 0:
                done = n * 5000
                rate = done / (time.perf_counter() - started)
                print(f"  loaded {done:,} appointments ({rate:,.0f}/s)", flush=True)
    return events, time.perf_counter() - started


def check_sample(factory: sessionmaker[Session], sample: list[UUID]) -> None:
    """The bulk rows equal what the projection computes from the stored (validated) events."""
    with transaction(factory) as session:
        for appointment_id in sample:
            payloads = session.execute(
                select(appointment_events.c.payload).where(
                    appointment_events.c.appointment_id == appointment_id
                )
            ).scalars()
            view = domain.fold_appointment([decode(p) for p in payloads])
            assert view is not None
            row = session.execute(
                select(appointments).where(appointments.c.id == appointment_id)
            ).one()
            expected = handlers.summary_values(view, ZONE)
            for key in ("status", "confirmation", "reminded", "reply_seconds", "local_day"):
                assert getattr(row, key) == expected[key], (appointment_id, key)


# --------------------------------------------------------------------------- timing


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered), p99


async def timed(
    name: str, count: int, call: Callable[[int], Awaitable[httpx.Response]]
) -> tuple[str, int, float, float]:
    await call(0)  # warm up
    samples = []
    for i in range(count):
        start = time.perf_counter()
        response = await call(i)
        samples.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (name, response.status_code, response.text[:300])
    p50, p99 = percentiles(samples)
    return name, count, p50, p99


async def measure_endpoints(settings: Settings, factory: sessionmaker[Session]) -> list[Any]:
    with transaction(factory) as session:
        total = session.execute(select(func.count()).select_from(appointments)).scalar_one()
        deep = session.execute(
            select(appointments.c.starts_at, appointments.c.id)
            .order_by(appointments.c.starts_at, appointments.c.id)
            .offset(total // 2)
            .limit(1)
        ).one()
        ids = list(
            session.execute(
                select(appointments.c.id).where(appointments.c.reminded.is_(True)).limit(20000)
            ).scalars()
        )
        patient_ids = list(session.execute(select(patients.c.id).limit(2000)).scalars())
    rng = random.Random(1)
    detail_ids = [rng.choice(ids) for _ in range(1000)]
    deep_cursor = domain.encode_cursor(deep.starts_at, deep.id)
    today = datetime.now(UTC).astimezone(ZONE).date()
    app = create_app(settings)  # no lifespan: the routes only need the database
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://bench", headers=headers
    ) as client:
        results = [
            await timed(
                "GET /healthz (baseline: HTTP stack, no database)",
                300,
                lambda i: client.get("/healthz"),
            ),
            await timed(
                "GET /v1/appointments (first page, 50)",
                300,
                lambda i: client.get("/v1/appointments"),
            ),
            await timed(
                f"GET /v1/appointments?cursor= (deep: row {total // 2:,})",
                300,
                lambda i: client.get("/v1/appointments", params={"cursor": deep_cursor}),
            ),
            await timed(
                "GET /v1/appointments?status=confirmed&from= (filtered)",
                300,
                lambda i: client.get(
                    "/v1/appointments",
                    params={
                        "status": "confirmed",
                        "from": (datetime.now(UTC) - timedelta(days=60 + i % 200)).isoformat(),
                    },
                ),
            ),
            await timed(
                "GET /v1/appointments?patient_id=",
                300,
                lambda i: client.get(
                    "/v1/appointments", params={"patient_id": str(patient_ids[i % 2000])}
                ),
            ),
            await timed(
                "GET /v1/appointments/{id} (detail + timeline)",
                500,
                lambda i: client.get(f"/v1/appointments/{detail_ids[i]}"),
            ),
            await timed(
                "GET /v1/stats (30 days)",
                100,
                lambda i: client.get(
                    "/v1/stats",
                    params={
                        "from": str(today - timedelta(days=29 + i % 30)),
                        "to": str(today - timedelta(days=i % 30)),
                    },
                ),
            ),
            await timed(
                "GET /v1/stats (365 days)",
                30,
                lambda i: client.get(
                    "/v1/stats", params={"from": str(today - timedelta(days=364)), "to": str(today)}
                ),
            ),
        ]
    return results


def measure_commit_baseline(factory: sessionmaker[Session], count: int = 300) -> float:
    """Transactions/s that write one row (an inbox entry) and commit: the disk's floor."""
    start = time.perf_counter()
    for _ in range(count):
        with transaction(factory) as session:
            messaging.inbox.first_time(session, consumer="bench-baseline", event_id=uuid4())
    return count / (time.perf_counter() - start)


def measure_projection(factory: sessionmaker[Session], count: int) -> tuple[int, float, float]:
    """Events/s through the real handler (inbox, fold, summary), one transaction each."""
    rng = random.Random(99)
    now = datetime.now(UTC)
    roster = [make_patient(rng) for _ in range(max(1, count // 5))]
    events: list[Event] = []
    for _ in range(count):
        events.extend(history(rng, rng.choice(roster), now))
    # as the consumer sees them: decoded from the wire, topics interleaved
    wire = [decode(encode(e)) for e in events]
    rng.shuffle(wire)
    projector = Projector(factory, ZONE)
    start = time.perf_counter()
    for event in wire:
        assert projector.apply(event)
    fresh = time.perf_counter() - start
    start = time.perf_counter()
    for event in wire[:2000]:
        assert not projector.apply(event)
    duplicates = time.perf_counter() - start
    return len(wire), len(wire) / fresh, min(2000, len(wire)) / duplicates


def server_facts(engine: Engine) -> str:
    with engine.connect() as conn:
        pool = conn.execute(text("SELECT @@innodb_buffer_pool_size")).scalar_one()
        sizes = conn.execute(
            text(
                "SELECT table_name, (data_length + index_length) / 1048576 FROM "
                "information_schema.tables WHERE table_schema = :db AND table_name IN "
                "('appointments', 'appointment_events') ORDER BY table_name"
            ),
            {"db": DATABASE},
        ).all()
    tables = ", ".join(f"{name} {float(mb):,.0f} MiB" for name, mb in sizes)
    return f"MariaDB buffer pool {int(pool) // 1048576} MiB; {tables}"


def explain(engine: Engine) -> list[str]:
    queries = {
        "list": "SELECT id FROM appointments ORDER BY starts_at, id LIMIT 51",
        "stats": "SELECT local_day, COUNT(*), SUM(segments_sent) FROM appointments "
        "WHERE local_day BETWEEN '2026-01-01' AND '2026-01-30' GROUP BY local_day",
    }
    lines = []
    with engine.connect() as conn:
        for name, sql in queries.items():
            row = conn.execute(text(f"EXPLAIN {sql}")).mappings().one()
            lines.append(f"{name}: key={row['key']} type={row['type']} extra={row['Extra']}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--appointments", type=int, default=1_000_000)
    parser.add_argument("--reuse", action="store_true", help="keep a loaded database")
    parser.add_argument("--projection-sample", type=int, default=1000, help="appointments")
    args = parser.parse_args()

    settings = Settings(
        environment="test",
        database_url=url(),
        admin_api_tokens=f"admin:{TOKEN}",
        clinic_timezone=str(ZONE),
        log_level="WARNING",
    )
    engine = make_engine(url())
    factory = make_session_factory(engine)
    loaded = 0
    if args.reuse and database_exists():
        with engine.connect() as conn:
            loaded = conn.execute(select(func.count()).select_from(appointments)).scalar_one()
    if loaded != args.appointments:
        engine.dispose()
        recreate_database()
        migrate(settings)
        print(f"loading {args.appointments:,} appointments ...", flush=True)
        events, seconds = bulk_load(engine, args.appointments, seed=42)
        print(
            f"bulk load: {args.appointments:,} appointments, {events:,} events in {seconds:,.0f} s",
            flush=True,
        )
        with engine.connect() as conn:
            conn.execute(text("ANALYZE TABLE appointments, appointment_events, patients"))
    with transaction(factory) as session:
        sample = list(
            session.execute(select(appointments.c.id).order_by(func.rand()).limit(200)).scalars()
        )
    check_sample(factory, sample)

    results = asyncio.run(measure_endpoints(settings, factory))
    baseline = results[0][2]
    print()
    print(
        f"{args.appointments:,} appointments in MariaDB; clinic zone {ZONE}; "
        "through the app's HTTP stack (httpx ASGI transport, no network)"
    )
    print()
    print("| endpoint | requests | p50 ms | p99 ms | p50 / baseline |")
    print("|---|---:|---:|---:|---:|")
    for name, count, p50, p99 in results:
        print(f"| {name} | {count} | {p50:.2f} | {p99:.2f} | {p50 / baseline:.1f}x |")

    baseline_rate = measure_commit_baseline(factory)
    count, rate, duplicate_rate = measure_projection(factory, args.projection_sample)
    print()
    print(
        "| projection (real handler, one transaction per event, into the loaded tables) "
        "| events | events/s | / baseline |"
    )
    print("|---|---:|---:|---:|")
    print(
        f"| baseline: a transaction writing one row, committed | 300 | {baseline_rate:,.0f} "
        "| 1.00 |"
    )
    print(
        f"| new events, topics interleaved | {count:,} | {rate:,.0f} | {rate / baseline_rate:.2f} |"
    )
    print(
        f"| duplicates (dropped by the inbox) | {min(2000, count):,} | {duplicate_rate:,.0f} "
        f"| {duplicate_rate / baseline_rate:.2f} |"
    )
    print()
    for line in explain(engine):
        print(f"EXPLAIN {line}")
    engine.dispose()


if __name__ == "__main__":
    main()
