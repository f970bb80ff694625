"""Kafka: the broker factory and at-least-once event subscribers with a dead-letter topic.

FastStream's default ack policy (ACK_FIRST) commits before the handler runs: a crash
then loses the message. Subscribers here commit only after the handler succeeded or the
message was safely written to the dead-letter topic; anything else (the dead-letter
publish itself failing) leaves the offset uncommitted, so the message comes again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from prometheus_client import Counter

from reminder_contracts import (
    Event,
    MalformedEvent,
    UnknownEventType,
    UnsupportedEventVersion,
    decode,
    encode,
)
from reminder_contracts.topics import dead_letter_topic

from .logging import mask
from .settings import ServiceSettings

log = logging.getLogger(__name__)

CONSUMED = Counter(
    "events_consumed_total", "Events consumed, by topic and outcome", ["topic", "outcome"]
)
DEAD_LETTERED = Counter(
    "events_dead_lettered_total", "Messages sent to the dead-letter topic", ["topic", "reason"]
)


def make_broker(settings: ServiceSettings, **kwargs: Any) -> KafkaBroker:
    """A FastStream Kafka broker for `KAFKA_BOOTSTRAP_SERVERS`.

    Idempotence is on by default (no duplicates from producer retries); Tansu lacks
    InitProducerId, so development turns it off with KAFKA_ENABLE_IDEMPOTENCE=false.
    """
    return KafkaBroker(
        settings.kafka_bootstrap_servers.split(","),
        enable_idempotence=settings.kafka_enable_idempotence,
        acks="all",
        client_id=settings.service_name,
        logger=logging.getLogger(f"{settings.service_name}.kafka"),
        log_level=logging.DEBUG,  # "Received"/"Processed" per message: debug detail only
        **kwargs,
    )


async def publish_event(broker: KafkaBroker, settings: ServiceSettings, event: Event) -> None:
    """Publish one event to its topic, keyed by its aggregate id, and wait for the ack."""
    await broker.publish(
        encode(event),
        topic=settings.topic(event.TOPIC),
        key=event.key().encode(),
        headers={"event_type": event.event_type, "content-type": "application/json"},
    )


async def ensure_topics(settings: ServiceSettings, names: Iterable[str]) -> None:
    """Create topics that do not exist yet (development; production declares them)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers.split(","))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [settings.topic(n) for n in names if settings.topic(n) not in existing]
        if not missing:
            return
        new = [NewTopic(n, settings.kafka_topic_partitions, 1) for n in missing]
        with contextlib.suppress(TopicAlreadyExistsError):  # another service was first
            await admin.create_topics(new)
        log.info("created topics", extra={"topics": missing})
    finally:
        await admin.close()


@dataclass(frozen=True)
class MessageMeta:
    """Where a consumed event came from."""

    topic: str
    partition: int
    offset: int
    key: bytes | None


EventHandler = Callable[[Event, MessageMeta], Awaitable[None]]


class EventSubscriber:
    """Subscribes `handler` to `topics` for `group_id`, at-least-once.

    Per message: decode (unknown event type: skip and commit; malformed or too-new
    version: dead-letter at once), then call the handler, retrying up to
    CONSUMER_MAX_RETRIES times with exponential backoff and jitter; if it still fails,
    dead-letter with the error and move on. The offset is committed only after that.
    """

    def __init__(
        self,
        broker: KafkaBroker,
        settings: ServiceSettings,
        *,
        topics: Sequence[str],
        group_id: str,
        handler: EventHandler,
        accept: Callable[[Event], bool] | None = None,
    ) -> None:
        self.broker = broker
        self.settings = settings
        self.group_id = group_id
        self.kafka_group_id = settings.consumer_group(group_id)
        self.handler = handler
        self.accept = accept
        self.dead_letter_topic = settings.topic(dead_letter_topic(group_id))
        self.subscriber = broker.subscriber(
            *(settings.topic(t) for t in topics),
            group_id=self.kafka_group_id,
            ack_policy=AckPolicy.NACK_ON_ERROR,
            auto_offset_reset="earliest",
            session_timeout_ms=settings.kafka_session_timeout_ms,
            heartbeat_interval_ms=max(1000, settings.kafka_session_timeout_ms // 3),
            title=f"{group_id}:{','.join(topics)}",
        )
        self.subscriber(self._consume)

    async def _consume(self, message: KafkaMessage) -> None:
        record = message.raw_message
        assert not isinstance(record, tuple)  # batch subscribers are not used
        meta = MessageMeta(
            topic=record.topic, partition=record.partition, offset=record.offset, key=record.key
        )
        try:
            event = decode(message.body)
        except UnknownEventType as exc:
            log.info("skipping unknown event type", extra={"event_type": str(exc), **_where(meta)})
            CONSUMED.labels(meta.topic, "skipped").inc()
            return
        except (MalformedEvent, UnsupportedEventVersion) as exc:
            await self._dead_letter(message, meta, exc)
            return
        if self.accept is not None and not self.accept(event):
            CONSUMED.labels(meta.topic, "ignored").inc()
            return
        await self._handle_with_retries(event, message, meta)

    async def _handle_with_retries(
        self, event: Event, message: KafkaMessage, meta: MessageMeta
    ) -> None:
        attempts = self.settings.consumer_max_retries + 1
        for attempt in range(1, attempts + 1):
            try:
                await self.handler(event, meta)
            except Exception as exc:
                if attempt == attempts:
                    log.exception(
                        "handler failed, dead-lettering",
                        extra={
                            "event_type": event.event_type,
                            "event_id": str(event.event_id),
                            "attempts": attempts,
                            **_where(meta),
                        },
                    )
                    await self._dead_letter(message, meta, exc)
                    return
                delay = self.settings.consumer_retry_backoff_seconds * 2 ** (attempt - 1)
                log.warning(
                    "handler failed, retrying",
                    extra={
                        "event_type": event.event_type,
                        "attempt": attempt,
                        "error": type(exc).__name__,
                        **_where(meta),
                    },
                )
                await asyncio.sleep(delay * random.uniform(0.5, 1.5))
            else:
                CONSUMED.labels(meta.topic, "handled").inc()
                return

    async def _dead_letter(self, message: KafkaMessage, meta: MessageMeta, exc: Exception) -> None:
        # If this publish fails the exception propagates: NACK, the offset stays, the
        # message is redelivered. Nothing is lost either way.
        await self.broker.publish(
            message.body,
            topic=self.dead_letter_topic,
            key=meta.key,
            headers={
                "dlt-error": mask(str(exc))[:1000] or type(exc).__name__,
                "dlt-error-type": type(exc).__name__,
                "dlt-original-topic": meta.topic,
                "dlt-original-partition": str(meta.partition),
                "dlt-original-offset": str(meta.offset),
                "dlt-consumer-group": self.kafka_group_id,
            },
        )
        DEAD_LETTERED.labels(meta.topic, type(exc).__name__).inc()
        CONSUMED.labels(meta.topic, "dead_lettered").inc()
        log.error(
            "message dead-lettered",
            extra={
                "error_type": type(exc).__name__,
                "dead_letter_topic": self.dead_letter_topic,
                **_where(meta),
            },
        )


def _where(meta: MessageMeta) -> dict[str, Any]:
    return {"topic": meta.topic, "partition": meta.partition, "offset": meta.offset}
