"""How fast the scheduler turns due timers into ReminderDue on Kafka, and how late.

    uv run python services/scheduler/benchmarks/fire_rate.py [--timers 100000]

Loads N timers (one appointment and patient each) into a fresh MariaDB database, all due
at the same instant a few seconds ahead, then runs the scheduler's timer loop and outbox
relay (the same classes the service runs) against a Tansu broker, or the Kafka at
KAFKA_BOOTSTRAP_SERVERS, and reads the `reminders` topic back. Per reminder:
lateness = time it was read from Kafka - its due time. Baseline, in the same process: the
same number of ReminderDue-sized messages published straight to Kafka (the broker's ceiling
for this client), to put the scheduler's rate in proportion.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiokafka import AIOKafkaConsumer
from sqlalchemy import insert, update
from sqlalchemy.engine import make_url

from reminder_contracts import topics
from reminder_contracts.events import reminder_id_for
from reminder_runtime.db import make_engine, make_session_factory, transaction
from reminder_runtime.kafka import ensure_topics, make_broker
from reminder_runtime.relay import OutboxRelay
from reminder_testkit import TansuBroker
from reminder_testkit.database import MysqlServer
from scheduler.adapters.repository import ACTIVE, PENDING, to_db
from scheduler.adapters.tables import appointments, messaging, patients, timers
from scheduler.adapters.timer_loop import TimerLoop
from scheduler.app import migrate
from scheduler.settings import Settings

CHUNK = 5_000
FAR_FUTURE = datetime(2100, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Run:
    label: str
    count: int
    seconds: float
    lateness: list[float]

    @property
    def rate(self) -> float:
        return self.count / self.seconds


def load_timers(
    settings: Settings, count: int, due: Callable[[int], datetime] = lambda _: FAR_FUTURE
) -> None:
    """N appointments, patients and pending timers; timer k is due at `due(k)`."""
    session_factory = make_session_factory(make_engine(settings.database_url))
    starts = datetime.now(UTC) + timedelta(days=1)
    for first in range(0, count, CHUNK):
        n = min(CHUNK, count - first)
        ids = [uuid.uuid4() for _ in range(n)]
        with transaction(session_factory) as session:
            session.execute(
                insert(patients),
                [
                    {
                        "patient_id": str(i),
                        "version": 1,
                        "name": "Ada Lovelace",
                        "phone": "+12025550143",
                        "language": "en",
                        "timezone": "America/New_York",
                    }
                    for i in ids
                ],
            )
            session.execute(
                insert(appointments),
                [
                    {
                        "appointment_id": str(i),
                        "patient_id": str(i),
                        "version": 1,
                        "status": ACTIVE,
                        "starts_at": to_db(starts),
                        "location": "Clinic A, room 3",
                        "provider": "Dr. Grace Hopper",
                        "offsets_override": None,
                        "updated_at": to_db(datetime.now(UTC)),
                    }
                    for i in ids
                ],
            )
            session.execute(
                insert(timers),
                [
                    {
                        "reminder_id": str(reminder_id_for(i, 1, 1440)),
                        "appointment_id": str(i),
                        "appointment_version": 1,
                        "offset_minutes": 1440,
                        "due_at": to_db(due(first + k)),
                        "status": PENDING,
                        "correlation_id": str(uuid.uuid4()),
                        "causation_id": str(uuid.uuid4()),
                    }
                    for k, i in enumerate(ids)
                ],
            )


def make_due(settings: Settings, due_at: datetime) -> None:
    engine = make_engine(settings.database_url)
    with transaction(make_session_factory(engine)) as session:
        session.execute(update(timers).values(due_at=to_db(due_at)))
    engine.dispose()


async def read_reminders(settings: Settings, count: int, received: list[tuple[float, str]]) -> None:
    consumer = AIOKafkaConsumer(
        settings.topic(topics.REMINDERS),
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=f"bench-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=20,  # the reader must not add its own wait to the lateness
    )
    await consumer.start()
    try:
        while len(received) < count:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            now = time.time()
            for messages in batch.values():
                received.extend((now, json.loads(m.value or b"{}")["due_at"]) for m in messages)
    finally:
        await consumer.stop()


async def run_scheduler(
    settings: Settings, count: int, label: str, spread: float | None = None
) -> Run:
    """All timers due at once a few seconds from now; or, with `spread` seconds, due one
    after the other over that span (a load below capacity: lateness is wake-up precision)."""
    await ensure_topics(settings, [topics.REMINDERS])
    engine = make_engine(settings.database_url)
    session_factory = make_session_factory(engine)
    broker = make_broker(settings)
    await broker.start()
    relay = OutboxRelay(session_factory, messaging, broker, settings)
    loop = TimerLoop(
        session_factory,
        batch_size=settings.scheduler_batch_size,
        max_sleep_seconds=settings.scheduler_max_sleep_seconds,
        on_fired=relay.wake,
    )
    received: list[tuple[float, str]] = []
    reader = asyncio.create_task(read_reminders(settings, count, received))
    due_at = datetime.now(UTC) + timedelta(seconds=6)
    if spread is None:
        await asyncio.to_thread(make_due, settings, due_at)
    else:
        step = timedelta(seconds=spread / count)
        await asyncio.to_thread(load_timers, settings, count, lambda k: due_at + k * step)
    relay.start()
    loop.start()  # sleeps until the due time: the next pending timer
    await asyncio.wait_for(reader, timeout=1800)
    await loop.stop()
    await relay.stop()
    await broker.stop()
    engine.dispose()
    due = due_at.timestamp()
    lateness = [at - datetime.fromisoformat(d).timestamp() for at, d in received]
    last = max(at for at, _ in received)
    return Run(label, len(received), last - due, lateness)


async def run_baseline(settings: Settings, count: int) -> Run:
    """Straight to Kafka, as the relay publishes (enqueue a batch, await every ack)."""
    topic = settings.topic("baseline")
    await ensure_topics(settings, ["baseline"])
    broker = make_broker(settings)
    await broker.start()
    payload = json.dumps({"x": "y" * 900}).encode()  # about a ReminderDue's size
    started = time.perf_counter()
    for first in range(0, count, settings.outbox_batch_size):
        n = min(settings.outbox_batch_size, count - first)
        futures = [
            await broker.publish(payload, topic=topic, key=str(i).encode(), no_confirm=True)
            for i in range(first, first + n)
        ]
        await asyncio.gather(*futures)
    seconds = time.perf_counter() - started
    await broker.stop()
    return Run("baseline: publish only (no DB)", count, seconds, [])


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--timers", type=int, default=100_000)
    parser.add_argument(
        "--steady",
        type=int,
        default=5_000,
        help="timers due evenly over 10 s for the below-capacity row (0: none)",
    )
    parser.add_argument(
        "--configs",
        default="500:200,2000:1000",
        help="SCHEDULER_BATCH_SIZE:OUTBOX_BATCH_SIZE pairs, comma-separated",
    )
    args = parser.parse_args()

    tansu: TansuBroker | None = None
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not bootstrap:
        tansu = TansuBroker(log_dir=Path(tempfile.mkdtemp(prefix="tansu-bench-"))).start()
        bootstrap = tansu.bootstrap_servers
    server = MysqlServer(make_url("mysql+pymysql://root@127.0.0.1:3306/"))
    runs: list[Run] = []
    try:
        for config in args.configs.split(","):
            batch, outbox = (int(v) for v in config.split(":"))
            settings = Settings(
                environment="test",
                database_url=server.create(),
                kafka_bootstrap_servers=bootstrap,
                kafka_enable_idempotence=tansu is None,
                kafka_topic_prefix=f"bench{uuid.uuid4().hex[:6]}.",
                scheduler_batch_size=batch,
                outbox_batch_size=outbox,
                outbox_poll_interval_seconds=0.2,
            )
            if not runs:
                runs.append(await run_baseline(settings, args.timers))
            migrate(settings)
            started = time.perf_counter()
            load_timers(settings, args.timers)
            print(
                f"loaded {args.timers} timers in {time.perf_counter() - started:.1f} s",
                file=sys.stderr,
            )
            label = f"scheduler: batch {batch}, outbox batch {outbox}"
            runs.append(await run_scheduler(settings, args.timers, label))
        if args.steady:
            settings = settings.model_copy(
                update={
                    "database_url": server.create(),
                    "kafka_topic_prefix": f"bench{uuid.uuid4().hex[:6]}.",
                    "scheduler_batch_size": 500,
                    "outbox_batch_size": 200,
                }
            )
            migrate(settings)
            label = f"steady: {args.steady:,} due evenly over 10 s (arrival rate)"
            runs.append(await run_scheduler(settings, args.steady, label, spread=10.0))
    finally:
        server.drop_all()
        if tansu is not None:
            tansu.stop()

    baseline = runs[0].rate
    print(f"\n{args.timers:,} timers due at once; MariaDB 127.0.0.1, Kafka {bootstrap}")
    print("lateness = read from Kafka - due time\n")
    print("| run | reminders | seconds | ReminderDue/s | vs baseline | lateness p50 | p99 | max |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        late = r.lateness
        cells = (
            f"{statistics.median(late):.2f} s | {pct(late, 0.99):.2f} s | {max(late):.2f} s"
            if late
            else "- | - | -"
        )
        print(
            f"| {r.label} | {r.count:,} | {r.seconds:.1f} | {r.rate:,.0f} | "
            f"{r.rate / baseline:.2f}x | {cells} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
