"""The admin API's own tables: the command side's patients, the projection of every
event, idempotency keys, and the shared outbox/inbox.

Appointments are a projection: `appointment_events` keeps each event once (the facts);
`appointments` is one summary row per appointment recomputed from them, shaped and
indexed for the list and the statistics at millions of rows.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    Uuid,
)
from sqlalchemy.dialects import mysql

from reminder_runtime.messaging import MessagingTables

metadata = MetaData()
#: Names and locations in any language, emoji included.
_MYSQL: dict[str, Any] = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci"}
messaging = MessagingTables(metadata)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC in, aware UTC out; stored naive UTC with microseconds (MySQL drops tzinfo)."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where a UTC instant is expected")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


#: MEDIUMTEXT on MySQL: an event's JSON (a ReplyUnmatched body alone may be 1,600 chars).
_EVENT_JSON = Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")

patients = Table(
    "patients",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("version", Integer, nullable=False),
    Column("name", String(200), nullable=False),
    Column("phone", String(20), nullable=False),
    Column("language", String(8), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("registered_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_patients_phone", "phone"),
    Index("ix_patients_name", "name"),
    **_MYSQL,
)

#: Per patient: the latest opt-out/opt-in as the patient sent it (received_at).
patient_consent = Table(
    "patient_consent",
    metadata,
    Column("patient_id", Uuid, primary_key=True),
    Column("opted_out", Boolean, nullable=False),
    Column("changed_at", UtcDateTime, nullable=False),
    **_MYSQL,
)

#: Replies about a phone number rather than an appointment (opt-out/in, help, unmatched),
#: once per (reply, kind, patient): a reply re-sent by SNS is counted once.
phone_replies = Table(
    "phone_replies",
    metadata,
    Column("reply_id", Uuid, primary_key=True),
    Column("event_type", String(40), primary_key=True),
    #: the patient's id as hex, '' when the number belongs to no patient
    Column("patient_key", String(32), primary_key=True),
    Column("patient_id", Uuid, nullable=True),
    Column("received_at", UtcDateTime, nullable=False),
    Index("ix_phone_replies_type_received", "event_type", "received_at"),
    Index("ix_phone_replies_patient", "patient_id", "received_at"),
    **_MYSQL,
)

#: Every event about an appointment, once, whatever the topic: the facts of the projection.
#: Clustered by appointment: one appointment's events share a page, read in one range scan.
appointment_events = Table(
    "appointment_events",
    metadata,
    Column("appointment_id", Uuid, primary_key=True),
    Column("event_id", Uuid, primary_key=True),
    Column("event_type", String(40), nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("payload", _EVENT_JSON, nullable=False),
    **_MYSQL,
)

#: One row per appointment ever seen, locked (upsert) by whoever changes its projection,
#: so two events of one appointment from different topics cannot overwrite each other.
appointment_locks = Table(
    "appointment_locks",
    metadata,
    Column("appointment_id", Uuid, primary_key=True),
    Column("events", Integer, nullable=False),
    **_MYSQL,
)

#: The summary the list and the statistics read, recomputed from `appointment_events`.
appointments = Table(
    "appointments",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("patient_id", Uuid, nullable=False),
    Column("version", Integer, nullable=False),
    Column("starts_at", UtcDateTime, nullable=False),
    #: the clinic's calendar day of starts_at (CLINIC_TIMEZONE), for per-day statistics
    Column("local_day", Date, nullable=False),
    Column("location", String(200), nullable=True),
    Column("provider", String(200), nullable=True),
    Column("reminder_offsets", String(100), nullable=True),
    Column("status", String(16), nullable=False),
    Column("confirmation", String(16), nullable=True),
    Column("reminded", Boolean, nullable=False),
    Column("reply_seconds", Integer, nullable=True),
    Column("segments_sent", Integer, nullable=False),
    Column("failed_reminders", Integer, nullable=False),
    Column("scheduled_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    # keyset pagination, alone or filtered by status or patient
    Index("ix_appointments_starts", "starts_at", "id"),
    Index("ix_appointments_status_starts", "status", "starts_at", "id"),
    Index("ix_appointments_patient_starts", "patient_id", "starts_at", "id"),
    # covers the statistics query: a range scan of the index, no table rows read
    Index(
        "ix_appointments_stats",
        "local_day",
        "status",
        "confirmation",
        "reminded",
        "reply_seconds",
        "segments_sent",
        "failed_reminders",
    ),
    **_MYSQL,
)

#: A retried POST with the same Idempotency-Key gets the first response back.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("key", String(200), primary_key=True),
    #: method, path and body digest: the same key with another request is refused
    Column("request_hash", String(64), nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("response", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    **_MYSQL,
)
