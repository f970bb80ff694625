"""How many SMS replies per second POST /sns accepts, and how long until their events are
on Kafka.

    uv run python services/inbound/benchmarks/reply_rate.py [--replies 2000] [--concurrency 16]

Runs the real service (`python -m`-style, uvicorn, one process) against a Tansu broker
(or the Kafka at KAFKA_BOOTSTRAP_SERVERS) and a fresh MariaDB database on 127.0.0.1:3306,
with signature verification ON. The signing certificate is a test one (AWS is not
reachable here), served by an injected fetcher and cached after the warm-up, as it is in
production after the first message. Notifications are signed before the clock starts
(half SignatureVersion 1, half 2); patients with reminded appointments are loaded first,
so replies are matched like real ones (YES / NO / HELP / free text).

Per reply: POST latency (until the 200, which means the reply and its events are
committed), and POST -> event: from just before the POST until a Kafka consumer of the
`replies` topic received its event. Baselines in the same process: GET /healthz at the
same concurrency (the HTTP floor of this machine) and the RSA verification alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer
from sqlalchemy.engine import make_url

from inbound.adapters.signature import CertificateCache, SignatureVerifier
from inbound.app import MIGRATIONS
from inbound.domain.sns import parse_sns_message
from inbound.handlers import apply_event
from inbound.testing import SnsSigner
from reminder_contracts import (
    AppointmentScheduled,
    PatientRegistered,
    PatientSnapshot,
    ReminderSent,
    reminder_id_for,
    topics,
)
from reminder_runtime.db import make_engine, make_session_factory
from reminder_runtime.migrations import upgrade
from reminder_testkit import TansuBroker, free_port
from reminder_testkit.database import MysqlServer

LONG_CODE = "+12025550178"
BODIES = ("YES", "  Yes!!! 👍", "no", "sí", "oui.", "help", "can I come later?")


@dataclass
class Phase:
    label: str
    count: int = 0
    seconds: float = 0.0
    post_latency: list[float] = field(default_factory=list)
    to_kafka: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# --------------------------------------------------------------------------- server


def serve(cert_file: str) -> None:
    """The child process: the real app, with a certificate fetcher that reads a file."""
    import uvicorn

    from inbound.app import create_app
    from inbound.settings import Settings
    from reminder_runtime.logging import configure_logging

    pem = Path(cert_file).read_bytes()

    async def fetch(url: str) -> bytes:
        return pem

    settings = Settings()
    configure_logging(settings.service_name, settings.log_level)
    uvicorn.run(
        create_app(settings, certificate_fetcher=fetch),
        host="127.0.0.1",
        port=settings.http_port,
        log_config=None,
        access_log=False,
    )


# --------------------------------------------------------------------------- setup


def seed(database_url: str, patients: int) -> list[str]:
    """Patients with one reminded appointment each; returns their phones."""
    session_factory = make_session_factory(make_engine(database_url))
    phones = []
    starts = datetime.now(UTC) + timedelta(days=2)
    for i in range(patients):
        phone = f"+1202555{1000 + i:04d}"
        patient_id, appointment_id = uuid.uuid4(), uuid.uuid4()
        snapshot = PatientSnapshot(
            patient_id=patient_id,
            patient_version=1,
            name="Ada Byron",
            phone=phone,
            language="en",
            timezone="America/New_York",
        )
        apply_event(
            session_factory,
            PatientRegistered(
                patient_id=patient_id,
                name="Ada Byron",
                phone=phone,
                language="en",
                timezone="America/New_York",
            ),
        )
        apply_event(
            session_factory,
            AppointmentScheduled(
                appointment_id=appointment_id,
                patient_id=patient_id,
                starts_at=starts + timedelta(minutes=i),
                patient=snapshot,
            ),
        )
        apply_event(
            session_factory,
            ReminderSent(
                appointment_id=appointment_id,
                patient_id=patient_id,
                reminder_id=reminder_id_for(appointment_id, 1, 1440),
                appointment_version=1,
                sns_message_id=f"bench-{appointment_id}",
                segments=1,
                encoding="GSM-7",
                language="en",
            ),
        )
        phones.append(phone)
    return phones


class ReplyWatcher:
    """Reads the replies topic; first arrival time per inboundMessageId."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=f"bench-{uuid.uuid4().hex[:8]}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            # Measure the service, not this reader's long poll (default up to 500 ms).
            fetch_max_wait_ms=5,
        )
        self.arrived: dict[str, float] = {}
        self.event_ids: set[str] = set()
        self.records = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.consumer.start()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=100)
            now = time.perf_counter()
            for messages in batch.values():
                for message in messages:
                    data = json.loads(message.value or b"{}")
                    self.records += 1
                    self.event_ids.add(data["event_id"])
                    self.arrived.setdefault(data["inbound_message_id"], now)

    async def wait_for(self, ids: list[str], timeout: float) -> None:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        while any(i not in self.arrived for i in ids):
            if time.monotonic() > deadline:
                missing = sum(1 for i in ids if i not in self.arrived)
                raise RuntimeError(f"{missing} events never reached Kafka")
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
        await self.consumer.stop()


# --------------------------------------------------------------------------- phases


async def post_replies(
    client: httpx.AsyncClient, signed: list[dict[str, str]], concurrency: int, label: str
) -> tuple[Phase, dict[str, float]]:
    phase = Phase(label)
    started_at: dict[str, float] = {}
    queue = list(reversed(signed))

    async def worker() -> None:
        while queue:
            fields = queue.pop()
            inbound_id = json.loads(fields["Message"])["inboundMessageId"]
            t0 = time.perf_counter()
            started_at[inbound_id] = t0
            response = await client.post(
                "/sns",
                content=json.dumps(fields),
                headers={
                    "content-type": "text/plain; charset=UTF-8",
                    "x-amz-sns-message-type": "Notification",
                },
            )
            phase.post_latency.append(time.perf_counter() - t0)
            if response.status_code != 200:
                raise RuntimeError(f"POST /sns answered {response.status_code}: {response.text}")

    t_start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    phase.seconds = time.perf_counter() - t_start
    phase.count = len(signed)
    return phase, started_at


async def healthz_baseline(client: httpx.AsyncClient, count: int, concurrency: int) -> Phase:
    phase = Phase("baseline: GET /healthz (HTTP floor)")
    remaining = [count]

    async def worker() -> None:
        while remaining[0] > 0:
            remaining[0] -= 1
            t0 = time.perf_counter()
            (await client.get("/healthz")).raise_for_status()
            phase.post_latency.append(time.perf_counter() - t0)

    t_start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    phase.seconds = time.perf_counter() - t_start
    phase.count = count
    return phase


async def verify_baseline(signer: SnsSigner, count: int) -> Phase:
    verifier = SignatureVerifier(CertificateCache(signer.fetch))
    messages = [
        parse_sns_message(
            json.dumps(
                signer.notification(
                    phone="+12025550143", body="yes", destination=LONG_CODE, version=str(1 + i % 2)
                )
            ),
            "Notification",
        )
        for i in range(count)
    ]
    await verifier.verify(messages[0])  # certificate cached
    phase = Phase("baseline: RSA signature check alone (in-process)")
    t_start = time.perf_counter()
    for message in messages:
        t0 = time.perf_counter()
        await verifier.verify(message)
        phase.post_latency.append(time.perf_counter() - t0)
    phase.seconds = time.perf_counter() - t_start
    phase.count = count
    return phase


# --------------------------------------------------------------------------- main


async def benchmark(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="inbound-bench-"))
    tansu = None
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not bootstrap:
        tansu = TansuBroker(log_dir=tmp).start()
        bootstrap = tansu.bootstrap_servers
    mysql = MysqlServer(make_url("mysql+pymysql://root@127.0.0.1:3306/"))
    database_url = mysql.create()
    signer = SnsSigner()
    cert_file = tmp / "cert.pem"
    cert_file.write_bytes(signer.certificate_pem)
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    port = free_port()
    server: asyncio.subprocess.Process | None = None
    watcher = ReplyWatcher(bootstrap, f"{prefix}{topics.REPLIES}")
    try:
        upgrade(MIGRATIONS, database_url)
        phones = seed(database_url, args.patients)
        env = {
            **os.environ,
            "ENVIRONMENT": "test",
            "HTTP_PORT": str(port),
            "DATABASE_URL": database_url,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "KAFKA_ENABLE_IDEMPOTENCE": "false"
            if tansu
            else os.environ.get("KAFKA_ENABLE_IDEMPOTENCE", "true"),
            "KAFKA_TOPIC_PREFIX": prefix,
            "KAFKA_CREATE_TOPICS": "true",
            "SNS_ALLOWED_TOPIC_ARNS": signer.topic_arn,
            "SMS_ORIGINATION_NUMBERS": LONG_CODE,
            "SNS_VERIFY_SIGNATURES": "true",
            "LOG_LEVEL": "WARNING",
        }
        server = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--serve",
            str(cert_file),
            env=env,
            stdout=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        limits = httpx.Limits(max_connections=args.concurrency + 4)
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
            for _ in range(300):
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
            else:
                raise RuntimeError("the service never became ready")
            await watcher.start()

            def sign(n: int) -> list[dict[str, str]]:
                return [
                    signer.notification(
                        phone=random.choice(phones),
                        body=random.choice(BODIES),
                        destination=LONG_CODE,
                        version=str(1 + i % 2),
                    )
                    for i in range(n)
                ]

            # warm-up: certificate fetched and cached, connections and pools warm
            _, warm_started = await post_replies(client, sign(50), 4, "warm-up")
            await watcher.wait_for(list(warm_started), 60)

            floor = await healthz_baseline(client, args.replies, args.concurrency)
            verify = await verify_baseline(signer, 500)

            sequential_signed = sign(args.sequential)
            load_signed = sign(args.replies)

            sequential, seq_started = await post_replies(
                client, sequential_signed, 1, "POST /sns, one at a time"
            )
            await watcher.wait_for(list(seq_started), 120)
            sequential.to_kafka = [watcher.arrived[i] - t for i, t in seq_started.items()]

            load, load_started = await post_replies(
                client, load_signed, args.concurrency, f"POST /sns, {args.concurrency} concurrent"
            )
            await watcher.wait_for(list(load_started), 300)
            load.to_kafka = [watcher.arrived[i] - t for i, t in load_started.items()]
            drained = time.perf_counter() - min(load_started.values())
    finally:
        await watcher.stop()
        if server is not None:
            server.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(server.wait(), timeout=30)
            except TimeoutError:
                server.kill()
        if tansu is not None:
            tansu.stop()
        mysql.drop(database_url)

    ms = 1000.0
    print(
        f"\ninbound reply_rate: {args.replies} replies under load, {args.sequential} "
        f"one at a time, {args.patients} patients; MariaDB, "
        f"{'Tansu' if tansu else 'Kafka'}; signature verification on, certificate cached; "
        f"{os.cpu_count()} CPUs\n"
    )
    print(
        "| run | count | per second | p50 ms | p99 ms | POST->event p50 ms | POST->event p99 ms |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for phase in (floor, verify, sequential, load):
        kafka_cols = (
            f"{statistics.median(phase.to_kafka) * ms:.1f} | {pct(phase.to_kafka, 0.99) * ms:.1f}"
            if phase.to_kafka
            else "- | -"
        )
        print(
            f"| {phase.label} | {phase.count} | {phase.rate:,.0f} "
            f"| {statistics.median(phase.post_latency) * ms:.2f} "
            f"| {pct(phase.post_latency, 0.99) * ms:.2f} | {kafka_cols} |"
        )
    print(
        f"\nreplies/s accepted under load vs the HTTP floor: "
        f"{load.rate / floor.rate:.1%}; all {len(load_started)} loaded replies on Kafka "
        f"{drained:.1f} s after the first POST ({len(load_started) / drained:,.0f}/s end to "
        f"end); {watcher.records} records read, {len(watcher.event_ids)} distinct events."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--replies", type=int, default=2000)
    parser.add_argument("--sequential", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--serve", metavar="CERT_FILE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
    else:
        asyncio.run(benchmark(args))


if __name__ == "__main__":
    main()
