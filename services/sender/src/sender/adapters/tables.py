"""The sender's own tables: what it knows of patients, appointments and opt-outs (built
from the events it consumes), one row per SMS it owes, and the shared send-rate bucket."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Double,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
)
from sqlalchemy.dialects import mysql

from reminder_runtime.messaging import MessagingTables

#: UTC instants; MySQL's DATETIME keeps whole seconds unless told otherwise, and a
#: reminder's `starts_at` is compared with the appointment's to the microsecond.
UtcDateTime = DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql")

metadata = MetaData()
messaging = MessagingTables(metadata)

#: Latest version of each patient seen (PatientRegistered/Updated, appointment snapshots).
patients = Table(
    "patients",
    metadata,
    Column("patient_id", Uuid(as_uuid=True), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("name", String(200), nullable=False),
    Column("phone", String(20), nullable=False),
    Column("language", String(8), nullable=False),
    Column("timezone", String(64), nullable=False),
    mysql_charset="utf8mb4",
)

#: Latest version of each appointment seen. `starts_at` is NULL when only a
#: cancellation or attendance (which carry no time) has been seen so far.
appointments = Table(
    "appointments",
    metadata,
    Column("appointment_id", Uuid(as_uuid=True), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("starts_at", UtcDateTime, nullable=True),
    Column("cancelled", Boolean, nullable=False),
    mysql_charset="utf8mb4",
)

#: Opt-out state per phone number and per patient (subject_kind 'phone' or 'patient'):
#: a patient who texts STOP is silenced on that number, and under their id should their
#: number change. Last reply (by `changed_at`, AWS's receive time) wins.
opt_outs = Table(
    "opt_outs",
    metadata,
    Column("subject_kind", String(8), primary_key=True),
    Column("subject", String(36), primary_key=True),
    Column("opted_out", Boolean, nullable=False),
    Column("changed_at", UtcDateTime, nullable=False),
    mysql_charset="utf8mb4",
)

#: One row per SMS the sender owes: a reminder (id = reminder_id) or an automatic reply
#: (id = reply_id). The primary key makes "once per id" hold across redeliveries and
#: replicas. state: sending -> sent | failed; or skipped. Phone and text are not stored.
sms_deliveries = Table(
    "sms_deliveries",
    metadata,
    Column("delivery_id", Uuid(as_uuid=True), primary_key=True),
    Column("kind", String(16), nullable=False),  # reminder | help | confirmed | declined
    Column("state", String(16), nullable=False),
    Column("appointment_id", Uuid(as_uuid=True), nullable=True),
    Column("patient_id", Uuid(as_uuid=True), nullable=True),
    Column("appointment_version", Integer, nullable=True),
    # The envelope of the event that asked for this SMS, for the events that answer it.
    Column("cause_event_id", Uuid(as_uuid=True), nullable=False),
    Column("correlation_id", Uuid(as_uuid=True), nullable=False),
    Column("language", String(8), nullable=True),
    Column("segments", Integer, nullable=True),
    Column("encoding", String(8), nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("sns_message_id", String(100), nullable=True),
    Column("error_code", String(64), nullable=True),
    Column("started_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=True),
    Index("ix_sms_deliveries_state", "state", "started_at"),
    mysql_charset="utf8mb4",
)

#: The send-rate token bucket shared by every replica (see adapters.rate_limiter).
rate_buckets = Table(
    "rate_buckets",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("tokens", Double, nullable=False),
    Column("updated_at", Double, nullable=False),  # seconds on the database's clock
)
