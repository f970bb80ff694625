"""Transactional outbox and inbox, as tables on each service's own schema.

Outbox: a service writes its state and the events it emits in ONE transaction; the
`OutboxRelay` publishes them afterwards, in order, and marks them published. A crash or
broker outage between the two delays events, never loses them (at-least-once).

Inbox: the ids of the events a consumer has handled, written in the same transaction as
the handler's effect, so a redelivered event has its effect once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Session

from reminder_contracts import Event, encode

#: BIGINT on MySQL; SQLite autoincrements only an INTEGER PRIMARY KEY.
_BIG_ID = BigInteger().with_variant(Integer(), "sqlite")
_LONG_TEXT = Text().with_variant(Text(length=2**24 - 1), "mysql")  # MEDIUMTEXT


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class PendingEvent:
    id: int
    topic: str
    key: str
    event_type: str
    payload: bytes


class Outbox:
    def __init__(self, metadata: MetaData) -> None:
        self.table = Table(
            "outbox",
            metadata,
            Column("id", _BIG_ID, primary_key=True, autoincrement=True),
            Column("event_id", String(36), nullable=False, unique=True),
            Column("topic", String(200), nullable=False),
            Column("event_key", String(200), nullable=False),
            Column("event_type", String(64), nullable=False),
            Column("payload", _LONG_TEXT, nullable=False),
            Column("created_at", DateTime, nullable=False),
            Column("published_at", DateTime, nullable=True),
            Index("ix_outbox_unpublished", "published_at", "id"),
        )

    def add(self, session: Session, *events: Event) -> None:
        """Queue events for publication in the caller's transaction."""
        if not events:
            return
        session.execute(
            insert(self.table),
            [
                {
                    "event_id": str(e.event_id),
                    "topic": e.TOPIC,
                    "event_key": e.key(),
                    "event_type": e.event_type,
                    "payload": encode(e).decode(),
                    "created_at": _now().replace(tzinfo=None),
                }
                for e in events
            ],
        )

    def pending(self, session: Session, limit: int) -> list[PendingEvent]:
        rows = session.execute(
            select(
                self.table.c.id,
                self.table.c.topic,
                self.table.c.event_key,
                self.table.c.event_type,
                self.table.c.payload,
            )
            .where(self.table.c.published_at.is_(None))
            .order_by(self.table.c.id)
            .limit(limit)
        ).all()
        return [
            PendingEvent(r.id, r.topic, r.event_key, r.event_type, r.payload.encode()) for r in rows
        ]

    def mark_published(self, session: Session, ids: list[int]) -> None:
        if ids:
            session.execute(
                update(self.table)
                .where(self.table.c.id.in_(ids))
                .values(published_at=_now().replace(tzinfo=None))
            )

    def count_pending(self, session: Session) -> int:
        return int(
            session.execute(
                select(func.count()).where(self.table.c.published_at.is_(None))
            ).scalar_one()
        )


class Inbox:
    def __init__(self, metadata: MetaData) -> None:
        self.table = Table(
            "inbox",
            metadata,
            Column("consumer", String(64), primary_key=True),
            Column("event_id", String(36), primary_key=True),
            Column("processed_at", DateTime, nullable=False),
        )

    def first_time(self, session: Session, consumer: str, event_id: UUID) -> bool:
        """Record that `consumer` handles `event_id`; False if it already did.

        INSERT IGNORE / INSERT OR IGNORE: a duplicate does not abort the transaction, and
        a concurrent duplicate blocks on the key until the first commits or rolls back.
        """
        stmt = (
            insert(self.table)
            .values(
                consumer=consumer, event_id=str(event_id), processed_at=_now().replace(tzinfo=None)
            )
            .prefix_with("IGNORE", dialect="mysql")
            .prefix_with("OR IGNORE", dialect="sqlite")
        )
        return bool(session.execute(stmt).rowcount == 1)  # type: ignore[attr-defined]


class RelayLock:
    """One row that an outbox relay holds (FOR UPDATE SKIP LOCKED) while it publishes,
    so that of several replicas only one publishes at a time and order is kept."""

    def __init__(self, metadata: MetaData) -> None:
        self.table = Table(
            "outbox_relay_lock",
            metadata,
            Column("name", String(32), primary_key=True),
        )


class MessagingTables:
    """Adds `outbox`, `inbox` and `outbox_relay_lock` to a service's metadata."""

    def __init__(self, metadata: MetaData) -> None:
        self.outbox = Outbox(metadata)
        self.inbox = Inbox(metadata)
        self.relay_lock = RelayLock(metadata)
