"""The real app over HTTP, with Kafka (Tansu) and MariaDB: signed SNS deliveries in,
events on the `replies` topic out."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from inbound.adapters.tables import appointments, messaging, patients, reminders_sent, replies
from inbound.app import MIGRATIONS, create_app
from inbound.settings import Settings
from inbound.testing import SnsSigner
from reminder_contracts import (
    AppointmentScheduled,
    Event,
    PatientRegistered,
    PatientSnapshot,
    ReminderSent,
    reminder_id_for,
    topics,
)
from reminder_runtime.db import make_engine
from reminder_runtime.migrations import upgrade
from reminder_testkit import TansuBroker, async_wait_for
from reminder_testkit.apps import serve_app as serving
from reminder_testkit.database import DatabaseFactory
from reminder_testkit.topics import publish_events, read_events

pytestmark = pytest.mark.integration

Serve = Callable[[FastAPI], AbstractAsyncContextManager[str]]
PATIENT = "+12025550143"
LONG_CODE = "+12025550178"


def count(url: str, table: Any) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(table)).scalar_one())
    finally:
        engine.dispose()


async def post(base: str, fields: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base) as client:
        return await client.post(
            "/sns",
            content=json.dumps(fields),
            headers={
                "content-type": "text/plain; charset=UTF-8",
                "x-amz-sns-message-type": fields.get("Type", "Notification"),
            },
        )


async def read_distinct_events(
    bootstrap: str,
    topic: str,
    *,
    distinct: int,
    deadline_s: float = 120.0,
) -> list[Event]:
    """Everything on `topic` once `distinct` different event ids are there (copies from an
    at-least-once publisher do not count), plus 2 s to catch any extra event."""
    give_up = time.monotonic() + deadline_s
    while True:
        received = await read_events(bootstrap, topic, expect=distinct, timeout=30, settle=2)
        if len({e.event_id for e in received}) >= distinct or time.monotonic() > give_up:
            return received


def app_for(settings: Settings, signer: SnsSigner, **kwargs: Any) -> FastAPI:
    return create_app(settings, certificate_fetcher=signer.fetch, **kwargs)


async def test_a_signed_yes_becomes_appointment_confirmed_once(
    app_settings: Settings, signer: SnsSigner, serve: Serve
) -> None:
    settings = app_settings
    patient_id, appointment_id = uuid4(), uuid4()
    snapshot = PatientSnapshot(
        patient_id=patient_id,
        patient_version=1,
        name="Ana Ruiz",
        phone=PATIENT,
        language="es",
        timezone="Europe/Madrid",
    )
    reminder_id = reminder_id_for(appointment_id, 1, 1440)
    async with serve(app_for(settings, signer)) as base:
        bootstrap = settings.kafka_bootstrap_servers
        await publish_events(
            bootstrap,
            settings.topic(topics.PATIENTS),
            PatientRegistered(
                patient_id=patient_id,
                name="Ana Ruiz",
                phone=PATIENT,
                language="es",
                timezone="Europe/Madrid",
            ),
        )
        await publish_events(
            bootstrap,
            settings.topic(topics.APPOINTMENTS),
            AppointmentScheduled(
                appointment_id=appointment_id,
                patient_id=patient_id,
                starts_at=datetime.now(UTC) + timedelta(days=1),
                patient=snapshot,
            ),
        )
        await publish_events(
            bootstrap,
            settings.topic(topics.DELIVERIES),
            ReminderSent(
                appointment_id=appointment_id,
                patient_id=patient_id,
                reminder_id=reminder_id,
                appointment_version=1,
                sns_message_id="sns-reminder-1",
                segments=1,
                encoding="GSM-7",
                language="es",
            ),
        )
        # Three topics, no order between them: wait until all three facts are known.
        await async_wait_for(
            lambda: all(
                count(settings.database_url, table) == 1
                for table in (patients, appointments, reminders_sent)
            ),
            timeout=30,
            message="the consumers never caught up",
        )

        notification = signer.notification(
            phone=PATIENT,
            body="  ¡Sí! 👍",
            destination=LONG_CODE,
            version="2",
            inbound_message_id="inbound-1",
            previous_published_message_id="sns-reminder-1",
        )
        response = await post(base, notification)
        assert response.status_code == 200, response.text
        assert response.json()["events"] == ["AppointmentConfirmed"]

        again = await post(base, notification)
        assert again.status_code == 200
        assert again.json()["duplicate"] is True

        [event] = await read_events(bootstrap, settings.topic(topics.REPLIES), expect=1, settle=1.5)
    data = json.loads(event.model_dump_json())
    assert event.event_type == "AppointmentConfirmed"
    assert (data["appointment_id"], data["patient_id"], data["reminder_id"]) == (
        str(appointment_id),
        str(patient_id),
        str(reminder_id),
    )
    assert (data["keyword"], data["language"], data["phone"]) == ("SI", "es", PATIENT)


class SubscribeUrlRecorder:
    """Stands in for AWS behind the SubscribeURL (httpx transport), recording visits."""

    def __init__(self) -> None:
        self.visited: list[str] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.visited.append(str(request.url))
        return httpx.Response(200, text="<ConfirmSubscriptionResponse/>")


@dataclass
class SharedApp:
    """One running app for the tests that only talk to it over HTTP (saves a start each)."""

    base: str
    settings: Settings
    signer: SnsSigner
    aws: SubscribeUrlRecorder


@pytest.fixture(scope="module")
async def shared(
    database_factory: DatabaseFactory, kafka_bootstrap_servers: str, kafka_idempotence: bool
) -> AsyncIterator[SharedApp]:
    signer = SnsSigner()
    url = database_factory()
    upgrade(MIGRATIONS, url)
    settings = Settings(
        environment="test",
        kafka_bootstrap_servers=kafka_bootstrap_servers,
        kafka_enable_idempotence=kafka_idempotence,
        kafka_topic_prefix=f"t{uuid4().hex[:8]}.",
        kafka_create_topics=True,
        database_url=url,
        sns_allowed_topic_arns=signer.topic_arn,
        sms_origination_numbers=LONG_CODE,
    )
    aws = SubscribeUrlRecorder()
    client = httpx.AsyncClient(transport=httpx.MockTransport(aws.handler))
    async with serving(app_for(settings, signer, http_client=client)) as base:
        yield SharedApp(base, settings, signer, aws)


def nothing_recorded(shared: SharedApp) -> bool:
    url = shared.settings.database_url
    return count(url, replies) == 0 and count(url, messaging.outbox.table) == 0


@pytest.mark.parametrize(
    "forgery",
    [
        "tampered",
        "unknown_topic",
        "wrong_cert_host",
        "old_timestamp",
        "not_our_number",
        "bad_signature",
    ],
)
async def test_forged_or_unverifiable_messages_get_403_and_record_nothing(
    shared: SharedApp, forgery: str
) -> None:
    signer = shared.signer
    fields = signer.notification(phone=PATIENT, body="STOP", destination=LONG_CODE)
    if forgery == "tampered":
        fields["Message"] = fields["Message"].replace("STOP", "START")
    elif forgery == "unknown_topic":
        fields = signer.notification(
            phone=PATIENT,
            body="STOP",
            destination=LONG_CODE,
            topic_arn="arn:aws:sns:us-east-1:999999999999:evil",
        )
    elif forgery == "wrong_cert_host":
        fields = SnsSigner(
            cert_url="https://evil.example.com/SimpleNotificationService.pem"
        ).notification(phone=PATIENT, body="STOP", destination=LONG_CODE)
    elif forgery == "old_timestamp":
        fields = signer.notification(
            phone=PATIENT,
            body="STOP",
            destination=LONG_CODE,
            timestamp=datetime.now(UTC) - timedelta(hours=2),
        )
    elif forgery == "not_our_number":
        fields = signer.notification(phone=PATIENT, body="STOP", destination="+12025550100")
    else:
        fields["Signature"] = "AAAA"  # valid base64, not a signature
    response = await post(shared.base, fields)
    assert response.status_code == 403, response.text
    assert response.json()["error"]
    assert nothing_recorded(shared)


@pytest.mark.parametrize(
    ("body", "reason"),
    [("{oops", "not JSON"), (json.dumps({"Type": "Notification"}), "missing")],
)
async def test_malformed_bodies_get_400_with_a_reason(
    shared: SharedApp, body: str, reason: str
) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{shared.base}/sns", content=body, headers={"content-type": "text/plain"}
        )
    assert response.status_code == 400
    assert reason in response.json()["error"]
    assert nothing_recorded(shared)


async def test_a_signed_notification_whose_sms_is_malformed_gets_400(shared: SharedApp) -> None:
    signer = shared.signer
    fields = signer.sign(
        {
            "Type": "Notification",
            "MessageId": str(uuid4()),
            "TopicArn": signer.topic_arn,
            "Message": json.dumps({"destinationNumber": LONG_CODE, "messageBody": "yes"}),
            "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        },
        "2",
    )
    response = await post(shared.base, fields)
    assert response.status_code == 400
    assert "originationNumber" in response.json()["error"]
    assert nothing_recorded(shared)


async def test_subscription_is_confirmed_only_for_an_allowed_topic_on_an_sns_host(
    shared: SharedApp,
) -> None:
    signer, aws, base = shared.signer, shared.aws, shared.base
    aws.visited.clear()
    genuine = signer.subscription(version="2")
    other_topic = signer.subscription(topic_arn="arn:aws:sns:us-east-1:999999999999:evil")
    evil_url = signer.subscription(subscribe_url="https://attacker.example/?Action=Confirm")
    assert (await post(base, other_topic)).status_code == 403
    assert (await post(base, evil_url)).status_code == 403
    assert aws.visited == []
    response = await post(base, genuine)
    assert response.status_code == 200, response.text
    assert aws.visited == [genuine["SubscribeURL"]]


async def test_unsubscribe_confirmation_is_acknowledged_and_alerted(shared: SharedApp) -> None:
    response = await post(shared.base, shared.signer.subscription("UnsubscribeConfirmation"))
    assert response.status_code == 200
    async with httpx.AsyncClient(base_url=shared.base) as client:
        metrics = (await client.get("/metrics")).text
    assert (
        'inbound_sns_messages_total{outcome="unsubscribed",type="UnsubscribeConfirmation"}'
        in metrics
    )


async def test_replies_during_a_broker_outage_all_arrive_once_afterwards(
    app_settings: Settings,
    signer: SnsSigner,
    serve: Serve,
    tansu_factory: Callable[[], TansuBroker],
) -> None:
    private = tansu_factory()
    # The restarted Tansu keeps nothing (memory storage) and auto-creates topics with one
    # partition: create them with one from the start, or a producer still holding the old
    # metadata would write to a partition the new broker's readers never see.
    settings = app_settings.model_copy(
        update={"kafka_bootstrap_servers": private.bootstrap_servers, "kafka_topic_partitions": 1}
    )
    sent = [
        signer.notification(phone=PATIENT, body=body, destination=LONG_CODE)
        for body in ("help", "STOP", "start", "what time?", "help", "ayuda")
    ]
    async with serve(app_for(settings, signer)) as base:
        private.stop()
        for fields in sent:
            response = await post(base, fields)
            assert response.status_code == 200, "a 2xx while the broker is down: durable"
        await post(base, sent[0])  # SNS retrying one of them
        private.start()
        received = await read_distinct_events(
            private.bootstrap_servers, settings.topic(topics.REPLIES), distinct=len(sent)
        )
    # The relay is at-least-once: a batch caught by the outage may be published again, so
    # the topic can hold copies; consumers dedupe by event_id (deterministic per reply).
    # What must hold: every reply's event arrived, none twice under different ids.
    unique = {e.event_id: e for e in received}
    expected_ids = sorted(json.loads(f["Message"])["inboundMessageId"] for f in sent)
    assert sorted(getattr(e, "inbound_message_id", "") for e in unique.values()) == expected_ids
    by_reply = {getattr(e, "inbound_message_id", ""): e.event_type for e in unique.values()}
    assert [by_reply[json.loads(f["Message"])["inboundMessageId"]] for f in sent] == [
        "HelpRequested",
        "PatientOptedOut",
        "PatientOptedIn",
        "ReplyUnmatched",
        "HelpRequested",
        "HelpRequested",
    ]
