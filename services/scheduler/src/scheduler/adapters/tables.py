"""The scheduler's own tables: appointments as last seen, patients as last seen, timers,
plus the shared outbox and inbox.

Datetimes are stored as naive UTC (MySQL keeps no offset) with microseconds on MySQL, so
lateness can be measured below a second.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, Integer, MetaData, String, Table
from sqlalchemy.dialects import mysql

from reminder_runtime.messaging import MessagingTables

metadata = MetaData()
messaging = MessagingTables(metadata)

UtcDateTime = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

#: The latest version of each appointment this service has seen; late older events are
#: compared against `version` and change nothing.
appointments = Table(
    "appointments",
    metadata,
    Column("appointment_id", String(36), primary_key=True),
    Column("patient_id", String(36), nullable=False, index=True),
    Column("version", Integer, nullable=False),
    #: active | cancelled | closed (attendance recorded)
    Column("status", String(16), nullable=False),
    #: NULL when the first event seen was a cancellation.
    Column("starts_at", UtcDateTime, nullable=True),
    Column("location", String(200), nullable=True),
    Column("provider", String(200), nullable=True),
    #: The appointment's own offsets in minutes, comma-separated; NULL: the policy's.
    Column("offsets_override", String(400), nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
    mysql_charset="utf8mb4",
    mysql_collate="utf8mb4_unicode_ci",
)

#: The newest patient snapshot seen (from appointment events or PatientUpdated).
patients = Table(
    "patients",
    metadata,
    Column("patient_id", String(36), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("name", String(200), nullable=False),
    Column("phone", String(32), nullable=False),
    Column("language", String(8), nullable=False),
    Column("timezone", String(64), nullable=False),
    mysql_charset="utf8mb4",
    mysql_collate="utf8mb4_unicode_ci",
)

#: One row per reminder of an appointment version; `pending` rows are the live timers.
timers = Table(
    "timers",
    metadata,
    Column("reminder_id", String(36), primary_key=True),
    Column("appointment_id", String(36), nullable=False),
    Column("appointment_version", Integer, nullable=False),
    Column("offset_minutes", Integer, nullable=False),
    Column("due_at", UtcDateTime, nullable=False),
    #: pending | emitted | cancelled
    Column("status", String(16), nullable=False),
    Column("emitted_at", UtcDateTime, nullable=True),
    #: The event that made this timer: ReminderDue continues its correlation.
    Column("correlation_id", String(36), nullable=False),
    Column("causation_id", String(36), nullable=False),
    # The firing query: pending rows in due order.
    Index("ix_timers_status_due", "status", "due_at"),
    Index("ix_timers_appointment", "appointment_id", "status"),
    mysql_charset="utf8mb4",
    mysql_collate="utf8mb4_unicode_ci",
)
