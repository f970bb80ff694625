"""A client of the running system that uses only its interfaces: the admin API as a
clerk would, the SNS emulator's record of sent SMS, and inbound as a patient's reply."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

import httpx

from . import patient
from .stack import Stack


class Sms(Protocol):
    @property
    def message_id(self) -> str: ...

    @property
    def phone_number(self) -> str: ...

    @property
    def message(self) -> str: ...


class Clinic:
    """Drives the running system only through its interfaces, as a clinic and patients would."""

    def __init__(self, stack: Stack, sent_sms: Callable[[], Sequence[Sms]]) -> None:
        self.stack = stack
        self._sent_sms = sent_sms
        # The SNS emulator may hold SMS from before this system started (other tests):
        # they are not this clinic's.
        self._before = {m.message_id for m in sent_sms()}
        self.admin = httpx.Client(
            base_url=stack.config.url("admin-api"),
            headers={"Authorization": f"Bearer {stack.config.admin_token}"},
            timeout=15,
        )

    def register(self, name: str, phone: str, language: str, timezone: str) -> str:
        response = self.admin.post(
            "/v1/patients",
            json={"name": name, "phone": phone, "language": language, "timezone": timezone},
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def book(self, patient_id: str, starts_at: datetime, **extra: Any) -> str:
        response = self.admin.post(
            "/v1/appointments",
            json={"patient_id": patient_id, "starts_at": starts_at.isoformat(), **extra},
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def appointment(self, appointment_id: str) -> dict[str, Any]:
        response = self.admin.get(f"/v1/appointments/{appointment_id}")
        assert response.status_code == 200, response.text
        detail: dict[str, Any] = response.json()
        return detail

    def wait_status(self, appointment_id: str, status: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            detail = self.appointment(appointment_id)
            if detail["status"] == status:
                return detail
            if time.monotonic() > deadline:
                raise AssertionError(f"status {detail['status']!r}, expected {status!r}: {detail}")
            time.sleep(0.3)

    def sent_sms(self) -> list[Sms]:
        """What this system sent through SNS, oldest first."""
        return [m for m in self._sent_sms() if m.message_id not in self._before]

    def sms_to(self, phone: str) -> list[Sms]:
        return [m for m in self.sent_sms() if m.phone_number == phone]

    def wait_sms(self, phone: str, count: int = 1, timeout: float = 60) -> list[Sms]:
        deadline = time.monotonic() + timeout
        while True:
            messages = self.sms_to(phone)
            if len(messages) >= count:
                return messages
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(messages)} SMS to {phone}, expected {count}")
            time.sleep(0.3)

    def reply(self, phone: str, text: str, to: Sms | None = None) -> httpx.Response:
        return patient.reply(
            self.stack.config.url("inbound"),
            patient_phone=phone,
            long_code=self.stack.config.long_code,
            text=text,
            topic_arn=self.stack.config.topic_arn,
            previous_message_id=to.message_id if to else None,
        )
