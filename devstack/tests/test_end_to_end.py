"""The stack as separate processes on Tansu, MariaDB and moto, driven only through its
interfaces: the admin API, the SMS the SNS emulator received, and replies posted to inbound."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from reminder_devstack.clinic import Clinic
from reminder_devstack.stack import Stack

from reminder_contracts import to_e164
from reminder_testkit import SnsServer

pytestmark = pytest.mark.e2e


def soon(hours: float = 3) -> datetime:
    return (datetime.now(UTC) + timedelta(hours=hours)).replace(second=0, microsecond=0)


def shows_local_time(text: str, moment: datetime, zone: str, twelve_hour: bool) -> bool:
    """The text names `moment` as a clock in `zone` shows it (3:14, 03:14 or 3:14 PM)."""
    local = moment.astimezone(ZoneInfo(zone))
    hour = (local.hour % 12 or 12) if twelve_hour else local.hour
    found = re.search(rf"(?<!\d)0?{hour}:{local.minute:02d}(?!\d)", text)
    return found is not None


def test_reminder_arrives_in_local_time_and_yes_confirms(
    clinic: Clinic, stack: Stack, sns_server: SnsServer
) -> None:
    phone = "+12025550143"
    patient = clinic.register("Grace Hopper", phone, "en", "America/Los_Angeles")
    starts_at = soon()
    appointment = clinic.book(patient, starts_at, location="Main Street Clinic")

    [sms] = clinic.wait_sms(phone)
    [as_sent] = [m for m in sns_server.sent_sms() if m.message_id == sms.message_id]
    assert as_sent.origination_number == stack.config.long_code
    assert as_sent.sms_type == "Transactional"
    assert "Hi Grace" in sms.message
    assert shows_local_time(sms.message, starts_at, "America/Los_Angeles", twelve_hour=True)
    assert "Main Street Clinic" in sms.message
    assert "Reply YES" in sms.message
    assert "CANCEL" not in sms.message.upper()
    clinic.wait_status(appointment, "reminded")

    assert clinic.reply(phone, "  Yes!! ", to=sms).status_code == 200
    detail = clinic.wait_status(appointment, "confirmed")
    assert [r["kind"] for r in detail["replies"]] == ["confirmed"]
    assert detail["reminders"][0]["sns_message_id"] == sms.message_id


def test_spanish_patient_confirms_with_si(clinic: Clinic) -> None:
    phone = "+34612345678"
    patient = clinic.register("Ana María López", phone, "es", "Europe/Madrid")
    starts_at = soon()
    appointment = clinic.book(patient, starts_at)

    [sms] = clinic.wait_sms(phone)
    assert "Hola Ana" in sms.message
    assert shows_local_time(sms.message, starts_at, "Europe/Madrid", twelve_hour=False)
    assert "Responda SÍ" in sms.message or "Responda SI" in sms.message
    clinic.wait_status(appointment, "reminded")  # a patient answers after the SMS is recorded

    assert clinic.reply(phone, "Sí", to=sms).status_code == 200
    clinic.wait_status(appointment, "confirmed")


def test_no_declines(clinic: Clinic) -> None:
    phone = "+33612345678"
    patient = clinic.register("Amélie Dubois", phone, "fr", "Europe/Paris")
    appointment = clinic.book(patient, soon())
    [sms] = clinic.wait_sms(phone)
    assert "OUI" in sms.message
    clinic.wait_status(appointment, "reminded")

    assert clinic.reply(phone, "NON", to=sms).status_code == 200
    clinic.wait_status(appointment, "declined")


def test_stop_means_no_further_sms(clinic: Clinic) -> None:
    phone = "+12025550178"
    patient = clinic.register("Alan Turing", phone, "en", "Europe/London")
    first = clinic.book(patient, soon())
    [sms] = clinic.wait_sms(phone)
    clinic.wait_status(first, "reminded")

    assert clinic.reply(phone, "STOP", to=sms).status_code == 200
    deadline = time.monotonic() + 30
    while not clinic.admin.get(f"/v1/patients/{patient}").json()["opted_out"]:
        assert time.monotonic() < deadline, "the opt-out never reached the admin API"
        time.sleep(0.3)

    later = clinic.book(patient, soon(4))
    detail = clinic.wait_status(later, "reminder_failed")  # no reminder reached the patient
    assert [r["state"] for r in detail["reminders"]] == ["skipped"]
    assert detail["reminders"][0]["skip_reason"] == "opted_out"
    assert len(clinic.sms_to(phone)) == 1, "nothing after STOP"


def test_reschedule_sends_a_new_reminder_with_the_new_time(clinic: Clinic) -> None:
    phone = "+12025550121"
    patient = clinic.register("Katherine Johnson", phone, "en", "America/New_York")
    appointment = clinic.book(patient, soon(3))
    clinic.wait_sms(phone)

    new_time = soon(5)
    response = clinic.admin.patch(
        f"/v1/appointments/{appointment}", json={"starts_at": new_time.isoformat()}
    )
    assert response.status_code == 200, response.text
    first, second = clinic.wait_sms(phone, count=2)
    assert shows_local_time(second.message, new_time, "America/New_York", twelve_hour=True)
    assert second.message != first.message


def test_cancelled_before_due_sends_nothing(clinic: Clinic) -> None:
    phone = "+12022000999"
    patient = clinic.register("Mary Jackson", phone, "en", "America/Chicago")
    # Due 20 s from now (2 h before an appointment 2 h 20 s away).
    starts_at = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2, seconds=20)
    appointment = clinic.book(patient, starts_at, reminder_offsets=["2h"])
    response = clinic.admin.post(f"/v1/appointments/{appointment}/cancel", json={})
    assert response.status_code == 200, response.text

    time.sleep(30)
    assert clinic.sms_to(phone) == []
    assert clinic.appointment(appointment)["status"] == "cancelled"


# --------------------------------------------------------------------------- faults


def book_many(clinic: Clinic, first: int, count: int) -> dict[str, str]:
    """`count` patients each with an appointment in 3 h: reminders due at once."""
    phones = {}
    for i in range(first, first + count):
        phone = to_e164(f"+1202200{i:04d}")
        patient = clinic.register(f"Patient {i}", phone, "en", "America/New_York")
        phones[phone] = clinic.book(patient, soon())
    return phones


def sms_counts(clinic: Clinic, phones: dict[str, str]) -> dict[str, int]:
    counts = dict.fromkeys(phones, 0)
    for sms in clinic.sent_sms():
        if sms.phone_number in counts:
            counts[sms.phone_number] += 1
    return counts


def wait_one_sms_each(
    clinic: Clinic, phones: dict[str, str], timeout: float = 120, unknown_allowed: int = 0
) -> None:
    """Every patient gets exactly one SMS; nobody gets two.

    `unknown_allowed`: the sender's documented crash policy. An SMS whose publish was under
    way when the sender was killed is not sent again (a second copy would certainly annoy;
    it most likely went out). It is reported instead: the appointment shows
    `reminder_failed` with `unknown_outcome`, so staff see it. A kill can catch at most
    one such publish in flight per sending thread.
    """
    deadline = time.monotonic() + timeout
    while True:
        missing = [p for p, n in sms_counts(clinic, phones).items() if n == 0]
        if len(missing) <= unknown_allowed:
            unknown = [p for p in missing if _unknown_outcome(clinic, phones[p])]
            if len(unknown) == len(missing):
                break
        assert time.monotonic() < deadline, f"{len(missing)} patients never got their SMS"
        time.sleep(0.5)
    time.sleep(5)  # anything sent twice would show up by now
    twice = {p: n for p, n in sms_counts(clinic, phones).items() if n > 1}
    assert not twice, f"patients who got more than one SMS: {twice}"


def _unknown_outcome(clinic: Clinic, appointment: str) -> bool:
    detail = clinic.appointment(appointment)
    return detail["status"] == "reminder_failed" and any(
        r["error_code"] == "unknown_outcome" for r in detail["reminders"]
    )


def test_sender_killed_midway_every_patient_gets_exactly_one_sms(
    clinic: Clinic, stack: Stack
) -> None:
    sender = stack.service("sender")
    sender.stop()  # hold the reminders back so that they are all due at once
    phones = book_many(clinic, 0, 200)
    time.sleep(3)
    sender.start()
    deadline = time.monotonic() + 60
    while sum(1 for m in clinic.sent_sms() if m.phone_number in phones) < 60:
        assert time.monotonic() < deadline, "the sender did not start sending"
        time.sleep(0.05)
    sender.kill()
    sent_before = sum(1 for m in clinic.sent_sms() if m.phone_number in phones)
    assert sent_before < 200, "the kill came too late to test anything"
    sender.start()
    stack.wait_ready(names=["sender"])
    # The sender's 4 publishing threads: at most one publish in flight each at the kill.
    wait_one_sms_each(clinic, phones, unknown_allowed=4)


def test_scheduler_killed_midway_every_patient_gets_exactly_one_sms(
    clinic: Clinic, stack: Stack
) -> None:
    scheduler = stack.service("scheduler")
    phones: dict[str, str] = {}
    phones.update(book_many(clinic, 200, 100))
    scheduler.kill()  # while it consumes the bookings and emits their reminders
    phones.update(book_many(clinic, 300, 100))
    scheduler.start()
    stack.wait_ready(names=["scheduler"])
    wait_one_sms_each(clinic, phones)


def test_admin_projection_killed_midway_shows_every_confirmation(
    clinic: Clinic, stack: Stack
) -> None:
    phones = book_many(clinic, 400, 100)
    wait_one_sms_each(clinic, phones)
    admin = stack.service("admin-api")
    for i, phone in enumerate(phones):
        assert clinic.reply(phone, "yes").status_code == 200
        if i == 30:
            admin.kill()  # the projection is mid-way through the replies
    admin.start()
    stack.wait_ready(names=["admin-api"])
    for appointment in phones.values():
        clinic.wait_status(appointment, "confirmed", timeout=90)
