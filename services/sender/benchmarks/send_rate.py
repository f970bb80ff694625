"""Send rate of the sender against the moto SNS server and the real database.

    uv run python services/sender/benchmarks/send_rate.py [--reminders 300] [--seconds 6]

Rows:
- `moto publish (ceiling)`: a bare boto3 loop publishing SMS to moto, one at a time, in this
  process: the most any sender could get out of this SNS endpoint.
- `sender, no rate limit`: `Dispatcher.reminder_due` one reminder after another (as the
  reminders consumer calls it): plan, rate-limit reservation in the database, claim,
  publish, record outcome + outbox event. The rate limit is set far above the ceiling.
- `sender, SMS_MAX_PER_SECOND=r`: the same with the limit at 1, 3 and 20 parts/s; the
  achieved rate is measured between the first and the last publish; the smallest gap
  between two publishes and the most publishes in any 1-second window show how exactly
  the limit holds (slots are exact; the publish itself jitters by a few milliseconds).

- `sender app via Kafka, no rate limit`: the whole service (its app, both consumer groups,
  outbox relay) on a Tansu broker: ReminderDue events published to `reminders`, timed
  until moto holds every SMS.

Latency columns are per reminder (whole dispatcher call) or per publish (ceiling row).
Uses MariaDB on 127.0.0.1:3306 when it answers, else a SQLite file.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy.engine import make_url

from reminder_contracts import topics
from reminder_runtime.db import make_engine, make_session_factory
from reminder_testkit import SnsServer, TansuBroker
from reminder_testkit.database import MysqlServer
from reminder_testkit.helpers import port_answers
from reminder_testkit.topics import publish_events
from sender.adapters.rate_limiter import DatabaseTokenBucket
from sender.adapters.sns import SmsOptions, SnsSmsGateway, make_sns_client
from sender.app import create_app, migrate
from sender.dispatcher import Dispatcher, Pacer
from sender.domain.messages import Clinic
from sender.handlers import SenderConfig
from sender.settings import Settings
from sender.templates import load_templates
from sender.testing import reminder_for, snapshot

LONG_CODE = "+12025550178"


@dataclass
class Row:
    name: str
    count: int
    rate: float
    p50_ms: float
    p99_ms: float
    min_gap_ms: float | None = None
    max_per_second: int | None = None


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class TimedGateway:
    def __init__(self, inner: SnsSmsGateway) -> None:
        self.inner = inner
        self.stamps: list[float] = []

    async def publish(self, phone: str, text: str) -> str:
        self.stamps.append(time.perf_counter())
        return await self.inner.publish(phone, text)


def database_url(server: MysqlServer | None) -> str:
    if server is not None:
        return server.create()
    return f"sqlite:///{tempfile.mkdtemp(prefix='sender-bench-')}/sender.db"


def moto_ceiling(count: int) -> Row:
    client = make_sns_client(10, 1)
    attributes = SnsSmsGateway(client, SmsOptions(LONG_CODE, None), threads=1).attributes()
    text = "Riverside Family Clinic: Hi Ana, a reminder of your appointment on Thu, December 10"
    latencies = []
    started = time.perf_counter()
    for _ in range(count):
        t0 = time.perf_counter()
        client.publish(PhoneNumber="+12025550143", Message=text, MessageAttributes=attributes)
        latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - started
    return Row(
        "moto publish (ceiling)",
        count,
        count / elapsed,
        percentile(latencies, 0.5) * 1000,
        percentile(latencies, 0.99) * 1000,
    )


async def through_sender(name: str, url: str, rate: float, count: int) -> Row:
    engine = make_engine(url)
    session_factory = make_session_factory(engine)
    inner = SnsSmsGateway(make_sns_client(10, 2), SmsOptions(LONG_CODE, None), threads=2)
    gateway = TimedGateway(inner)
    dispatcher = Dispatcher(
        session_factory,
        SenderConfig(load_templates(), Clinic("Riverside Family Clinic", "+12025550100")),
        gateway,
        DatabaseTokenBucket(session_factory, rate=rate, burst=1),
        max_attempts=3,
        backoff_base=0.05,
        backoff_max=1,
        stale_after=timedelta(minutes=5),
        pacer=Pacer(rate),
    )
    # Short single-segment texts, so one reminder = one token at every rate.
    reminders = [reminder_for(snapshot(name="Ana"), location=None) for _ in range(count)]
    latencies = []
    for reminder in reminders:
        t0 = time.perf_counter()
        await dispatcher.reminder_due(reminder)
        latencies.append(time.perf_counter() - t0)
    inner.close()
    engine.dispose()
    stamps = gateway.stamps
    assert len(stamps) == count, f"{len(stamps)} publishes for {count} reminders"
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    # The first reminder gets the bucket's one burst token: measure from there.
    achieved = (count - 1) / (stamps[-1] - stamps[0])
    return Row(
        name,
        count,
        achieved,
        percentile(latencies, 0.5) * 1000,
        percentile(latencies, 0.99) * 1000,
        min(gaps) * 1000,
        max(sum(1 for t in stamps if start <= t < start + 1.0) for start in stamps),
    )


async def through_kafka(url: str, count: int, sns: SnsServer) -> Row:
    broker = TansuBroker(log_dir=Path(tempfile.mkdtemp(prefix="tansu-bench-"))).start()
    settings = Settings(
        environment="dev",
        kafka_bootstrap_servers=broker.bootstrap_servers,
        kafka_enable_idempotence=False,
        kafka_create_topics=True,
        kafka_topic_prefix="bench.",
        database_url=url,
        sms_origination_number=LONG_CODE,
        sms_max_per_second=1e9,
        outbox_poll_interval_seconds=0.2,
    )
    reminders = [reminder_for(snapshot(name="Ana"), location=None) for _ in range(count)]
    app = create_app(settings)
    sns.reset()  # a short data.json to poll
    try:
        async with app.router.lifespan_context(app):
            before = len(sns.sent_sms())
            started = time.perf_counter()
            await publish_events(
                broker.bootstrap_servers, settings.topic(topics.REMINDERS), *reminders
            )
            # Polled from a thread, sparingly: parsing moto's data.json on the event loop
            # would slow down the very service being measured.
            while len(await asyncio.to_thread(sns.sent_sms)) - before < count:  # noqa: ASYNC110
                await asyncio.sleep(0.5)
            elapsed = time.perf_counter() - started
    finally:
        broker.stop()
    return Row("sender app via Kafka (Tansu), no rate limit", count, count / elapsed, 0, 0)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reminders", type=int, default=300, help="for the unlimited rows")
    parser.add_argument("--seconds", type=float, default=6.0, help="per rate-limited row")
    args = parser.parse_args()

    sns = SnsServer().start()
    os.environ.update(
        {
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_ENDPOINT_URL_SNS": sns.endpoint_url,
        }
    )
    server = (
        MysqlServer(make_url("mysql+pymysql://root@127.0.0.1:3306/"))
        if port_answers("127.0.0.1", 3306)
        else None
    )
    rows: list[Row] = []
    try:
        moto_ceiling(20)  # warm-up: connections, moto's first-request set-up
        rows.append(moto_ceiling(args.reminders))
        for name, rate, count in [
            ("sender, no rate limit", 1e9, args.reminders),
            ("sender, SMS_MAX_PER_SECOND=1", 1.0, int(args.seconds * 1) + 1),
            ("sender, SMS_MAX_PER_SECOND=3", 3.0, int(args.seconds * 3) + 1),
            ("sender, SMS_MAX_PER_SECOND=20", 20.0, int(args.seconds * 20) + 1),
        ]:
            url = database_url(server)
            migrate(Settings(environment="dev", database_url=url, sms_origination_number=LONG_CODE))
            rows.append(await through_sender(name, url, rate, count))
            if server is not None:
                server.drop(url)
        url = database_url(server)
        migrate(Settings(environment="dev", database_url=url, sms_origination_number=LONG_CODE))
        rows.append(await through_kafka(url, args.reminders, sns))
        if server is not None:
            server.drop(url)
    finally:
        sns.stop()

    ceiling = rows[0].rate
    backend = "MariaDB 127.0.0.1:3306" if server is not None else "SQLite"
    print(f"\nSend rate against moto SNS ({backend}, {os.cpu_count()} CPUs)\n")
    print(
        "| run | reminders | achieved /s | vs moto ceiling | p50 ms | p99 ms "
        "| min gap ms | max in any 1 s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        gap = "" if row.min_gap_ms is None else f"{row.min_gap_ms:.1f}"
        p50 = f"{row.p50_ms:.1f}" if row.p50_ms else "-"
        p99 = f"{row.p99_ms:.1f}" if row.p99_ms else "-"
        most = "" if row.max_per_second is None else str(row.max_per_second)
        print(
            f"| {row.name} | {row.count} | {row.rate:.2f} | {row.rate / ceiling:.2f} "
            f"| {p50} | {p99} | {gap} | {most} |"
        )


if __name__ == "__main__":
    asyncio.run(main())
