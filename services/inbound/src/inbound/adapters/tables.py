"""The inbound service's own tables: replies received, and projections of what it consumes.

Projections are kept only as far as matching replies needs them: patients' phone and
language, appointments' start and state, and reminders sent (SNS MessageId -> reminder).
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
)

from reminder_runtime.messaging import MessagingTables

metadata = MetaData()
messaging = MessagingTables(metadata)

#: One row per SMS reply accepted. Both AWS ids are unique: SNS may deliver a message
#: twice (same MessageId), and a redrive could wrap the same SMS in a new SNS message.
#: The body is not stored here (PHI at rest kept to a minimum); staff see unmatched texts
#: through the ReplyUnmatched event.
replies = Table(
    "replies",
    metadata,
    Column("reply_id", Uuid(as_uuid=True), primary_key=True),
    Column("inbound_message_id", String(100), nullable=False, unique=True),
    Column("sns_message_id", String(100), nullable=False, unique=True),
    Column("phone", String(20), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("keyword", String(40), nullable=False),
    Column("outcome", String(40), nullable=False),
    Column("appointment_id", Uuid(as_uuid=True), nullable=True),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    mysql_charset="utf8mb4",
)

patients = Table(
    "patients",
    metadata,
    Column("patient_id", Uuid(as_uuid=True), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("phone", String(20), nullable=False),
    Column("language", String(8), nullable=False),
    Index("ix_patients_phone", "phone"),
    mysql_charset="utf8mb4",
)

#: `starts_at` is NULL when a cancellation arrived before the scheduling it cancels.
appointments = Table(
    "appointments",
    metadata,
    Column("appointment_id", Uuid(as_uuid=True), primary_key=True),
    Column("patient_id", Uuid(as_uuid=True), nullable=False),
    Column("version", Integer, nullable=False),
    Column("starts_at", DateTime(timezone=True), nullable=True),
    Column("cancelled", Boolean, nullable=False, default=False),
    #: "confirmed" / "declined" from the latest answer (by received_at), NULL: unanswered.
    Column("answer", String(16), nullable=True),
    Column("answered_at", DateTime(timezone=True), nullable=True),
    Index("ix_appointments_patient", "patient_id", "starts_at"),
    mysql_charset="utf8mb4",
)

#: ReminderSent, by SNS MessageId: what `previousPublishedMessageId` refers to.
reminders_sent = Table(
    "reminders_sent",
    metadata,
    Column("sns_message_id", String(100), primary_key=True),
    Column("reminder_id", Uuid(as_uuid=True), nullable=False),
    Column("appointment_id", Uuid(as_uuid=True), nullable=False),
    Column("patient_id", Uuid(as_uuid=True), nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=False),
    Index("ix_reminders_sent_appointment", "appointment_id", "sent_at"),
    mysql_charset="utf8mb4",
)

#: AutoReplySent about an appointment, by SNS MessageId: a patient answering our
#: acknowledgement ("Thanks, confirmed" -> "NO") names that appointment.
auto_replies_sent = Table(
    "auto_replies_sent",
    metadata,
    Column("sns_message_id", String(100), primary_key=True),
    Column("appointment_id", Uuid(as_uuid=True), nullable=False),
    Column("patient_id", Uuid(as_uuid=True), nullable=True),
    Column("sent_at", DateTime(timezone=True), nullable=False),
    mysql_charset="utf8mb4",
)
