"""The event contracts: every type round-trips, input is checked strictly, versions are honoured."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from pydantic import ValidationError

from reminder_contracts import (
    EVENT_TYPES,
    AppointmentCancelled,
    AppointmentConfirmed,
    AppointmentDeclined,
    AppointmentRescheduled,
    AppointmentScheduled,
    AttendanceRecorded,
    AutoReplySent,
    Event,
    HelpRequested,
    MalformedEvent,
    PatientOptedIn,
    PatientOptedOut,
    PatientRegistered,
    PatientSnapshot,
    PatientUpdated,
    ReminderDue,
    ReminderFailed,
    ReminderSent,
    ReminderSkipped,
    ReplyUnmatched,
    UnknownEventType,
    UnsupportedEventVersion,
    decode,
    encode,
    reminder_id_for,
    reply_id_for,
)

pytestmark = pytest.mark.unit

PHONE = "+12025550143"
PATIENT_ID = UUID("11111111-1111-4111-8111-111111111111")
APPOINTMENT_ID = UUID("22222222-2222-4222-8222-222222222222")
REPLY_ID = reply_id_for("inbound-msg-1")
REMINDER_ID = reminder_id_for(APPOINTMENT_ID, 1, 1440)
STARTS_AT = datetime(2026, 12, 1, 15, 30, tzinfo=UTC)

SNAPSHOT = PatientSnapshot(
    patient_id=PATIENT_ID,
    patient_version=1,
    name="Ada Lovelace",
    phone=PHONE,
    language="en",
    timezone="America/New_York",
)
_REPLY: dict[str, Any] = {
    "reply_id": REPLY_ID,
    "inbound_message_id": "inbound-msg-1",
    "phone": PHONE,
    "received_at": STARTS_AT - timedelta(hours=20),
    "language": "en",
}
_REMINDER: dict[str, Any] = {
    "appointment_id": APPOINTMENT_ID,
    "patient_id": PATIENT_ID,
    "reminder_id": REMINDER_ID,
    "appointment_version": 1,
}


def _one_of_each() -> dict[type[Event], tuple[Event, str]]:
    """One valid instance of every event type, with the aggregate id its key must be."""
    appt, patient, reply = str(APPOINTMENT_ID), str(PATIENT_ID), str(REPLY_ID)
    person: dict[str, Any] = {
        "name": "Ada Lovelace",
        "phone": PHONE,
        "language": "en",
        "timezone": "Europe/Madrid",
    }
    events: list[tuple[Event, str]] = [
        (PatientRegistered(patient_id=PATIENT_ID, **person), patient),
        (PatientUpdated(patient_id=PATIENT_ID, version=2, **person), patient),
        (
            AppointmentScheduled(
                appointment_id=APPOINTMENT_ID,
                patient_id=PATIENT_ID,
                starts_at=STARTS_AT,
                location="Room 4",
                reminder_offsets_minutes=(1440, 120),
                patient=SNAPSHOT,
            ),
            appt,
        ),
        (
            AppointmentRescheduled(
                appointment_id=APPOINTMENT_ID,
                patient_id=PATIENT_ID,
                version=2,
                previous_starts_at=STARTS_AT,
                starts_at=STARTS_AT + timedelta(days=1),
                patient=SNAPSHOT,
            ),
            appt,
        ),
        (
            AppointmentCancelled(
                appointment_id=APPOINTMENT_ID, patient_id=PATIENT_ID, version=3, reason="ill"
            ),
            appt,
        ),
        (
            AttendanceRecorded(
                appointment_id=APPOINTMENT_ID, patient_id=PATIENT_ID, version=4, outcome="no_show"
            ),
            appt,
        ),
        (
            ReminderDue(
                **_REMINDER,
                offset_minutes=1440,
                due_at=STARTS_AT - timedelta(days=1),
                starts_at=STARTS_AT,
                patient=SNAPSHOT,
            ),
            appt,
        ),
        (
            ReminderSent(
                **_REMINDER, sns_message_id="m-1", segments=1, encoding="GSM-7", language="en"
            ),
            appt,
        ),
        (
            ReminderFailed(
                **_REMINDER, error_code="Throttling", error="rate exceeded", retryable=True
            ),
            appt,
        ),
        (ReminderSkipped(**_REMINDER, reason="opted_out"), appt),
        (
            AutoReplySent(
                reply_id=REPLY_ID, kind="help", sns_message_id="m-2", segments=1, language="es"
            ),
            reply,
        ),
        (
            AppointmentConfirmed(
                **_REPLY,
                keyword="YES",
                appointment_id=APPOINTMENT_ID,
                patient_id=PATIENT_ID,
                reminder_id=REMINDER_ID,
            ),
            appt,
        ),
        (
            AppointmentDeclined(
                **_REPLY, keyword="NO", appointment_id=APPOINTMENT_ID, patient_id=PATIENT_ID
            ),
            appt,
        ),
        (PatientOptedOut(**_REPLY, keyword="STOP", patient_id=PATIENT_ID), patient),
        (PatientOptedIn(**_REPLY, keyword="START", patient_id=PATIENT_ID), patient),
        (HelpRequested(**_REPLY, keyword="HELP"), reply),
        (
            ReplyUnmatched(**_REPLY, keyword="MAYBE", reason="not_understood", body="maybe later?"),
            reply,
        ),
    ]
    return {type(event): (event, key) for event, key in events}


EXAMPLES = _one_of_each()


def test_there_is_an_example_of_every_event_type() -> None:
    assert set(EXAMPLES) == set(EVENT_TYPES.values())


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_every_event_round_trips_through_json(event_type: str) -> None:
    event, _ = EXAMPLES[EVENT_TYPES[event_type]]
    decoded = decode(encode(event))
    assert type(decoded) is type(event)
    assert decoded == event
    assert decode(encode(event).decode()) == event  # str input too


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_every_event_is_keyed_by_its_aggregate_id(event_type: str) -> None:
    event, key = EXAMPLES[EVENT_TYPES[event_type]]
    assert event.key() == key


def test_auto_reply_is_keyed_by_appointment_then_patient() -> None:
    base: dict[str, Any] = {
        "reply_id": REPLY_ID,
        "kind": "confirmed",
        "sns_message_id": "m",
        "segments": 1,
        "language": "en",
    }
    both = AutoReplySent(**base, patient_id=PATIENT_ID, appointment_id=APPOINTMENT_ID)
    assert both.key() == str(APPOINTMENT_ID)
    assert AutoReplySent(**base, patient_id=PATIENT_ID).key() == str(PATIENT_ID)


def test_every_event_type_names_its_own_model() -> None:
    for name, cls in EVENT_TYPES.items():
        assert cls.__name__ == name
        event, _ = EXAMPLES[cls]
        assert event.event_type == name


def _as_json(event: Event) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(encode(event))
    return data


def _registered(**changes: Any) -> bytes:
    data = _as_json(EXAMPLES[PatientRegistered][0]) | changes
    return json.dumps(data).encode()


def test_a_string_where_an_int_is_expected_is_refused() -> None:
    with pytest.raises(MalformedEvent, match="version"):
        decode(_registered(version="1"))
    with pytest.raises(ValidationError):
        PatientUpdated.model_validate(
            _as_json(EXAMPLES[PatientUpdated][0]) | {"version": "2"}, strict=True
        )


def test_a_naive_datetime_is_refused() -> None:
    data = _as_json(EXAMPLES[AppointmentScheduled][0]) | {"starts_at": "2026-12-01T15:30:00"}
    with pytest.raises(MalformedEvent, match="starts_at"):
        decode(json.dumps(data))
    with pytest.raises(ValidationError):
        ReminderSkipped(**_REMINDER, reason="stale", occurred_at=datetime(2026, 1, 1))  # noqa: DTZ001


@pytest.mark.parametrize(
    "phone", ["2025550143", "+1 202 555 0143", "+15555550100", "+1202555014", "not a phone"]
)
def test_a_phone_number_not_in_valid_e164_is_refused(phone: str) -> None:
    with pytest.raises(MalformedEvent, match="phone"):
        decode(_registered(phone=phone))


def test_valid_international_numbers_are_accepted() -> None:
    for phone in ("+34612345678", "+33612345678", "+12025550178"):
        event = decode(_registered(phone=phone))
        assert isinstance(event, PatientRegistered)
        assert event.phone == phone


def test_an_unknown_timezone_is_refused() -> None:
    with pytest.raises(MalformedEvent, match="timezone"):
        decode(_registered(timezone="Mars/Olympus_Mons"))


def test_unknown_fields_are_ignored() -> None:
    event = decode(_registered(loyalty_tier="gold", nested={"a": 1}))
    assert event == EXAMPLES[PatientRegistered][0]
    assert "loyalty_tier" not in event.model_dump()


def test_an_unknown_event_type_raises_unknown_event_type() -> None:
    with pytest.raises(UnknownEventType, match="PatientTeleported"):
        decode(_registered(event_type="PatientTeleported"))


def test_a_newer_event_version_raises_unsupported_event_version() -> None:
    with pytest.raises(UnsupportedEventVersion, match="v2"):
        decode(_registered(event_version=PatientRegistered.VERSION + 1))


@pytest.mark.parametrize(
    "raw",
    [
        b'{"event_type": "PatientRegistered", "phone": "+12025550143"',  # truncated JSON
        b'["+12025550143"]',  # not an object
        b'{"phone": "+12025550143"}',  # no event_type
        b'{"event_type": "PatientRegistered", "event_version": 0, "phone": "+12025550143"}',
        b"\xff\xfe+12025550143",  # not UTF-8
    ],
)
def test_malformed_input_raises_malformed_event_without_the_phone_number(raw: bytes) -> None:
    with pytest.raises(MalformedEvent) as caught:
        decode(raw)
    assert "12025550143" not in str(caught.value)


def test_validation_errors_do_not_echo_phone_numbers_or_bodies() -> None:
    data = _as_json(EXAMPLES[ReplyUnmatched][0]) | {"phone": "+12025550143x", "segments": "x"}
    with pytest.raises(MalformedEvent) as caught:
        decode(json.dumps(data))
    assert "12025550143" not in str(caught.value)
    assert "maybe later" not in str(caught.value)


def test_events_are_immutable() -> None:
    event = EXAMPLES[PatientRegistered][0]
    with pytest.raises(ValidationError):
        event.producer = "someone-else"  # type: ignore[misc]


def test_reminder_ids_are_deterministic() -> None:
    first = reminder_id_for(APPOINTMENT_ID, 1, 1440)
    assert first == reminder_id_for(APPOINTMENT_ID, 1, 1440)
    assert first != reminder_id_for(APPOINTMENT_ID, 2, 1440)
    assert first != reminder_id_for(APPOINTMENT_ID, 1, 120)
    assert first != reminder_id_for(uuid4(), 1, 1440)


def test_reply_ids_are_deterministic() -> None:
    assert reply_id_for("abc-123") == reply_id_for("abc-123")
    assert reply_id_for("abc-123") != reply_id_for("abc-124")


def test_caused_events_share_the_correlation() -> None:
    cause = EXAMPLES[ReminderDue][0]
    effect = ReminderSkipped(**_REMINDER, reason="cancelled", **cause.caused())
    assert effect.correlation_id == cause.correlation_id
    assert effect.causation_id == cause.event_id
